//! The vendor side of a hub call: the site (its URL, the basic auth of the
//! instance's credentials, opened for this call only), the paths built on
//! it, one request out through the guarded client, and the vendor's answer
//! read into the hub's terms.

use base64::Engine as _;
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Method;
use serde_json::Value;
use zeroize::Zeroizing;

use super::{HubAnswer, HubCall, HubError, MAX_ANSWER_BYTES};
use crate::app::App;
use crate::domain::catalog::CredentialCheck;
use crate::domain::instance::InstanceRecord;
use crate::outbound::{self, Limits, OutboundError};
use crate::seal::aad;

/// The instance's site, ready to be asked.
pub struct Site<'a> {
    client: &'a outbound::Client,
    /// The site's URL as stored (its path is kept: a context path such as /jira).
    base: url::Url,
    authorization: HeaderValue,
    deadline: tokio::time::Instant,
    /// The most of one answer read ([`MAX_ANSWER_BYTES`] unless a use says less).
    max_answer_bytes: std::sync::atomic::AtomicUsize,
}

impl<'a> Site<'a> {
    /// The site of `record`, its password opened (the origin rule of
    /// `domain::origin` holds what is stored: the password was given for
    /// this very URL's origin).
    pub async fn open(
        app: &'a App,
        record: &InstanceRecord,
        check: &CredentialCheck,
        deadline: tokio::time::Instant,
    ) -> Result<Site<'a>, HubError> {
        let client = app.vendor.as_ref().map_err(|e| HubError::Internal(e.clone()))?;
        let value = |key: &str| record.summary.configuration.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let missing = |what: &str| HubError::Internal(format!("instance {} has no {what}", record.summary.id));
        let url = value(&check.url).ok_or_else(|| missing(&check.url))?;
        let base =
            url::Url::parse(url).map_err(|e| HubError::Internal(format!("the stored URL does not read: {e}")))?;
        let username = value(&check.username).ok_or_else(|| missing(&check.username))?;
        let (_, sealed) =
            record.secrets().iter().find(|(k, _)| k == &check.password).ok_or_else(|| missing(&check.password))?;
        let binding = aad(&record.summary.organization, record.summary.id, &check.password);
        let password = app.sealer.open(&record.sealed_data_key, &binding, sealed).await?;
        let mut pair = Zeroizing::new(Vec::with_capacity(username.len() + 1 + password.len()));
        pair.extend_from_slice(username.as_bytes());
        pair.push(b':');
        pair.extend_from_slice(&password);
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_slice()));
        let mut authorization = HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
            .map_err(|_| HubError::Internal("the credentials do not make a header".into()))?;
        authorization.set_sensitive(true);
        Ok(Site {
            client,
            base,
            authorization,
            deadline,
            max_answer_bytes: std::sync::atomic::AtomicUsize::new(MAX_ANSWER_BYTES),
        })
    }

    /// Reads at most `bytes` of each answer from now on.
    pub fn limit_answers(&self, bytes: usize) {
        self.max_answer_bytes.store(bytes.min(MAX_ANSWER_BYTES), std::sync::atomic::Ordering::Relaxed);
    }

    /// The most of each answer read now.
    pub fn answer_limit(&self) -> usize {
        self.max_answer_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The site's URL with `path` (already encoded) under its own path.
    fn url(&self, path: &str, query: &[(String, String)]) -> url::Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_fragment(None);
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<outbound::Answer, HubError> {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return Err(HubError::Unavailable("no time left in the request's deadline".into()));
        }
        let mut headers = headers;
        headers.insert(hyper::header::AUTHORIZATION, self.authorization.clone());
        let request = outbound::Request { method, url: self.url(path, query), headers, body };
        let limits = Limits {
            timeout: self.deadline - now,
            max_answer_bytes: self.max_answer_bytes.load(std::sync::atomic::Ordering::Relaxed),
        };
        self.client.send(request, limits).await.map_err(outbound_error)
    }

    /// A JSON call of the vendor's API, its answer classified.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Bytes,
    ) -> Result<VendorAnswer, HubError> {
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::ACCEPT, HeaderValue::from_static("application/json"));
        if !body.is_empty() {
            headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let answer = self.exchange(method, path, query, headers, body).await?;
        VendorAnswer::classify(answer.status.as_u16(), &answer.headers, &answer.body)
    }

    /// A `POST` of JSON whose `2xx` answer is kept as bytes, for a reader
    /// that takes only what it needs of it (a poll's page: its JQL, which a
    /// burst's keys make long, in the body, never in a URL); a refusal as
    /// [`Self::send`] tells it. With JIRA's clock, as its `Date` header tells it.
    pub async fn post_raw(&self, path: &str, body: Bytes) -> Result<RawAnswer, HubError> {
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let answer = self.exchange(Method::POST, path, &[], headers, body).await?;
        VendorAnswer::refusal(answer.status.as_u16(), &answer.headers, &answer.body)?;
        let date_ms = answer
            .headers
            .get(hyper::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
            .map(|z| z.timestamp().as_millisecond());
        Ok(RawAnswer { body: answer.body, date_ms })
    }
}

/// A `2xx` answer as read.
pub struct RawAnswer {
    pub body: Bytes,
    /// The instant the site's `Date` header names (second precision).
    pub date_ms: Option<i64>,
}

/// The most of a refusal's body read as JSON for its words (a larger one is
/// told by its status: a hostile site's small values parse to many times
/// their size).
const MAX_REFUSAL_JSON: usize = 64 * 1024;

/// The vendor's refusals passed on with their status (`provider_error`).
const PASSED_ON: &[u16] = &[400, 403, 404, 409, 410, 412, 422];

/// The methods `/proxy/` passes on (never `TRACE` or `CONNECT`: a server
/// that echoes a `TRACE` would answer the request, its `Authorization`
/// header with it).
pub const PROXY_METHODS: &[Method] =
    &[Method::GET, Method::HEAD, Method::OPTIONS, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// A vendor answer the hub can use: a `2xx`, its JSON (none for an empty body).
#[derive(Debug)]
pub struct VendorAnswer {
    pub status: u16,
    pub json: Option<Value>,
}

impl VendorAnswer {
    /// The refusal table: `2xx` is an answer (JSON, or empty); the vendor's
    /// `401` (or a refused login on any status) is the instance's
    /// credentials; `429` its rate limit; another `4xx` its refusal, in its
    /// words; a `5xx` its unavailability.
    pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<VendorAnswer, HubError> {
        Self::refusal(status, headers, body)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(VendorAnswer { status, json: None });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(json) => Ok(VendorAnswer { status, json: Some(json) }),
            Err(_) => Err(HubError::BadResponse("the answer is not JSON".into())),
        }
    }

    /// The refusal an answer is, if it is one (anything but a `2xx`).
    pub fn refusal(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<(), HubError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let seraph = header("x-seraph-loginreason").to_ascii_uppercase();
        let refused_login =
            status == 401 || seraph.contains("AUTHENTICATED_FAILED") || seraph.contains("AUTHENTICATION_DENIED");
        if (200..300).contains(&status) && !refused_login {
            return Ok(());
        }
        let json: Option<Value> = if body.len() <= MAX_REFUSAL_JSON { serde_json::from_slice(body).ok() } else { None };
        if refused_login {
            return Err(HubError::InstanceInvalid { message: words(status, json.as_ref(), &seraph) });
        }
        if status == 429 {
            return Err(HubError::RateLimited {
                retry_after: Some(header("retry-after").to_owned()).filter(|r| !r.is_empty()),
            });
        }
        // JIRA's refusals of the call itself keep their status; a 4xx that
        // would mean something else from this service (405 without our
        // Allow, 407, 413, ...) is an answer the hub cannot pass on as its own.
        if PASSED_ON.contains(&status) {
            return Err(HubError::Provider { status, message: words(status, json.as_ref(), "") });
        }
        if (400..500).contains(&status) {
            return Err(HubError::BadResponse(format!(
                "JIRA answered HTTP {status}: {}",
                words(status, json.as_ref(), "")
            )));
        }
        if status >= 500 {
            return Err(HubError::Unavailable(words(status, json.as_ref(), "")));
        }
        // A redirect is never followed: the site is not where the URL says.
        Err(HubError::BadResponse(format!("HTTP {status} (not followed)")))
    }
}

/// The vendor's own words: `errorMessages` and `errors` (`field: text`), else
/// `message`, else the status; one line, at most 300 characters.
fn words(status: u16, json: Option<&Value>, seraph: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(j) = json {
        if let Some(list) = j.get("errorMessages").and_then(Value::as_array) {
            parts.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(map) = j.get("errors").and_then(Value::as_object) {
            parts.extend(map.iter().map(|(k, v)| format!("{k}: {}", v.as_str().map_or(v.to_string(), str::to_owned))));
        }
        if parts.is_empty() {
            if let Some(m) = j.get("message").and_then(Value::as_str) {
                parts.push(m.to_owned());
            }
        }
    }
    if parts.is_empty() {
        parts.push(if seraph.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status} ({seraph})") });
    }
    let one_line = parts.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

fn outbound_error(e: OutboundError) -> HubError {
    match e {
        OutboundError::TooLarge { limit, .. } => {
            HubError::BadResponse(format!("the answer is larger than {limit} bytes"))
        }
        OutboundError::BrokeOff { .. } => HubError::Unavailable(outbound::UNREACHABLE.into()),
        OutboundError::Unreachable => HubError::Unavailable(outbound::UNREACHABLE.into()),
        // The stored site no longer passes the guard (its DNS changed) or
        // no longer exists: nothing the caller can mend by retrying soon.
        OutboundError::Refused { host, why, .. } => {
            HubError::Unavailable(format!("{host} is or resolves to {why}, which the service does not connect to"))
        }
        OutboundError::NoSuchHost(host) => HubError::Unavailable(format!("{host} does not exist (DNS)")),
        OutboundError::Invalid(why) => HubError::Internal(why),
    }
}

/// The segments of a hub path, percent-decoded, each checked: none empty
/// (`//`), none `.` or `..` (however encoded), none holding `/` or `\` once
/// decoded, none with control characters; so that a value, put back into a
/// vendor path, can never climb out of the site or of its place.
pub fn safe_segments(path: &str, decode: bool) -> Result<Vec<String>, HubError> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let mut segments = Vec::new();
    for raw in trimmed.split('/') {
        let refused = |why: &str| HubError::Invalid(format!("the path segment {raw:?} {why}"));
        if raw.is_empty() {
            return Err(HubError::Invalid("the path holds an empty segment (//)".into()));
        }
        let decoded = if decode {
            percent_decode(raw).ok_or_else(|| refused("is not valid percent-encoded UTF-8"))?
        } else {
            raw.to_owned()
        };
        if decoded == "." || decoded == ".." {
            return Err(refused("is a dot segment"));
        }
        if decoded.contains(['/', '\\']) {
            return Err(refused("holds an encoded / or \\"));
        }
        if decoded.chars().any(char::is_control) {
            return Err(refused("holds a control character"));
        }
        segments.push(decoded);
    }
    Ok(segments)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a value may be one path segment: not empty, not `.` or `..`
/// (which the URL's own rules would resolve, however encoded), no control
/// character.
fn one_segment(value: &str) -> bool {
    !value.is_empty() && value != "." && value != ".." && !value.chars().any(char::is_control)
}

/// A path segment's value, percent-encoded (everything but RFC 3986's
/// unreserved characters).
pub fn encode_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A vendor path template (`/rest/api/2/issue/{id}/comment`) with its
/// values put in, each encoded as one segment; `{created}` is the id a first
/// call answered (the vendor's word: checked as the caller's values are, so
/// that an id of `..` cannot climb up the site's paths).
pub fn fill(template: &str, values: &[(&str, &str)], created: Option<&str>) -> Result<String, HubError> {
    let mut path = String::new();
    for part in template.trim_start_matches('/').split('/') {
        path.push('/');
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some("created") => {
                let id = created.ok_or_else(|| HubError::BadResponse("the create answered no id".into()))?;
                if !one_segment(id) {
                    return Err(HubError::BadResponse(format!(
                        "the create answered an id that is no path segment: {id:?}"
                    )));
                }
                path.push_str(&encode_segment(id));
            }
            Some(name) => {
                let value = values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| HubError::Internal(format!("no value for {{{name}}}")))?;
                if !one_segment(value) {
                    return Err(HubError::Invalid(format!("{value:?} is not a path segment")));
                }
                path.push_str(&encode_segment(value));
            }
            None => path.push_str(part),
        }
    }
    Ok(path)
}

/// `/proxy/{path}`: the call as given, to `{site}/{path}`, with its query,
/// body, `Content-Type` and `Accept`; the vendor's status, `Content-Type` and
/// body, unchanged (no null filter). Only the vendor's refusal of the
/// instance's credentials is the hub's (`403 instance_invalid`, never a
/// `401`), and an answer over the limit a `502`.
pub async fn proxy(site: &Site<'_>, call: &HubCall<'_>, segments: &[String]) -> Result<HubAnswer, HubError> {
    if segments.is_empty() {
        return Err(HubError::Invalid("/proxy/ needs the vendor's path after it".into()));
    }
    let path: String = segments.iter().map(|s| format!("/{}", encode_segment(s))).collect();
    let mut headers = HeaderMap::new();
    for (name, value) in [(hyper::header::CONTENT_TYPE, call.content_type), (hyper::header::ACCEPT, call.accept)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    let answer =
        site.exchange(call.method.clone(), &path, &call.query, headers, Bytes::copy_from_slice(call.body)).await?;
    let status = answer.status.as_u16();
    let seraph =
        answer.headers.get("x-seraph-loginreason").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_uppercase();
    if status == 401 || seraph.contains("AUTHENTICATED_FAILED") || seraph.contains("AUTHENTICATION_DENIED") {
        let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
        return Err(HubError::InstanceInvalid { message: words(status, json.as_ref(), &seraph) });
    }
    let content_type = answer.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // What a caller needs of JIRA's answer besides its body: when to retry,
    // where a redirect (never followed) leads.
    let mut headers = Vec::new();
    for name in ["retry-after", "location"] {
        if let Some(v) = answer.headers.get(name).and_then(|v| v.to_str().ok()) {
            headers.push((name, v.to_owned()));
        }
    }
    Ok(HubAnswer { status, content_type, body: answer.body.to_vec(), headers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_that_could_leave_the_site_are_refused() {
        for bad in [
            "/incidents/../myself",
            "/incidents/%2e%2e/x",
            "/incidents/%2E",
            "/proxy/rest//api",
            "/incidents/a%2Fb",
            "/incidents/a%5cb",
            "/incidents/a\\b",
            "/incidents/%00",
            "/incidents/%zz",
            "/incidents/%C3",
        ] {
            assert!(matches!(safe_segments(bad, true), Err(HubError::Invalid(_))), "{bad}");
        }
        assert_eq!(safe_segments("/incidents/DEMO-1/", true).unwrap(), ["incidents", "DEMO-1"]);
        assert_eq!(safe_segments("/incidents/a%20b", true).unwrap(), ["incidents", "a b"]);
        // Decoded once only: what a front decoded stays as it is.
        assert_eq!(safe_segments("/incidents/100%25", false).unwrap(), ["incidents", "100%25"]);
        assert!(safe_segments("/incidents/..", false).is_err());
        assert_eq!(
            fill("/rest/api/2/issue/{id}/comment", &[("id", "a b?c#d")], None).unwrap(),
            "/rest/api/2/issue/a%20b%3Fc%23d/comment"
        );
        // JIRA's own word for a created id is checked as the caller's are.
        for hostile in ["..", ".", ""] {
            assert!(matches!(fill("/rest/api/2/issue/{created}", &[], Some(hostile)), Err(HubError::BadResponse(_))));
            assert!(fill("/x/{id}", &[("id", hostile)], None).is_err());
        }
    }

    #[test]
    fn the_vendors_answers_in_the_hubs_terms() {
        let none = HeaderMap::new();
        let body =
            br#"{"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}"#;
        match VendorAnswer::classify(404, &none, body) {
            Err(HubError::Provider { status: 404, message }) => assert!(message.starts_with("Issue does not exist")),
            other => panic!("{other:?}"),
        }
        let field = br#"{"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}"#;
        match VendorAnswer::classify(400, &none, field) {
            Err(HubError::Provider { status: 400, message }) => {
                assert_eq!(message, "summary: You must specify a summary of the issue.")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(VendorAnswer::classify(401, &none, b""), Err(HubError::InstanceInvalid { .. })));
        let mut seraph = HeaderMap::new();
        seraph.insert("x-seraph-loginreason", HeaderValue::from_static("AUTHENTICATION_DENIED"));
        assert!(matches!(VendorAnswer::classify(403, &seraph, b"<html>"), Err(HubError::InstanceInvalid { .. })));
        let mut limited = HeaderMap::new();
        limited.insert("retry-after", HeaderValue::from_static("7"));
        match VendorAnswer::classify(429, &limited, b"") {
            Err(HubError::RateLimited { retry_after }) => assert_eq!(retry_after.as_deref(), Some("7")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(VendorAnswer::classify(503, &none, b"down"), Err(HubError::Unavailable(_))));
        assert!(matches!(VendorAnswer::classify(200, &none, b"<html>"), Err(HubError::BadResponse(_))));
        assert!(matches!(VendorAnswer::classify(302, &none, b""), Err(HubError::BadResponse(_))));
        assert!(
            matches!(VendorAnswer::classify(407, &none, b""), Err(HubError::BadResponse(_))),
            "not ours to pass on"
        );
        assert!(VendorAnswer::classify(204, &none, b"").unwrap().json.is_none());
    }

    proptest! {
        /// Whatever a value holds, it stays one segment of the vendor path.
        #[test]
        fn a_value_is_one_segment(value in "\\PC{1,40}") {
            let path = fill("/rest/api/2/issue/{id}", &[("id", &value)], None).unwrap();
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            prop_assert_eq!(segments.len(), 5);
            prop_assert_eq!(percent_decode(segments[4]).unwrap(), value);
            prop_assert!(!segments[4].contains(['?', '#', '/', '\\']));
        }
    }
}
