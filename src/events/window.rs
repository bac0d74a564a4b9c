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
    /// No poll yet: `since_ms` is when events were enabled, and a change
    /// before it is not an event (the overlap is for late changes, not for
    /// what happened before anyone asked).
    pub fresh: bool,
}

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

/// An issue the search answered that is not as JIRA documents it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an issue of the search has no {0}")]
pub struct Malformed(pub &'static str);

/// The JQL restriction of a poll from `cursor`: `updated >= "yyyy/MM/dd
/// HH:mm"` in the account's zone, floored to the minute. A start that falls
/// in the hour a clock is turned back (read either way by JIRA) is taken an
/// hour earlier still.
pub fn since_clause(cursor: &Cursor, zone: &TimeZone) -> String {
    let start = Timestamp::from_millisecond(cursor.since_ms - OVERLAP_MS).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut civil = start.to_zoned(zone.clone()).datetime();
    if zone.to_ambiguous_timestamp(civil).is_ambiguous() {
        civil = civil.checked_sub(jiff::SignedDuration::from_hours(2)).unwrap_or(civil);
    }
    format!("updated >= \"{}\"", civil.strftime("%Y/%m/%d %H:%M"))
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

/// The changes among `issues` (the search's, every page) that `cursor` has
/// not seen, oldest first, and the cursor after them. `issues` must carry
/// `id`, `fields.updated` and `fields.created`.
pub fn changes(issues: Vec<Value>, cursor: &Cursor) -> Result<(Vec<Change>, Cursor), Malformed> {
    let floor = if cursor.fresh { cursor.since_ms } else { cursor.since_ms - OVERLAP_MS };
    let mut all = Vec::with_capacity(issues.len());
    for issue in issues {
        let id = match issue.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(Malformed("id")),
        };
        let date = |name: &'static str| {
            issue
                .pointer(&format!("/fields/{name}"))
                .and_then(Value::as_str)
                .and_then(jira_instant)
                .ok_or(Malformed(name))
        };
        let (updated, created) = (date("updated")?, date("created")?);
        all.push((id, updated, created, issue));
    }
    // The same issue twice (a change between two pages): its latest state.
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let mut latest: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (id, updated, ..) in &all {
        let at = latest.entry(id.clone()).or_insert(*updated);
        *at = (*at).max(*updated);
    }
    let seen_ids: std::collections::HashSet<&str> = cursor.seen.iter().map(|(id, _)| id.as_str()).collect();
    let mut out = Vec::new();
    let mut since = cursor.since_ms;
    let mut kept = Vec::new();
    for (id, updated, created, issue) in all {
        if latest.get(&id) != Some(&updated) || updated < floor {
            continue;
        }
        since = since.max(updated);
        kept.push((id.clone(), updated));
        if cursor.seen.iter().any(|(i, u)| *i == id && *u == updated) {
            continue;
        }
        let created = created >= floor && !seen_ids.contains(id.as_str());
        out.push(Change { issue_id: id, updated_ms: updated, created, issue });
    }
    let next_floor = since - OVERLAP_MS;
    let mut seen: Vec<(String, i64)> =
        cursor.seen.iter().chain(kept.iter()).filter(|(_, u)| *u >= next_floor).cloned().collect();
    seen.sort();
    seen.dedup();
    Ok((out, Cursor { since_ms: since, seen, fresh: false }))
}

/// The cursor after the first `n` of `changes` only (a poll that could not
/// take them all at once): the rest stays after it, to be found again.
pub fn cursor_after(previous: &Cursor, changes: &[Change]) -> Cursor {
    let since = changes.iter().map(|c| c.updated_ms).max().unwrap_or(previous.since_ms).max(previous.since_ms);
    let floor = since - OVERLAP_MS;
    let mut seen: Vec<(String, i64)> = previous
        .seen
        .iter()
        .cloned()
        .chain(changes.iter().map(|c| (c.issue_id.clone(), c.updated_ms)))
        .filter(|(_, u)| *u >= floor)
        .collect();
    seen.sort();
    seen.dedup();
    Cursor { since_ms: since, seen, fresh: false }
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

    #[test]
    fn a_change_is_notified_once_across_overlapping_polls() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let a = issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:01:00.000Z");
        let b = issue("2", "2026-11-01T10:00:00.000Z", "2026-12-01T10:02:00.500Z");
        let (first, cursor) = changes(vec![a.clone(), b.clone()], &start).unwrap();
        assert_eq!(
            first.iter().map(|c| (c.issue_id.as_str(), c.event_type())).collect::<Vec<_>>(),
            [("1", "CREATED"), ("2", "UPDATED")]
        );
        assert_eq!(cursor.since_ms, ms("2026-12-01T10:02:00.500Z"));
        // The next poll sees both again (the overlap) and a new change of 1.
        let a2 = issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:03:00.000Z");
        let (second, cursor2) = changes(vec![b.clone(), a.clone(), a2], &cursor).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!((second[0].issue_id.as_str(), second[0].event_type()), ("1", "UPDATED"));
        // Nothing new: nothing notified, and the cursor stays.
        let (third, cursor3) = changes(vec![b], &cursor2).unwrap();
        assert!(third.is_empty());
        assert_eq!(cursor3.since_ms, cursor2.since_ms);
    }

    #[test]
    fn a_late_change_inside_the_overlap_is_found() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let late = issue("3", "2026-11-01T00:00:00.000Z", "2026-12-01T10:04:00.000Z");
        let seen = issue("4", "2026-11-01T00:00:00.000Z", "2026-12-01T10:05:00.000Z");
        let (_, cursor) = changes(vec![seen.clone()], &start).unwrap();
        // The index shows 3 only now, a minute after 4's later change.
        let (found, _) = changes(vec![late, seen], &cursor).unwrap();
        assert_eq!(found.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["3"]);
    }

    #[test]
    fn the_first_poll_does_not_notify_what_was_changed_before_events_were_enabled() {
        let enabled = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), seen: vec![], fresh: true };
        let before = issue("5", "2026-11-01T00:00:00Z", "2026-12-01T09:59:30.000Z");
        let after = issue("6", "2026-11-01T00:00:00Z", "2026-12-01T10:00:00.000Z");
        let (found, next) = changes(vec![before.clone(), after], &enabled).unwrap();
        assert_eq!(found.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["6"]);
        assert!(!next.fresh);
        // Once polled, the overlap counts: a late change just before the cursor is found.
        let (late, _) = changes(vec![before], &Cursor { fresh: false, ..enabled }).unwrap();
        assert_eq!(late.len(), 1);
    }

    #[test]
    fn an_issue_without_dates_is_malformed() {
        let start = Cursor::default();
        assert_eq!(changes(vec![json!({"id": "1", "fields": {}})], &start).unwrap_err(), Malformed("updated"));
        assert_eq!(changes(vec![json!({"fields": {}})], &start).unwrap_err(), Malformed("id"));
    }

    #[test]
    fn a_partial_poll_moves_its_cursor_to_what_it_took() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let issues: Vec<Value> =
            (0..5).map(|i| issue(&i.to_string(), "2026-11-01T00:00:00Z", &format!("2026-12-01T10:0{i}:00Z"))).collect();
        let (all, _) = changes(issues.clone(), &start).unwrap();
        let partial = cursor_after(&start, &all[..3]);
        assert_eq!(partial.since_ms, ms("2026-12-01T10:02:00Z"));
        let (rest, _) = changes(issues, &partial).unwrap();
        assert_eq!(rest.iter().map(|c| c.issue_id.as_str()).collect::<Vec<_>>(), ["3", "4"]);
    }
}
