//! What the function and `admin` read from the environment, with the same
//! defaults. Endpoints and credentials follow the AWS SDK's own variables
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_KMS`,
//! `AWS_REGION`, ...).

use std::time::Duration;

use crate::outbound::address::AllowList;

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
    /// `REQUEST_DEADLINE_MS`: how long one request may take, retries of the
    /// SDK included, before it is answered `503` with `Retry-After`; default
    /// 8000, well inside the function's 10 s timeout (template.yaml) and API
    /// Gateway's 29 s, so the client gets the API's own answer, never a
    /// gateway error.
    pub request_deadline: Duration,
    /// `PROVIDER_CHECK`: `on` (the default) or `off`: whether an instance's
    /// credentials are checked with the vendor before it is stored.
    pub provider_check: bool,
    /// `PROVIDER_CHECK_TIMEOUT_MS`: connect, TLS and answer of one check
    /// together; default 4000 (half the request's deadline).
    pub provider_check_timeout: Duration,
    /// `PROVIDER_ALLOWED_HOSTS`: host names and addresses the check may
    /// reach although they are not public (a private JIRA installation);
    /// comma-separated, default none.
    pub provider_allowed_hosts: AllowList,
    /// `PROVIDER_TEST_CA_FILE`: a PEM file of certificates the check trusts
    /// besides the system's. It exists for the tests' stand-in JIRA only; the
    /// template never sets it.
    pub provider_test_ca_file: Option<String>,
}

/// The default of `PROVIDER_CHECK_TIMEOUT_MS`.
pub const DEFAULT_PROVIDER_CHECK_TIMEOUT_MS: u64 = 4000;

/// The default of `REQUEST_DEADLINE_MS`; template.yaml's `Timeout` leaves room after it.
pub const DEFAULT_REQUEST_DEADLINE_MS: u64 = 8000;

impl Settings {
    pub fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
        let secs = |name: &str, default: u64| var(name, "").parse::<u64>().unwrap_or(default);
        let millis = |name: &str, default: u64| {
            Duration::from_millis(var(name, "").parse::<u64>().ok().filter(|&ms| ms > 0).unwrap_or(default))
        };
        Settings {
            table_name: var("TABLE_NAME", "instances"),
            kms_key_id: var("KMS_KEY_ID", "alias/instances"),
            auth_cache: Duration::from_secs(secs("AUTH_CACHE_SECONDS", 60).min(60)),
            data_key_max_age: Duration::from_secs(secs("DATA_KEY_MAX_AGE_SECONDS", 900)),
            request_deadline: millis("REQUEST_DEADLINE_MS", DEFAULT_REQUEST_DEADLINE_MS),
            provider_check: !var("PROVIDER_CHECK", "on").eq_ignore_ascii_case("off"),
            provider_check_timeout: millis("PROVIDER_CHECK_TIMEOUT_MS", DEFAULT_PROVIDER_CHECK_TIMEOUT_MS),
            provider_allowed_hosts: AllowList::parse(&var("PROVIDER_ALLOWED_HOSTS", "")),
            provider_test_ca_file: std::env::var("PROVIDER_TEST_CA_FILE").ok().filter(|v| !v.is_empty()),
        }
    }
}
