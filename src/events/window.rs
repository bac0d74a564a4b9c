//! Which changes a poll's search answer holds that no poll before it
//! notified, and where the next poll looks from. Pure: the search's issues
//! in, the changes and the next cursor out.
//!
//! **Dates.** JQL's dates have minute precision, and an absolute date is
//! read in the account's time zone, which can change (or be told wrong)
//! under a poll. So a poll asks by dates relative to JIRA's own now
//! (`updated >= "-13m"`), which mean the same in every zone, counted from
//! JIRA's clock as its last answer's `Date` told ([`Cursor::clock_ms`]),
//! with a minute's margin; and it keeps only what is inside its bounds to
//! the millisecond, by the offsets JIRA writes in each `updated`. The zone
//! is never needed, and no fold of a clock turned back is read twice.
//!
//! **One page.** A poll asks from its cursor less [`OVERLAP_MS`] (a change
//! JIRA's search shows late is still found), oldest first, one page. The
//! cursor remembers what it saw inside that overlap (`seen`: each issue's
//! id and `updated`, to the millisecond): a change is new when its `(id,
//! updated)` is not in `seen`. It moves to the latest `updated` the poll
//! saw, JIRA's clock, never ours.
//!
//! **A burst.** When the changes since the cursor do not fit one page (a
//! bulk change of thousands of issues inside a minute), no order by date
//! can page through them: JIRA pages by offset or token over a list that
//! moves as issues change. So the poll opens a [`Window`] from its cursor
//! less the overlap to JIRA's now less [`LAG_MS`] (past it, nothing joins
//! the window while it is read) and reads it by ranges of issue ids (`id >
//! A AND id <= B`, a stable key), each range one page that JIRA answers
//! whole: a range that does not fit is narrowed, one that fits is taken,
//! and the next starts after it. Every page is a step forward; no change
//! in the window is stepped over, whatever shifts in JIRA's lists between
//! two requests; a poll that stops in the middle keeps its place (the last
//! id read). Once the window is read, the cursor is its end.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use crate::domain::poll::{Cursor, Window, OVERLAP_MS, SKEW_MS};

/// How far a window read by id ranges ends before JIRA's now: the longest
/// a change may take to show in JIRA's search (as the overlap allows).
pub const LAG_MS: i64 = OVERLAP_MS;
/// How many issues one page of the poll asks for (Jira Cloud's most with
/// fields).
pub const PAGE_SIZE: usize = 100;
/// How many issues an id range is sized for, of a page: room for the
/// ranges' uneven density.
const RANGE_TARGET: u64 = 60;

/// One issue of a search's answer: its id, dates and the issue as JIRA
/// wrote it (kept as text: a hostile answer's small values parse to many
/// times their size as a tree; here they stay the bytes they were).
#[derive(Debug)]
pub struct Row {
    pub id: String,
    /// The id as a number (JIRA's issue ids are), for the id ranges.
    pub number: Option<u64>,
    pub updated_ms: i64,
    pub created_ms: i64,
    pub raw: Box<RawValue>,
}

#[derive(Deserialize)]
struct Head {
    id: Option<IdText>,
    fields: Option<Dates>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

#[derive(Deserialize)]
struct Dates {
    updated: Option<String>,
    created: Option<String>,
}

/// The rows of a search's issues; an issue out of shape (no id, no dates)
/// is counted, never a reason to stop.
pub fn rows(issues: Vec<Box<RawValue>>) -> (Vec<Row>, usize) {
    let mut out = Vec::with_capacity(issues.len());
    let mut malformed = 0;
    for raw in issues {
        let Ok(head) = serde_json::from_str::<Head>(raw.get()) else {
            malformed += 1;
            continue;
        };
        let id = match head.id {
            Some(IdText::Text(s)) if !s.is_empty() => s,
            Some(IdText::Number(n)) => n.to_string(),
            _ => {
                malformed += 1;
                continue;
            }
        };
        let date = |d: Option<&String>| d.and_then(|t| jira_instant(t));
        let fields = head.fields.as_ref();
        let (Some(updated_ms), Some(created_ms)) =
            (date(fields.and_then(|f| f.updated.as_ref())), date(fields.and_then(|f| f.created.as_ref())))
        else {
            malformed += 1;
            continue;
        };
        out.push(Row { number: id.parse().ok(), id, updated_ms, created_ms, raw });
    }
    (out, malformed)
}

/// One change: an issue created or updated since the last poll.
#[derive(Debug)]
pub struct Change {
    pub issue_id: String,
    pub updated_ms: i64,
    /// Created since the last poll (`CREATED`), else `UPDATED`.
    pub created: bool,
    /// The issue as the search answered it (the notification's `raw`).
    pub issue: Box<RawValue>,
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

/// JIRA's now as the poll reckons it: ours plus the clocks' difference
/// its answers told.
pub fn jira_now(cursor: &Cursor, now_ms: i64) -> i64 {
    now_ms.saturating_add(cursor.clock_ms)
}

/// The JQL restriction of the dates of `[from_ms, until_ms)` (JIRA's time)
/// as dates relative to JIRA's now: `updated >= "-Nm"`, and `updated <=
/// "-Mm"` when the window ends a few minutes back. Always a superset: a
/// minute's margin each side, the lower bound counted from the later of
/// JIRA's now and ours (reading more is safe; less would lose changes).
pub fn date_clause(field: &str, from_ms: i64, until_ms: Option<i64>, now_ms: i64, clock_ms: i64) -> String {
    let latest = now_ms.saturating_add(clock_ms.max(0));
    let back = latest.saturating_sub(from_ms).max(0);
    let mut clause = format!("{field} >= \"-{}m\"", (back + 59_999) / 60_000 + 1);
    if let Some(until) = until_ms {
        let minutes = now_ms.saturating_add(clock_ms).saturating_sub(until) / 60_000 - 1;
        if minutes >= 1 {
            clause.push_str(&format!(" AND {field} <= \"-{minutes}m\""));
        }
    }
    clause
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

/// Where a poll of `cursor` looks from: its cursor less the overlap, never
/// before its floor.
pub fn lower_bound(cursor: &Cursor) -> i64 {
    (cursor.since_ms - OVERLAP_MS).max(cursor.floor_ms)
}

/// What a poll's one page came to.
#[derive(Debug)]
pub struct Found {
    /// The changes not yet notified, oldest first.
    pub changes: Vec<Change>,
    /// The cursor after all of them (and after every issue the answer held).
    pub cursor: Cursor,
}

/// The changes among `rows` (one whole page of everything since the
/// cursor's lower bound) that `cursor` has not seen, oldest first, and the
/// cursor after them, at most `ceiling_ms` (JIRA's now at the poll, plus
/// [`SKEW_MS`]).
pub fn changes(rows: Vec<Row>, cursor: &Cursor, ceiling_ms: i64) -> Found {
    let floor = lower_bound(cursor);
    let mut all = rows;
    // Oldest first; the same issue twice (a change between two reads): its
    // latest state, once.
    all.sort_by(|a, b| (a.updated_ms, &a.id).cmp(&(b.updated_ms, &b.id)));
    all.dedup_by(|a, b| a.id == b.id && a.updated_ms == b.updated_ms);
    let mut latest: HashMap<String, i64> = HashMap::new();
    for row in &all {
        let at = latest.entry(row.id.clone()).or_insert(row.updated_ms);
        *at = (*at).max(row.updated_ms);
    }
    let seen_ids: HashSet<&str> = cursor.seen.iter().map(|(id, _)| id.as_str()).collect();
    let seen: HashSet<(&str, i64)> = cursor.seen.iter().map(|(id, u)| (id.as_str(), *u)).collect();
    let mut out = Vec::new();
    let mut since = cursor.since_ms;
    let mut kept = Vec::new();
    for row in all {
        if latest.get(&row.id) != Some(&row.updated_ms) || row.updated_ms < floor {
            continue;
        }
        // A change dated past the ceiling is kept in `seen` only: the cursor
        // stays on JIRA's time as this poll could see it.
        if row.updated_ms <= ceiling_ms {
            since = since.max(row.updated_ms);
        }
        kept.push((row.id.clone(), row.updated_ms));
        if seen.contains(&(row.id.as_str(), row.updated_ms)) {
            continue;
        }
        let created = row.created_ms >= floor && !seen_ids.contains(row.id.as_str());
        out.push(Change { issue_id: row.id, updated_ms: row.updated_ms, created, issue: row.raw });
    }
    let cursor = Cursor { since_ms: since, seen: seen_after(&cursor.seen, kept, since), ..cursor.clone() };
    Found { changes: out, cursor }
}

/// What the cursor at `since` remembers: the changes inside its overlap.
fn seen_after(previous: &[(String, i64)], new: Vec<(String, i64)>, since: i64) -> Vec<(String, i64)> {
    let floor = since - OVERLAP_MS;
    let mut seen: Vec<(String, i64)> = previous.iter().cloned().chain(new).filter(|(_, u)| *u >= floor).collect();
    seen.sort();
    seen.dedup();
    seen
}

/// The window a burst is read in: from the cursor's lower bound to JIRA's
/// now less [`LAG_MS`]; `None` when that is not yet after the lower bound
/// (the burst is too recent: read it once it is old enough).
pub fn open_window(cursor: &Cursor, jira_now_ms: i64) -> Option<Window> {
    let from_ms = lower_bound(cursor);
    let until_ms = jira_now_ms - LAG_MS;
    (until_ms > from_ms).then_some(Window { from_ms, until_ms, after_id: 0, span: None })
}

/// The ids a window's next page asks for: `(after, upto]` (`upto` `None`:
/// every id after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub after: u64,
    pub upto: Option<u64>,
}

impl Range {
    pub fn of(window: &Window) -> Range {
        Range { after: window.after_id, upto: window.span.map(|s| window.after_id.saturating_add(s)) }
    }

    /// The JQL restriction (none for every id).
    pub fn clause(&self) -> Option<String> {
        let after = (self.after > 0).then(|| format!("id > {}", self.after));
        let upto = self.upto.map(|u| format!("id <= {u}"));
        match (after, upto) {
            (Some(a), Some(u)) => Some(format!("{a} AND {u}")),
            (a, u) => a.or(u),
        }
    }

    fn holds(&self, id: u64) -> bool {
        id > self.after && self.upto.is_none_or(|u| id <= u)
    }
}

/// What a whole page of a window's range holds: the changes in the window
/// and the range that `cursor` has not seen, in the order of their ids.
pub fn window_changes(rows: Vec<Row>, cursor: &Cursor, window: &Window, range: Range) -> (Vec<Change>, usize) {
    let seen_ids: HashSet<&str> = cursor.seen.iter().map(|(id, _)| id.as_str()).collect();
    let seen: HashSet<(&str, i64)> = cursor.seen.iter().map(|(id, u)| (id.as_str(), *u)).collect();
    let mut outside = 0;
    let mut taken: Vec<(u64, Change)> = Vec::new();
    for row in rows {
        let Some(number) = row.number.filter(|n| range.holds(*n)) else {
            outside += 1;
            continue;
        };
        if row.updated_ms < window.from_ms || row.updated_ms >= window.until_ms {
            continue;
        }
        if seen.contains(&(row.id.as_str(), row.updated_ms)) {
            continue;
        }
        let created = row.created_ms >= window.from_ms && !seen_ids.contains(row.id.as_str());
        taken.push((number, Change { issue_id: row.id, updated_ms: row.updated_ms, created, issue: row.raw }));
    }
    taken.sort_by_key(|(n, _)| *n);
    taken.dedup_by_key(|(n, _)| *n);
    (taken.into_iter().map(|(_, c)| c).collect(), outside)
}

/// The window after a whole page of `range` that held `count` issues of
/// the range (in the window or in the dates' margin around it): the next
/// range sized for [`RANGE_TARGET`] at the density just read; `None` when
/// the range was the last (every id after).
pub fn after_range(window: &Window, range: Range, count: usize) -> Option<Window> {
    let upto = range.upto?;
    let width = upto - range.after;
    let span = if count == 0 {
        // Nothing here: ask for the rest (narrowed again if it is too much).
        None
    } else {
        Some((width.saturating_mul(RANGE_TARGET) / count as u64).clamp(1, width.saturating_mul(8)))
    };
    Some(Window { after_id: upto, span, ..*window })
}

/// The window after a page of `range` that JIRA could not answer whole: a
/// narrower range, up to the middle of the ids it did show (a range
/// holds at least those); `None` when it cannot be narrowed (a site whose
/// pages never fit one issue).
pub fn narrowed(window: &Window, range: Range, shown: &[u64]) -> Option<Window> {
    let mut ids: Vec<u64> = shown.iter().copied().filter(|n| range.holds(*n)).collect();
    ids.sort_unstable();
    ids.dedup();
    let middle = ids.get(ids.len().saturating_sub(1) / 2).copied();
    let upto = match (middle, range.upto) {
        (Some(m), Some(u)) if m < u => m,
        (Some(m), None) => m,
        (_, Some(u)) => range.after + (u - range.after) / 2,
        (None, None) => return None,
    };
    (upto > range.after).then(|| Window { span: Some(upto - range.after), ..*window })
}

/// The cursor once `window` is read: its end, with nothing before it left
/// to notify.
pub fn after_window(cursor: &Cursor, window: &Window) -> Cursor {
    let since_ms = cursor.since_ms.max(window.until_ms);
    // What the polls before the window saw past its end stays seen.
    let seen = cursor.seen.iter().filter(|(_, u)| *u >= window.until_ms).cloned().collect();
    Cursor { since_ms, seen, floor_ms: cursor.floor_ms.max(window.until_ms), clock_ms: cursor.clock_ms, window: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issue(id: &str, created: &str, updated: &str) -> Row {
        let raw = json!({"id": id, "key": format!("DEMO-{id}"), "fields": {"created": created, "updated": updated}});
        let (mut rows, bad) = rows(vec![RawValue::from_string(raw.to_string()).unwrap()]);
        assert_eq!(bad, 0);
        rows.remove(0)
    }

    fn ms(text: &str) -> i64 {
        jira_instant(text).unwrap()
    }

    const FAR: i64 = i64::MAX / 2;

    fn run(issues: Vec<Row>, cursor: &Cursor) -> (Vec<Change>, Cursor) {
        let found = changes(issues, cursor, FAR);
        (found.changes, found.cursor)
    }

    fn ids(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.issue_id.as_str()).collect()
    }

    #[test]
    fn jira_instants_read_with_their_offset() {
        assert_eq!(ms("2026-12-01T22:00:00.000+1100"), ms("2026-12-01T11:00:00.000Z"));
        assert_eq!(ms("2026-12-01T11:00:00.250+0000") - ms("2026-12-01T11:00:00.000+00:00"), 250);
        assert_eq!(jira_instant("yesterday"), None);
    }

    #[test]
    fn dates_are_asked_relative_to_jiras_now_with_a_minutes_margin_whatever_the_zone() {
        let now = ms("2026-12-01T10:10:00.000Z");
        let from = ms("2026-12-01T09:58:00.000Z");
        // Twelve minutes back, and one of margin.
        assert_eq!(date_clause("updated", from, None, now, 0), "updated >= \"-13m\"");
        // JIRA's clock five minutes ahead: counted from its now.
        assert_eq!(date_clause("updated", from, None, now, 300_000), "updated >= \"-18m\"");
        // JIRA's clock behind: counted from ours (more, never less).
        assert_eq!(date_clause("updated", from, None, now, -300_000), "updated >= \"-13m\"");
        // A window's end five minutes back: up to four minutes back (a superset).
        let until = now - 5 * 60_000;
        assert_eq!(date_clause("updated", from, Some(until), now, 0), "updated >= \"-13m\" AND updated <= \"-4m\"");
        // An end too recent for a bound of whole minutes: none.
        assert_eq!(date_clause("updated", from, Some(now - 90_000), now, 0), "updated >= \"-13m\"");
    }

    #[test]
    fn a_change_is_notified_once_across_overlapping_polls() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let a = || issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:01:00.000Z");
        let b = || issue("2", "2026-11-01T10:00:00.000Z", "2026-12-01T10:02:00.500Z");
        let (first, cursor) = run(vec![a(), b()], &start);
        assert_eq!(
            first.iter().map(|c| (c.issue_id.as_str(), c.event_type())).collect::<Vec<_>>(),
            [("1", "CREATED"), ("2", "UPDATED")]
        );
        assert_eq!(cursor.since_ms, ms("2026-12-01T10:02:00.500Z"));
        // The next poll sees both again (the overlap) and a new change of 1.
        let a2 = issue("1", "2026-12-01T10:01:00.000Z", "2026-12-01T10:03:00.000Z");
        let (second, cursor2) = run(vec![b(), a(), a2], &cursor);
        assert_eq!(second.len(), 1);
        assert_eq!((second[0].issue_id.as_str(), second[0].event_type()), ("1", "UPDATED"));
        // Nothing new: nothing notified, and the cursor stays.
        let (third, cursor3) = run(vec![b()], &cursor2);
        assert!(third.is_empty());
        assert_eq!(cursor3.since_ms, cursor2.since_ms);
    }

    #[test]
    fn a_late_change_inside_the_overlap_is_found() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let late = issue("3", "2026-11-01T00:00:00.000Z", "2026-12-01T10:04:00.000Z");
        let seen = || issue("4", "2026-11-01T00:00:00.000Z", "2026-12-01T10:05:00.000Z");
        let (_, cursor) = run(vec![seen()], &start);
        let (found, _) = run(vec![late, seen()], &cursor);
        assert_eq!(ids(&found), ["3"]);
    }

    #[test]
    fn nothing_changed_before_events_were_enabled_is_an_event_on_any_poll() {
        let enabled = ms("2026-12-01T10:00:00.000Z");
        let first = Cursor { since_ms: enabled, floor_ms: enabled - SKEW_MS, ..Cursor::default() };
        let before = || issue("5", "2026-11-01T00:00:00Z", "2026-12-01T09:58:30.000Z");
        let skewed = issue("6", "2026-11-01T00:00:00Z", "2026-12-01T09:59:30.000Z");
        let (found, next) = run(vec![before(), skewed], &first);
        assert_eq!(ids(&found), ["6"], "JIRA's clock a little behind");
        let (again, _) = run(vec![before()], &Cursor { seen: vec![], ..next.clone() });
        assert!(again.is_empty());
    }

    #[test]
    fn an_issue_out_of_shape_is_skipped_and_counted_never_a_stop() {
        let raws = [
            json!({"id": "1", "fields": {}}),
            json!({"fields": {}}),
            json!([1, 2]),
            json!({"id": "8",
            "fields": {"created": "2026-11-01T00:00:00Z", "updated": "2026-12-01T10:01:00.000Z"}}),
        ];
        let (rows, malformed) = rows(raws.iter().map(|r| RawValue::from_string(r.to_string()).unwrap()).collect());
        assert_eq!((rows.len(), malformed), (1, 3));
    }

    #[test]
    fn a_change_dated_in_the_future_does_not_carry_the_cursor_there() {
        let start = Cursor { since_ms: ms("2026-12-01T10:00:00.000Z"), ..Cursor::default() };
        let future = || issue("9", "2026-11-01T00:00:00Z", "2099-01-01T00:00:00.000Z");
        let ceiling = ms("2026-12-01T10:06:00.000Z");
        let found = changes(vec![future()], &start, ceiling);
        assert_eq!((found.changes.len(), found.cursor.since_ms), (1, start.since_ms));
        let now = issue("10", "2026-11-01T00:00:00Z", "2026-12-01T10:07:00.000Z");
        let next = changes(vec![now, future()], &found.cursor, ceiling + 60_000);
        assert_eq!(ids(&next.changes), ["10"]);
    }

    /// A JIRA of `issues` (id, updated ms), answering a window's ranges in
    /// pages of `page`, every id range whole or not at all.
    fn read_window(issues: &[(u64, i64)], cursor: &Cursor, mut window: Window, page: usize) -> (Vec<String>, usize) {
        let mut notified = Vec::new();
        let mut asked = 0;
        loop {
            asked += 1;
            assert!(asked < 10_000, "the reading does not end");
            let range = Range::of(&window);
            let matching: Vec<&(u64, i64)> = issues
                .iter()
                .filter(|(id, u)| range.holds(*id) && *u >= window.from_ms - 60_000 && *u < window.until_ms + 60_000)
                .collect();
            let answered: Vec<Row> = matching
                .iter()
                .take(page)
                .map(|(id, u)| {
                    let at = Timestamp::from_millisecond(*u).unwrap().to_string();
                    issue(&id.to_string(), "2026-01-01T00:00:00Z", &at)
                })
                .collect();
            if matching.len() > page {
                let shown: Vec<u64> = answered.iter().filter_map(|r| r.number).collect();
                window = narrowed(&window, range, &shown).expect("a range narrows");
                continue;
            }
            let shown = answered.len();
            let (changes, outside) = window_changes(answered, cursor, &window, range);
            notified.extend(changes.iter().map(|c| c.issue_id.clone()));
            match after_range(&window, range, shown - outside) {
                Some(next) => window = next,
                None => return (notified, asked),
            }
        }
    }

    #[test]
    fn a_burst_of_thousands_inside_one_minute_is_read_whole_by_id_ranges() {
        let minute = ms("2026-12-01T10:00:00.000Z");
        // 5,000 issues changed within one minute, ids scattered over 40,000.
        let issues: Vec<(u64, i64)> =
            (0..5_000u64).map(|i| (10_000 + i * 8 + i % 7, minute + (i as i64 * 7) % 60_000)).collect();
        let cursor = Cursor { since_ms: minute, floor_ms: minute - OVERLAP_MS, ..Cursor::default() };
        let window = open_window(&cursor, minute + 10 * 60_000).unwrap();
        let (mut notified, asked) = read_window(&issues, &cursor, window, PAGE_SIZE);
        assert_eq!(notified.len(), 5_000, "every change once");
        notified.sort();
        notified.dedup();
        assert_eq!(notified.len(), 5_000, "none twice");
        assert!(asked < 200, "{asked} pages for 5,000 changes");
        // The cursor is the window's end, and nothing before it is read again.
        let after = after_window(&cursor, &window);
        assert_eq!(
            (after.since_ms, after.floor_ms, lower_bound(&after)),
            (window.until_ms, window.until_ms, window.until_ms)
        );
    }

    #[test]
    fn a_range_that_cannot_narrow_says_so() {
        let w = Window { from_ms: 0, until_ms: 1, after_id: 5, span: Some(1) };
        assert_eq!(narrowed(&w, Range::of(&w), &[6]), None);
        let open = Window { span: None, ..w };
        assert_eq!(narrowed(&open, Range::of(&open), &[]), None, "no ids shown: nothing to narrow by");
        assert_eq!(narrowed(&open, Range::of(&open), &[9, 7, 100]).unwrap().span, Some(4));
    }

    #[test]
    fn a_window_ends_in_the_past_and_a_too_recent_burst_waits() {
        let c = Cursor { since_ms: 1_000_000, floor_ms: 0, ..Cursor::default() };
        let w = open_window(&c, 1_000_000 + 5 * 60_000).unwrap();
        assert_eq!((w.from_ms, w.until_ms), (1_000_000 - OVERLAP_MS, 1_000_000 + 5 * 60_000 - LAG_MS));
        assert_eq!(open_window(&c, 1_000_000 - OVERLAP_MS + LAG_MS), None);
        assert_eq!(Range::of(&w).clause(), None);
        assert_eq!(Range { after: 7, upto: Some(9) }.clause().as_deref(), Some("id > 7 AND id <= 9"));
    }
}
