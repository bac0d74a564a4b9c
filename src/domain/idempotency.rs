//! The `Idempotency-Key` header: 1..=255 printable ASCII characters; the
//! IETF draft's quoted form (`"..."`, a structured-field string) is read too.

use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(header: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let text = std::str::from_utf8(header).map_err(|_| InvalidIdempotencyKey)?;
        let text = text.trim_matches([' ', '\t']);
        let inner = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(inner) if text.len() >= 2 => inner,
            _ => text,
        };
        let printable = inner.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if inner.is_empty() || inner.len() > 255 || !printable || inner.trim().is_empty() {
            return Err(InvalidIdempotencyKey);
        }
        Ok(IdempotencyKey(inner.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the key: what the store's item key holds (bounded size,
    /// any character).
    pub fn digest_hex(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_and_quoted_forms_name_the_same_key() {
        assert_eq!(IdempotencyKey::parse(b"abc-1").unwrap().as_str(), "abc-1");
        assert_eq!(IdempotencyKey::parse(b"\"abc-1\"").unwrap().as_str(), "abc-1");
    }

    #[test]
    fn bad_keys_are_refused() {
        let long = "k".repeat(256);
        let bad_keys: [&[u8]; 6] = [b"", b"\"\"", b"   ", b"caf\xc3\xa9", b"a\x01b", long.as_bytes()];
        for bad in bad_keys {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidIdempotencyKey), "{bad:?}");
        }
        assert!(IdempotencyKey::parse("k".repeat(255).as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn printable_keys_are_accepted(k in "[!-~][ -~]{0,253}[!-~]") {
            prop_assume!(!(k.starts_with('"') && k.ends_with('"')));
            let key = IdempotencyKey::parse(k.as_bytes()).unwrap();
            prop_assert_eq!(key.as_str(), k.as_str());
        }
    }
}
