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
use crate::hub::{HubError, PollBudget, PollSite};
use crate::store::events::{notification_sk, Committed, PollCommit};

/// How long one poll may ask JIRA, all pages together: a batch of ten runs
/// four at a time, three rounds inside the poll function's 90 s (a poll
/// that runs out of time records what it read, and the next goes on).
pub const BUDGET: Duration = Duration::from_secs(25);
/// The most changes one poll records (its transaction holds one write a
/// notification of ten, and the cursor's): the rest is polled again at once.
pub const MAX_CHANGES: usize = 99 * super::notification::MAX_EVENTS;
/// What one poll reads of the search at most: issues, and bytes of
/// answers (a hostile site's small values parse to many times their size).
pub const READ: PollBudget = PollBudget { max_items: 3_000, max_bytes: 4 * 1024 * 1024 };
/// The most of the notifications' bodies one poll's transaction writes
/// (DynamoDB's limit for one transaction is 4 MB).
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;
/// How long the account's time zone is trusted before it is asked again.
const ZONE_MAX_AGE_MS: i64 = 24 * 3_600_000;
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
    let version = summary.version;
    let Some(settings) = events::settings(&summary.configuration, &summary.secret_keys) else {
        app.store.park_polls(id, due, version, false).await?;
        return Ok(Polled::Stopped("events are off"));
    };
    if summary.disabled {
        app.store.park_polls(id, due, version, false).await?;
        return Ok(Polled::Stopped("the instance is disabled"));
    }
    if !summary.valid && app.settings.provider_check {
        app.store.park_polls(id, due, version, false).await?;
        return Ok(Polled::Stopped("JIRA refused the instance's credentials"));
    }
    let deadline = tokio::time::Instant::now() + BUDGET;
    let zone = state.zone.as_ref().filter(|(_, at)| now_ms - at < ZONE_MAX_AGE_MS).map(|(z, _)| z.as_str());
    match ask(events, &record, now_ms, zone, &state.cursor, &settings, deadline).await {
        Ok(found) => {
            let at = Poll { id, due, now_ms, element_key: &summary.element_key };
            record_changes(events, &at, &state.cursor, &settings, found).await
        }
        Err(HubError::InstanceInvalid { message }) => {
            tracing::warn!(instance = %id, message, "JIRA refused the credentials: polls stop until they change");
            app.store.park_polls(id, due, version, true).await?;
            Ok(Polled::Stopped("JIRA refused the instance's credentials"))
        }
        Err(HubError::RateLimited { retry_after }) => {
            let wait = retry_after
                .as_deref()
                .and_then(|r| retry_after_ms(r, now_ms))
                .unwrap_or(MIN_RATE_WAIT_MS)
                .clamp(MIN_RATE_WAIT_MS, MAX_RATE_WAIT_MS);
            app.store.reschedule_poll(id, due, now_ms + wait).await?;
            Ok(Polled::Held(format!("JIRA's rate limit: the next poll in {} s", wait / 1000)))
        }
        Err(HubError::Store(e)) => Err(e.into()),
        Err(HubError::Seal(e)) => Err(e.into()),
        Err(e) => {
            let wait = settings.interval_ms().min(MAX_FAILURE_WAIT_MS);
            tracing::warn!(instance = %id, error = %e, "the poll failed: the next one in {} s", wait / 1000);
            app.store.reschedule_poll(id, due, now_ms + wait).await?;
            Ok(Polled::Held(e.to_string()))
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date, as a wait from `now_ms`.
fn retry_after_ms(value: &str, now_ms: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp().as_millisecond();
    Some(at - now_ms)
}

/// What the site answered a poll.
struct Answered {
    issues: Vec<serde_json::Value>,
    more: bool,
    /// The account's zone when this poll asked for it.
    learned_zone: Option<String>,
    object_type: String,
    hub_key: String,
}

#[allow(clippy::too_many_arguments)]
async fn ask(
    events: &Events,
    record: &crate::domain::instance::InstanceRecord,
    now_ms: i64,
    zone: Option<&str>,
    cursor: &Cursor,
    settings: &EventSettings,
    deadline: tokio::time::Instant,
) -> Result<Answered, HubError> {
    let app = &events.app;
    let Some(site) = PollSite::open(app, record, deadline).await? else {
        return Err(HubError::Internal("the element has no polled events".into()));
    };
    let (zone, learned_zone) = match zone {
        Some(z) => (TimeZone::get(z).ok(), None),
        None => {
            let account = site.account().await?;
            let named = account.get(&site.events.zone_field).and_then(|v| v.as_str()).map(str::to_owned);
            let known = named.as_deref().and_then(|z| TimeZone::get(z).ok());
            // Kept only when the database knows it: else asked again next time.
            (known.clone(), named.filter(|_| known.is_some()))
        }
    };
    let since = match &zone {
        Some(tz) => window::since_clause(cursor, tz),
        None => {
            // A zone not told, or unknown: a relative date (`-N m`), which
            // JIRA reads from its own now in any zone; our clock counts the
            // minutes, with a margin for the clocks' difference.
            tracing::warn!(instance = %record.summary.id, "the account's time zone is unknown: asking by a relative date");
            window::relative_since_clause(cursor, now_ms)
        }
    }
    .replacen("updated", &site.events.updated_field, 1);
    let jql = match &settings.filter_jql {
        Some(filter) => format!("{since} AND ({filter}) ORDER BY {} ASC", site.events.updated_field),
        None => format!("{since} ORDER BY {} ASC", site.events.updated_field),
    };
    let (issues, more) = site.search(app, record, &jql, READ).await?;
    Ok(Answered {
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
    answered: Answered,
) -> Result<Polled, EventsError> {
    let app = &events.app;
    let Poll { id, due, now_ms, element_key } = *at;
    let ceiling = now_ms + window::SKEW_MS;
    let found = window::changes(answered.issues, cursor, ceiling);
    if found.malformed > 0 {
        tracing::warn!(instance = %id, skipped = found.malformed, "issues of the search out of shape, skipped");
    }
    let (mut changes, mut next_cursor) = (found.changes, found.cursor);
    let mut next_due = now_ms + settings.interval_ms();
    if answered.more {
        if !changes.is_empty() || next_cursor.since_ms > cursor.since_ms {
            // More than one poll reads, and this one moved on: the next at once.
            next_due = now_ms;
        } else if found.seen_read > 0 {
            // Every change read was notified before, and there are more in
            // the same minutes than a poll reads: step past them, no further
            // than the ceiling, and say so (what lies past them in those
            // minutes is not seen).
            next_cursor.since_ms = (cursor.since_ms + window::OVERLAP_MS + 60_000).min(ceiling);
            next_due = now_ms;
            tracing::error!(
                instance = %id,
                "more changes within three minutes than one poll reads: the cursor steps a minute past them"
            );
        }
        // (Else nothing read could move the cursor: the next poll at its
        // interval, not at once.)
    }
    let origin = Origin { instance: id, element_key, hub_key: &answered.hub_key, object_type: &answered.object_type };
    let mut made = notifications(&origin, &mut changes, now_ms, random_id)?;
    // One transaction: at most 99 notifications and MAX_TRANSACTION_BYTES of
    // them; the rest is found again by the next poll, at once.
    let mut bytes = 0;
    let fits = made
        .iter()
        .take_while(|n| {
            bytes += n.body.len();
            bytes <= MAX_TRANSACTION_BYTES
        })
        .count()
        .min(MAX_CHANGES / super::notification::MAX_EVENTS);
    if fits < made.len() {
        made.truncate(fits);
        let taken: usize = made.iter().map(|n| n.events.len()).sum();
        changes.truncate(taken);
        next_cursor = window::cursor_after(cursor, &changes, ceiling);
        next_due = now_ms;
    }
    let zone = answered.learned_zone.as_deref().map(|z| (z, now_ms));
    let commit = PollCommit { cursor: &next_cursor, next_due_ms: next_due, zone, notifications: &made };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = jiff::Timestamp::from_second(1_445_412_400).unwrap().as_millisecond(); // 2015-10-21 07:26:40 UTC
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(80_000));
        assert_eq!(retry_after_ms("soon", now), None);
    }
}
