//! The bodies of the catalog's answers (`GET /elements`). An instance's
//! representation is the domain's (`domain::representation`).

use serde::Serialize;

use crate::domain::catalog::{ConfigEntry, Element, ElementInfo, EntryType};

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
    /// Its id in an instance's configuration (`/instances/{id}/configuration/{configId}`).
    id: u64,
    key: &'a str,
    /// Other names it is accepted by (one per instance, answered as given).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    aliases: &'a [String],
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
        id: e.id,
        key: &e.key,
        aliases: &e.aliases,
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
