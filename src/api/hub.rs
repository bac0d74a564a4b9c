//! The hub at the edge: `/hubs/{key}/{resource}...` and the same paths
//! without the prefix (as the platform serves them), for the instance the
//! `Element` token names. Every answer, once the token resolved, carries
//! `Elements-Element-Instance-Id`.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use super::error::{ApiError, INSTANCE_ID_HEADER};
use super::instances::query_pairs;
use super::{credentials, is_json, Done};
use crate::app::App;
use crate::domain::token::InstanceId;
use crate::hub::{self, HubCall, MAX_REQUEST_BYTES};

/// The most a hub answer may carry (Lambda's 6 MB response, less the room
/// of the proxy response's own fields).
const MAX_ANSWER_TO_CLIENT: usize = 5_900_000;

/// An answer is had only once the token resolved: there is an instance.
fn unreachable_id() -> InstanceId {
    InstanceId::new(1).unwrap_or_else(|| unreachable!("1 is a valid id"))
}

/// The hub's part of `path`: `(Some(key), rest)` under `/hubs/{key}`, or
/// `(None, path)` when its first segment is a hub resource of the catalog
/// (or `proxy`); `None` when it is not a hub call.
pub fn hub_path<'p>(app: &App, path: &'p str) -> Option<(Option<&'p str>, &'p str)> {
    if let Some(rest) = path.strip_prefix("/hubs/") {
        let key = rest.split('/').next().unwrap_or("");
        // The rest keeps its leading slash: `/hubs/helpdesk/incidents` is `/incidents`.
        return Some((Some(key), &rest[key.len()..]));
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    app.catalog.hub_roots().any(|root| root == first).then_some((None, path))
}

/// Serves a hub call. `started`: when the request arrived (the deadline of
/// its vendor requests counts from it).
pub async fn serve(
    app: &App,
    request: &Request,
    hub_key: Option<&str>,
    path: &str,
    started: std::time::Instant,
) -> Result<Done, ApiError> {
    // An encoded `/` or `\` in the path as sent is refused whatever a front
    // decoded before (API Gateway hands `{proxy+}` over decoded).
    let raw = request.raw_http_path();
    let raw = if raw.is_empty() { request.uri().path() } else { raw };
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return Err(ApiError::InvalidQuery("the path holds an encoded / or \\".into()));
    }
    let credentials = credentials(request)?;
    let principal =
        app.auth.authenticate(&app.store, &credentials).await?.map_err(|r| ApiError::Unauthorized(r.reason()))?;
    let token = credentials.element.as_ref().ok_or(ApiError::ElementTokenNeeded)?;
    let body: &[u8] = match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::HubPayloadTooLarge);
    }
    let proxy = path.trim_start_matches('/').starts_with("proxy/") || path.trim_start_matches('/') == "proxy";
    let headers = request.headers();
    if let Some(content_type) = headers.get(header::CONTENT_TYPE).filter(|_| !proxy && !body.is_empty()) {
        if !is_json(content_type) {
            let received = String::from_utf8_lossy(content_type.as_bytes()).chars().take(100).collect();
            return Err(ApiError::UnsupportedMediaType(received));
        }
    }
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let call = HubCall {
        method: request.method(),
        path,
        hub_key,
        query: query_pairs(request),
        content_type: text(header::CONTENT_TYPE),
        accept: text(header::ACCEPT),
        body,
        path_decoded: !request.path_parameters().is_empty(),
        deadline: tokio::time::Instant::from_std(started)
            + app.settings.request_deadline.saturating_sub(std::time::Duration::from_millis(800)),
    };
    let outcome = hub::call(app, &principal, token, &call).await;
    let answer = match (outcome.result, outcome.instance) {
        (Ok(answer), _) => answer,
        (Err(e), Some(id)) => return Err(ApiError::ForInstance(id, Box::new(e.into()))),
        (Err(e), None) => return Err(e.into()),
    };
    // Lambda answers at most 6 MB, base64 included for a binary body.
    let encoded =
        if std::str::from_utf8(&answer.body).is_ok() { answer.body.len() } else { answer.body.len() / 3 * 4 + 4 };
    if encoded > MAX_ANSWER_TO_CLIENT {
        let why = format!("the answer is larger than the {MAX_ANSWER_TO_CLIENT} bytes a call may answer");
        return Err(ApiError::ForInstance(
            outcome.instance.unwrap_or_else(unreachable_id),
            Box::new(ApiError::ProviderBadResponse(why)),
        ));
    }
    let mut response = Response::new(match String::from_utf8(answer.body) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    });
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let out = response.headers_mut();
    if let Some(content_type) = answer.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        out.insert(header::CONTENT_TYPE, content_type);
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(id) = outcome.instance {
        out.insert(INSTANCE_ID_HEADER, HeaderValue::from(id.get()));
    }
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    }
    Ok(Done {
        response,
        id: outcome.instance.map(|i| i.get()),
        organization: Some(principal.organization),
        replayed: false,
    })
}
