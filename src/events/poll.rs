//! One poll of one instance: its changes since its cursor, every page, as
//! notifications recorded with the cursor's move in one transaction
//! conditioned on the due time the poll ran for (so a poll's outcome is
//! written once, whatever runs twice), then handed to the deliveries.
//!
//! What stops or holds the polls: events turned off, a disabled instance,
//! credentials JIRA refused (`valid` false, set here on a `401`: repeated
//! refused logins lock a JIRA account behind a CAPTCHA, so nothing asks again
//! until the credentials change), JIRA's `429` (the next poll after its
//! `Retry-After`).

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;

use super::notification::{notifications, Origin};
use super::window::{self, Cursor};
use super::{epoch_ms, DeliveryMessage, Events, EventsError};
use crate::domain::events::{self, EventSettings};
use crate::domain::token::InstanceId;
use crate::hub::{HubError, PollSite};
use crate::store::events::{notification_sk, Committed, PollCommit};

/// How long one poll may ask JIRA, all pages together (the poll function's
/// timeout leaves room after it).
pub const BUDGET: Duration = Duration::from_secs(60);
/// The most changes one poll records (its transaction holds one write a
/// notification of ten, and the cursor's): the rest is polled again at once.
pub const MAX_CHANGES: usize = 99 * super::notification::MAX_EVENTS;
/// The shortest and longest wait after JIRA's `429`.
const MIN_RATE_WAIT_MS: i64 = 60_000;
const MAX_RATE_WAIT_MS: i64 = 3_600_000;
/// The wait after a failure of the site (`5xx`, unreachable, an answer
/// that does not read): the interval, at most this.
const MAX_FAILURE_WAIT_MS: i64 = 5 * 60_000;

/// What a poll came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// The changes found, recorded with the cursor's move.
    Recorded { changes: usize, notifications: usize },
    /// The message is not this instance's due poll (another poll ran for
    /// it, or the instance changed): nothing asked. `resent` notifications
    /// its own earlier commit recorded were handed to the deliveries again.
    Stale { resent: usize },
    /// The instance is gone.
    Gone,
    /// The polls stopped: events off, disabled, or credentials refused.
    Stopped(&'static str),
    /// JIRA asked to wait, or failed: the next poll later, the cursor kept.
    Held(String),
}

/// Polls instance `id` for its due time `due` at `now`.
pub async fn poll(events: &Events, id: InstanceId, due: i64, now: SystemTime) -> Result<Polled, EventsError> {
    let app = &events.app;
    let now_ms = epoch_ms(now);
    let Some((record, state)) = app.store.poll_target(id).await? else {
        return Ok(Polled::Gone);
    };
    if state.due_ms != Some(due) {
        // Sent again after its commit (a lost answer, a crash before the
        // deliveries were handed over): hand them over again; the
        // deliverer never delivers one notification twice.
        if state.outbox_of == Some(due) && !state.outbox.is_empty() {
            let again: Vec<DeliveryMessage> = state
                .outbox
                .iter()
                .map(|sk| DeliveryMessage { instance: id.get(), notification: sk.clone() })
                .collect();
            events.send_deliveries(&again).await?;
            return Ok(Polled::Stale { resent: again.len() });
        }
        return Ok(Polled::Stale { resent: 0 });
    }
    let summary = &record.summary;
    let Some(settings) = events::settings(&summary.configuration, &summary.secret_keys) else {
        app.store.park_polls(id, due, false).await?;
        return Ok(Polled::Stopped("events are off"));
    };
    if summary.disabled {
        app.store.park_polls(id, due, false).await?;
        return Ok(Polled::Stopped("the instance is disabled"));
    }
    if !summary.valid && app.settings.provider_check {
        app.store.park_polls(id, due, false).await?;
        return Ok(Polled::Stopped("JIRA refused the instance's credentials"));
    }
    let deadline = tokio::time::Instant::now() + BUDGET;
    match ask(events, &record, &state.zone, &state.cursor, &settings, deadline).await {
        Ok(found) => {
            let at = Poll { id, due, now_ms, element_key: &summary.element_key };
            record_changes(events, &at, &state.cursor, &settings, found).await
        }
        Err(HubError::InstanceInvalid { message }) => {
            tracing::warn!(instance = %id, message, "JIRA refused the credentials: polls stop until they change");
            app.store.park_polls(id, due, true).await?;
            Ok(Polled::Stopped("JIRA refused the instance's credentials"))
        }
        Err(HubError::RateLimited { retry_after }) => {
            let wait = retry_after
                .as_deref()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map_or(MIN_RATE_WAIT_MS, |s| s.saturating_mul(1000))
                .clamp(MIN_RATE_WAIT_MS, MAX_RATE_WAIT_MS);
            app.store.reschedule_poll(id, due, now_ms + wait, None).await?;
            Ok(Polled::Held(format!("JIRA's rate limit: the next poll in {} s", wait / 1000)))
        }
        Err(HubError::Store(e)) => Err(e.into()),
        Err(HubError::Seal(e)) => Err(e.into()),
        Err(e) => {
            let wait = settings.interval_ms().min(MAX_FAILURE_WAIT_MS);
            tracing::warn!(instance = %id, error = %e, "the poll failed: the next one in {} s", wait / 1000);
            app.store.reschedule_poll(id, due, now_ms + wait, None).await?;
            Ok(Polled::Held(e.to_string()))
        }
    }
}

/// What the site answered a poll.
struct Found {
    issues: Vec<serde_json::Value>,
    more: bool,
    /// The account's zone when this poll had to ask for it.
    learned_zone: Option<String>,
    object_type: String,
    hub_key: String,
}

async fn ask(
    events: &Events,
    record: &crate::domain::instance::InstanceRecord,
    zone: &Option<String>,
    cursor: &Cursor,
    settings: &EventSettings,
    deadline: tokio::time::Instant,
) -> Result<Found, HubError> {
    let app = &events.app;
    let Some(site) = PollSite::open(app, record, deadline).await? else {
        return Err(HubError::Internal("the element has no polled events".into()));
    };
    let (zone_name, learned_zone) = match zone {
        Some(z) => (z.clone(), None),
        None => {
            let account = site.account().await?;
            let z = account.get(&site.events.zone_field).and_then(|v| v.as_str()).unwrap_or("UTC").to_owned();
            (z.clone(), Some(z))
        }
    };
    // A zone the database does not know reads as UTC, an hour or so off:
    // the overlap does not cover that, so say it.
    let tz = TimeZone::get(&zone_name).unwrap_or_else(|_| {
        tracing::warn!(zone = zone_name, "the account's time zone is unknown: read as UTC");
        TimeZone::UTC
    });
    let since = window::since_clause(cursor, &tz).replacen("updated", &site.events.updated_field, 1);
    let jql = match &settings.filter_jql {
        Some(filter) => format!("{since} AND ({filter}) ORDER BY {} ASC", site.events.updated_field),
        None => format!("{since} ORDER BY {} ASC", site.events.updated_field),
    };
    let (issues, more) = site.search(app, record, &jql, MAX_CHANGES + 1).await?;
    Ok(Found {
        issues,
        more,
        learned_zone,
        object_type: site.events.object_type.clone(),
        hub_key: site.hub_key().to_owned(),
    })
}

/// The poll being made: the instance, its due time, when, and its element.
struct Poll<'a> {
    id: InstanceId,
    due: i64,
    now_ms: i64,
    element_key: &'a str,
}

async fn record_changes(
    events: &Events,
    at: &Poll<'_>,
    cursor: &Cursor,
    settings: &EventSettings,
    found: Found,
) -> Result<Polled, EventsError> {
    let app = &events.app;
    let Poll { id, due, now_ms, element_key } = *at;
    let (mut changes, mut next_cursor) = match window::changes(found.issues, cursor) {
        Ok(out) => out,
        Err(e) => {
            let wait = settings.interval_ms().min(MAX_FAILURE_WAIT_MS);
            tracing::warn!(instance = %id, error = %e, "JIRA's search answered issues out of shape");
            app.store.reschedule_poll(id, due, now_ms + wait, found.learned_zone.as_deref()).await?;
            return Ok(Polled::Held(e.to_string()));
        }
    };
    // More than one poll takes: the oldest part now, the rest at once after.
    let mut next_due = now_ms + settings.interval_ms();
    if changes.len() > MAX_CHANGES || found.more {
        changes.truncate(MAX_CHANGES.min(changes.len()));
        next_cursor = window::cursor_after(cursor, &changes);
        next_due = now_ms;
    }
    let origin = Origin { instance: id, element_key, hub_key: &found.hub_key, object_type: &found.object_type };
    let mut failed = None;
    let made = notifications(&origin, &changes, now_ms, || match random_id() {
        Ok(id) => id,
        Err(e) => {
            failed = Some(e);
            String::new()
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let commit = PollCommit {
        cursor: &next_cursor,
        next_due_ms: next_due,
        zone: found.learned_zone.as_deref(),
        notifications: &made,
    };
    match app.store.commit_poll(id, due, &commit).await? {
        Committed::Stale => return Ok(Polled::Stale { resent: 0 }),
        Committed::Done => {}
    }
    let deliveries: Vec<DeliveryMessage> = made
        .iter()
        .map(|n| DeliveryMessage { instance: id.get(), notification: notification_sk(n.poll_ms, n.seq) })
        .collect();
    events.send_deliveries(&deliveries).await?;
    Ok(Polled::Recorded { changes: changes.len(), notifications: made.len() })
}

/// A notification's id: 16 random bytes in hex.
fn random_id() -> Result<String, EventsError> {
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw).map_err(|e| EventsError::Internal(format!("no random bytes: {e}")))?;
    Ok(hex::encode(raw))
}
