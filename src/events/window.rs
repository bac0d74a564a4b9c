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
//! moves as issues change, and JQL's dates cannot tell apart two changes of
//! the same minute. So the poll opens a [`Window`] from its cursor less the
//! overlap to JIRA's now less [`LAG_MS`] (past it, nothing joins the window
//! while it is read) and reads it in the order of the issues' keys, a
//! stable key (JIRA sorts keys by project, then number): each page asks
//! for the keys after the last one read (`project = "P" AND key > "P-41"`,
//! and the projects not yet read: `project NOT IN (...)`), so every page is
//! a step forward and nothing is stepped over, whatever changes between two
//! requests. A poll that stops in the middle keeps its place. Once the
//! window is read, the cursor is its end. (JIRA reads `key > "P-41"` only
//! while `P-41` exists: a key deleted meanwhile is stepped back from, one
//! number at a time, which reads again only numbers that no issue has.)

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use crate::domain::poll::{Cursor, IssueKey, ProjectKey, Window, OVERLAP_MS, SKEW_MS};

/// How far a window ends before JIRA's now: the longest a change may take
/// to show in JIRA's search (as the overlap allows).
pub const LAG_MS: i64 = OVERLAP_MS;
/// How many issues one page of the poll asks for (Jira Cloud's most with
/// fields).
pub const PAGE_SIZE: usize = 100;

/// One issue of a search's answer: its id, dates and the issue as JIRA
/// wrote it (kept as text: a hostile answer's small values parse to many
/// times their size as a tree; here they stay the bytes they were).
#[derive(Debug)]
pub struct Row {
    pub id: String,
    /// The issue's key, for a window's reading in their order.
    pub key: Option<IssueKey>,
    pub updated_ms: i64,
    pub created_ms: i64,
    pub raw: Box<RawValue>,
}

#[derive(Deserialize)]
struct Head {
    id: Option<IdText>,
    key: Option<String>,
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
        let key = head.key.as_deref().and_then(IssueKey::parse);
        out.push(Row { key, id, updated_ms, created_ms, raw });
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
/// minute's margin before, two after (the clocks' difference as measured
/// may be off by the time an answer took), the lower bound counted from the
/// later of JIRA's now and ours (reading more is safe; less would lose
/// changes).
pub fn date_clause(field: &str, from_ms: i64, until_ms: Option<i64>, now_ms: i64, clock_ms: i64) -> String {
    let latest = now_ms.saturating_add(clock_ms.max(0));
    let back = latest.saturating_sub(from_ms).max(0);
    let mut clause = format!("{field} >= \"-{}m\"", (back + 59_999) / 60_000 + 1);
    if let Some(until) = until_ms {
        let minutes = now_ms.saturating_add(clock_ms).saturating_sub(until) / 60_000 - 2;
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
    (until_ms > from_ms).then_some(Window { from_ms, until_ms, done: vec![], after: None, high: None })
}

/// The JQL restriction of a window's next page: the keys after its place
/// (none before the first page).
pub fn keyset_clause(window: &Window) -> Option<String> {
    let quoted = |p: &ProjectKey| format!("\"{}\"", p.as_str());
    match &window.after {
        // The project being read, alone, to its end: what other projects
        // hold (one the account was let see since, sorted before it) can
        // never make it look read.
        Some(after) => Some(format!("project = {} AND key > \"{after}\"", quoted(&after.project))),
        None if window.done.is_empty() => None,
        None => {
            let done: Vec<String> = window.done.iter().map(quoted).collect();
            Some(format!("project NOT IN ({})", done.join(", ")))
        }
    }
}

/// The window once the project of its last key is read to its end: that
/// project done, the next read from the projects not yet read.
pub fn project_read(window: &Window) -> Window {
    let mut w = window.clone();
    if let Some(after) = w.after.take() {
        if !w.done.contains(&after.project) {
            w.done.push(after.project);
        }
    }
    w
}

/// What one page of a window came to.
#[derive(Debug)]
pub struct Taken {
    /// The changes in the window the cursor had not seen, in the keys' order.
    pub changes: Vec<Change>,
    /// The window's place after the rows read.
    pub window: Window,
    /// Whether the page was cut (no room for more changes): the rest of it
    /// is read again.
    pub cut: bool,
    /// Rows out of place (no key, a key before the place): skipped.
    pub skipped: usize,
}

/// Reads one page of `window` (its rows as JIRA sorted them by key): the
/// changes of the window that `cursor` has not seen, at most `room` of
/// them and `bytes` of their issues' text (at least one change when
/// `at_least_one`), and the window's place after the rows taken.
pub fn take_page(
    rows: Vec<Row>,
    cursor: &Cursor,
    window: &Window,
    room: usize,
    bytes: usize,
    at_least_one: bool,
) -> Taken {
    let seen_ids: HashSet<&str> = cursor.seen.iter().map(|(id, _)| id.as_str()).collect();
    let seen: HashSet<(&str, i64)> = cursor.seen.iter().map(|(id, u)| (id.as_str(), *u)).collect();
    let mut place = window.clone();
    let (mut changes, mut used, mut skipped, mut cut) = (Vec::new(), 0usize, 0, false);
    for row in rows {
        let Some(key) = row.key.clone() else {
            skipped += 1;
            continue;
        };
        // Never back: a key of a project read, or before the place.
        let behind = place.done.contains(&key.project)
            || place.after.as_ref().is_some_and(|a| a.project == key.project && key.number <= a.number);
        if behind {
            skipped += 1;
            continue;
        }
        // Read before the project's reading started again: passed over.
        let read_before = window.high.as_ref().is_some_and(|h| h.project == key.project && key.number <= h.number);
        let change = !read_before
            && row.updated_ms >= window.from_ms
            && row.updated_ms < window.until_ms
            && !seen.contains(&(row.id.as_str(), row.updated_ms));
        if change {
            let size = row.raw.get().len();
            let fits = changes.len() < room && (used + size <= bytes || (at_least_one && changes.is_empty()));
            if !fits {
                cut = true;
                break;
            }
            used += size;
        }
        match place.after.take() {
            Some(before) if before.project != key.project => place.done.push(before.project),
            _ => {}
        }
        place.after = Some(key);
        if change {
            let created = row.created_ms >= window.from_ms && !seen_ids.contains(row.id.as_str());
            changes.push(Change { issue_id: row.id, updated_ms: row.updated_ms, created, issue: row.raw });
        }
    }
    Taken { changes, window: place, cut, skipped }
}

/// The window reading the project of its last key again from its start
/// (that key was deleted or moved since it was read): the keys up to it
/// are passed over as read, none notified twice.
pub fn restart_project(window: &Window) -> Option<Window> {
    let after = window.after.clone()?;
    let high = match &window.high {
        Some(h) if h.project == after.project && h.number > after.number => h.clone(),
        _ => after,
    };
    Some(Window { after: None, high: Some(high), ..window.clone() })
}

/// The window without `project`, which JIRA says does not exist (deleted,
/// archived, or no longer visible to the account: it holds no row to read).
pub fn without_project(window: &Window, project: &str) -> Window {
    let named = |p: &ProjectKey| p.as_str().eq_ignore_ascii_case(project);
    let mut w = window.clone();
    w.done.retain(|p| !named(p));
    if w.after.as_ref().is_some_and(|a| named(&a.project)) {
        w.after = None;
    }
    if w.high.as_ref().is_some_and(|h| named(&h.project)) {
        w.high = None;
    }
    w
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

    /// An issue of the simulated JIRA: (project, number) and its `updated`.
    type Issue = ((&'static str, u64), i64);

    /// The row of an issue as JIRA writes it.
    fn row(raw: serde_json::Value) -> Row {
        let (mut rows, bad) = rows(vec![RawValue::from_string(raw.to_string()).unwrap()]);
        assert_eq!(bad, 0, "{raw}");
        rows.remove(0)
    }

    fn issue(id: &str, created: &str, updated: &str) -> Row {
        row(json!({"id": id, "key": format!("DEMO-{id}"), "fields": {"created": created, "updated": updated}}))
    }

    /// `key` changed at `updated` (created long before).
    fn keyed(id: &str, key: &str, updated: &str) -> Row {
        row(json!({"id": id, "key": key, "fields": {"created": "2026-01-01T00:00:00Z", "updated": updated}}))
    }

    /// `count` issues of DEMO changed a tenth of a second apart from a
    /// minute on, a cursor at that minute and the window read from it.
    fn burst_in_demo(count: u64) -> (i64, Vec<Issue>, Cursor, Window) {
        let minute = ms("2026-12-01T10:00:00.000Z");
        let issues = (1..=count).map(|n| (("DEMO", n), minute + n as i64 * 100)).collect();
        let cursor = Cursor { since_ms: minute, floor_ms: minute - OVERLAP_MS, ..Cursor::default() };
        let window = open_window(&cursor, minute + 10 * 60_000).unwrap();
        (minute, issues, cursor, window)
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
        // A window's end five minutes back: up to three minutes back (a superset).
        let until = now - 5 * 60_000;
        assert_eq!(date_clause("updated", from, Some(until), now, 0), "updated >= \"-13m\" AND updated <= \"-3m\"");
        // An end too recent for a bound of whole minutes: none.
        assert_eq!(date_clause("updated", from, Some(now - 150_000), now, 0), "updated >= \"-13m\"");
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

    /// A JIRA of `issues` ((project, number), updated ms) answering a
    /// window's pages as JIRA reads their keyset (`key >` within its
    /// project), sorted by key, `page` a page; `between` changes issues
    /// between two pages (their new date: now).
    fn read_window(
        issues: &mut Vec<((&'static str, u64), i64)>,
        cursor: &Cursor,
        mut window: Window,
        page: usize,
        mut between: impl FnMut(usize, &mut Vec<((&'static str, u64), i64)>),
    ) -> (Vec<String>, usize) {
        let mut notified = Vec::new();
        let mut asked = 0;
        loop {
            asked += 1;
            assert!(asked < 10_000, "the reading does not end");
            between(asked, issues);
            let mut matching: Vec<&((&str, u64), i64)> = issues
                .iter()
                .filter(|((p, n), u)| {
                    let in_dates = *u >= window.from_ms - 60_000 && *u < window.until_ms + 60_000;
                    let project = ProjectKey::parse(p).unwrap();
                    let keyed = match &window.after {
                        Some(a) => a.project == project && *n > a.number,
                        None => !window.done.contains(&project),
                    };
                    in_dates && keyed
                })
                .collect();
            matching.sort_by_key(|((p, n), _)| (*p, *n));
            let whole = matching.len() <= page;
            let answered: Vec<Row> = matching
                .iter()
                .take(page)
                .map(|((p, n), u)| {
                    let at = Timestamp::from_millisecond(*u).unwrap().to_string();
                    keyed(&format!("{}{n}", p.len()), &format!("{p}-{n}"), &at)
                })
                .collect();
            let taken = take_page(answered, cursor, &window, 990, usize::MAX, true);
            notified.extend(taken.changes.iter().map(|c| format!("{}@{}", c.issue_id, c.updated_ms)));
            let continuing = window.after.is_some();
            window = taken.window;
            if whole && !taken.cut {
                if !continuing {
                    return (notified, asked);
                }
                window = project_read(&window);
            }
        }
    }

    #[test]
    fn a_burst_of_thousands_inside_one_minute_is_read_whole_in_the_keys_order() {
        let minute = ms("2026-12-01T10:00:00.000Z");
        // 5,000 issues of three projects changed within one minute.
        let projects = ["ALPHA", "BETA", "OPS"];
        let mut issues: Vec<((&str, u64), i64)> = (0..5_000u64)
            .map(|i| ((projects[(i % 3) as usize], 1 + i / 3 * 2), minute + (i as i64 * 7) % 60_000))
            .collect();
        let cursor = Cursor { since_ms: minute, floor_ms: minute - OVERLAP_MS, ..Cursor::default() };
        let window = open_window(&cursor, minute + 10 * 60_000).unwrap();
        let (mut notified, asked) = read_window(&mut issues, &cursor, window.clone(), PAGE_SIZE, |_, _| {});
        assert_eq!(notified.len(), 5_000, "every change once");
        notified.sort();
        notified.dedup();
        assert_eq!(notified.len(), 5_000, "none twice");
        assert!(asked <= 56, "a page of a hundred each, and one more at the end of a project: {asked}");
        let after = after_window(&cursor, &window);
        assert_eq!(
            (after.since_ms, after.floor_ms, lower_bound(&after)),
            (window.until_ms, window.until_ms, window.until_ms)
        );
    }

    #[test]
    fn issues_changed_between_two_pages_shift_nothing_over() {
        let (minute, mut issues, cursor, window) = burst_in_demo(300);
        // Before the second page, 25 issues read already change again (they
        // leave the window: their change is a later window's).
        let (notified, _) = read_window(&mut issues, &cursor, window, PAGE_SIZE, |asked, issues| {
            if asked == 2 {
                for ((_, n), u) in issues.iter_mut() {
                    if *n <= 25 {
                        *u = minute + 20 * 60_000;
                    }
                }
            }
        });
        assert_eq!(notified.len(), 300, "every change of the window once, none stepped over");
    }

    #[test]
    fn a_project_seen_only_mid_window_sorting_first_steps_nothing_over() {
        let (minute, mut issues, cursor, window) = burst_in_demo(250);
        // Before the second page, the account is let see a project sorting
        // before DEMO, with changes in the window.
        let (notified, _) = read_window(&mut issues, &cursor, window, PAGE_SIZE, |asked, issues| {
            if asked == 2 {
                issues.extend((1..=30u64).map(|n| (("AAA", n), minute + 1_000)));
            }
        });
        assert_eq!(notified.len(), 280, "DEMO's rest and AAA's, each once");
    }

    #[test]
    fn a_page_is_cut_where_the_room_ends_and_read_on_from_there() {
        let minute = ms("2026-12-01T10:00:00.000Z");
        let cursor = Cursor { since_ms: minute, floor_ms: minute - OVERLAP_MS, ..Cursor::default() };
        let window = open_window(&cursor, minute + 10 * 60_000).unwrap();
        let page: Vec<Row> =
            (1..=5).map(|n| keyed(&n.to_string(), &format!("DEMO-{n}"), "2026-12-01T10:00:01.000Z")).collect();
        let taken = take_page(page, &cursor, &window, 3, usize::MAX, true);
        assert!(taken.cut);
        assert_eq!(ids(&taken.changes), ["1", "2", "3"]);
        assert_eq!(taken.window.after.as_ref().map(ToString::to_string).as_deref(), Some("DEMO-3"));
        assert_eq!(keyset_clause(&taken.window).as_deref(), Some("project = \"DEMO\" AND key > \"DEMO-3\""));
        let next = project_read(&taken.window);
        assert_eq!(keyset_clause(&next).as_deref(), Some("project NOT IN (\"DEMO\")"));
    }

    #[test]
    fn a_project_whose_last_key_went_is_read_again_from_its_start_notifying_nothing_twice() {
        let key = |t: &str| IssueKey::parse(t).unwrap();
        let minute = ms("2026-12-01T10:00:00.000Z");
        let cursor = Cursor { since_ms: minute, floor_ms: minute - OVERLAP_MS, ..Cursor::default() };
        let mut w = open_window(&cursor, minute + 10 * 60_000).unwrap();
        w.done = vec![ProjectKey::parse("A").unwrap()];
        w.after = Some(key("B-3"));
        let again = restart_project(&w).unwrap();
        assert_eq!((again.after.clone(), again.high.clone()), (None, Some(key("B-3"))));
        assert_eq!(keyset_clause(&again).as_deref(), Some("project NOT IN (\"A\")"));
        let page: Vec<Row> =
            (1..=5).map(|n| keyed(&n.to_string(), &format!("B-{n}"), "2026-12-01T10:00:01.000Z")).collect();
        let taken = take_page(page, &cursor, &again, 990, usize::MAX, true);
        assert_eq!(ids(&taken.changes), ["4", "5"], "B-1..B-3 were read before");
        assert_eq!(taken.window.after, Some(key("B-5")));
        // A project JIRA no longer has is let go.
        let gone = without_project(&w, "a");
        assert!(gone.done.is_empty() && gone.after == w.after);
        assert_eq!(without_project(&w, "B").after, None);
    }

    #[test]
    fn a_window_ends_in_the_past_and_a_too_recent_burst_waits() {
        let c = Cursor { since_ms: 1_000_000, floor_ms: 0, ..Cursor::default() };
        let w = open_window(&c, 1_000_000 + 5 * 60_000).unwrap();
        assert_eq!((w.from_ms, w.until_ms), (1_000_000 - OVERLAP_MS, 1_000_000 + 5 * 60_000 - LAG_MS));
        assert_eq!(open_window(&c, 1_000_000 - OVERLAP_MS + LAG_MS), None);
        assert_eq!(keyset_clause(&w), None);
    }
}
