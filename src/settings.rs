//! What the function and `admin` read from the environment, with the same
//! defaults. Endpoints and credentials follow the AWS SDK's own variables
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_KMS`,
//! `AWS_REGION`, ...).

use std::sync::LazyLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

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

/// The roots of the certificates AWS endpoints present (Amazon Trust Services).
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The SDK configuration for `admin` and the tests: the SDK's default
/// credential and region chains (profiles, SSO, web identity, ...).
pub async fn load_sdk_config() -> SdkConfig {
    loader().load().await
}

/// The function's SDK configuration, loaded once per execution environment.
/// Lambda hands credentials and region to the function in environment
/// variables, so the default chains (which build an STS client and load the
/// system's ~150 root certificates at start: 85% of the init instructions,
/// measured with callgrind) are skipped, and TLS trusts the five roots AWS
/// endpoints chain to. `TLS_ROOTS=system` trusts the system's store instead.
pub async fn load_function_sdk_config() -> SdkConfig {
    let mut loader = loader()
        .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
        .region(aws_config::environment::EnvironmentVariableRegionProvider::new());
    if std::env::var("TLS_ROOTS").as_deref() != Ok("system") {
        if let Some(client) = aws_roots_https_client() {
            loader = loader.http_client(client);
        }
    }
    loader.load().await
}

fn aws_roots_https_client() -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS);
    let context = TlsContext::builder().with_trust_store(trust).build().ok()?;
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
}

/// Bounded timeouts and the standard retry mode (3 attempts), so that a slow
/// or unreachable server becomes a 503 well inside API Gateway's 29 s.
fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(6))
                .build(),
        )
}

/// An SDK client built on first use, or handed over ready. Building one
/// (endpoint rules, TLS context) costs about 0.7 M instructions, a third of
/// the function's init (callgrind); deferred, it is paid by the first request
/// that needs it, which pays for connections and the data key anyway.
pub struct Deferred<C>(LazyLock<C, Box<dyn FnOnce() -> C + Send>>);

impl<C> Deferred<C> {
    pub fn ready(client: C) -> Self
    where
        C: Send + 'static,
    {
        Deferred(LazyLock::new(Box::new(move || client)))
    }

    pub fn new(make: impl FnOnce() -> C + Send + 'static) -> Self {
        Deferred(LazyLock::new(Box::new(make)))
    }
}

impl<C> std::ops::Deref for Deferred<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}
