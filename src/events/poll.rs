//! One poll of one instance: its changes since its cursor, as
//! notifications recorded with the cursor's move in one transaction
//! conditioned on the due time the poll ran for (so a poll's outcome is
//! written once, whatever runs twice), then handed to the deliveries. How
//! the changes are read (one page, or a burst's window in the keys' order) is
//! `window`'s.
//!
//! What stops or holds the polls: events turned off, a disabled instance,
//! credentials JIRA refused (`valid` false, set here on a `401`: repeated
//! refused logins lock a JIRA account behind a CAPTCHA, so nothing asks again
//! until the credentials change), JIRA's `429` (the next poll after its
//! `Retry-After`), a search JIRA refuses (a filter naming a project renamed
//! since: asked again hourly), a failure of the site. Each hold and stop
//! is kept on the instance with its reason (`pollProblem`), which the
//! events API shows, until a poll goes through again.

use std::time::{Duration, SystemTime};

use super::notification::{notifications, Origin};
use super::window::{self, Change, Cursor, PAGE_SIZE};
use super::{epoch_ms, DeliveryMessage, Events, EventsError};
use crate::domain::events::{self, EventSettings};
use crate::domain::token::InstanceId;
use crate::hub::{HubError, PollPage, PollSite};
use crate::store::events::{notification_sk, Committed, PollCommit};

/// How long one poll may ask JIRA, all pages together: a batch of ten runs
/// four at a time, three rounds inside the poll function's 90 s (a poll
/// that runs out of time records what it read, and the next goes on).
pub const BUDGET: Duration = Duration::from_secs(25);
/// The most changes one poll records (its transaction holds one write a
/// notification of ten, and the cursor's): the rest is polled again at once.
pub const MAX_CHANGES: usize = 99 * super::notification::MAX_EVENTS;
/// The most of the issues' text one poll records: with the notifications'
/// own members, under DynamoDB's 4 MB a transaction (a page is at most
/// 1 MiB, so one page always fits).
const MAX_TAKEN_BYTES: usize = 2 * 1024 * 1024;
/// The least time left in the budget to ask for one more page (a page
/// not finished in time is a failure; not starting it, a next poll at once).
const MIN_PAGE_TIME: Duration = Duration::from_secs(5);
/// The most pages one poll asks for, and bytes of them it reads.
const MAX_PAGES: usize = 60;
const MAX_READ_BYTES: usize = 8 * 1024 * 1024;
/// The most of the notifications' bodies one poll's transaction writes
/// (DynamoDB's limit for one transaction is 4 MB).
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;
/// The shortest and longest wait after JIRA's `429`.
const MIN_RATE_WAIT_MS: i64 = 60_000;
const MAX_RATE_WAIT_MS: i64 = 3_600_000;
/// The wait after a failure of the site (`5xx`, unreachable, an answer
/// that does not read): the interval, at most this.
const MAX_FAILURE_WAIT_MS: i64 = 5 * 60_000;
/// The wait after JIRA refused the search itself (`400`: a filter naming
/// what is gone): the interval, at least this.
const MIN_REFUSED_WAIT_MS: i64 = 60 * 60_000;
/// The most the clocks' difference is taken as (ten years: a site's
/// dates are on its own clock, however far off, and asked on it; this only
/// keeps the arithmetic in range).
const MAX_CLOCK_MS: i64 = 10 * 366 * 24 * 3_600_000;

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
        app.store.park_polls(id, due, version, false, "events are off").await?;
        return Ok(Polled::Stopped("events are off"));
    };
    if summary.disabled {
        app.store.park_polls(id, due, version, false, "the instance is disabled").await?;
        return Ok(Polled::Stopped("the instance is disabled"));
    }
    if !summary.valid && app.settings.provider_check {
        app.store.park_polls(id, due, version, false, REFUSED_LOGIN).await?;
        return Ok(Polled::Stopped(REFUSED_LOGIN));
    }
    let at = Poll { id, due, version, now_ms, element_key: &summary.element_key };
    let clock = Clock { now_ms, started: tokio::time::Instant::now() };
    match read(events, &record, &clock, &state.cursor, &settings).await {
        Ok(read) => record_changes(events, &at, &settings, read).await,
        Err(e) => hold(events, &at, &settings, e).await,
    }
}

const REFUSED_LOGIN: &str = "JIRA refused the instance's credentials";

/// When the poll started, by our clock (`now_ms`, as handed over) and as
/// time goes on inside it.
struct Clock {
    now_ms: i64,
    started: tokio::time::Instant,
}

impl Clock {
    fn now(&self) -> i64 {
        self.now_ms + self.started.elapsed().as_millis() as i64
    }

    /// The clocks' difference a page's `Date` tells (its second floored:
    /// half a second added), or the one known.
    fn difference(&self, page: &PollPage, known: i64) -> i64 {
        match page.date_ms {
            Some(date) => (date + 500 - self.now()).clamp(-MAX_CLOCK_MS, MAX_CLOCK_MS),
            None => known,
        }
    }
}

/// The poll being made: the instance, its due time and version read, when,
/// and its element.
struct Poll<'a> {
    id: InstanceId,
    due: i64,
    version: u64,
    now_ms: i64,
    element_key: &'a str,
}

/// What a poll read: the changes to record and the cursor after them.
struct Read {
    changes: Vec<Change>,
    cursor: Cursor,
    /// The next poll at once (more to read), or after this wait (a burst too
    /// recent to read in the keys' order yet).
    next: Next,
    /// What stopped the reading after some of it was done: recorded, then
    /// held as if nothing had been read.
    stopped: Option<HubError>,
    malformed: usize,
    object_type: String,
    hub_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Interval,
    AtOnce,
    After(i64),
}

/// The JQL of a poll: its dates, its id range, the instance's filter.
fn jql(dates: String, range: Option<String>, filter: Option<&String>, field: &str) -> String {
    let mut jql = dates;
    if let Some(range) = range {
        jql.push_str(" AND ");
        jql.push_str(&range);
    }
    if let Some(filter) = filter {
        jql.push_str(&format!(" AND ({filter})"));
    }
    format!("{jql} ORDER BY {field} ASC")
}

async fn read(
    events: &Events,
    record: &crate::domain::instance::InstanceRecord,
    clock: &Clock,
    start: &Cursor,
    settings: &EventSettings,
) -> Result<Read, HubError> {
    let app = &events.app;
    let deadline = tokio::time::Instant::now() + BUDGET;
    let Some(site) = PollSite::open(app, record, deadline).await? else {
        return Err(HubError::Internal("the element has no polled events".into()));
    };
    let field = site.events.updated_field.clone();
    let filter = settings.filter_jql.as_ref();
    let mut cursor = start.clone();
    let mut out = Read {
        changes: vec![],
        cursor: start.clone(),
        next: Next::Interval,
        stopped: None,
        malformed: 0,
        object_type: site.events.object_type.clone(),
        hub_key: site.hub_key().to_owned(),
    };
    let mut window = match cursor.window.take() {
        Some(window) => window,
        None => {
            // One page of everything since the cursor.
            let dates = window::date_clause(&field, window::lower_bound(&cursor), None, clock.now(), cursor.clock_ms);
            let page = site.page(app, record, &jql(dates, None, filter, &field), PAGE_SIZE).await?;
            cursor.clock_ms = clock.difference(&page, cursor.clock_ms);
            let (rows, malformed) = window::rows(page.issues);
            out.malformed = malformed;
            let jira_now = window::jira_now(&cursor, clock.now());
            if page.complete {
                let found = window::changes(rows, &cursor, jira_now + window::SKEW_MS);
                (out.changes, out.cursor) = (found.changes, found.cursor);
                return Ok(out);
            }
            // More than a page: read in the keys' order, once it is old enough
            // that nothing joins it while it is read.
            // (A `Date` far ahead of ours is not let carry the window's end
            // past what JIRA can have written by now.)
            match window::open_window(&cursor, jira_now.min(clock.now() + window::SKEW_MS)) {
                Some(window) => window,
                None => {
                    let wait = window::lower_bound(&cursor) + window::LAG_MS - jira_now + 1_000;
                    out.cursor = cursor;
                    out.next = Next::After(wait.clamp(1_000, window::LAG_MS));
                    return Ok(out);
                }
            }
        }
    };
    let (mut pages, mut read_bytes, mut taken_bytes) = (0, 0, 0);
    let mut done = false;
    loop {
        if out.changes.len() >= MAX_CHANGES
            || taken_bytes >= MAX_TAKEN_BYTES
            || pages >= MAX_PAGES
            || read_bytes >= MAX_READ_BYTES
            || deadline.saturating_duration_since(tokio::time::Instant::now()) < MIN_PAGE_TIME
        {
            break;
        }
        let dates = window::date_clause(&field, window.from_ms, Some(window.until_ms), clock.now(), cursor.clock_ms);
        let query = jql(dates, window::keyset_clause(&window), filter, "key");
        pages += 1;
        let page = match site.page(app, record, &query, PAGE_SIZE).await {
            Ok(page) => page,
            Err(e @ (HubError::Store(_) | HubError::Seal(_))) => return Err(e),
            Err(HubError::Provider { status: 400, message }) => match mended(&window, &message) {
                // A key or a project of the keyset JIRA no longer has.
                Some(mended) => {
                    window = mended;
                    continue;
                }
                None => {
                    out.stopped = Some(HubError::Provider { status: 400, message });
                    break;
                }
            },
            Err(e) => {
                // What was read stays read: recorded, then held.
                out.stopped = Some(e);
                break;
            }
        };
        read_bytes += page.bytes;
        cursor.clock_ms = clock.difference(&page, cursor.clock_ms);
        let (rows, malformed) = window::rows(page.issues);
        out.malformed += malformed;
        let at_least_one = out.changes.is_empty();
        let room = MAX_CHANGES - out.changes.len();
        let taken = window::take_page(rows, &cursor, &window, room, MAX_TAKEN_BYTES - taken_bytes, at_least_one);
        out.malformed += taken.skipped;
        let moved = taken.window != window || !taken.changes.is_empty();
        taken_bytes += taken.changes.iter().map(|c| c.issue.get().len()).sum::<usize>();
        out.changes.extend(taken.changes);
        let continued = window.after.clone();
        window = taken.window;
        if page.complete && !taken.cut {
            let Some(anchor) = continued else {
                // Every project not read yet, whole: the window is read.
                done = true;
                break;
            };
            // The project read to its end, if its last key is still itself
            // (JIRA reads `key > "P-41"` through P-41 as it is now: moved to
            // another project, it matches nothing of P's).
            if window.after.as_ref() == Some(&anchor) {
                pages += 1;
                match still_itself(app, record, &site, &anchor).await {
                    Ok(true) => {}
                    Ok(false) => {
                        window = window::restart_project(&window).unwrap_or(window);
                        continue;
                    }
                    Err(e @ (HubError::Store(_) | HubError::Seal(_))) => return Err(e),
                    Err(e) => {
                        out.stopped = Some(e);
                        break;
                    }
                }
            }
            window = window::project_read(&window);
            continue;
        }
        if taken.cut {
            // No room for more in this poll: the next, at once, goes on.
            break;
        }
        if !moved {
            // A page with nothing after the place (a site that does not
            // read its keyset): nothing to go on from.
            out.stopped = Some(HubError::BadResponse("the search's pages do not move on in the order of keys".into()));
            break;
        }
    }
    if done {
        cursor = window::after_window(&cursor, &window);
    } else {
        cursor.window = Some(window);
    }
    out.cursor = cursor;
    // The rest of the window, or what came after it, at once.
    out.next = Next::AtOnce;
    Ok(out)
}

/// The window mended after JIRA refused its keyset, if the refusal names a
/// key or a project of it JIRA no longer has: a project let go (it holds
/// nothing to read), or the project of a deleted key read again from its
/// start (passing over what was read).
fn mended(window: &window::Window, message: &str) -> Option<window::Window> {
    if let Some(after) = window.after.as_ref().filter(|a| names_key(message, &a.to_string())) {
        tracing::info!(key = %after, "a key read since deleted: its project is read again from its start");
        return window::restart_project(window);
    }
    // (`The value 'A' does not exist for the field 'project'.`: a value of
    // another field, the filter's, is the filter's problem, not the window's.)
    if !message.contains("'project'") {
        return None;
    }
    let projects = window.done.iter().chain(window.after.iter().map(|a| &a.project));
    let gone = projects.map(|p| p.as_str()).find(|p| message.contains(&format!("'{p}'")))?;
    Some(window::without_project(window, gone))
}

/// Whether `key` still names the issue it named (not deleted, not moved to
/// another project, which leaves it an alias of the issue's new key).
async fn still_itself(
    app: &crate::app::App,
    record: &crate::domain::instance::InstanceRecord,
    site: &PollSite<'_>,
    key: &window::IssueKey,
) -> Result<bool, HubError> {
    match site.page(app, record, &format!("key = \"{key}\""), 1).await {
        Ok(page) => {
            let (rows, _) = window::rows(page.issues);
            Ok(rows.first().and_then(|r| r.key.as_ref()) == Some(key))
        }
        Err(HubError::Provider { status: 400, message }) if names_key(&message, &key.to_string()) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether JIRA's refusal names `key` (`An issue with key 'P-41' does not
/// exist for field 'key'.`), as a key, not a part of a longer one.
fn names_key(message: &str, key: &str) -> bool {
    message.match_indices(key).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + key.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The next poll and what the user is told after `e`, or the polls' stop.
enum Holding {
    Wait { next_ms: i64, problem: String },
    Refused(String),
    Fault(EventsError),
}

fn holding(e: HubError, now_ms: i64, settings: &EventSettings) -> Holding {
    match e {
        HubError::InstanceInvalid { message } => Holding::Refused(message),
        HubError::RateLimited { retry_after } => {
            let wait = retry_after
                .as_deref()
                .and_then(|r| retry_after_ms(r, now_ms))
                .unwrap_or(MIN_RATE_WAIT_MS)
                .clamp(MIN_RATE_WAIT_MS, MAX_RATE_WAIT_MS);
            Holding::Wait {
                next_ms: now_ms + wait,
                problem: format!("JIRA's rate limit: the next poll in {} s", wait / 1000),
            }
        }
        HubError::Store(e) => Holding::Fault(e.into()),
        HubError::Seal(e) => Holding::Fault(e.into()),
        HubError::Provider { status, message } if (400..500).contains(&status) => {
            let wait = settings.interval_ms().max(MIN_REFUSED_WAIT_MS);
            Holding::Wait {
                next_ms: now_ms + wait,
                problem: format!(
                    "JIRA refused the events' search (HTTP {status}: {message}); asked again every {} minutes until \
                     it is taken or the configuration changes",
                    wait / 60_000
                ),
            }
        }
        e => {
            let wait = settings.interval_ms().min(MAX_FAILURE_WAIT_MS);
            Holding::Wait {
                next_ms: now_ms + wait,
                problem: format!("the poll failed: {e}; the next in {} s", wait / 1000),
            }
        }
    }
}

/// A poll that read nothing: held, or its polls stopped.
async fn hold(events: &Events, at: &Poll<'_>, settings: &EventSettings, e: HubError) -> Result<Polled, EventsError> {
    let app = &events.app;
    let Poll { id, due, version, now_ms, .. } = *at;
    match holding(e, now_ms, settings) {
        Holding::Refused(message) => {
            tracing::warn!(instance = %id, message, "JIRA refused the credentials: polls stop until they change");
            app.store.park_polls(id, due, version, true, REFUSED_LOGIN).await?;
            Ok(Polled::Stopped(REFUSED_LOGIN))
        }
        Holding::Wait { next_ms, problem } => {
            tracing::warn!(instance = %id, problem, "the poll is held");
            app.store.reschedule_poll(id, due, next_ms, Some(&problem)).await?;
            Ok(Polled::Held(problem))
        }
        Holding::Fault(e) => Err(e),
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

async fn record_changes(
    events: &Events,
    at: &Poll<'_>,
    settings: &EventSettings,
    read: Read,
) -> Result<Polled, EventsError> {
    let app = &events.app;
    let Poll { id, due, version, now_ms, element_key } = *at;
    if read.malformed > 0 {
        tracing::warn!(instance = %id, skipped = read.malformed, "issues of the search out of shape, skipped");
    }
    let mut changes = read.changes;
    let (mut next_due, mut problem) = match read.next {
        Next::Interval => (now_ms + settings.interval_ms(), None),
        Next::AtOnce => (now_ms, None),
        Next::After(wait) => (now_ms + wait, None),
    };
    let mut refused = None;
    if let Some(e) = read.stopped {
        match holding(e, now_ms, settings) {
            Holding::Wait { next_ms, problem: why } => {
                tracing::warn!(instance = %id, problem = why, "the poll stopped after a part of its reading: kept, held");
                (next_due, problem) = (next_ms, Some(why));
            }
            Holding::Refused(message) => {
                // Stopped right after the commit; if that stop does not land,
                // not asked again (a refused login more) before an hour.
                next_due = now_ms + MIN_REFUSED_WAIT_MS;
                refused = Some(message);
            }
            Holding::Fault(e) => return Err(e),
        }
    }
    let origin = Origin { instance: id, element_key, hub_key: &read.hub_key, object_type: &read.object_type };
    let made = notifications(&origin, &mut changes, now_ms, random_id)?;
    let bytes: usize = made.iter().map(|n| n.body.len()).sum();
    if bytes > MAX_TRANSACTION_BYTES || made.len() > MAX_CHANGES / super::notification::MAX_EVENTS {
        // (Only a site whose issues are not what JIRA writes comes here: a
        // page is at most 1 MiB.) Held, and said, never a message going round.
        let wait = settings.interval_ms().max(MIN_REFUSED_WAIT_MS);
        let problem = format!(
            "JIRA's issues make {} notifications of {bytes} bytes, more than one poll records; asked again in {} minutes",
            made.len(),
            wait / 60_000
        );
        tracing::warn!(instance = %id, problem, "the poll is held");
        app.store.reschedule_poll(id, due, now_ms + wait, Some(&problem)).await?;
        return Ok(Polled::Held(problem));
    }
    let commit =
        PollCommit { cursor: &read.cursor, next_due_ms: next_due, notifications: &made, problem: problem.as_deref() };
    match app.store.commit_poll(id, due, &commit).await? {
        Committed::Stale => return Ok(Polled::Stale { resent: 0 }),
        Committed::Done => {}
    }
    let deliveries: Vec<DeliveryMessage> = made
        .iter()
        .map(|n| DeliveryMessage { instance: id.get(), notification: notification_sk(n.poll_ms, n.seq) })
        .collect();
    events.send_deliveries(&deliveries).await?;
    if let Some(message) = refused {
        tracing::warn!(instance = %id, message, "JIRA refused the credentials: polls stop until they change");
        app.store.park_polls(id, next_due, version, true, REFUSED_LOGIN).await?;
        return Ok(Polled::Stopped(REFUSED_LOGIN));
    }
    if let Some(why) = problem {
        return Ok(Polled::Held(why));
    }
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
    fn a_refusal_names_the_key_itself_not_a_longer_one() {
        let said = "An issue with key 'DEMO-41' does not exist for field 'key'.";
        assert!(names_key(said, "DEMO-41"));
        assert!(!names_key(said, "DEMO-4"));
        assert!(!names_key(said, "EMO-41"));
        assert!(!names_key("The value 'GONE' does not exist for the field 'project'.", "DEMO-41"));
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        let now = jiff::Timestamp::from_second(1_445_412_400).unwrap().as_millisecond(); // 2015-10-21 07:26:40 UTC
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(80_000));
        assert_eq!(retry_after_ms("soon", now), None);
    }
}
