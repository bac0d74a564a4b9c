//! An instance as the API answers it, rendered in one place: the create's
//! answer (with the token, its one showing) and, without it, every later
//! answer that carries an instance.

use serde::Serialize;

use crate::domain::catalog::{ConfigEntry, Element, ElementInfo};
use crate::domain::configuration::name_of;
use crate::domain::instance::{user_id, InstanceRecord, InstanceSummary};
use crate::domain::token::Token;

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
        id: record.summary.id.get(),
        name: &record.summary.name,
        token: token.expose(),
        element,
        provision_interactions: [],
        valid: record.summary.valid,
        disabled: record.summary.disabled,
        max_cache_size: record.summary.max_cache_size,
        cache_time_to_live: record.summary.cache_time_to_live,
        caching_enabled: record.summary.caching_enabled,
        tags: &record.summary.tags,
        created_date: &record.summary.created_date,
        updated_date: &record.summary.updated_date,
    };
    // Serializing plain strings, numbers and booleans cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// What a secret entry that is set reads as: the value is never answered.
pub const MASK: &str = "********";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceView<'a> {
    id: u64,
    name: &'a str,
    element: &'a ElementInfo,
    provision_interactions: [(); 0],
    valid: bool,
    disabled: bool,
    max_cache_size: u64,
    cache_time_to_live: u64,
    caching_enabled: bool,
    configuration: serde_json::Map<String, serde_json::Value>,
    tags: &'a [String],
    created_date: &'a str,
    updated_date: &'a str,
    user: UserView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    id: u64,
    email_address: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
}

/// An entry as answered: under the name its client gave it by, its value as
/// a string, `"********"` for a secret that is set, `null` when unset.
fn entry_view<'a>(summary: &'a InstanceSummary, entry: &'a ConfigEntry) -> (&'a str, serde_json::Value) {
    let name = name_of(&summary.names, &entry.key);
    let value = if summary.secret_keys.iter().any(|k| k == &entry.key) {
        serde_json::Value::from(MASK)
    } else {
        summary
            .configuration
            .iter()
            .find(|(k, _)| k == &entry.key)
            .map_or(serde_json::Value::Null, |(_, v)| serde_json::Value::from(v.as_str()))
    };
    (name, value)
}

fn view<'a>(summary: &'a InstanceSummary, element: &'a Element) -> InstanceView<'a> {
    let configuration = element
        .entries
        .iter()
        .map(|entry| {
            let (name, value) = entry_view(summary, entry);
            (name.to_owned(), value)
        })
        .collect();
    InstanceView {
        id: summary.id.get(),
        name: &summary.name,
        element: &element.info,
        provision_interactions: [],
        valid: summary.valid,
        disabled: summary.disabled,
        max_cache_size: summary.max_cache_size,
        cache_time_to_live: summary.cache_time_to_live,
        caching_enabled: summary.caching_enabled,
        configuration,
        tags: &summary.tags,
        created_date: &summary.created_date,
        updated_date: &summary.updated_date,
        user: UserView {
            id: user_id(&summary.organization, &summary.user),
            email_address: &summary.user,
            first_name: None,
            last_name: None,
        },
    }
}

/// An instance as every answer after the create shows it: the create's body
/// without the token, plus every configuration entry of the element (unset
/// optional ones `null`, secret ones `"********"`), and its user.
pub fn instance_view_json(summary: &InstanceSummary, element: &Element) -> Vec<u8> {
    serde_json::to_vec(&view(summary, element)).unwrap_or_default()
}

/// A page of a list: a JSON array of instances, each as [`instance_view_json`].
pub fn instances_view_json<'a>(items: impl Iterator<Item = (&'a InstanceSummary, &'a Element)>) -> Vec<u8> {
    serde_json::to_vec(&items.map(|(s, e)| view(s, e)).collect::<Vec<_>>()).unwrap_or_default()
}

/// One configuration entry as `/instances/{id}/configuration` lists it (the
/// platform's shape): the entry's stable id, the name its client gave it by,
/// its value as a string (`"********"` for a set secret, `null` unset).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView<'a> {
    id: u64,
    key: &'a str,
    property_value: serde_json::Value,
}

fn configuration_entry<'a>(summary: &'a InstanceSummary, entry: &'a ConfigEntry) -> EntryView<'a> {
    let (key, property_value) = entry_view(summary, entry);
    EntryView { id: entry.id, key, property_value }
}

/// `GET /instances/{id}/configuration`: every entry of the element, in
/// catalog order.
pub fn configuration_json(summary: &InstanceSummary, element: &Element) -> Vec<u8> {
    let entries: Vec<EntryView<'_>> = element.entries.iter().map(|e| configuration_entry(summary, e)).collect();
    serde_json::to_vec(&entries).unwrap_or_default()
}

/// `GET /instances/{id}/configuration/{configId}`: one entry.
pub fn configuration_entry_json(summary: &InstanceSummary, entry: &ConfigEntry) -> Vec<u8> {
    serde_json::to_vec(&configuration_entry(summary, entry)).unwrap_or_default()
}
