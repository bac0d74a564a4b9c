//! The tick: once a minute, the due instances of every shard of the due
//! index (`Query`, keys only, never a `Scan`), one poll message each; and
//! the notifications overdue by [`OVERDUE_MS`] (the index's `PENDING#nn` partitions: their
//! delivery message was lost: a crash, a dead-letter queue), one delivery
//! message each. The
//! shards are read side by side; a message repeated (a poll slower than a
//! tick) is dropped by the FIFO queue's deduplication or found stale by the
//! poll, which never polls one due time twice.

use std::sync::Arc;
use std::time::SystemTime;

use super::{epoch_ms, DeliveryMessage, Events, EventsError, PollMessage};
use crate::domain::events::SHARDS;

/// How late a notification's attempt must be before the tick sends it
/// again (its own message, delayed or in flight, comes well before).
pub const OVERDUE_MS: i64 = 15 * 60_000;

/// How many polls one tick sent, and deliveries sent again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ticked {
    pub sent: usize,
    pub resent: usize,
}

/// The tick of `shards` (all of them by default) at `now`.
pub async fn tick(
    events: &Arc<Events>,
    now: SystemTime,
    shards: Option<std::ops::Range<u32>>,
) -> Result<Ticked, EventsError> {
    let now_ms = epoch_ms(now);
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards.unwrap_or(0..SHARDS) {
        let events = events.clone();
        tasks.spawn(async move { tick_shard(&events, &format!("DUE#{shard:02}"), now_ms).await });
    }
    let mut ticked = Ticked::default();
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok((sent, resent))) => {
                ticked.sent += sent;
                ticked.resent += resent;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a shard's tick failed; its polls are sent at the next tick");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(EventsError::Internal(format!("a shard's tick panicked: {e}")));
            }
        }
    }
    match first_error {
        Some(e) if ticked.sent == 0 => Err(e),
        _ => Ok(ticked),
    }
}

async fn tick_shard(events: &Events, shard: &str, now_ms: i64) -> Result<(usize, usize), EventsError> {
    let mut start = None;
    let mut sent = 0;
    loop {
        let (due, next) = events.app.store.due_page(shard, now_ms, start).await?;
        let polls: Vec<PollMessage> =
            due.iter().map(|(id, due)| PollMessage { instance: id.get(), due: *due }).collect();
        events.send_polls(&polls).await?;
        sent += polls.len();
        match next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    let pending = format!("PENDING#{}", &shard["DUE#".len()..]);
    let (mut start, mut resent) = (None, 0);
    loop {
        let (overdue, next) = events.app.store.overdue_page(&pending, now_ms - OVERDUE_MS, start).await?;
        // Each sent again once a period at most (its due time moved on
        // first: a backed-up queue does not get one more message a tick).
        let mut again = Vec::new();
        for (id, sk, was) in overdue {
            if events.app.store.postpone_overdue(id, &sk, was, now_ms + OVERDUE_MS).await? {
                again.push(DeliveryMessage { instance: id.get(), notification: sk });
            }
        }
        if !again.is_empty() {
            tracing::warn!(shard = pending, count = again.len(), "notifications overdue: their deliveries sent again");
        }
        events.send_deliveries(&again).await?;
        resent += again.len();
        match next {
            Some(next) => start = Some(next),
            None => return Ok((sent, resent)),
        }
    }
}
