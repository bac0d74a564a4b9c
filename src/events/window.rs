//! Which changes a poll's search answer holds that no poll before it
//! notified, and where the next poll looks from. Pure: the search's issues
//! in, the changes and the next cursor out.
//!
//! JQL dates have minute precision and are read in the account's time zone,
//! and a site's search may show a change a moment late (Jira Cloud's index is
//! eventually consistent). So a poll asks for everything updated since its
//! cursor less [`OVERLAP`], floored to the minute, in the account's zone, and
//! the cursor remembers what it saw inside that overlap (`seen`: each issue's
//! id and `updated`, to the millisecond as the issue tells it): a change is
//! new when its `(id, updated)` is not in `seen`. The cursor moves to the
//! latest `updated` the poll saw, JIRA's own clock, never ours.

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::Value;

/// How far before its cursor a poll looks again.
pub const OVERLAP_MS: i64 = 2 * 60_000;

/// Where a poll looks from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Epoch milliseconds: every change before `since_ms - OVERLAP_MS` was notified.
    pub since_ms: i64,
    /// The changes seen at or after `since_ms - OVERLAP_MS`: `(issue id, updated ms)`.
    pub seen: Vec<(String, i64)>,
    /// Epoch ms before which no change is an event: when events were
    /// enabled, less [`SKEW_MS`] (the overlap is for late changes, not for
    /// what happened before anyone asked; the allowance, for JIRA's clock
    /// being behind ours).
    pub floor_ms: i64,
}

/// How far JIRA's clock may be behind ours at the first poll, and ahead of
/// it at any: a change dated past the poll's start by more is not let move
/// the cursor (a site whose clock jumped, an issue dated in 2099), or every
/// later change would be before it.
pub const SKEW_MS: i64 = 60_000;

/// One change: an issue created or updated since the last poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub issue_id: String,
    pub updated_ms: i64,
    /// Created since the last poll (`CREATED`), else `UPDATED`.
    pub created: bool,
    /// The issue as the search answered it (the notification's `raw`).
    pub issue: Value,
}

impl Change {
    /// The change's id: the same change has the same one, so that it is
    /// recognised wherever it comes back.
    pub fn event_id(&self) -> String {
        format!("{}-{}", self.issue_id, self.updated_ms)
    }

    pub fn event_type(&self) -> &'static str {
        if self.created {
            "CREATED"
        } else {
            "UPDATED"
        }
    }
}

/// The JQL restriction of a poll from `cursor`: `updated >= "yyyy/MM/dd
/// HH:mm"` in the account's zone, floored to the minute. A start that falls
/// in the hour a clock is turned back (read either way by JIRA) is taken two
/// hours earlier still.
pub fn since_clause(cursor: &Cursor, zone: &TimeZone) -> String {
    let start = Timestamp::from_millisecond(cursor.since_ms - OVERLAP_MS).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut civil = start.to_zoned(zone.clone()).datetime();
    if zone.to_ambiguous_timestamp(civil).is_ambiguous() {
        civil = civil.checked_sub(jiff::SignedDuration::from_hours(2)).unwrap_or(civil);
    }
    format!("updated >= \"{}\"", civil.strftime("%Y/%m/%d %H:%M"))
}

/// The JQL restriction of a poll from `cursor` where the account's zone is
/// not known: `updated >= "-Nm"`, minutes JIRA counts back from its own now
/// (in any zone), N from our clock at `now_ms` with a margin of
/// [`SKEW_MS`] for the clocks' difference, at least the overlap.
pub fn relative_since_clause(cursor: &Cursor, now_ms: i64) -> String {
    let back = (now_ms - (cursor.since_ms - OVERLAP_MS) + SKEW_MS).max(OVERLAP_MS);
    format!("updated >= \"-{}m\"", (back + 59_999) / 60_000)
}

/// An instant as JIRA writes one (`2026-12-01T22:05:07.123+1100`), in epoch ms.
pub fn jira_instant(text: &str) -> Option<i64> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t.as_millisecond());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = jiff::fmt::strtime::parse(format, text).and_then(|p| p.to_timestamp()) {
            return Some(t.as_millisecond());
        }
    }
    None
}

/// What a poll's answer came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The changes not yet notified, oldest first.
    pub changes: Vec<Change>,
    /// The cursor after all of them (and after every issue the answer held).
    pub cursor: Cursor,
    /// Issues out of shape (no id, no dates), skipped.
    pub malformed: usize,
    /// Changes read that the cursor had seen (notified before).
    pub seen_read: usize,
}

/// The changes among `issues` (the search's, every page) that `cursor` has
/// not seen, oldest first, and the cursor after them, at most
/// `ceiling_ms` (the poll's start, plus [`SKEW_MS`]). `issues` carry `id`,
/// `fields.updated` and `fields.created`; one without is skipped (and
/// counted), never a reason to stop.
pub fn changes(issues: Vec<Value>, cursor: &Cursor, ceiling_ms: i64) -> Found {
    let floor = (cursor.since_ms - OVERLAP_MS).max(cursor.floor_ms);
    let mut all = Vec::with_capacity(issues.len());
    let mut malformed = 0;
    for issue in issues {
        let id = match issue.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                malformed += 1;
                continue;
            }
        };
        let date =
            |name: &str| issue.pointer(&format!("/fields/{name}")).and_then(Value::as_str).and_then(jira_instant);
        let (Some(updated), Some(created)) = (date("updated"), date("created")) else {
            malformed += 1;
            continue;
        };
        all.push((id, updated, created, issue));
    }
    // Oldest first; the same issue twice (pages that overlap, a change
    // between two pages): its latest state, once.
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    all.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for (id, updated, ..) in &all {
        let at = latest.entry(id.as_str()).or_insert(*updated);
        *at = (*at).max(*updated);
    }
    let latest: HashMap<String, i64> = latest.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let seen_ids: HashSet<&str> = cursor.seen.iter().map(|(id, _)| id.as_str()).collect();
    let seen: HashSet<(&str, i64)> = cursor.seen.iter().map(|(id, u)| (id.as_str(), *u)).collect();
    let mut out = Vec::new();
    let mut since = cursor.since_ms;
    let mut kept = Vec::new();
    let mut seen_read = 0;
    for (id, updated, created, issue) in all {
        if latest.get(&id) != Some(&updated) || updated < floor {
            continue;
        }
        // A change dated past the ceiling is kept in `seen` only: the cursor
        // stays on JIRA's time as this poll could see it.
        if updated <= ceiling_ms {
            since = since.max(updated);
        }
        kept.push((id.clone(), updated));
        if seen.contains(&(id.as_str(), updated)) {
            seen_read += 1;
            continue;
        }
        let created = created >= floor && !seen_ids.contains(id.as_str());
        out.push(Change { issue_id: id, updated_ms: updated, created, issue });
    }
    let cursor = Cursor { since_ms: since, seen: seen_after(&cursor.seen, kept, since), floor_ms: cursor.floor_ms };
    Found { changes: out, cursor, malformed, seen_read }
}

/// What the cursor at `since` remembers: the changes inside its overlap.
fn seen_after(previous: &[(String, i64)], new: Vec<(String, i64)>, since: i64) -> Vec<(String, i64)> {
    let floor = since - OVERLAP_MS;
    let mut seen: Vec<(String, i64)> = previous.iter().cloned().chain(new).filter(|(_, u)| *u >= floor).collect();
    seen.sort();
    seen.dedup();
    seen
}

/// The cursor after `taken`, the oldest of a poll's changes, only (a poll
/// that could not record them all at once): the rest stays after it, to be
/// found again.
pub fn cursor_after(previous: &Cursor, taken: &[Change], ceiling_ms: i64) -> Cursor {
    let since = taken
        .iter()
        .map(|c| c.updated_ms)
        .filter(|u| *u <= ceiling_ms)
        .max()
        .unwrap_or(previous.since_ms)
        .max(previous.since_ms);
    let new = taken.iter().map(|c| (c.issue_id.clone(), c.updated_ms)).collect();
    Cursor { since_ms: since, seen: seen_after(&previous.seen, new, since), floor_ms: previous.floor_ms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issue(id: &str, created: &str, updated: &str) -> Value {
        json!({"id": id, "key": format!("DEMO-{id}"), "fields": {"created": created, "updated": updated}})
    }

    fn ms(text: &str) -> i64 {
        jira_instant(text).unwrap()
    }

    #[test]
    fn jira_instants_read_with_their_offset() {
        assert_eq!(ms("2026-12-01T22:00:00.000+1100"), ms("2026-12-01T11:00:00.000Z"));
        assert_eq!(ms("2026-12-01T11:00:00.250+0000") - ms("2026-12-01T11:00:00.000+00:00"), 250);
        assert_eq!(jira_instant("yesterday"), None);
    }

    #[test]
    fn the_clause_is_in_the_accounts_zone_floored_to_the_minute_with_the_overlap() {
        let sydney = TimeZone::get("Australia/Sydney").unwrap();
        let cursor = Cursor { since_ms: ms("2026-12-01T11:05:30.500Z"), ..Cursor::default() };
        // 11:03:30Z is 22:03:30 in Sydney (UTC+11 in December).
        assert_eq!(since_clause(&cursor, &sydney), "updated >= \"2026/12/01 22:03\"");
        assert_eq!(since_clause(&cursor, &TimeZone::UTC), "updated >= \"2026/12/01 11:03\"");
        // 2026-04-05 03:00 Sydney the clocks go back to 02:00: 02:30 is read twice.
        let fold = Cursor { since_ms: ms("2026-04-04T15:32:00Z") + OVERLAP_MS, ..Cursor::default() };
        assert_eq!(since_clause(&fold, &sydney), "updated >= \"2026/04/05 00:32\"");
    }

    const FAR: i64 = i64::MAX / 2;

    fn run(issues: Vec<Value>, cursor: &Cursor) -> (Vec<Change>, Cursor) {
        let found = changes(issues, cursor, FAR);
        (found.changes, found.cursor)
    }

    #[test]
    fn a_change_is_notified_once_across_overlapping_polls() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let a = issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:01:00.000Z");
        let b = issue("2", "2026-11-01T10:00:00.000Z", "2026-12-01T10:02:00.500Z");
        let (first, cursor) = run(vec![a.clone(), b.clone()], &start);
        assert_eq!(
            first.iter().map(|c| (c.issue_id.as_str(), c.event_type())).collect::<Vec<_>>(),
            [("1", "CREATED"), ("2", "UPDATED")]
        );
        assert_eq!(cursor.since_ms, ms("2026-12-01T10:02:00.500Z"));
        // The next poll sees both again (the overlap) and a new change of 1.
        let a2 = issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:03:00.000Z");
        let (second, cursor2) = run(vec![b.clone(), a.clone(), a2], &cursor);
        assert_eq!(second.len(), 1);
        assert_eq!((second[0].issue_id.as_str(), second[0].event_type()), ("1", "UPDATED"));
        // Nothing new: nothing notified, and the cursor stays.
        let (third, cursor3) = run(vec![b], &cursor2);
        assert!(third.is_empty());
        assert_eq!(cursor3.since_ms, cursor2.since_ms);
    }

    #[test]
    fn the_same_change_twice_in_one_answer_is_one_event() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let a = issue("1", "2026-11-01T00:00:00Z", "2026-12-01T10:01:00.000Z");
        let (found, _) = run(vec![a.clone(), a], &start);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn a_late_change_inside_the_overlap_is_found() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let late = issue("3", "2026-11-01T00:00:00.000Z", "2026-12-01T10:04:00.000Z");
        let seen = issue("4", "2026-11-01T00:00:00.000Z", "2026-12-01T10:05:00.000Z");
        let (_, cursor) = run(vec![seen.clone()], &start);
        // The index shows 3 only now, a minute after 4's later change.
        let (found, _) = run(vec![late, seen], &cursor);
        assert_eq!(found.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["3"]);
    }

    #[test]
    fn nothing_changed_before_events_were_enabled_is_an_event_on_any_poll() {
        let enabled = ms("2026-12-01T10:00:00.000Z");
        let first = Cursor { since_ms: enabled, seen: vec![], floor_ms: enabled - SKEW_MS };
        let before = issue("5", "2026-11-01T00:00:00Z", "2026-12-01T09:58:30.000Z");
        let skewed = issue("6", "2026-11-01T00:00:00Z", "2026-12-01T09:59:30.000Z");
        let (found, next) = run(vec![before.clone(), skewed], &first);
        assert_eq!(
            found.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(),
            ["6"],
            "JIRA's clock a little behind"
        );
        // A second poll that found nothing before does not look further back.
        let (again, _) = run(vec![before.clone()], &Cursor { seen: vec![], ..next.clone() });
        assert!(again.is_empty());
        // Past the floor, the overlap counts: a late change just before the cursor is found.
        let later = Cursor { since_ms: enabled + 10 * 60_000, seen: vec![], floor_ms: first.floor_ms };
        let late = issue("7", "2026-11-01T00:00:00Z", "2026-12-01T10:09:00.000Z");
        assert_eq!(run(vec![late], &later).0.len(), 1);
    }

    #[test]
    fn an_issue_out_of_shape_is_skipped_and_counted_never_a_stop() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let good = issue("8", "2026-11-01T00:00:00Z", "2026-12-01T10:01:00.000Z");
        let found = changes(vec![json!({"id": "1", "fields": {}}), json!({"fields": {}}), good], &start, FAR);
        assert_eq!((found.changes.len(), found.malformed), (1, 2));
        assert_eq!(found.cursor.since_ms, ms("2026-12-01T10:01:00.000Z"));
    }

    #[test]
    fn a_change_dated_in_the_future_does_not_carry_the_cursor_there() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let future = issue("9", "2026-11-01T00:00:00Z", "2099-01-01T00:00:00.000Z");
        let ceiling = ms("2026-12-01T10:06:00.000Z");
        let found = changes(vec![future.clone()], &start, ceiling);
        assert_eq!(
            (found.changes.len(), found.cursor.since_ms),
            (1, start.since_ms),
            "the cursor stays on JIRA's time"
        );
        assert!(found.cursor.seen.iter().any(|(id, _)| id == "9"), "remembered, not notified again");
        assert_eq!(cursor_after(&start, &found.changes, ceiling).since_ms, start.since_ms);
        // Seen, it is not notified again; a later ordinary change still is.
        let now = issue("10", "2026-11-01T00:00:00Z", "2026-12-01T10:07:00.000Z");
        let next = changes(vec![now, future], &found.cursor, ceiling + 60_000);
        assert_eq!(next.changes.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["10"]);
    }

    #[test]
    fn a_relative_date_where_the_zone_is_unknown() {
        let cursor = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        // Ten minutes on: the overlap's two, the clocks' one, the ten.
        assert_eq!(relative_since_clause(&cursor, ms("2026-12-01T10:10:00.000Z")), "updated >= \"-13m\"");
    }

    #[test]
    fn a_partial_poll_moves_its_cursor_to_what_it_took() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let issues: Vec<Value> =
            (0..5).map(|i| issue(&i.to_string(), "2026-11-01T00:00:00Z", &format!("2026-12-01T10:0{i}:00Z"))).collect();
        let (all, _) = run(issues.clone(), &start);
        let partial = cursor_after(&start, &all[..3], FAR);
        assert_eq!(partial.since_ms, ms("2026-12-01T10:02:00Z"));
        let (rest, _) = run(issues, &partial);
        assert_eq!(rest.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["3", "4"]);
    }
}
