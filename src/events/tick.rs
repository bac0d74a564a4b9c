//! The tick: once a minute, the due instances of every shard of the due
//! index (`Query`, keys only, never a `Scan`), one poll message each. The
//! shards are read side by side; a message repeated (a poll slower than a
//! tick) is dropped by the FIFO queue's deduplication or found stale by the
//! poll, which never polls one due time twice.

use std::sync::Arc;
use std::time::SystemTime;

use super::{epoch_ms, Events, EventsError, PollMessage};
use crate::domain::events::SHARDS;

/// How many polls one tick sent, shard by shard.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ticked {
    pub sent: usize,
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
            Ok(Ok(sent)) => ticked.sent += sent,
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

async fn tick_shard(events: &Events, shard: &str, now_ms: i64) -> Result<usize, EventsError> {
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
            None => return Ok(sent),
        }
    }
}
