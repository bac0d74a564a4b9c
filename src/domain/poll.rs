//! What a poll keeps between polls and what it records: the cursor (where
//! the next poll looks from, and a window being read in parts), and the
//! notifications with their events. Plain types, shared by the events'
//! steps (`events::*`) and the store (`store::events`), which both sit
//! above the domain.

/// How far before its cursor a poll looks again (a change that shows up in
/// JIRA's search late, within this, is still found).
pub const OVERLAP_MS: i64 = 2 * 60_000;

/// How far JIRA's clock may be behind ours at the first poll (before any of
/// its answers told its clock), and ahead of it at any: a change dated past
/// the poll's start by more is not let move the cursor.
pub const SKEW_MS: i64 = 60_000;

/// Where a poll looks from. Every instant is JIRA's time (its clock, as the
/// issues' `updated` are written), epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every change dated before `since_ms - OVERLAP_MS` was notified (and
    /// every one before `floor_ms`).
    pub since_ms: i64,
    /// The changes seen at or after `since_ms - OVERLAP_MS`: `(issue id, updated ms)`.
    pub seen: Vec<(String, i64)>,
    /// No change before it is (still) an event: when events were enabled,
    /// less [`SKEW_MS`]; after a window read in the keys' order, its end.
    pub floor_ms: i64,
    /// JIRA's clock less ours, in ms, as its last answer's `Date` told.
    pub clock_ms: i64,
    /// A window of more changes than one page holds, read by ranges of
    /// issue ids (see `events::window`); none between bursts.
    pub window: Option<Window>,
}

/// A window of JIRA's time read in the order of the issues' keys (JIRA
/// sorts them by project, then number): every change dated in `[from_ms,
/// until_ms)` of an issue whose key comes before the reading's place was
/// read. `until_ms` is in the past by more than JIRA's search may lag, so
/// no change joins the window while it is read (a change of an issue moves
/// it out, to a later window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub until_ms: i64,
    /// The projects read to their end.
    pub done: Vec<ProjectKey>,
    /// The last key read of the project being read.
    pub after: Option<IssueKey>,
    /// The last key read of a project whose reading started again (its
    /// last key was deleted or moved since): the keys up to it were read,
    /// and are passed over, not notified again.
    pub high: Option<IssueKey>,
}

/// A JIRA project's key as JIRA writes one: letters, digits or `_` (Jira
/// Cloud's are an uppercase letter and uppercase letters, digits or `_`;
/// Data Center's pattern can be set otherwise), at most 255.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProjectKey(String);

impl ProjectKey {
    pub fn parse(text: &str) -> Option<ProjectKey> {
        (!text.is_empty() && text.len() <= 255 && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| ProjectKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An issue's key: its project's and its number there (`DEMO-42`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueKey {
    pub project: ProjectKey,
    pub number: u64,
}

impl IssueKey {
    pub fn parse(text: &str) -> Option<IssueKey> {
        let (project, number) = text.rsplit_once('-')?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.starts_with('0') {
            return None;
        }
        Some(IssueKey { project: ProjectKey::parse(project)?, number: number.parse().ok()? })
    }
}

impl std::fmt::Display for IssueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.project.0, self.number)
    }
}

impl Window {
    /// The stored form: `from:until:after:done,done:high` (`after` and
    /// `high` empty for none).
    pub fn encode(&self) -> String {
        let key = |k: &Option<IssueKey>| k.as_ref().map(ToString::to_string).unwrap_or_default();
        let done: Vec<&str> = self.done.iter().map(ProjectKey::as_str).collect();
        format!("{}:{}:{}:{}:{}", self.from_ms, self.until_ms, key(&self.after), done.join(","), key(&self.high))
    }

    pub fn decode(text: &str) -> Option<Window> {
        let mut parts = text.split(':');
        let from_ms = parts.next()?.parse().ok()?;
        let until_ms = parts.next()?.parse().ok()?;
        let after = match parts.next()? {
            "" => None,
            key => Some(IssueKey::parse(key)?),
        };
        let done = match parts.next()? {
            "" => vec![],
            list => list.split(',').map(ProjectKey::parse).collect::<Option<Vec<_>>>()?,
        };
        let high = match parts.next() {
            None | Some("") => None,
            Some(key) => Some(IssueKey::parse(key)?),
        };
        if parts.next().is_some() || until_ms <= from_ms {
            return None;
        }
        Some(Window { from_ms, until_ms, done, after, high })
    }
}

/// One event as the events API and the log show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    pub id: String,
    pub object_type: String,
    pub object_id: String,
    pub event_type: String,
    /// When the change was made (the issue's `updated`), ISO 8601 UTC.
    pub date: String,
}

/// A notification ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    /// When its poll ran, epoch ms.
    pub poll_ms: i64,
    /// Its place among its poll's notifications.
    pub seq: usize,
    pub events: Vec<EventEntry>,
    /// The exact body sent (and signed).
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_window_reads_back_as_it_was_stored(
            from in 0i64..i64::MAX / 2, width in 1i64..1_000_000_000,
            after in proptest::option::of(("[A-Za-z0-9_]{1,9}", 1u64..u64::MAX)),
            done in proptest::collection::vec("[A-Z][A-Z0-9_]{0,9}", 0..5),
            high in proptest::option::of(("[A-Z][A-Z0-9_]{0,9}", 1u64..u64::MAX)),
        ) {
            let key = |(p, n): (String, u64)| IssueKey { project: ProjectKey::parse(&p).unwrap(), number: n };
            let w = Window {
                from_ms: from,
                until_ms: from + width,
                done: done.iter().map(|d| ProjectKey::parse(d).unwrap()).collect(),
                after: after.map(key),
                high: high.map(key),
            };
            prop_assert_eq!(Window::decode(&w.encode()), Some(w));
        }
    }

    #[test]
    fn a_window_out_of_shape_reads_as_none() {
        for bad in [
            "",
            "1:2:",
            "2:1::",
            "a:2::",
            "1:2:de mo-1:",
            "1:2:D-0:",
            "1:2:D-01:",
            "1:2::A,b-",
            "1:2:D-x:",
            "1:2:::D-1:x",
        ] {
            assert_eq!(Window::decode(bad), None, "{bad}");
        }
        assert!(Window::decode("1:2:DEMO_2-17:A,B9").is_some(), "as the first windows were written");
        assert!(Window::decode("1:2:DEMO_2-17:A,B9:DEMO_2-40").is_some());
    }

    #[test]
    fn keys_are_read_as_jira_writes_them() {
        let k = IssueKey::parse("DEMO-42").unwrap();
        assert_eq!((k.project.as_str(), k.number, k.to_string().as_str()), ("DEMO", 42, "DEMO-42"));
        assert_eq!(IssueKey::parse("A_B-1").unwrap().project.as_str(), "A_B");
        assert_eq!(IssueKey::parse("ops2-7").unwrap().project.as_str(), "ops2", "Data Center's own key patterns");
        for bad in ["DEMO", "DEMO-", "-1", "DE MO-1", "A:B-1", "DE\"MO-1", "DEMO-1x", "DEMO-007"] {
            assert_eq!(IssueKey::parse(bad), None, "{bad}");
        }
    }
}
