//! The one way out to a host a user named: the site of an instance's URL
//! entry (the credential check, the hub), and next the callbacks of event
//! deliveries. It knows no vendor; each use brings its own [`Limits`].
//!
//! - Every address a host resolves to is checked before connecting, inside
//!   the resolver the connector uses ([`resolve::CheckedResolver`]), so what
//!   was checked is what is connected to; a host given as an address is
//!   checked here. A deployment's allow list opens named hosts or addresses
//!   ([`address::AllowList`]): one client per allow list.
//! - HTTPS only, TLS verified against the system's roots (plus, in tests and
//!   under `make run` only, a stand-in's CA); HTTP/1.1; no redirect is ever
//!   followed (a `3xx` is an answer like any).
//! - A total deadline per request (connect, TLS, the answer and its body),
//!   half of it at most for connecting, and at most `max_answer_bytes` read.
//! - Every failure to reach the host (refused, timed out, TLS, no answer, a
//!   connection dropped mid-answer) is one [`OutboundError::Unreachable`],
//!   answered at the deadline: neither the words nor the time of a refusal
//!   tell the ports of a host apart. The cause goes to the log.
//! - One client per cold start: connections are kept alive and reused.

pub mod address;
pub mod resolve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use address::{refusal, AllowList};
use resolve::{CheckedResolver, Lookup, NoSuchHost, Refused};

/// What a client is built with (one per allow list).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub allow: AllowList,
    /// PEM certificates trusted besides the system's: only a test's or
    /// `make run`'s stand-in (`PROVIDER_TEST_CA_FILE`); a deployment never
    /// sets it.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// What one use allows a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connect, TLS, the answer and its body together.
    pub timeout: Duration,
    pub max_answer_bytes: usize,
}

/// One request out. `url` is absolute `https`.
pub struct Request {
    pub method: Method,
    pub url: url::Url,
    /// Sent as given; mark credentials sensitive (`HeaderValue::set_sensitive`).
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The host's answer, its body read in full (within the limit).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    /// The host is (`literal`) or resolves to an address the service does
    /// not connect to; `why` names the kind of address, never the address of
    /// a name.
    #[error("{host} is or resolves to {why}")]
    Refused { host: String, literal: bool, why: &'static str },
    /// DNS says the host does not exist.
    #[error("{0} does not exist (DNS)")]
    NoSuchHost(String),
    /// The host could not be reached or did not answer in time (see the
    /// module's notes).
    #[error("{UNREACHABLE}")]
    Unreachable,
    /// The answer's body passed the use's limit: its status and headers,
    /// without the body.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize, status: StatusCode, headers: HeaderMap },
    /// The answer's body broke off: its status and headers, without the body.
    #[error("the answer broke off")]
    BrokeOff { status: StatusCode, headers: HeaderMap },
    /// A request that cannot be sent (not https, no host): a caller's bug or
    /// a stored URL that no longer reads.
    #[error("the request cannot be sent: {0}")]
    Invalid(String),
}

/// What a caller hears of every failure to reach a host.
pub const UNREACHABLE: &str =
    "the site could not be reached over HTTPS (no connection, no TLS session, or no answer in time)";

type Connector = HttpsConnector<HttpConnector<CheckedResolver>>;

pub struct Client {
    client: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
    allow: Arc<AllowList>,
}

impl Client {
    /// `connect_timeout`: how long connecting (TCP, to one checked address
    /// after another) may take; a request's own deadline bounds it too.
    pub fn new(settings: &ClientSettings, lookup: Arc<dyn Lookup>, connect_timeout: Duration) -> Result<Self, String> {
        let allow = Arc::new(settings.allow.clone());
        let mut http = HttpConnector::new_with_resolver(CheckedResolver::new(lookup, allow.clone()));
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client { client, allow })
    }

    /// Sends `request` and reads its answer, within `limits`.
    pub async fn send(&self, request: Request, limits: Limits) -> Result<Answer, OutboundError> {
        let deadline = tokio::time::Instant::now() + limits.timeout;
        if request.url.scheme() != "https" {
            return Err(OutboundError::Invalid(format!("{}:// is not https", request.url.scheme())));
        }
        // A host given as an address reaches no resolver: checked here.
        let literal = match request.url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OutboundError::Invalid("no host".into())),
        };
        if let Some(ip) = literal {
            if let Some(why) = refusal(ip).filter(|_| !self.allow.address(ip)) {
                return Err(OutboundError::Refused { host: ip.to_string(), literal: true, why });
            }
        }
        let mut http = hyper::Request::builder().method(request.method).uri(request.url.as_str());
        if let Some(headers) = http.headers_mut() {
            *headers = request.headers;
            headers
                .entry(hyper::header::USER_AGENT)
                .or_insert(HeaderValue::from_static(concat!("instances/", env!("CARGO_PKG_VERSION"))));
        }
        let http = http.body(Full::new(request.body)).map_err(|e| OutboundError::Invalid(e.to_string()))?;
        let max = limits.max_answer_bytes;
        let exchange = async {
            let response = self.client.request(http).await.map_err(connect_error)?;
            let (parts, body) = response.into_parts();
            let body = match Limited::new(body, max).collect().await {
                Ok(body) => body,
                Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                    return Err(OutboundError::TooLarge { limit: max, status: parts.status, headers: parts.headers })
                }
                Err(e) => {
                    tracing::info!(cause = %e, "outbound: the answer's body broke off");
                    return Err(OutboundError::BrokeOff { status: parts.status, headers: parts.headers });
                }
            };
            Ok::<_, OutboundError>(Answer { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        let outcome = tokio::time::timeout_at(deadline, exchange).await.unwrap_or_else(|_| {
            tracing::info!(ms = limits.timeout.as_millis() as u64, "outbound: no answer in time");
            Err(OutboundError::Unreachable)
        });
        if matches!(outcome, Err(OutboundError::Unreachable)) {
            // A closed port answers at once, a filtered one at the connect
            // timeout, a silent one at the deadline: all at the deadline.
            tokio::time::sleep_until(deadline).await;
        }
        outcome
    }
}

/// A failed exchange: a refused address or a name DNS does not know are the
/// URL's; anything else (refused connection, timeout, TLS) is
/// [`OutboundError::Unreachable`], its cause logged.
fn connect_error(e: hyper_util::client::legacy::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut causes = Vec::new();
    while let Some(err) = source {
        if let Some(missing) = err.downcast_ref::<NoSuchHost>() {
            return OutboundError::NoSuchHost(missing.host.clone());
        }
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return OutboundError::Refused { host: refused.host.clone(), literal: false, why: refused.why };
        }
        let text = err.to_string();
        if !text.is_empty() && causes.last() != Some(&text) {
            causes.push(text);
        }
        source = err.source();
    }
    let cause: String = causes.join(": ").chars().take(300).collect();
    tracing::info!(cause = %cause, "outbound: the site could not be reached");
    OutboundError::Unreachable
}

fn tls_config(settings: &ClientSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(pem) = &settings.extra_roots_pem {
        use rustls::pki_types::pem::PemObject as _;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the extra certificate does not read: {e}"))?;
            roots.add(cert).map_err(|e| format!("the extra certificate is refused: {e}"))?;
        }
    }
    if added == 0 && settings.extra_roots_pem.is_none() {
        tracing::warn!("no system root certificate found: every outbound request will fail TLS");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
