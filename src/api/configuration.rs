//! An instance's configuration as a sub-resource, in the platform's shape:
//! `GET /instances/{id}/configuration` (every entry),
//! `GET`/`PATCH /instances/{id}/configuration/{configId}` (one entry), and
//! the same under `/instances/configuration` for the instance the `Element`
//! token names. A `PATCH` of `propertyValue` is the instance `PATCH` of that
//! one entry: validated as at create, one conditional write, `If-Match`.

use lambda_http::Request;
use serde_json::{json, Value};

use super::error::ApiError;
use super::instances::{answer, element_of, if_match, target};
use super::{authenticate, precheck, Done};
use crate::app::App;
use crate::domain::catalog::{ConfigEntry, Element};
use crate::domain::configuration::name_of;
use crate::domain::representation::{configuration_entry_json, configuration_json};
use crate::domain::request::RequestError;
use crate::domain::update::Mode;
use crate::service::{read, update};

/// Every entry of the instance's element.
pub async fn list(app: &App, request: &Request, id: Option<&str>) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = target(id, token.as_ref())?;
    let summary = read::one(app, &principal, id, token.as_ref(), None).await?;
    let body = configuration_json(&summary, element_of(app, &summary)?);
    Ok(answer(&summary, principal.organization, body))
}

/// One entry, by its id.
pub async fn one(app: &App, request: &Request, id: Option<&str>, entry: &str) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = target(id, token.as_ref())?;
    let summary = read::one(app, &principal, id, token.as_ref(), None).await?;
    let entry = entry_of(element_of(app, &summary)?, entry)?;
    Ok(answer(&summary, principal.organization, configuration_entry_json(&summary, entry)))
}

/// `{"propertyValue": ...}` (the entry's other fields, if sent back, are
/// ignored): the entry set as a `PATCH` of the instance sets it, `null`
/// removing an optional one, `"********"` keeping a secret.
pub async fn patch(app: &App, request: &Request, id: Option<&str>, entry: &str) -> Result<Done, ApiError> {
    let (credentials, bytes) = precheck(request)?;
    let principal =
        app.auth.authenticate(&app.store, &credentials).await?.map_err(|r| ApiError::Unauthorized(r.reason()))?;
    let token = credentials.element;
    let id = target(id, token.as_ref())?;
    let body: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let Some(value) = body.as_object().and_then(|b| b.get("propertyValue")) else {
        let why = "the body must be an object with a propertyValue, e.g. {\"propertyValue\": \"polling\"}";
        return Err(RequestError::Invalid(why.into()).into());
    };
    // The entry is named by its id; it keeps the name its client gave it by.
    // One read: the change is written on the state read here.
    let target = read::Target::new(id, token.as_ref(), None);
    let current = target.read(app, &principal).await?;
    let entry = entry_of(element_of(app, &current.summary)?, entry)?;
    let name = name_of(&current.summary.names, &entry.key);
    let change = json!({ "configuration": { name: value } });
    let summary =
        update::change_record(app, &principal, &target, current, if_match(request), &change, Mode::Merge).await?;
    Ok(answer(&summary, principal.organization, configuration_entry_json(&summary, entry)))
}

fn entry_of<'e>(element: &'e Element, id: &str) -> Result<&'e ConfigEntry, ApiError> {
    let id: Option<u64> = id.parse().ok();
    element.entries.iter().find(|e| Some(e.id) == id).ok_or(ApiError::NoSuchEntry)
}
