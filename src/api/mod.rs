//! The HTTP edge: routing (on the path without the API Gateway stage),
//! headers, body limits, and the one place where failures become responses.
//! `handle` is a plain async function from a request to a response, callable
//! from tests without the Lambda runtime.

pub mod body;
mod configuration;
pub mod error;
mod events;
mod hub;
mod instances;
pub mod routes;

use std::time::{Instant, SystemTime};

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{error, info, warn};

use crate::app::App;
use crate::domain::catalog::Catalog;
use crate::domain::catalog::Element;
use crate::domain::credentials::Credentials;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::request::CreateInstance;
use crate::domain::request::RequestError;
use crate::domain::token::Token;
use crate::domain::update::Mode;
use crate::service::create_instance;
use crate::store::Principal;
use error::{json_response, ApiError, MAX_BODY_BYTES};
use routes::Route;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Serves one request. Never fails: every failure is a response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id(&request);
    let method = request.method().clone();
    let path = route_path(&request);
    let served = async {
        if let Some((hub_key, hub_path)) = hub::hub_path(app, &path) {
            return hub::serve(app, &request, hub_key, hub_path, started).await;
        }
        let route = Route::of(&path).ok_or(ApiError::NotFound)?;
        if !route.serves(&method) {
            return Err(ApiError::MethodNotAllowed { allow: route.allow() });
        }
        let element_of = |key_or_id: &str| {
            app.catalog.by_key_or_id(key_or_id).ok_or_else(|| {
                let known: Vec<String> = app.catalog.keys().into_iter().map(str::to_owned).collect();
                let suggestion = crate::domain::suggest::closest(key_or_id, known.iter().map(String::as_str));
                ApiError::NoSuchElement { given: key_or_id.chars().take(100).collect(), known, suggestion }
            })
        };
        let (post, delete) = (method == Method::POST, method == Method::DELETE);
        let change = match method {
            Method::PATCH => Some(Mode::Merge),
            Method::PUT => Some(Mode::Replace),
            _ => None,
        };
        match route {
            Route::Instances if post => create(app, &request, None).await,
            Route::Instances if delete => instances::delete(app, &request, None, None).await,
            Route::Instances => match change {
                Some(mode) => instances::change(app, &request, None, mode, None).await,
                None => instances::list(app, &request, None).await,
            },
            Route::Instance(id) => match change {
                Some(mode) => instances::change(app, &request, Some(id), mode, None).await,
                None if delete => instances::delete(app, &request, Some(id), None).await,
                None => instances::one(app, &request, id, None).await,
            },
            Route::ElementInstances(key) if post => create(app, &request, Some(element_of(key)?)).await,
            Route::ElementInstances(key) => instances::list(app, &request, Some(element_of(key)?)).await,
            Route::ElementInstance(key, id) => {
                let element = Some(element_of(key)?);
                match change {
                    Some(mode) => instances::change(app, &request, Some(id), mode, element).await,
                    None if delete => instances::delete(app, &request, Some(id), element).await,
                    None => instances::one(app, &request, id, element).await,
                }
            }
            Route::InstanceEnabled(id) => instances::set_enabled(app, &request, Some(id), method == Method::PUT).await,
            Route::TokenEnabled => instances::set_enabled(app, &request, None, method == Method::PUT).await,
            Route::Configuration(id) => configuration::list(app, &request, id).await,
            Route::Events(id) => events::list(app, &request, id).await,
            Route::ConfigurationEntry(id, entry) if change.is_some() => {
                configuration::patch(app, &request, id, entry).await
            }
            Route::ConfigurationEntry(id, entry) => configuration::one(app, &request, id, entry).await,
            Route::Elements => {
                authenticate(app, &request).await?;
                Ok(Done::catalog(body::elements_json(app.catalog.elements().iter())))
            }
            Route::Element(key_or_id) => {
                authenticate(app, &request).await?;
                Ok(Done::catalog(body::element_json(element_of(key_or_id)?)))
            }
        }
    };
    // A deadline well inside the function's timeout: the client gets the
    // API's 503 rather than a gateway error. A write may have committed
    // before it passed; a retry with the same Idempotency-Key answers it.
    let deadline = app.settings.request_deadline;
    let outcome = tokio::time::timeout(deadline, served).await.unwrap_or_else(|_| {
        Err(ApiError::Unavailable(format!("the request deadline of {} ms passed", deadline.as_millis())))
    });
    let (response, instance_id, organization, replayed, code, reason) = match outcome {
        Ok(done) => (done.response, done.id, done.organization, done.replayed, None, None),
        Err(error) => {
            // A hub failure is logged as what it is, with its instance.
            let (inner, instance) = match &error {
                ApiError::ForInstance(id, inner) => (inner.as_ref(), Some(id.get())),
                other => (other, None),
            };
            match inner {
                ApiError::Unavailable(detail) => {
                    warn!(requestId = %request_id, detail = %detail, "dependency unavailable")
                }
                ApiError::Internal(detail) => error!(requestId = %request_id, detail = %detail, "internal error"),
                ApiError::HubUnavailable(detail) | ApiError::ProviderBadResponse(detail) => {
                    warn!(requestId = %request_id, detail = %detail, "the vendor failed a hub call")
                }
                _ => {}
            }
            // Why a 401 was refused: for the operator, never in the answer.
            let reason = match &error {
                ApiError::Unauthorized(reason) => Some(*reason),
                ApiError::ElementTokenNeeded => Some("no Element token names the instance"),
                ApiError::ElementTokenRefused => Some("the Element token names no live instance of the organization"),
                _ => None,
            };
            let code = error.code();
            (error.into_response(&request_id), instance, None, false, Some(code), reason)
        }
    };
    info!(
        requestId = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        code,
        reason,
        instanceId = instance_id,
        organization = organization.as_deref(),
        replayed,
        durationMs = started.elapsed().as_secs_f64() * 1000.0,
        "request completed"
    );
    let mut response = response;
    response.headers_mut().insert(VERSION_HEADER, HeaderValue::from_static(env!("CARGO_PKG_VERSION")));
    response
}

/// Every answer says which version of the service gave it (`CHANGELOG.md`).
pub const VERSION_HEADER: &str = "instances-version";

struct Done {
    response: Response<Body>,
    id: Option<u64>,
    organization: Option<String>,
    replayed: bool,
}

impl Done {
    /// An answer from the catalog: the same for every caller, so it may be
    /// kept for a while by the caller (never by a shared cache).
    fn catalog(body: Vec<u8>) -> Self {
        let mut response = json_response(StatusCode::OK, body);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
        Done { response, id: None, organization: None, replayed: false }
    }
}

/// The caller's credentials checked: the `Authorization` grammar, then the
/// store (or the bounded cache). Returns the caller and the `Element` token,
/// if the header named an instance (still to be resolved).
async fn authenticate(app: &App, request: &Request) -> Result<(Principal, Option<Token>), ApiError> {
    let credentials = credentials(request)?;
    let principal =
        app.auth.authenticate(&app.store, &credentials).await?.map_err(|r| ApiError::Unauthorized(r.reason()))?;
    Ok((principal, credentials.element))
}

fn credentials(request: &Request) -> Result<Credentials, ApiError> {
    let authorization =
        request.headers().get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("no Authorization header"))?;
    authorization
        .to_str()
        .ok()
        .and_then(|v| Credentials::parse(v).ok())
        .ok_or(ApiError::Unauthorized("malformed Authorization header"))
}

/// `POST /instances` and `POST /elements/{keyOrId}/instances` (the element
/// taken from the path). An `Element` part in the header names nothing to
/// act on here and is not looked at.
async fn create(app: &App, request: &Request, path_element: Option<&Element>) -> Result<Done, ApiError> {
    let (credentials, bytes) = precheck(request)?;
    let principal =
        app.auth.authenticate(&app.store, &credentials).await?.map_err(|r| ApiError::Unauthorized(r.reason()))?;
    let (key, parsed) = parse_create(request, bytes, &app.catalog, path_element)?;
    let created = create_instance(app, &principal, &parsed, key.as_ref(), SystemTime::now()).await?;
    Ok(Done {
        response: created_response(created.body, created.replayed),
        id: Some(created.id.get()),
        organization: Some(principal.organization),
        replayed: created.replayed,
    })
}

/// What is checked before any I/O: the `Authorization` grammar, the
/// `Content-Type`, the body's size. Returns the credentials and the body.
pub fn precheck(request: &Request) -> Result<(Credentials, &[u8]), ApiError> {
    let headers = request.headers();
    let credentials = credentials(request)?;
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        if !is_json(content_type) {
            let received = String::from_utf8_lossy(content_type.as_bytes()).chars().take(100).collect();
            return Err(ApiError::UnsupportedMediaType(received));
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
/// the catalog. With an element in the path, the body's `element` may be left
/// out; if given, it must name the same element.
pub fn parse_create<'c>(
    request: &Request,
    bytes: &[u8],
    catalog: &'c Catalog,
    path_element: Option<&Element>,
) -> Result<(Option<IdempotencyKey>, CreateInstance<'c>), ApiError> {
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyKey::parse(v.as_bytes()))
        .transpose()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?;
    let mut json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if let (Some(element), Some(body)) = (path_element, json.as_object_mut()) {
        if body.get("element").is_none_or(serde_json::Value::is_null) {
            body.insert("element".into(), serde_json::json!({"id": element.info.id}));
        }
    }
    let parsed = CreateInstance::parse(&json, catalog)?;
    if let Some(element) = path_element.filter(|e| e.info.id != parsed.element.info.id) {
        return Err(ApiError::Request(RequestError::Invalid(format!(
            "the body's element ({}) is not the path's ({})",
            parsed.element.info.key, element.info.key
        ))));
    }
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
pub(super) fn is_json(value: &HeaderValue) -> bool {
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

/// The path as this API serves it, without the stage and without the base
/// path of a custom domain's mapping (which API Gateway leaves in the event's
/// `path`). API Gateway says which of its routes matched (a REST API's
/// `resourcePath`, an HTTP API's `routeKey`): the path is rebuilt from that
/// template and the path parameters, so a prefix added in front is never
/// seen. Without a matched route (`$default`, `cargo lambda watch`), the raw
/// path without the stage.
pub fn route_path(request: &Request) -> String {
    #[allow(unreachable_patterns)]
    let (template, stage) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => (c.resource_path.clone(), None),
        Some(RequestContext::ApiGatewayV2(c)) => (
            c.route_key.as_deref().and_then(|k| k.split_once(' ')).map(|(_, path)| path.to_owned()),
            c.stage.clone().filter(|s| s != "$default"),
        ),
        _ => (None, None),
    };
    if let Some(path) = template.as_deref().and_then(|t| fill_template(t, &request.path_parameters())) {
        return path;
    }
    let raw = request.raw_http_path();
    let path = if raw.is_empty() { request.uri().path() } else { raw };
    match stage.and_then(|s| path.strip_prefix(&format!("/{s}")).map(str::to_owned)) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path.to_owned(),
    }
}

/// `/instances/{id}` with `id=5` is `/instances/5`; `/{proxy+}` takes the
/// whole rest. `None` unless the template is a path and every parameter is given.
fn fill_template(template: &str, parameters: &lambda_http::aws_lambda_events::query_map::QueryMap) -> Option<String> {
    if !template.starts_with('/') {
        return None;
    }
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => path.push_str(parameters.first(name.trim_end_matches('+'))?),
            None => path.push_str(segment),
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest_event(path: &str, resource: &str, parameters: serde_json::Value) -> Request {
        let event = serde_json::json!({
            "resource": resource,
            "path": path,
            "httpMethod": "POST",
            "headers": {},
            "multiValueHeaders": {},
            "pathParameters": parameters,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": "POST",
                "path": format!("/prod{path}"),
                "stage": "prod",
                "requestId": "r",
                "identity": {}
            },
            "body": null,
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn routes_on_what_api_gateway_matched_not_on_a_base_path() {
        assert_eq!(route_path(&rest_event("/instances", "/instances", serde_json::Value::Null)), "/instances");
        assert_eq!(route_path(&rest_event("/v1/instances", "/instances", serde_json::Value::Null)), "/instances");
        assert_eq!(
            route_path(&rest_event("/api/v1/instances/42", "/instances/{id}", serde_json::json!({"id": "42"}))),
            "/instances/42"
        );
        assert_eq!(
            route_path(&rest_event("/v1/any/thing", "/{proxy+}", serde_json::json!({"proxy": "any/thing"}))),
            "/any/thing"
        );
    }

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
