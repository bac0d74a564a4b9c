//! Secret values: never printed (`Debug` redacts, no `Display`), zeroed on
//! drop, compared only through their SHA-256 digests in constant time.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// A secret string (user secret, organization secret, a secret
/// configuration value).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value itself, for the few places that must use it (sealing it,
    /// showing a freshly made secret once).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(self.expose().as_bytes())
    }

    /// A fresh secret of 32 bytes from the operating system's CSPRNG,
    /// base64url without padding (43 characters).
    pub fn generate() -> Result<Self, getrandom::Error> {
        use base64::Engine as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut())?;
        Ok(Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// The SHA-256 digest of a secret: what the store keeps instead of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest(pub [u8; 32]);

impl SecretDigest {
    pub fn of(bytes: &[u8]) -> Self {
        SecretDigest(Sha256::digest(bytes).into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(SecretDigest)
    }

    /// Constant-time equality: the time taken does not depend on where the
    /// digests differ.
    pub fn ct_eq(&self, other: &SecretDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretDigest({}…)", &self.hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        assert!(!format!("{:?}", s.digest()).contains("hunter2"));
    }

    #[test]
    fn digests_compare_by_value() {
        let a = Secret::new("a").digest();
        assert!(a.ct_eq(&Secret::new("a").digest()));
        assert!(!a.ct_eq(&Secret::new("b").digest()));
    }

    #[test]
    fn generated_secrets_are_distinct_and_43_chars() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
    }
}
