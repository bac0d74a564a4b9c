//! The bodies of the 200 answers: the documented create answer, and the
//! catalog's elements.

use serde::Serialize;

use crate::domain::catalog::{ConfigEntry, Element, ElementInfo, EntryType};
use crate::domain::token::Token;
use crate::store::InstanceRecord;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceBody<'a> {
    id: u64,
    name: &'a str,
    token: &'a str,
    element: &'a ElementInfo,
    provision_interactions: [(); 0],
    valid: bool,
    disabled: bool,
    max_cache_size: u64,
    cache_time_to_live: u64,
    caching_enabled: bool,
    tags: &'a [String],
    created_date: &'a str,
    updated_date: &'a str,
}

/// The response to a create: every key of the documented sample, plus
/// `tags`, `createdDate` and `updatedDate`.
pub fn instance_json(record: &InstanceRecord, element: &ElementInfo, token: &Token) -> Vec<u8> {
    let body = InstanceBody {
        id: record.id.get(),
        name: &record.name,
        token: token.expose(),
        element,
        provision_interactions: [],
        valid: record.valid,
        disabled: record.disabled,
        max_cache_size: record.max_cache_size,
        cache_time_to_live: record.cache_time_to_live,
        caching_enabled: record.caching_enabled,
        tags: &record.tags,
        created_date: &record.created_date,
        updated_date: &record.updated_date,
    };
    // Serializing plain strings, numbers and booleans cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An element as `GET /elements` answers it: the fields the create's answer
/// shows, then its configuration entries, so that a client can build its
/// form without reading this repository.
#[derive(Serialize)]
struct ElementBody<'a> {
    #[serde(flatten)]
    info: &'a ElementInfo,
    configuration: Vec<EntryBody<'a>>,
}

#[derive(Serialize)]
struct EntryBody<'a> {
    key: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    entry_type: &'a EntryType,
    required: bool,
    secret: bool,
    default: Option<&'a str>,
    description: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    values: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum: Option<f64>,
}

fn entry_body(e: &ConfigEntry) -> EntryBody<'_> {
    EntryBody {
        key: &e.key,
        name: &e.name,
        entry_type: &e.entry_type,
        required: e.required,
        secret: e.secret,
        default: e.default.as_deref(),
        description: &e.description,
        values: &e.values,
        minimum: e.minimum,
    }
}

fn element_body(element: &Element) -> ElementBody<'_> {
    ElementBody { info: &element.info, configuration: element.entries.iter().map(entry_body).collect() }
}

pub fn element_json(element: &Element) -> Vec<u8> {
    serde_json::to_vec(&element_body(element)).unwrap_or_default()
}

pub fn elements_json<'a>(elements: impl Iterator<Item = &'a Element>) -> Vec<u8> {
    serde_json::to_vec(&elements.map(element_body).collect::<Vec<_>>()).unwrap_or_default()
}
