//! An instance as the domain knows it, and the owner of a request.

use crate::domain::secret::SecretDigest;
use crate::domain::token::InstanceId;

/// An instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub organization: String,
    pub user: String,
    pub name: String,
    pub tags: Vec<String>,
    pub element_key: String,
    pub element_id: u64,
    /// Non-secret configuration values.
    pub configuration: Vec<(String, String)>,
    /// Sealed secret configuration values (see `seal`).
    pub secrets: Vec<(String, Vec<u8>)>,
    /// The KMS-encrypted data key the secrets are sealed under.
    pub sealed_data_key: Vec<u8>,
    pub token_digest: SecretDigest,
    pub created_date: String,
    pub updated_date: String,
    pub valid: bool,
    pub disabled: bool,
    pub caching_enabled: bool,
    pub max_cache_size: u64,
    pub cache_time_to_live: u64,
    /// 1 at the create, incremented by every update.
    pub version: u64,
    /// The digest of the `Idempotency-Key` it was created with, if any: its
    /// idempotency record replays the token, so a delete removes it too.
    pub replay_key: Option<String>,
}

/// The owner of a verified pair of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization: String,
    pub user: String,
}

impl InstanceRecord {
    /// What every answer after the create shows of it.
    pub fn summary(&self) -> InstanceSummary {
        InstanceSummary {
            id: self.id,
            organization: self.organization.clone(),
            user: self.user.clone(),
            name: self.name.clone(),
            tags: self.tags.clone(),
            element_key: self.element_key.clone(),
            element_id: self.element_id,
            configuration: self.configuration.clone(),
            secret_keys: self.secrets.iter().map(|(k, _)| k.clone()).collect(),
            created_date: self.created_date.clone(),
            updated_date: self.updated_date.clone(),
            valid: self.valid,
            disabled: self.disabled,
            caching_enabled: self.caching_enabled,
            max_cache_size: self.max_cache_size,
            cache_time_to_live: self.cache_time_to_live,
            version: self.version,
        }
    }
}

/// An instance without what is sealed or secret: what the organization's
/// index projects, and what the representation renders (secret entries are
/// known only by name).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    pub id: InstanceId,
    pub organization: String,
    pub user: String,
    pub name: String,
    pub tags: Vec<String>,
    pub element_key: String,
    pub element_id: u64,
    /// Non-secret configuration values.
    pub configuration: Vec<(String, String)>,
    /// The secret entries that are set.
    pub secret_keys: Vec<String>,
    pub created_date: String,
    pub updated_date: String,
    pub valid: bool,
    pub disabled: bool,
    pub caching_enabled: bool,
    pub max_cache_size: u64,
    pub cache_time_to_live: u64,
    /// Incremented by every update (optimistic concurrency, the `ETag`).
    pub version: u64,
}

impl InstanceSummary {
    /// The entity tag of this state of the instance.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id, self.version)
    }
}

/// A user's stable numeric id, as the representation's `user.id` shows it:
/// the first 53 bits of SHA-256(organization, e-mail), so it is the same in
/// every answer, safe in every JSON client, and reveals neither.
pub fn user_id(organization: &str, email: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("user\0{organization}\0{email}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11).max(1)
}
