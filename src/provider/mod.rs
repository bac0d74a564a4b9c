//! The credential check: before an instance is stored (at create, and at an
//! update that changes the credentials or the URL), the vendor is asked
//! whether the credentials work. For JIRA (the catalog's `credentialCheck`
//! says what to call): `GET {base URL}/rest/api/2/myself` with HTTP basic
//! auth, served by Jira Cloud and Jira Server/Data Center alike.
//!
//! - `200` with an account (`accountId` or `name`): the credentials work.
//! - `401`/`403`, or `X-Seraph-LoginReason: AUTHENTICATED_FAILED` /
//!   `AUTHENTICATION_DENIED` even on a `200`: they do not
//!   ([`CheckError::Credentials`]; a CAPTCHA named in
//!   `X-Authentication-Denied-Reason` is told apart, since retrying makes it
//!   worse). The vendor's message goes along.
//! - Unreachable, timed out, a TLS failure, or a `5xx`:
//!   [`CheckError::Unavailable`].
//! - A redirect (never followed), another `4xx`, or a `200` that is not an
//!   account: the URL is not the JIRA site's ([`CheckError::Url`]); so is a
//!   host whose addresses the check does not connect to (`address`).
//!
//! One client per cold start (`Checker::new`): its connections are reused;
//! it connects through [`resolve::CheckedResolver`], so what was checked is
//! what is connected to; it trusts the system's roots (plus, in tests only, a
//! stand-in's certificate); it has a connect timeout and a total one, and
//! reads at most [`MAX_ANSWER_BYTES`] of an answer.

pub mod address;
pub mod resolve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use address::{refusal, AllowList};
use resolve::{CheckedResolver, Lookup, NoSuchHost, Refused};

/// The most of an answer the check reads: an account is a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The most of the vendor's message an error answer carries.
const MAX_MESSAGE_CHARS: usize = 300;

/// How the check is set up (see `Settings`).
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Connect, TLS and answer together.
    pub timeout: Duration,
    pub allow: AllowList,
    /// PEM certificates trusted besides the system's: only a test's stand-in
    /// (`PROVIDER_TEST_CA_FILE`); a deployment never sets it.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// What to ask, and with what.
pub struct CheckRequest<'a> {
    /// The site's URL as stored (`https://...`, no trailing slash on the root).
    pub base_url: &'a str,
    /// The catalog's path under it (`/rest/api/2/myself`).
    pub path: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// Fields of which one names the account (`accountId`, `name`).
    pub account_fields: &'a [String],
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// The vendor refused the credentials.
    #[error("the credentials were refused{}: {provider_message}", if *.captcha { " (CAPTCHA)" } else { "" })]
    Credentials { captcha: bool, provider_message: String },
    /// The URL does not lead to the vendor's API (or to an address the check
    /// does not connect to).
    #[error("the URL {problem}")]
    Url { problem: String, provider_message: Option<String> },
    /// The vendor could not be asked: unreachable, timed out, TLS, `5xx`.
    #[error("the vendor is unavailable: {provider_message}")]
    Unavailable { provider_message: String },
}

type Connector = HttpsConnector<HttpConnector<CheckedResolver>>;

pub struct Checker {
    client: Client<Connector, Empty<Bytes>>,
    allow: Arc<AllowList>,
    timeout: Duration,
}

impl Checker {
    pub fn new(settings: &CheckSettings, lookup: Arc<dyn Lookup>) -> Result<Self, String> {
        let allow = Arc::new(settings.allow.clone());
        let mut http = HttpConnector::new_with_resolver(CheckedResolver::new(lookup, allow.clone()));
        http.enforce_http(false);
        // Connecting (TCP, to one checked address after another) gets half the
        // budget, so that a host that does not answer leaves time to say so.
        http.set_connect_timeout(Some(settings.timeout / 2));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(Checker { client, allow, timeout: settings.timeout })
    }

    /// Whether the vendor accepts the credentials.
    pub async fn check(&self, request: &CheckRequest<'_>) -> Result<(), CheckError> {
        // The path goes under the site's own (a context path such as /jira
        // is kept); a query or fragment of the stored URL is not the API's.
        let mut parsed = url::Url::parse(request.base_url).map_err(|e| url_problem(format!("is not a URL ({e})")))?;
        let path = format!("{}{}", parsed.path().trim_end_matches('/'), request.path);
        parsed.set_path(&path);
        parsed.set_query(None);
        parsed.set_fragment(None);
        let url = parsed.to_string();
        // A host given as an address reaches no resolver: checked here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            if let Some(why) = refusal(ip).filter(|_| !self.allow.address(ip)) {
                return Err(url_problem(format!("names {ip}, {why}, which the service does not connect to")));
            }
        }
        let credentials = zeroize::Zeroizing::new(format!("{}:{}", request.username, request.password));
        let encoded = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes()));
        let mut authorization = hyper::header::HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
            .map_err(|_| url_problem("cannot be asked with these credentials".into()))?;
        // Kept out of any debug output of the request.
        authorization.set_sensitive(true);
        let http = hyper::Request::get(url.as_str())
            .header(hyper::header::AUTHORIZATION, authorization)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, concat!("instances/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| url_problem(format!("cannot be asked ({e})")))?;
        let timeout = self.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let exchange = async {
            let response = self.client.request(http).await.map_err(connect_error)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await.map(|b| b.to_bytes());
            Ok::<_, CheckError>((parts, body))
        };
        let outcome = tokio::time::timeout_at(deadline, exchange).await.unwrap_or_else(|_| {
            tracing::info!(ms = timeout.as_millis() as u64, "credential check: no answer in time");
            Err(unreachable_site())
        });
        match outcome {
            Ok((parts, body)) => verdict(parts.status, &parts.headers, body.ok().as_deref(), request.account_fields),
            Err(e) => {
                // A closed port answers at once, a filtered one at the connect
                // timeout, a silent one at the deadline: every failure to
                // reach the site is answered at the deadline, so that neither
                // the words nor the time tell the ports of a host apart.
                if e == unreachable_site() {
                    tokio::time::sleep_until(deadline).await;
                }
                Err(e)
            }
        }
    }
}

/// What an answer says of the credentials.
fn verdict(
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
    body: Option<&[u8]>,
    account_fields: &[String],
) -> Result<(), CheckError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let json: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
    let message = || vendor_message(status, json.as_ref(), header("x-seraph-loginreason"));
    let seraph = header("x-seraph-loginreason").to_ascii_uppercase();
    let refused = seraph.contains("AUTHENTICATED_FAILED") || seraph.contains("AUTHENTICATION_DENIED");
    if refused || status == hyper::StatusCode::UNAUTHORIZED || status == hyper::StatusCode::FORBIDDEN {
        let captcha = header("x-authentication-denied-reason").to_ascii_uppercase().contains("CAPTCHA");
        return Err(CheckError::Credentials { captcha, provider_message: message() });
    }
    if status.is_success() {
        let account = json.as_ref().is_some_and(|j| {
            account_fields.iter().any(|f| j.get(f).and_then(|v| v.as_str()).is_some_and(|v| !v.is_empty()))
        });
        return if account {
            Ok(())
        } else {
            Err(CheckError::Url {
                problem: "answers, but not with an account: it does not lead to the JIRA site's REST API".into(),
                provider_message: None,
            })
        };
    }
    if status.is_redirection() {
        let to = header("location");
        return Err(url_problem(format!(
            "answers with a redirect (HTTP {}) to {to:?}, which is not followed: give the URL it leads to",
            status.as_u16()
        )));
    }
    if status.is_server_error() {
        return Err(CheckError::Unavailable { provider_message: message() });
    }
    Err(CheckError::Url {
        problem: format!("does not lead to the JIRA site's REST API (HTTP {})", status.as_u16()),
        provider_message: Some(message()),
    })
}

/// The vendor's own words: JIRA's `errorMessages` or `message`, else the
/// login reason header, else the status; one line, at most 300 characters.
fn vendor_message(status: hyper::StatusCode, json: Option<&serde_json::Value>, seraph: &str) -> String {
    let from_json = json.and_then(|j| {
        let listed: Vec<&str> = j
            .get("errorMessages")
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        if !listed.is_empty() {
            return Some(listed.join(" "));
        }
        j.get("message").and_then(|m| m.as_str()).map(str::to_owned)
    });
    let text = from_json.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| {
        let reason = status.canonical_reason().unwrap_or("");
        if seraph.is_empty() {
            format!("HTTP {} {reason}", status.as_u16())
        } else {
            format!("HTTP {} {reason} ({seraph})", status.as_u16())
        }
    });
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(MAX_MESSAGE_CHARS).collect()
}

fn url_problem(problem: String) -> CheckError {
    CheckError::Url { problem, provider_message: None }
}

/// What a caller hears of every failure to reach the site: one message,
/// whether the connection was refused, timed out, failed TLS or got no
/// answer, so that the check cannot be used to tell the ports of a host
/// apart. The cause goes to the log.
pub const UNREACHABLE: &str =
    "the site could not be reached over HTTPS (no connection, no TLS session, or no answer in time)";

fn unreachable_site() -> CheckError {
    CheckError::Unavailable { provider_message: UNREACHABLE.to_owned() }
}

/// A failed exchange: a refused address is the URL's fault; anything else
/// (DNS, refused connection, timeout, TLS) is the vendor's unavailability,
/// told in one message ([`UNREACHABLE`]).
fn connect_error(e: hyper_util::client::legacy::Error) -> CheckError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut causes = Vec::new();
    while let Some(err) = source {
        if let Some(missing) = err.downcast_ref::<NoSuchHost>() {
            return url_problem(format!(
                "names {}, a host that does not exist (DNS has no such name): check the site's address",
                missing.host
            ));
        }
        if let Some(refused) = err.downcast_ref::<Refused>() {
            // The kind of address, not the address: the answer does not map
            // the names of a private network.
            return url_problem(format!(
                "names {}, which resolves to {}, which the service does not connect to",
                refused.host, refused.why
            ));
        }
        let text = err.to_string();
        if !text.is_empty() && causes.last() != Some(&text) {
            causes.push(text);
        }
        source = err.source();
    }
    let cause: String = causes.join(": ").chars().take(MAX_MESSAGE_CHARS).collect();
    tracing::info!(cause = %cause, "credential check: the site could not be reached");
    unreachable_site()
}

fn tls_config(settings: &CheckSettings) -> Result<rustls::ClientConfig, String> {
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
        tracing::warn!("no system root certificate found: every credential check will fail TLS");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::{HeaderMap, StatusCode};

    fn fields() -> Vec<String> {
        vec!["accountId".into(), "name".into()]
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Result<(), CheckError> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        verdict(StatusCode::from_u16(status).unwrap(), &map, Some(body.as_bytes()), &fields())
    }

    #[test]
    fn every_row_of_the_answer_table() {
        assert_eq!(answer(200, &[], r#"{"accountId": "5b10a2844c20165700ede21g"}"#), Ok(()));
        assert_eq!(answer(200, &[], r#"{"name": "admin", "key": "admin"}"#), Ok(()));
        assert!(matches!(answer(200, &[], r#"{"accountId": ""}"#), Err(CheckError::Url { .. })));
        assert!(matches!(answer(200, &[], "<html>login</html>"), Err(CheckError::Url { .. })));
        let refused = answer(401, &[], r#"{"errorMessages": ["You are not authenticated."]}"#);
        assert_eq!(
            refused,
            Err(CheckError::Credentials { captcha: false, provider_message: "You are not authenticated.".into() })
        );
        assert!(matches!(answer(403, &[], ""), Err(CheckError::Credentials { captcha: false, .. })));
        let seraph = answer(200, &[("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")], r#"{"name": "x"}"#);
        assert!(
            matches!(seraph, Err(CheckError::Credentials { captcha: false, ref provider_message })
            if provider_message.contains("AUTHENTICATED_FAILED")),
            "{seraph:?}"
        );
        let captcha = answer(
            403,
            &[
                ("X-Seraph-LoginReason", "AUTHENTICATION_DENIED"),
                ("X-Authentication-Denied-Reason", "CAPTCHA_CHALLENGE; login-url=https://x/login.jsp"),
            ],
            "",
        );
        assert!(matches!(captcha, Err(CheckError::Credentials { captcha: true, .. })), "{captcha:?}");
        assert!(matches!(answer(503, &[], "down"), Err(CheckError::Unavailable { .. })));
        assert!(
            matches!(answer(500, &[], r#"{"message": "boom"}"#), Err(CheckError::Unavailable { ref provider_message }) if provider_message == "boom")
        );
        assert!(
            matches!(answer(302, &[("Location", "https://10.0.0.1/")], ""), Err(CheckError::Url { ref problem, .. }) if problem.contains("10.0.0.1"))
        );
        assert!(matches!(answer(404, &[], ""), Err(CheckError::Url { provider_message: Some(_), .. })));
    }

    #[test]
    fn the_vendors_message_is_one_short_line() {
        let long = serde_json::json!({"errorMessages": ["a\nb", "x".repeat(500)]});
        let m = vendor_message(StatusCode::UNAUTHORIZED, Some(&long), "");
        assert!(m.starts_with("a b ") && m.chars().count() == MAX_MESSAGE_CHARS, "{m}");
        assert_eq!(vendor_message(StatusCode::FORBIDDEN, None, ""), "HTTP 403 Forbidden");
    }
}
