//! The instance's events: `GET /instances/{id}/events`, or
//! `/instances/events` for the instance the `Element` token names. Newest
//! first, `pageSize` (1..=100, default 50) and `nextPage` (the
//! `Elements-Next-Page-Token` of the page before), each event the platform's
//! fields with its delivery: `status` (`NEW`, `DISPATCHED`, `NOTIFIED`,
//! `FAILED`) and `attempts`. The log keeps 30 days.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::Request;
use serde_json::{json, Value};

use super::error::{json_response, ApiError};
use super::instances::{query_pairs, target, NEXT_PAGE};
use super::{authenticate, Done};
use crate::app::App;
use crate::domain::pages::{next_token, query_digest, PageRequest, Start};
use crate::service::read;

pub async fn list(app: &App, request: &Request, id: Option<&str>) -> Result<Done, ApiError> {
    let (principal, token) = authenticate(app, request).await?;
    let id = target(id, token.as_ref())?;
    let summary = read::one(app, &principal, id, token.as_ref(), None).await?;
    let params = query_pairs(request);
    let param = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let digest = query_digest(&["events", param("pageSize").unwrap_or("")]);
    let page = PageRequest::parse(param("pageSize"), param("page"), param("nextPage"), summary.id.get(), &digest)
        .map_err(ApiError::InvalidQuery)?;
    let (mut at, mut skip) = (None, 0usize);
    match &page.next {
        Some(Start::Token(t)) => {
            let (sk, n) =
                t.rsplit_once('|').ok_or_else(|| ApiError::InvalidQuery("nextPage: not a page of events".into()))?;
            (at, skip) = (Some(sk.to_owned()), n.parse().map_err(|_| ApiError::InvalidQuery("nextPage".into()))?);
        }
        Some(Start::Offset(_)) => return Err(ApiError::InvalidQuery("nextPage: not a page of events".into())),
        None if page.number > 1 => {
            return Err(ApiError::InvalidQuery("page: the events are paged with nextPage only".into()))
        }
        None => {}
    }
    let size = page.size as usize;
    // A notification holds up to ten events: as many as fill the page.
    let now_ms = crate::events::epoch_ms(std::time::SystemTime::now());
    let (logged, more_items) =
        app.store.notifications_page(summary.id, at.as_deref(), page.size as i32 + 1, now_ms).await?;
    let mut events: Vec<Value> = Vec::with_capacity(size);
    let mut next = None;
    'fill: for (i, n) in logged.iter().enumerate() {
        // (The token's own notification may have expired meanwhile: then
        // the page starts with the next one, whole.)
        let start = if i == 0 && at.as_deref() == Some(n.sort_key.as_str()) { skip } else { 0 };
        for (j, e) in n.events.iter().rev().enumerate().skip(start) {
            if events.len() == size {
                next = Some(format!("{}|{j}", n.sort_key));
                break 'fill;
            }
            events.push(json!({
                "id": e.id,
                "eventDate": e.date,
                "status": n.status,
                "objectType": e.object_type,
                "objectId": e.object_id,
                "eventType": e.event_type,
                "attempts": n.attempts,
                "notificationId": n.notification_id,
                "pollDate": n.created_date,
                "lastAttemptDate": n.last_attempt_date,
                "lastResult": n.last_result,
            }));
        }
    }
    if next.is_none() && more_items {
        if let Some(last) = logged.last() {
            // The page ended with the items read: the next starts after them.
            next = Some(format!("{}|{}", last.sort_key, last.events.len()));
        }
    }
    for e in &mut events {
        crate::domain::nulls::strip_nulls(e);
    }
    let count = events.len();
    let mut response = json_response(StatusCode::OK, serde_json::to_vec(&Value::Array(events)).unwrap_or_default());
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("elements-returned-count", HeaderValue::from(count));
    if let Some(next) = next {
        let token = next_token(summary.id.get(), &digest, page.number + 1, Start::Token(next));
        if let Ok(v) = HeaderValue::from_str(&token) {
            headers.insert(NEXT_PAGE, v);
        }
    }
    // How the polls stand, and why not when they do not go through: what
    // the user would otherwise learn from a log only.
    let enabled = crate::domain::events::settings(&summary.configuration, &summary.secret_keys).is_some();
    let state = app.store.poll_target(summary.id).await?.map(|(_, state)| state);
    let (standing, problem, next_poll) = polls_standing(enabled, state.as_ref());
    headers.insert(POLLS_STATE, HeaderValue::from_static(standing));
    if let Some(v) = problem.and_then(|p| HeaderValue::from_str(&ascii_line(p)).ok()) {
        headers.insert(POLLS_PROBLEM, v);
    }
    if let Some(v) = next_poll.and_then(|ms| HeaderValue::from_str(&crate::domain::time::iso8601(instant(ms))).ok()) {
        headers.insert(NEXT_POLL, v);
    }
    Ok(Done { response, id: Some(summary.id.get()), organization: Some(principal.organization), replayed: false })
}

/// `Elements-Events-State`: `off` (events not enabled), `polling`, `held`
/// (the next poll waits: JIRA's rate limit, a failure, a search JIRA
/// refuses: `Elements-Events-Problem` says which) or `stopped` (until the
/// instance changes: JIRA refused its credentials, or it is disabled).
pub const POLLS_STATE: &str = "elements-events-state";
pub const POLLS_PROBLEM: &str = "elements-events-problem";
/// `Elements-Events-Next-Poll`: when the next poll is due (ISO 8601 UTC).
pub const NEXT_POLL: &str = "elements-events-next-poll";

fn polls_standing(
    enabled: bool,
    state: Option<&crate::store::events::PollState>,
) -> (&'static str, Option<&str>, Option<i64>) {
    let Some(state) = state.filter(|_| enabled) else {
        return ("off", None, None);
    };
    let problem = state.problem.as_ref().map(|(p, _)| p.as_str());
    match (state.due_ms, problem) {
        (None, _) => ("stopped", problem, None),
        (Some(due), Some(_)) => ("held", problem, Some(due)),
        (Some(due), None) => ("polling", None, Some(due)),
    }
}

/// A header's text: printable ASCII, other characters escaped, one line.
fn ascii_line(text: &str) -> String {
    text.chars()
        .take(500)
        .map(|c| if (' '..='~').contains(&c) { c.to_string() } else { c.escape_unicode().to_string() })
        .collect()
}

fn instant(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}
