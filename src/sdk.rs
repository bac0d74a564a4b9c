//! The AWS SDK as the service uses it: configuration (loaded once per
//! execution environment), clients built on first use, and errors described
//! for the log.

use std::sync::LazyLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

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

/// An SDK error, for the log and the operator, as one short sentence: the
/// service's code and message when it answered; otherwise what happened
/// (dispatch failure, timeout, ...) and its root cause (connection refused,
/// no credentials, ...), not the whole chain of wrappers.
pub fn describe_error<E>(e: &E) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    if let Some(code) = e.code() {
        return format!("{code}: {}", e.message().unwrap_or_default());
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(source) = root.source() {
        root = source;
    }
    let root = root.to_string();
    // Its first sentence: the cause, without the lists that follow it.
    let first_line = root.lines().next().unwrap_or_default();
    let why = first_line.split(". ").next().unwrap_or_default().trim_end_matches(['.', ':']).to_owned();
    let what = e.to_string();
    let text = if why == what { what } else { format!("{what}: {why}") };
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Another transaction is writing the item: retrying later succeeds, but the
/// SDK does not retry it.
pub const TRANSACTION_CONFLICT: &str = "TransactionConflictException";

/// Whether a failed call may succeed later: throttled, unreachable, timed
/// out, an unreadable answer, a 5xx from the service, or a write that met
/// another transaction on its item (`TransactionConflictException`). Those are answered
/// `503` with `Retry-After`. Anything else (a request the service refused:
/// a missing table or key, a disabled key, denied access, a request that could
/// not be built) will fail the same way however often it is retried, and is
/// answered `500`.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or_default();
            status >= 500
                || status == 429
                || THROTTLING_ERRORS.contains(&code)
                || TRANSIENT_ERRORS.contains(&code)
                || code == TRANSACTION_CONFLICT
        }
        // Timeouts, connection failures, answers that could not be read.
        _ => true,
    }
}
