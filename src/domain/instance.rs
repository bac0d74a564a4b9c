//! An instance as the domain knows it, and the owner of a request.

use crate::domain::events::PollChange;
use crate::domain::secret::SecretDigest;
use crate::domain::token::InstanceId;

/// An instance as stored: what every answer shows of it (its summary) and
/// what is sealed or secret.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub summary: InstanceSummary,
    /// Sealed secret configuration values (see `seal`), sorted by key; their
    /// keys are `summary.secret_keys` (set both with [`Self::set_secrets`]).
    secrets: Vec<(String, Vec<u8>)>,
    /// The KMS-encrypted data key the secrets are sealed under.
    pub sealed_data_key: Vec<u8>,
    pub token_digest: SecretDigest,
    /// The digest of the `Idempotency-Key` it was created with, if any: its
    /// idempotency record replays the token, so a delete removes it too.
    pub replay_key: Option<String>,
    /// What writing this record does to its polls (`store::events`): set by
    /// a create or an update before it writes; [`PollChange::Keep`] as read.
    pub polls: PollChange,
}

/// The owner of a verified pair of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization: String,
    pub user: String,
}

impl InstanceRecord {
    pub fn new(
        summary: InstanceSummary,
        secrets: Vec<(String, Vec<u8>)>,
        sealed_data_key: Vec<u8>,
        token_digest: SecretDigest,
        replay_key: Option<String>,
    ) -> Self {
        let mut record = InstanceRecord {
            summary,
            secrets: vec![],
            sealed_data_key,
            token_digest,
            replay_key,
            polls: PollChange::Keep,
        };
        record.set_secrets(secrets);
        record
    }

    pub fn secrets(&self) -> &[(String, Vec<u8>)] {
        &self.secrets
    }

    /// Replaces the sealed values, and with them the summary's names of the
    /// secret entries that are set.
    pub fn set_secrets(&mut self, mut secrets: Vec<(String, Vec<u8>)>) {
        secrets.sort();
        self.summary.secret_keys = secrets.iter().map(|(k, _)| k.clone()).collect();
        self.secrets = secrets;
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
    /// `(key, name)` for each entry its client gave by an alias (JIRA's
    /// `username` for `jira.username`): answered under that name.
    pub names: Vec<(String, String)>,
    pub created_date: String,
    pub updated_date: String,
    pub valid: bool,
    pub disabled: bool,
    pub caching_enabled: bool,
    pub max_cache_size: u64,
    pub cache_time_to_live: u64,
    /// Incremented by every update (optimistic concurrency, the `ETag`).
    pub version: u64,
    /// Which kind of site the vendor is (`cloud`, `server`: the catalog's
    /// `flavors`), as the last credential check or the hub found it; `None`
    /// until one has. Not in the organization's index (lists do not need it).
    pub flavor: Option<String>,
}

impl InstanceSummary {
    /// A new instance of `element_key` as a create makes it (version 1,
    /// valid, enabled, no cache, both dates `stamp`), before its name, tags and
    /// configuration are set.
    pub fn fresh(id: InstanceId, principal: &Principal, element_key: &str, element_id: u64, stamp: &str) -> Self {
        InstanceSummary {
            id,
            organization: principal.organization.clone(),
            user: principal.user.clone(),
            name: String::new(),
            tags: vec![],
            element_key: element_key.to_owned(),
            element_id,
            configuration: vec![],
            secret_keys: vec![],
            names: vec![],
            created_date: stamp.to_owned(),
            updated_date: stamp.to_owned(),
            valid: true,
            disabled: false,
            caching_enabled: false,
            max_cache_size: 0,
            cache_time_to_live: 0,
            version: 1,
            flavor: None,
        }
    }

    /// A JIRA instance as a create of the documented request stores it (its
    /// password set), for tests and benchmarks that need one without I/O.
    #[doc(hidden)]
    pub fn example(id: InstanceId, organization: &str, user: &str) -> Self {
        let principal = Principal { organization: organization.into(), user: user.into() };
        InstanceSummary {
            name: "Test".into(),
            tags: vec!["support".into()],
            configuration: vec![
                ("event.notification.enabled".into(), "false".into()),
                ("filter.response.nulls".into(), "true".into()),
                ("jira.api.url".into(), "https://example.atlassian.net".into()),
                ("jira.username".into(), "jira-user@example.com".into()),
            ],
            secret_keys: vec!["jira.password".into()],
            ..InstanceSummary::fresh(id, &principal, "jira", 1, "2026-11-29T12:00:00.000Z")
        }
    }

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
