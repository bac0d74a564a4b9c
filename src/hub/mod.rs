//! The hub: the `Element` token opens the vendor. A hub call (`GET
//! /incidents?where=...`, `POST /incidents/{id}/comments`, `... /proxy/{path}`)
//! is mapped through the element's catalog entry (`hub`: its routes, its
//! search) to vendor calls on the instance's site, with its credentials, out
//! through the guarded client ([`crate::outbound`]); the vendor's answer comes
//! back in the vendor's shape (lists unwrapped, `null` members removed unless
//! `filter.response.nulls` is false). Nothing here names an element.
//!
//! The walk of a call: the token resolves (with its rules: `401`, `403`
//! disabled), the catalog maps, the path's values are checked (no dot
//! segment, no encoded `/` or `\`, no `//`: never out of the site), the
//! password is opened, one request (two for a create or an update, which
//! answer the item as it is now; more for `page=N` on a site without random
//! access) goes out, and the answer is mapped ([`HubError`]).

mod search;
mod vendor;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::app::App;
use crate::domain::catalog::{vendor_call, Element, Hub, HubRoute};
use crate::domain::instance::{InstanceRecord, Principal};
use crate::domain::token::{InstanceId, Token};
use crate::service::read::{ReadError, Target};
pub use search::PollPage;
use vendor::{Site, VendorAnswer};

/// The most of a request body a hub call takes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The most of a vendor's answer read.
pub const MAX_ANSWER_BYTES: usize = 5 * 1024 * 1024;

/// A hub call as the edge hands it over.
pub struct HubCall<'a> {
    pub method: &'a Method,
    /// The hub's own path (`/incidents/DEMO-1`), without `/hubs/{key}`.
    pub path: &'a str,
    /// The `{key}` of `/hubs/{key}`, when the call was so addressed.
    pub hub_key: Option<&'a str>,
    /// The query string's pairs, in order.
    pub query: Vec<(String, String)>,
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub body: &'a [u8],
    /// Whether a front already percent-decoded `path` (API Gateway's
    /// `{proxy+}`): then it is not decoded again.
    pub path_decoded: bool,
    /// When every vendor request of the call must be done by (inside the
    /// request's own deadline, counted from when the request arrived).
    pub deadline: tokio::time::Instant,
}

/// A hub answer, ready for the edge.
#[derive(Debug)]
pub struct HubAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// `Elements-Returned-Count`, `Elements-Total-Count`, `Elements-Next-Page-Token`.
    pub headers: Vec<(&'static str, String)>,
}

/// What a hub call came to, and the instance it named (for
/// `Elements-Element-Instance-Id`, on failures too once the token resolved).
pub struct Outcome {
    pub instance: Option<InstanceId>,
    pub result: Result<HubAnswer, HubError>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// No such hub resource (or the element has no hub, or `/hubs/{key}`
    /// names another).
    #[error("no such hub resource")]
    NotFound,
    /// The path is a hub resource, but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// A path or query that could leave the site, or out of shape.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A `where` that does not parse (the vendor is not asked).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A body that is not JSON where the vendor takes JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The vendor refused the call (`400`, `403`, `404`, `409`, ...): its
    /// status and words.
    #[error("the vendor refused the call (HTTP {status}): {message}")]
    Provider { status: u16, message: String },
    /// The vendor refused the instance's credentials.
    #[error("the vendor refused the instance's credentials: {message}")]
    InstanceInvalid { message: String },
    /// The vendor's rate limit, with its `Retry-After`.
    #[error("the vendor's rate limit")]
    RateLimited { retry_after: Option<String> },
    /// The vendor could not be asked, or failed (`5xx`).
    #[error("the vendor is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what was due (not JSON, over 5 MiB).
    #[error("the vendor's answer is unusable: {0}")]
    BadResponse(String),
    /// A fault of ours (a store or key failure, a client that could not be
    /// built, an instance not as the catalog has it).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
}

/// Serves a hub call for the instance `token` names.
pub async fn call(app: &App, principal: &Principal, token: &Token, call: &HubCall<'_>) -> Outcome {
    let record = match Target::new(None, Some(token), None).read(app, principal).await {
        Ok(record) => record,
        Err(e) => return Outcome { instance: None, result: Err(e.into()) },
    };
    let instance = Some(record.summary.id);
    let result = serve(app, &record, call).await;
    // The vendor's word on the credentials, kept: one conditional write on a
    // change (on the version read: a change of the credentials meanwhile has
    // the last word), none otherwise. Only a 2xx is an acceptance.
    let verdict = match &result {
        Err(HubError::InstanceInvalid { .. }) => Some(false),
        Ok(answer) if (200..300).contains(&answer.status) => Some(true),
        _ => None,
    };
    if let Some(valid) = verdict.filter(|v| *v != record.summary.valid) {
        if let Err(e) = app.store.set_valid(record.summary.id, valid, record.summary.version).await {
            tracing::warn!(error = %e, valid, "the instance's valid could not be kept");
        }
    }
    Outcome { instance, result }
}

/// The site of an instance as the events' poller asks it: opened once (its
/// password with it) for the account's read and every page of a search.
pub struct PollSite<'a> {
    site: Site<'a>,
    hub: &'a Hub,
    pub events: &'a crate::domain::catalog::HubEvents,
}

impl<'a> PollSite<'a> {
    /// `None` when the instance's element has no polled events.
    pub async fn open(
        app: &'a App,
        record: &InstanceRecord,
        deadline: tokio::time::Instant,
    ) -> Result<Option<PollSite<'a>>, HubError> {
        let element = app.catalog.by_key(&record.summary.element_key).ok_or_else(|| {
            HubError::Internal(format!("element {} is not in the catalog", record.summary.element_key))
        })?;
        let (Some(hub), Some(check)) = (&element.hub, &element.credential_check) else {
            return Ok(None);
        };
        let Some(events) = &hub.events else {
            return Ok(None);
        };
        let site = Site::open(app, record, check, deadline).await?;
        Ok(Some(PollSite { site, hub, events }))
    }

    /// The hub's key (the events' `hubKey`).
    pub fn hub_key(&self) -> &str {
        &self.hub.key
    }

    /// The first page of `jql` with the events' fields, at most `size` issues.
    pub async fn page(&self, app: &App, record: &InstanceRecord, jql: &str, size: usize) -> Result<PollPage, HubError> {
        search::poll_page(app, record, self.hub, &self.site, jql, &self.events.fields, size).await
    }
}

/// What a hub call does, decided before anything is opened or sent.
enum Plan<'h, 's> {
    Proxy,
    Search,
    Route(Matched<'h, 's>),
}

async fn serve(app: &App, record: &InstanceRecord, call: &HubCall<'_>) -> Result<HubAnswer, HubError> {
    let element = app
        .catalog
        .by_key(&record.summary.element_key)
        .ok_or_else(|| HubError::Internal(format!("element {} is not in the catalog", record.summary.element_key)))?;
    let (Some(hub), Some(check)) = (&element.hub, &element.credential_check) else {
        return Err(HubError::NotFound);
    };
    if call.hub_key.is_some_and(|k| k != hub.key) {
        return Err(HubError::NotFound);
    }
    if call.path.trim_matches('/').is_empty() {
        return Err(HubError::NotFound);
    }
    let segments = vendor::safe_segments(call.path, !call.path_decoded)?;
    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Routed first: a 404, 405 or refused method opens no password.
    let plan = if refs.first() == Some(&"proxy") {
        if !vendor::PROXY_METHODS.contains(call.method) {
            let allow = vendor::PROXY_METHODS.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            return Err(HubError::MethodNotAllowed { allow });
        }
        Plan::Proxy
    } else if call.method == Method::GET && hub.search.path.trim_start_matches('/') == refs.join("/") {
        Plan::Search
    } else {
        Plan::Route(route_of(hub, call.method, &refs)?)
    };
    let site = Site::open(app, record, check, call.deadline).await?;
    let nulls = keep_nulls(element, record);
    match plan {
        Plan::Proxy => vendor::proxy(&site, call, &segments[1..]).await,
        Plan::Search => search::list(app, record, hub, &site, call, nulls).await,
        Plan::Route((route, values)) => one(&site, route, &values, call, nulls).await,
    }
}

/// Whether the vendor's `null` members are kept (`filter.response.nulls`
/// false).
fn keep_nulls(element: &Element, record: &InstanceRecord) -> bool {
    let set = record.summary.configuration.iter().find(|(k, _)| k == "filter.response.nulls").map(|(_, v)| v.as_str());
    let default = element.entry("filter.response.nulls").and_then(|e| e.default.as_deref());
    set.or(default) == Some("false")
}

/// A route and the values of its placeholders.
type Matched<'h, 's> = (&'h HubRoute, Vec<(&'h str, &'s str)>);

/// The route of `method` at `segments`, with its values; `405` when the
/// path is served with other methods only.
fn route_of<'h, 's>(hub: &'h Hub, method: &Method, segments: &[&'s str]) -> Result<Matched<'h, 's>, HubError> {
    if let Some((route, values)) = hub.routes.iter().find_map(|r| r.matches(method.as_str(), segments).map(|v| (r, v)))
    {
        return Ok((route, values));
    }
    let mut allow: Vec<&str> = hub
        .routes
        .iter()
        .filter(|r| crate::domain::catalog::template_values(&r.path, segments).is_some())
        .map(|r| r.method.as_str())
        .collect();
    if hub.search.path.trim_start_matches('/') == segments.join("/") {
        allow.push("GET");
    }
    if allow.is_empty() {
        return Err(HubError::NotFound);
    }
    allow.sort_unstable();
    allow.dedup();
    Err(HubError::MethodNotAllowed { allow: allow.join(", ") })
}

/// One route: its vendor call, then its `then` read when it has one.
async fn one(
    site: &Site<'_>,
    route: &HubRoute,
    values: &[(&str, &str)],
    call: &HubCall<'_>,
    keep_nulls: bool,
) -> Result<HubAnswer, HubError> {
    let (method, path) = vendor_call(&route.vendor).ok_or_else(|| HubError::Internal("a vendor call".into()))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| HubError::Internal(e.to_string()))?;
    let body = if method == Method::GET || method == Method::DELETE { Bytes::new() } else { json_body(call.body)? };
    let first = site.send(method.clone(), &vendor::fill(path, values, None)?, &[], body).await?;
    let created = first.json.as_ref().and_then(|j| j.get("id")).and_then(id_text);
    let answer = match &route.then {
        Some(then) => {
            let (_, then_path) = vendor_call(then).ok_or_else(|| HubError::Internal("a then call".into()))?;
            let path = vendor::fill(then_path, values, created.as_deref())?;
            site.send(Method::GET, &path, &[], Bytes::new()).await?
        }
        None => first,
    };
    if method == Method::DELETE && route.then.is_none() {
        return Ok(HubAnswer { status: 200, content_type: None, body: Vec::new(), headers: vec![] });
    }
    let mut json = answer.json.unwrap_or(Value::Null);
    let mut headers = Vec::new();
    if let Some(member) = &route.items {
        json = json
            .get(member)
            .cloned()
            .ok_or_else(|| HubError::BadResponse(format!("the answer holds no {member:?} list")))?;
        headers.push(("elements-returned-count", json.as_array().map_or(0, Vec::len).to_string()));
    }
    Ok(json_answer(
        if route.method == "POST" && route.then.is_none() { answer.status } else { 200 },
        json,
        keep_nulls,
        headers,
    ))
}

/// A hub answer of `json`, nulls removed unless kept.
fn json_answer(status: u16, mut json: Value, keep_nulls: bool, headers: Vec<(&'static str, String)>) -> HubAnswer {
    if !keep_nulls {
        crate::domain::nulls::strip_nulls(&mut json);
    }
    HubAnswer {
        status,
        content_type: Some("application/json".into()),
        body: serde_json::to_vec(&json).unwrap_or_default(),
        headers,
    }
}

/// The request's body, which must be JSON (an empty body is `{}`).
fn json_body(body: &[u8]) -> Result<Bytes, HubError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    serde_json::from_slice::<Value>(body).map_err(|e| HubError::MalformedJson(e.to_string()))?;
    Ok(Bytes::copy_from_slice(body))
}

/// An id as JSON gives it (`"10001"` or `10001`).
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What the hub keeps of a vendor answer for the refusal table (tests).
#[doc(hidden)]
pub fn classify(status: u16, headers: &hyper::HeaderMap, body: &[u8]) -> Result<(), HubError> {
    VendorAnswer::classify(status, headers, body).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Catalog;

    #[test]
    fn routes_and_their_methods() {
        let catalog = Catalog::builtin().unwrap();
        let hub = catalog.by_key("jira").unwrap().hub.clone().unwrap();
        let (route, values) = route_of(&hub, &Method::POST, &["incidents", "DEMO-1", "comments"]).unwrap();
        assert_eq!((route.vendor.as_str(), values), ("POST /rest/api/2/issue/{id}/comment", vec![("id", "DEMO-1")]));
        match route_of(&hub, &Method::PUT, &["incidents", "DEMO-1"]) {
            Err(HubError::MethodNotAllowed { allow }) => assert_eq!(allow, "DELETE, GET, PATCH"),
            other => panic!("{other:?}"),
        }
        match route_of(&hub, &Method::DELETE, &["incidents"]) {
            Err(HubError::MethodNotAllowed { allow }) => assert_eq!(allow, "GET, POST"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(route_of(&hub, &Method::GET, &["nothing"]), Err(HubError::NotFound)));
    }
}
