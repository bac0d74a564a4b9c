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
//! It goes out through the guarded client ([`crate::outbound`], the one
//! the hub uses too) with its own limits: the check's timeout, at most
//! [`MAX_ANSWER_BYTES`] of an answer.

use std::time::Duration;

use base64::Engine as _;
use hyper::body::Bytes;

pub use crate::outbound::UNREACHABLE;
use crate::outbound::{self, Limits, OutboundError};

/// The most of an answer the check reads: an account is a few hundred bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The most of the vendor's message an error answer carries.
const MAX_MESSAGE_CHARS: usize = 300;

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
    /// The kind of site each account field tells (`accountId`: `cloud`).
    pub flavors: &'a std::collections::BTreeMap<String, String>,
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

/// Whether the vendor accepts the credentials: `GET` of the site's API path
/// with HTTP basic auth, through `client`, within `timeout`. Answers the
/// kind of site the account tells (the catalog's `flavors`), if any.
pub async fn check(
    client: &outbound::Client,
    timeout: Duration,
    request: &CheckRequest<'_>,
) -> Result<Option<String>, CheckError> {
    // The path goes under the site's own (a context path such as /jira is
    // kept); a query or fragment of the stored URL is not the API's.
    let mut url = url::Url::parse(request.base_url).map_err(|e| url_problem(format!("is not a URL ({e})")))?;
    let path = format!("{}{}", url.path().trim_end_matches('/'), request.path);
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    let credentials = zeroize::Zeroizing::new(format!("{}:{}", request.username, request.password));
    let encoded = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(credentials.as_bytes()));
    let mut authorization = hyper::header::HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
        .map_err(|_| url_problem("cannot be asked with these credentials".into()))?;
    // Kept out of any debug output of the request.
    authorization.set_sensitive(true);
    let mut headers = hyper::HeaderMap::new();
    headers.insert(hyper::header::AUTHORIZATION, authorization);
    headers.insert(hyper::header::ACCEPT, hyper::header::HeaderValue::from_static("application/json"));
    let out = outbound::Request { method: hyper::Method::GET, url, headers, body: Bytes::new() };
    let limits = Limits { timeout, max_answer_bytes: MAX_ANSWER_BYTES };
    match client.send(out, limits).await {
        Ok(answer) => verdict(answer.status, &answer.headers, Some(&answer.body), request.account_fields)
            .map(|field| request.flavors.get(&field).cloned()),
        // Judged on its status and headers, without the body (as before the
        // outbound client was its own).
        Err(OutboundError::TooLarge { status, headers, .. } | OutboundError::BrokeOff { status, headers }) => {
            verdict(status, &headers, None, request.account_fields).map(|field| request.flavors.get(&field).cloned())
        }
        Err(e) => Err(outbound_problem(e)),
    }
}

/// What the check says of a request that could not be had.
fn outbound_problem(e: OutboundError) -> CheckError {
    match e {
        OutboundError::Refused { host, literal: true, why } => {
            url_problem(format!("names {host}, {why}, which the service does not connect to"))
        }
        // The kind of address, not the address: the answer does not map the
        // names of a private network.
        OutboundError::Refused { host, literal: false, why } => {
            url_problem(format!("names {host}, which resolves to {why}, which the service does not connect to"))
        }
        OutboundError::NoSuchHost(host) => url_problem(format!(
            "names {host}, a host that does not exist (DNS has no such name): check the site's address"
        )),
        OutboundError::Invalid(why) => url_problem(format!("cannot be asked ({why})")),
        OutboundError::Unreachable | OutboundError::TooLarge { .. } | OutboundError::BrokeOff { .. } => {
            CheckError::Unavailable { provider_message: UNREACHABLE.to_owned() }
        }
    }
}

/// What an answer says of the credentials: accepted, naming the account by
/// the field answered.
fn verdict(
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
    body: Option<&[u8]>,
    account_fields: &[String],
) -> Result<String, CheckError> {
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
        let account = json.as_ref().and_then(|j| {
            account_fields.iter().find(|f| j.get(f.as_str()).and_then(|v| v.as_str()).is_some_and(|v| !v.is_empty()))
        });
        return if let Some(field) = account {
            Ok(field.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::{HeaderMap, StatusCode};

    fn fields() -> Vec<String> {
        vec!["accountId".into(), "name".into()]
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Result<(), CheckError> {
        answered(status, headers, body).map(|_| ())
    }

    fn answered(status: u16, headers: &[(&str, &str)], body: &str) -> Result<String, CheckError> {
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
        assert_eq!(answered(200, &[], r#"{"accountId": "5b10"}"#), Ok("accountId".into()), "tells the field");
        assert_eq!(answered(200, &[], r#"{"name": "admin"}"#), Ok("name".into()));
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
