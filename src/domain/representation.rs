//! An instance as the API answers it, rendered in one place: the create's
//! answer (with the token, its one showing) and, without it, every later
//! answer that carries an instance.

use serde::Serialize;

use crate::domain::catalog::ElementInfo;
use crate::domain::instance::InstanceRecord;
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
