//! Envelope encryption of secrets with AWS KMS and AES-256-GCM.
//!
//! One data key is fetched with `GenerateDataKey` per execution environment
//! and reused for a bounded time and count ([`KeyPolicy`]), never a KMS call
//! per request. Its KMS-encrypted form is stored beside every ciphertext made
//! with it, so that any environment can open the ciphertext later with one
//! `Decrypt` (whose result is cached too).
//!
//! Every ciphertext is bound, as AES-GCM associated data, to what it belongs
//! to (organization, instance, entry: see [`aad`]): copied onto another item,
//! or under another entry, it does not decrypt.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)`, the
//! nonce random: with at most [`KeyPolicy::max_uses`] seals per key, far below
//! the 2^32 random-nonce bound for AES-GCM.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use crate::domain::token::InstanceId;
use crate::sdk::{describe_error, is_transient, Deferred};
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

const NONCE_LEN: usize = 12;
/// The KMS encryption context of every data key: a data key made for this
/// service does not decrypt under another context.
const CONTEXT_KEY: &str = "service";
const CONTEXT_VALUE: &str = "instances";
/// How many opened (decrypted) foreign data keys are kept.
const OPENED_CACHE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Throttled, unreachable, timed out or a 5xx after the SDK's retries.
    #[error("KMS {operation} failed: {detail}")]
    Unavailable { operation: &'static str, detail: String },
    /// Refused by KMS for good: the key is disabled, pending deletion or
    /// missing, or access is denied.
    #[error("KMS refused {operation}: {detail}")]
    Refused { operation: &'static str, detail: String },
    #[error("the operating system's random source failed")]
    Random,
    #[error("a sealed value does not open: wrong key, wrong binding or altered")]
    Corrupt,
}

impl SealError {
    /// Whether retrying later may succeed (the API answers `503` then, `500` otherwise).
    pub fn is_transient(&self) -> bool {
        matches!(self, SealError::Unavailable { .. })
    }
}

/// How long and how often one data key is used for new seals.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub max_age: Duration,
    pub max_uses: u64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy { max_age: Duration::from_secs(15 * 60), max_uses: 1 << 20 }
    }
}

/// A plaintext data key (zeroed on drop by the cipher) and its KMS-encrypted form.
pub struct DataKey {
    cipher: Aes256Gcm,
    encrypted: Vec<u8>,
    created: Instant,
    uses: AtomicU64,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

impl DataKey {
    /// A data key from its plaintext (32 bytes) and its KMS-encrypted form.
    pub fn new(plaintext: &[u8], encrypted: Vec<u8>) -> Result<Self, SealError> {
        if plaintext.len() != 32 {
            return Err(SealError::Corrupt);
        }
        Ok(DataKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(plaintext)),
            encrypted,
            created: Instant::now(),
            uses: AtomicU64::new(0),
        })
    }

    /// The KMS-encrypted data key, to store beside what it seals.
    pub fn encrypted_key(&self) -> &[u8] {
        &self.encrypted
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        self.uses.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| SealError::Random)?;
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .map_err(|_| SealError::Corrupt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(SealError::Corrupt);
        }
        let (nonce, msg) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Corrupt)
    }

    fn fresh(&self, policy: &KeyPolicy) -> bool {
        self.created.elapsed() < policy.max_age && self.uses.load(Ordering::Relaxed) < policy.max_uses
    }
}

/// The associated data that binds a sealed value to its place.
pub fn aad(organization: &str, instance: InstanceId, field: &str) -> Vec<u8> {
    format!("instances/v1\0{organization}\0{instance}\0{field}").into_bytes()
}

pub struct Sealer {
    kms: Deferred<aws_sdk_kms::Client>,
    key_id: String,
    policy: KeyPolicy,
    current: tokio::sync::Mutex<Option<Arc<DataKey>>>,
    opened: Mutex<Vec<Arc<DataKey>>>,
}

impl Sealer {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>, policy: KeyPolicy) -> Self {
        Self::deferred(Deferred::ready(kms), key_id, policy)
    }

    /// A sealer whose KMS client is built on its first call.
    pub fn deferred(kms: Deferred<aws_sdk_kms::Client>, key_id: impl Into<String>, policy: KeyPolicy) -> Self {
        Sealer {
            kms,
            key_id: key_id.into(),
            policy,
            current: tokio::sync::Mutex::new(None),
            opened: Mutex::new(Vec::new()),
        }
    }

    /// The data key for new seals: the environment's current one while it is
    /// fresh, otherwise a new one from `GenerateDataKey`.
    pub async fn writing_key(&self) -> Result<Arc<DataKey>, SealError> {
        let mut current = self.current.lock().await;
        if let Some(key) = current.as_ref().filter(|k| k.fresh(&self.policy)) {
            return Ok(key.clone());
        }
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .send()
            .await
            .map_err(|e| failed("GenerateDataKey", e))?;
        let (Some(plain), Some(encrypted)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(SealError::Unavailable {
                operation: "GenerateDataKey",
                detail: "the answer lacks the key".into(),
            });
        };
        let plain = Zeroizing::new(plain.as_ref().to_vec());
        let key = Arc::new(DataKey::new(&plain, encrypted.as_ref().to_vec())?);
        *current = Some(key.clone());
        Ok(key)
    }

    /// Opens a sealed value made under `encrypted_key` with `aad`.
    pub async fn open(&self, encrypted_key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.key_for(encrypted_key).await?.open(aad, sealed)
    }

    async fn key_for(&self, encrypted_key: &[u8]) -> Result<Arc<DataKey>, SealError> {
        if let Some(key) =
            self.current.lock().await.as_ref().filter(|k| k.encrypted == encrypted_key && k.fresh(&self.policy))
        {
            return Ok(key.clone());
        }
        if let Some(key) = self.cached_opened(encrypted_key) {
            return Ok(key);
        }
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(encrypted_key))
            .encryption_context(CONTEXT_KEY, CONTEXT_VALUE)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_invalid_ciphertext_exception() || se.is_incorrect_key_exception() => {
                    SealError::Corrupt
                }
                _ => failed("Decrypt", e),
            })?;
        let plain = Zeroizing::new(out.plaintext().map(|b| b.as_ref().to_vec()).unwrap_or_default());
        let key = Arc::new(DataKey::new(&plain, encrypted_key.to_vec())?);
        if let Ok(mut opened) = self.opened.lock() {
            if opened.len() >= OPENED_CACHE {
                opened.remove(0);
            }
            opened.push(key.clone());
        }
        Ok(key)
    }

    /// An opened key, while it is younger than the policy's `max_age`: a KMS
    /// key disabled or a grant revoked stops opening values in a warm
    /// environment within that bound, as it stops new seals.
    fn cached_opened(&self, encrypted_key: &[u8]) -> Option<Arc<DataKey>> {
        let mut opened = self.opened.lock().ok()?;
        opened.retain(|k| k.created.elapsed() < self.policy.max_age);
        opened.iter().find(|k| k.encrypted == encrypted_key).cloned()
    }
}

/// A failed call, told apart: transient (`Unavailable`) or for good (`Refused`).
fn failed<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> SealError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let detail = describe_error(&e);
    if is_transient(&e) {
        SealError::Unavailable { operation, detail }
    } else {
        SealError::Refused { operation, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::new(&[7u8; 32], vec![1, 2, 3]).unwrap()
    }

    #[test]
    fn seals_open_only_with_their_binding() {
        let k = key();
        let id = InstanceId::new(5).unwrap();
        let sealed = k.seal(&aad("org", id, "jira.password"), b"pw").unwrap();
        assert_eq!(&k.open(&aad("org", id, "jira.password"), &sealed).unwrap()[..], b"pw");
        assert!(!sealed.windows(2).any(|w| w == b"pw"));
        for other in [
            aad("org2", id, "jira.password"),
            aad("org", InstanceId::new(6).unwrap(), "jira.password"),
            aad("org", id, "jira.username"),
        ] {
            assert!(matches!(k.open(&other, &sealed), Err(SealError::Corrupt)));
        }
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(k.open(&aad("org", id, "jira.password"), &altered).is_err());
        assert!(k.open(b"", b"short").is_err());
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let k = key();
        assert_ne!(k.seal(b"a", b"x").unwrap(), k.seal(b"a", b"x").unwrap());
    }

    fn sealer(max_age: Duration) -> Sealer {
        let kms = Deferred::new(|| -> aws_sdk_kms::Client { unreachable!("no KMS call in this test") });
        Sealer::deferred(kms, "alias/test", KeyPolicy { max_age, max_uses: 9 })
    }

    #[test]
    fn opened_keys_are_forgotten_after_the_policys_age() {
        let fresh = sealer(Duration::from_secs(60));
        fresh.opened.lock().unwrap().push(Arc::new(key()));
        assert!(fresh.cached_opened(&[1, 2, 3]).is_some(), "a young opened key is reused");
        let stale = sealer(Duration::ZERO);
        stale.opened.lock().unwrap().push(Arc::new(key()));
        assert!(stale.cached_opened(&[1, 2, 3]).is_none(), "an opened key older than max_age is opened anew");
        assert!(stale.opened.lock().unwrap().is_empty(), "and dropped");
    }

    #[test]
    fn a_key_goes_stale_by_age_or_count() {
        let k = key();
        let policy = KeyPolicy { max_age: Duration::from_secs(60), max_uses: 2 };
        assert!(k.fresh(&policy));
        k.seal(b"", b"1").unwrap();
        k.seal(b"", b"2").unwrap();
        assert!(!k.fresh(&policy));
        assert!(!key().fresh(&KeyPolicy { max_age: Duration::ZERO, max_uses: 9 }));
    }
}
