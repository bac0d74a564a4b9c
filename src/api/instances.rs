//! The instance resource's reads over HTTP: `GET /instances`,
//! `GET /instances/{id}`, and the same under `/elements/{keyOrId}`.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Request, RequestExt};

use super::error::{json_response, ApiError};
use super::{authenticate, precheck, Done};
use crate::app::App;
use crate::domain::catalog::Element;
use crate::domain::instance::InstanceSummary;
use crate::domain::listing::ListQuery;
use crate::domain::representation::{instance_view_json, instances_view_json};
use crate::domain::token::{InstanceId, Token};
use crate::domain::update::Mode;
use crate::service::{enable, read, remove, update};

/// The header that carries the cursor of the next page (the platform's name).
pub const NEXT_PAGE: &str = "elements-next-page-token";

/// `GET /instances/{id}`: the instance, with its `ETag`.
pub async fn one(app: &App, request: &Request, id: &str, element: Option<&Element>) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = parse_id(id)?;
    let summary = read::one(app, &principal, Some(id), token.as_ref(), element).await?;
    instance_answer(app, &summary, principal.organization)
}

/// `PUT` (enable) and `DELETE` (disable) `/instances/{id}/enabled`, or
/// `/instances/enabled` for the instance the `Element` token names.
pub async fn set_enabled(app: &App, request: &Request, id: Option<&str>, enabled: bool) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = target(id, token.as_ref())?;
    let if_match = if_match(request);
    let summary = enable::set_enabled(app, &principal, id, token.as_ref(), if_match, enabled).await?;
    instance_answer(app, &summary, principal.organization)
}

/// `DELETE /instances/{id}` (or `/instances` for the instance the `Element`
/// token names): answers what the instance was.
pub async fn delete(
    app: &App,
    request: &Request,
    id: Option<&str>,
    element: Option<&Element>,
) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = target(id, token.as_ref())?;
    let if_match = if_match(request);
    let summary = remove::delete(app, &principal, id, token.as_ref(), if_match, element).await?;
    let mut done = instance_answer(app, &summary, principal.organization)?;
    // It has no state left to name.
    done.response.headers_mut().remove(header::ETAG);
    Ok(done)
}

/// `PATCH` or `PUT` of `/instances/{id}` (or `/instances` for the instance
/// the `Element` token names, or `/elements/{keyOrId}/instances/{id}`): the
/// body checked as a create's, merged or replacing, written once.
pub async fn change(
    app: &App,
    request: &Request,
    id: Option<&str>,
    mode: Mode,
    element: Option<&Element>,
) -> Result<Done, ApiError> {
    let (credentials, bytes) = precheck(request)?;
    let principal =
        app.auth.authenticate(&app.store, &credentials).await?.map_err(|r| ApiError::Unauthorized(r.reason()))?;
    let token = credentials.element;
    let id = target(id, token.as_ref())?;
    let body: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let if_match = if_match(request);
    let summary = update::change(app, &principal, id, token.as_ref(), if_match, &body, mode, element).await?;
    instance_answer(app, &summary, principal.organization)
}

/// The instance a change names: the path's id, else the `Element` token's
/// (the forms without an id need one).
pub(super) fn target(id: Option<&str>, token: Option<&Token>) -> Result<Option<InstanceId>, ApiError> {
    let id = id.map(parse_id).transpose()?;
    if id.is_none() && token.is_none() {
        return Err(ApiError::ElementTokenNeeded);
    }
    Ok(id)
}

/// `If-Match`, if given (a value that is not text names no state).
pub(super) fn if_match(request: &Request) -> Option<&str> {
    request.headers().get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("\u{0}"))
}

fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    id.parse::<u64>().ok().and_then(InstanceId::new).ok_or(ApiError::NoSuchInstance)
}

/// One instance, answered with its `ETag`, never cached.
fn instance_answer(app: &App, summary: &InstanceSummary, organization: String) -> Result<Done, ApiError> {
    Ok(answer(summary, organization, instance_view_json(summary, element_of(app, summary)?)))
}

/// `body` (of or about one instance) with the instance's `ETag`, never cached.
pub(super) fn answer(summary: &InstanceSummary, organization: String, body: Vec<u8>) -> Done {
    let mut response = json_response(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(etag) = HeaderValue::from_str(&summary.etag()) {
        headers.insert(header::ETAG, etag);
    }
    Done { response, id: Some(summary.id.get()), organization: Some(organization), replayed: false }
}

/// `GET /instances`: a page of the organization's instances, newest first,
/// filtered by `tags[]` and `searchText`; `Elements-Next-Page-Token` names
/// the next page, which `nextPage` asks for.
pub async fn list(app: &App, request: &Request, element: Option<&Element>) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let params = query_pairs(request);
    let all = |name: &'static str| params.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str());
    let single = |name: &'static str| {
        let mut values = all(name);
        let first = values.next();
        match values.next() {
            Some(_) => Err(ApiError::InvalidQuery(format!("{name} must be given at most once"))),
            None => Ok(first),
        }
    };
    let tags = all("tags[]").chain(all("tags")).collect();
    let query = ListQuery::parse(tags, single("searchText")?, single("pageSize")?, single("nextPage")?)
        .map_err(ApiError::InvalidQuery)?;
    let page = read::list(app, &principal, token.as_ref(), &query, element).await?;
    let items = page.items.iter().map(|s| Ok((s, element_of(app, s)?))).collect::<Result<Vec<_>, ApiError>>()?;
    let mut response = json_response(StatusCode::OK, instances_view_json(items.into_iter()));
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(next) = page.next.and_then(|c| HeaderValue::from_str(&c.encode()).ok()) {
        headers.insert(NEXT_PAGE, next);
    }
    Ok(Done { response, id: None, organization: Some(principal.organization), replayed: false })
}

/// The query string's pairs: as API Gateway parsed them, or, for a request
/// that did not come through it (a test, `cargo lambda watch` without
/// them), from the URI.
pub(super) fn query_pairs(request: &Request) -> Vec<(String, String)> {
    let parsed = request.query_string_parameters();
    if !parsed.is_empty() {
        return parsed.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    }
    let query = request.uri().query().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub(super) fn element_of<'a>(app: &'a App, summary: &InstanceSummary) -> Result<&'a Element, ApiError> {
    app.catalog.by_key(&summary.element_key).ok_or_else(|| {
        ApiError::Internal(format!(
            "instance {} is of element {}, which the catalog no longer has",
            summary.id, summary.element_key
        ))
    })
}
