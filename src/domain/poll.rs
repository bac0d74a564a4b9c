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
    /// less [`SKEW_MS`]; after a window read by id ranges, its end.
    pub floor_ms: i64,
    /// JIRA's clock less ours, in ms, as its last answer's `Date` told.
    pub clock_ms: i64,
    /// A window of more changes than one page holds, read by ranges of
    /// issue ids (see `events::window`); none between bursts.
    pub window: Option<Window>,
}

/// A window of JIRA's time read by ranges of issue ids: every change dated
/// in `[from_ms, until_ms)` of an issue whose id is at most `after_id` was
/// read. `until_ms` is in the past by more than JIRA's search may lag, so
/// no change joins the window while it is read (a change of an issue moves
/// it out, to a later window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub until_ms: i64,
    /// The last issue id read (0: none yet).
    pub after_id: u64,
    /// The width of the next id range to ask (`None`: every id after
    /// `after_id`).
    pub span: Option<u64>,
}

impl Window {
    /// The stored form: `from:until:after:span` (`span` empty for none).
    pub fn encode(&self) -> String {
        let span = self.span.map(|s| s.to_string()).unwrap_or_default();
        format!("{}:{}:{}:{span}", self.from_ms, self.until_ms, self.after_id)
    }

    pub fn decode(text: &str) -> Option<Window> {
        let mut parts = text.split(':');
        let from_ms = parts.next()?.parse().ok()?;
        let until_ms = parts.next()?.parse().ok()?;
        let after_id = parts.next()?.parse().ok()?;
        let span = match parts.next()? {
            "" => None,
            s => Some(s.parse().ok().filter(|s| *s > 0)?),
        };
        if parts.next().is_some() || until_ms <= from_ms {
            return None;
        }
        Some(Window { from_ms, until_ms, after_id, span })
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
            from in 0i64..i64::MAX / 2, width in 1i64..1_000_000_000, after in any::<u64>(),
            span in proptest::option::of(1u64..u64::MAX),
        ) {
            let w = Window { from_ms: from, until_ms: from + width, after_id: after, span };
            prop_assert_eq!(Window::decode(&w.encode()), Some(w));
        }
    }

    #[test]
    fn a_window_out_of_shape_reads_as_none() {
        for bad in ["", "1:2:3", "1:2:3:4:5", "2:1:0:", "a:2:0:", "1:2:0:0", "1:2:-1:"] {
            assert_eq!(Window::decode(bad), None, "{bad}");
        }
    }
}
