//! A notification: the platform's message of at most [`MAX_EVENTS`] events,
//! written once when its poll is recorded (so that every retry sends the same
//! bytes under the same `Elements-Webhook-Id`), and its signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

use super::window::Change;
pub use crate::domain::poll::{EventEntry, Notification};
use crate::domain::time::iso8601;
use crate::domain::token::InstanceId;

/// The most events one notification carries.
pub const MAX_EVENTS: usize = 10;
/// The header naming a notification, the same on every retry of it.
pub const ID_HEADER: &str = "elements-webhook-id";
/// The header of the signature: `sha256=` and the base64 of HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "elements-webhook-signature";

/// The object and hub the events are of.
pub struct Origin<'a> {
    pub instance: InstanceId,
    pub element_key: &'a str,
    pub hub_key: &'a str,
    pub object_type: &'a str,
}

/// The most of one notification's body: past it (issues with huge
/// fields), `raw` keeps each issue's `id` and `key` only (DynamoDB's item
/// limit is 400 KB).
pub const MAX_BODY_BYTES: usize = 350 * 1024;

/// The changes of one poll as notifications of at most [`MAX_EVENTS`] each;
/// `ids` gives each its id. The changes' issues are moved into the bodies.
pub fn notifications<E>(
    origin: &Origin<'_>,
    changes: &mut [Change],
    poll_ms: i64,
    mut ids: impl FnMut() -> Result<String, E>,
) -> Result<Vec<Notification>, E> {
    let poll_date = iso8601(at(poll_ms));
    let mut out = Vec::new();
    for (seq, chunk) in changes.chunks_mut(MAX_EVENTS).enumerate() {
        let id = ids()?;
        let events: Vec<EventEntry> = chunk
            .iter()
            .map(|c| EventEntry {
                id: c.event_id(),
                object_type: origin.object_type.to_owned(),
                object_id: c.issue_id.clone(),
                event_type: c.event_type().to_owned(),
                date: iso8601(at(c.updated_ms)),
            })
            .collect();
        let shown: Vec<Event<'_>> = events
            .iter()
            .map(|e| Event {
                object_type: &e.object_type,
                object_id: &e.object_id,
                event_type: &e.event_type,
                date: &e.date,
                poll_date: &poll_date,
                element_key: origin.element_key,
                hub_key: origin.hub_key,
            })
            .collect();
        let message = |raw: Vec<&RawValue>| {
            let body = Body {
                message: Message {
                    event_id: &id,
                    instance_id: origin.instance.get(),
                    element_key: origin.element_key,
                    events: &shown,
                    raw: std::iter::once((origin.object_type, raw)).collect(),
                },
            };
            serde_json::to_string(&body).unwrap_or_default()
        };
        let mut body = message(chunk.iter().map(|c| c.issue.as_ref()).collect());
        if body.len() > MAX_BODY_BYTES {
            // The issues' `id` and `key` only, as JIRA wrote them.
            let slim: Vec<Box<RawValue>> = chunk.iter().filter_map(|c| slim(&c.issue)).collect();
            body = message(slim.iter().map(AsRef::as_ref).collect());
        }
        out.push(Notification { id, poll_ms, seq, events, body });
    }
    Ok(out)
}

#[derive(Serialize)]
struct Body<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    event_id: &'a str,
    instance_id: u64,
    element_key: &'a str,
    events: &'a [Event<'a>],
    raw: std::collections::BTreeMap<&'a str, Vec<&'a RawValue>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    object_type: &'a str,
    object_id: &'a str,
    event_type: &'a str,
    date: &'a str,
    poll_date: &'a str,
    element_key: &'a str,
    hub_key: &'a str,
}

/// An issue's `id` and `key` (what a body too large for one item keeps),
/// each when it is of a sane size (a hostile site's may not be).
fn slim(issue: &RawValue) -> Option<Box<RawValue>> {
    #[derive(Deserialize, Serialize)]
    struct Slim<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        key: Option<&'a RawValue>,
    }
    let mut kept = serde_json::from_str::<Slim<'_>>(issue.get()).unwrap_or(Slim { id: None, key: None });
    kept.id = kept.id.filter(|v| v.get().len() <= 256);
    kept.key = kept.key.filter(|v| v.get().len() <= 256);
    // (Two optional JSON values always serialize: `None` is never taken.)
    serde_json::value::to_raw_value(&kept).ok()
}

/// `sha256=` and the base64 of HMAC-SHA256 of `body` under `key`.
/// (`None` only if the MAC refused the key, which HMAC, taking a key of any
/// length, never does: then nothing is sent, never an unsigned body.)
pub fn signature(key: &[u8], body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(body);
    Some(format!("sha256={}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256_in_base64() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let expected = base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap());
        assert_eq!(signature(b"Jefe", b"what do ya want for nothing?"), Some(format!("sha256={expected}")));
    }

    #[test]
    fn changes_make_notifications_of_at_most_ten_events_in_the_platforms_shape() {
        let mut changes: Vec<Change> = (0..23)
            .map(|i| Change {
                issue_id: format!("{}", 10000 + i),
                updated_ms: 1_764_000_000_000 + i,
                created: i % 2 == 0,
                issue: raw(json!({"id": format!("{}", 10000 + i), "key": format!("DEMO-{i}")})),
            })
            .collect();
        let origin = Origin {
            instance: InstanceId::new(42).unwrap(),
            element_key: "jira",
            hub_key: "helpdesk",
            object_type: "incidents",
        };
        let mut n = 0;
        let out = notifications(&origin, &mut changes, 1_764_000_100_000, || {
            n += 1;
            Ok::<_, ()>(format!("n{n}"))
        })
        .unwrap();
        assert_eq!(out.iter().map(|n| n.events.len()).collect::<Vec<_>>(), [10, 10, 3]);
        let body: Value = serde_json::from_str(&out[2].body).unwrap();
        let m = &body["message"];
        assert_eq!(
            (m["eventId"].as_str(), m["instanceId"].as_u64(), m["elementKey"].as_str()),
            (Some("n3"), Some(42), Some("jira"))
        );
        let e = &m["events"][0];
        assert_eq!(e["objectType"], "incidents");
        assert_eq!(e["objectId"], "10020");
        assert_eq!(e["eventType"], "CREATED");
        assert_eq!(e["hubKey"], "helpdesk");
        assert_eq!(e["pollDate"], "2025-11-24T16:01:40.000Z");
        assert_eq!(m["raw"]["incidents"][2]["key"], "DEMO-22");
        assert_eq!(out[2].events[0].id, "10020-1764000000020");
        // An issue too large for one item: raw keeps its id and key.
        let mut huge = vec![Change {
            issue_id: "1".into(),
            updated_ms: 0,
            created: false,
            issue: raw(json!({"id": "1", "key": "DEMO-1", "fields": {"description": "x".repeat(400 * 1024)}})),
        }];
        let out = notifications(&origin, &mut huge, 0, || Ok::<_, ()>("n".into())).unwrap();
        assert!(out[0].body.len() < 1024, "{}", out[0].body.len());
        assert_eq!(
            serde_json::from_str::<Value>(&out[0].body).unwrap()["message"]["raw"]["incidents"][0]["key"],
            "DEMO-1"
        );
    }
}
