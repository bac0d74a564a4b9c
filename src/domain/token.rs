//! Instance ids and element tokens.
//!
//! An id is a random integer in 1..=2^53-1: safe in every JSON client, unique
//! (the store refuses a collision and the caller draws again) and not
//! guessable from earlier ids.
//!
//! A token is 32 bytes shown as standard base64 (44 characters): the id as 8
//! big-endian bytes, then 24 bytes (192 bits) from the operating system's
//! CSPRNG. The id lets a later `Element <token>` be resolved with one strongly
//! consistent read of the instance item (a global secondary index could not
//! be read strongly consistently); the 192 random bits are what make it a
//! secret. The store keeps only its SHA-256 digest.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::secret::{Secret, SecretDigest};

pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(u64);

impl InstanceId {
    pub fn random() -> Result<Self, getrandom::Error> {
        loop {
            let mut b = [0u8; 8];
            getrandom::getrandom(&mut b)?;
            let id = u64::from_be_bytes(b) & MAX_SAFE_INTEGER;
            if id != 0 {
                return Ok(InstanceId(id));
            }
        }
    }

    pub fn new(id: u64) -> Option<Self> {
        (1..=MAX_SAFE_INTEGER).contains(&id).then_some(InstanceId(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An element token, as shown once to the client; or, as a header gave it,
/// text that is not one (which names no instance).
pub struct Token(Secret, Form);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    WellFormed,
    /// Not 32 bytes of standard base64: names nothing.
    Malformed,
}

impl Token {
    pub fn mint(id: InstanceId) -> Result<Self, getrandom::Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        raw[..8].copy_from_slice(&id.get().to_be_bytes());
        getrandom::getrandom(&mut raw[8..])?;
        Ok(Token(Secret::new(STANDARD.encode(raw.as_ref())), Form::WellFormed))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let raw = Zeroizing::new(STANDARD.decode(text).ok()?);
        (raw.len() == 32).then(|| Token(Secret::new(text), Form::WellFormed))
    }

    /// What an `Element` part held when it is not a token: it resolves to
    /// no instance, so that the caller, once authenticated, hears that the
    /// token names none (rather than that the whole header is malformed).
    pub fn unresolvable(text: &str) -> Self {
        Token(Secret::new(text), Form::Malformed)
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The instance this token claims to belong to (still to be checked
    /// against the stored digest).
    pub fn instance_id(&self) -> Option<InstanceId> {
        if self.1 == Form::Malformed {
            return None;
        }
        let raw = Zeroizing::new(STANDARD.decode(self.expose()).ok()?);
        InstanceId::new(u64::from_be_bytes(raw.get(..8)?.try_into().ok()?))
    }

    /// SHA-256 of the 32 raw bytes.
    pub fn digest(&self) -> SecretDigest {
        let raw = Zeroizing::new(STANDARD.decode(self.expose()).unwrap_or_default());
        SecretDigest::of(&raw)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_44_chars_of_standard_base64_and_carry_their_id() {
        let id = InstanceId::random().unwrap();
        let t = Token::mint(id).unwrap();
        assert_eq!(t.expose().len(), 44);
        assert!(t.expose().ends_with('='));
        assert_eq!(STANDARD.decode(t.expose()).unwrap().len(), 32);
        assert_eq!(t.instance_id(), Some(id));
        let again = Token::parse(t.expose()).unwrap();
        assert!(again.digest().ct_eq(&t.digest()));
    }

    #[test]
    fn two_tokens_for_one_id_differ_in_their_random_part() {
        let id = InstanceId::new(42).unwrap();
        let (a, b) = (Token::mint(id).unwrap(), Token::mint(id).unwrap());
        assert_ne!(a.expose(), b.expose());
        assert!(!a.digest().ct_eq(&b.digest()));
    }

    #[test]
    fn ids_are_positive_and_safe_integers() {
        for _ in 0..1000 {
            let id = InstanceId::random().unwrap().get();
            assert!((1..=MAX_SAFE_INTEGER).contains(&id));
        }
        assert!(InstanceId::new(0).is_none());
        assert!(InstanceId::new(MAX_SAFE_INTEGER + 1).is_none());
    }

    #[test]
    fn foreign_tokens_are_not_parsed() {
        assert!(Token::parse("abc").is_none());
        assert!(Token::parse(&STANDARD.encode([0u8; 31])).is_none());
        assert!(Token::parse(&STANDARD.encode([0u8; 32])).unwrap().instance_id().is_none());
    }
}
