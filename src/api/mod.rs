//! The HTTP edge: routing (on the path without the API Gateway stage),
//! headers, body limits, and the one place where failures become responses.
//! `handle` is a plain async function from a request to a response, callable
//! from tests without the Lambda runtime.

pub mod body;
pub mod error;

use std::time::{Instant, SystemTime};

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{info, warn};

use crate::app::App;
use crate::domain::catalog::Catalog;
use crate::domain::credentials::Credentials;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::request::CreateInstance;
use crate::service::{create_instance, CreateError};
use error::{json_response, ApiError, MAX_BODY_BYTES};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Serves one request. Never fails: every failure is a response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id(&request);
    let method = request.method().clone();
    let path = route_path(&request);
    let outcome = match path.trim_end_matches('/') {
        "/instances" if method == Method::POST => create(app, &request).await,
        "/instances" => Err(ApiError::MethodNotAllowed { allow: "POST" }),
        _ => Err(ApiError::NotFound),
    };
    let (response, instance_id, organization, replayed, code) = match outcome {
        Ok(done) => (done.response, Some(done.id), Some(done.organization), done.replayed, ""),
        Err(error) => {
            if let ApiError::Unavailable(detail) = &error {
                warn!(requestId = %request_id, detail = %detail, "dependency unavailable");
            }
            let code = error.code();
            (error.into_response(&request_id), None, None, false, code)
        }
    };
    info!(
        requestId = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        code,
        instanceId = instance_id,
        organization = organization.as_deref(),
        replayed,
        durationMs = started.elapsed().as_secs_f64() * 1000.0,
        "request completed"
    );
    response
}

struct Done {
    response: Response<Body>,
    id: u64,
    organization: String,
    replayed: bool,
}

async fn create(app: &App, request: &Request) -> Result<Done, ApiError> {
    let (credentials, bytes) = precheck(request)?;
    let principal = app
        .auth
        .authenticate(&app.store, &credentials)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or(ApiError::Unauthorized)?;
    let (key, parsed) = parse_create(request, bytes, &app.catalog)?;
    let created =
        create_instance(app, &principal, &parsed, key.as_ref(), SystemTime::now()).await.map_err(|e| match e {
            CreateError::KeyReused => ApiError::IdempotencyKeyReused,
            CreateError::KeyInFlight => ApiError::IdempotencyKeyInFlight,
            other => ApiError::Unavailable(other.to_string()),
        })?;
    Ok(Done {
        response: created_response(created.body, created.replayed),
        id: created.id.get(),
        organization: principal.organization,
        replayed: created.replayed,
    })
}

/// What is checked before any I/O: the `Authorization` grammar, the
/// `Content-Type`, the body's size. Returns the credentials and the body.
pub fn precheck(request: &Request) -> Result<(Credentials, &[u8]), ApiError> {
    let headers = request.headers();
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Credentials::parse(v).ok())
        .ok_or(ApiError::Unauthorized)?;
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let bytes: &[u8] = match request.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok((credentials, bytes))
}

/// After authentication: the `Idempotency-Key`, then the body parsed against
/// the catalog.
pub fn parse_create<'c>(
    request: &Request,
    bytes: &[u8],
    catalog: &'c Catalog,
) -> Result<(Option<IdempotencyKey>, CreateInstance<'c>), ApiError> {
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?;
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let parsed = CreateInstance::parse(&json, catalog)?;
    Ok((key, parsed))
}

/// The 200: the body as rendered, never cached by anyone on the way.
pub fn created_response(body: Vec<u8>, replayed: bool) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// `application/json` or `application/*+json`, any parameters (charset).
fn is_json(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// API Gateway's request id (the one its access logs and `x-amzn-RequestId`
/// carry), else the Lambda invocation's.
fn request_id(request: &Request) -> String {
    #[allow(unreachable_patterns)]
    let gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        _ => None,
    };
    gateway
        .filter(|id| !id.is_empty())
        .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
        .unwrap_or_default()
}

/// The path without the stage: REST API events carry it apart from the
/// stage already; HTTP API events with a named stage carry `/<stage>/...`.
fn route_path(request: &Request) -> String {
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    #[allow(unreachable_patterns)]
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone().filter(|s| s != "$default"),
        _ => None,
    };
    match stage.and_then(|s| path.strip_prefix(&format!("/{s}")).map(str::to_owned)) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
            "application/merge-patch+json ; q=1",
        ] {
            assert!(is_json(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in ["text/plain", "application/xml", "multipart/form-data", "json", "text/json"] {
            assert!(!is_json(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
