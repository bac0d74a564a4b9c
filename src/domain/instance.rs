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
}

/// The owner of a verified pair of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization: String,
    pub user: String,
}
