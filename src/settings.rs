//! What the function and `admin` read from the environment, with the same
//! defaults. Endpoints and credentials follow the AWS SDK's own variables
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_KMS`,
//! `AWS_REGION`, ...).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`, default `instances`.
    pub table_name: String,
    /// `KMS_KEY_ID`: a key id, ARN or alias; default `alias/instances`.
    pub kms_key_id: String,
    /// `AUTH_CACHE_SECONDS`: how long a verified credential is trusted
    /// without a read; default and maximum 60.
    pub auth_cache: Duration,
    /// `DATA_KEY_MAX_AGE_SECONDS`: how long one KMS data key seals new
    /// values; default 900.
    pub data_key_max_age: Duration,
}

impl Settings {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
        let secs = |name: &str, default: u64| var(name, "").parse::<u64>().unwrap_or(default);
        Settings {
            table_name: var("TABLE_NAME", "instances"),
            kms_key_id: var("KMS_KEY_ID", "alias/instances"),
            auth_cache: Duration::from_secs(secs("AUTH_CACHE_SECONDS", 60).min(60)),
            data_key_max_age: Duration::from_secs(secs("DATA_KEY_MAX_AGE_SECONDS", 900)),
        }
    }
}
