//! The steps' handlers as Lambda calls them (an SQS batch in, a partial
//! batch response out), and the local driver that plays Lambda's triggers
//! where nothing fires them (moto serves SQS and the scheduler's API but
//! runs neither a schedule nor an event source): the tick every minute, the
//! queues received and handed to the same handlers.

use std::sync::Arc;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use std::time::{Duration, SystemTime};

use super::deliver::deliver;
use super::poll::poll;
use super::{BatchResponse, DeliveryMessage, Events, ItemFailure, PollMessage, SqsRecord};
use crate::domain::token::InstanceId;

/// A batch of poll messages: the instances side by side (a poll mostly
/// waits for JIRA, and Lambda bills the wait), each instance's messages in
/// order. The poll queue is FIFO, grouped by instance: after one of an
/// instance's messages fails, its later ones are handed back too, so that
/// they stay in order.
pub async fn handle_polls(events: &Events, records: &[SqsRecord], now: SystemTime) -> BatchResponse {
    let mut groups: Vec<(Option<u64>, Vec<&SqsRecord>)> = Vec::new();
    for record in records {
        let instance = serde_json::from_str::<PollMessage>(&record.body).ok().map(|m| m.instance);
        match groups.iter_mut().find(|(i, _)| instance.is_some() && *i == instance) {
            Some((_, group)) => group.push(record),
            None => groups.push((instance, vec![record])),
        }
    }
    // At most POLLS_AT_ONCE side by side: each holds its search's issues.
    // Each poll's `now` is when it starts (a poll that waited its turn in
    // the batch would otherwise take JIRA's clock for that much behind).
    let batch = tokio::time::Instant::now();
    let handled: Vec<Vec<ItemFailure>> = stream::iter(groups.iter().map(|(_, group)| async move {
        let mut failed = Vec::new();
        for record in group {
            if !failed.is_empty() {
                failed.push(ItemFailure { id: record.message_id.clone() });
                continue;
            }
            if let Err(e) = poll_one(events, record, now + batch.elapsed()).await {
                tracing::error!(message = %record.message_id, error = %e, "the poll failed: its message comes back");
                failed.push(ItemFailure { id: record.message_id.clone() });
            }
        }
        failed
    }))
    .buffer_unordered(POLLS_AT_ONCE)
    .collect()
    .await;
    BatchResponse { failures: handled.into_iter().flatten().collect() }
}

/// How many of a batch's polls run side by side.
pub const POLLS_AT_ONCE: usize = 4;

async fn poll_one(events: &Events, record: &SqsRecord, now: SystemTime) -> Result<(), super::EventsError> {
    let message = serde_json::from_str::<PollMessage>(&record.body).ok();
    let Some((id, due)) = message.and_then(|m| Some((InstanceId::new(m.instance)?, m.due))) else {
        // Not a poll message: no retry makes it one.
        tracing::error!(message = %record.message_id, "not a poll message: dropped");
        return Ok(());
    };
    let polled = poll(events, id, due, now).await?;
    tracing::info!(message = %record.message_id, instance = %id, outcome = ?polled, "polled");
    Ok(())
}

/// A batch of delivery messages, side by side (each waits for a callback).
pub async fn handle_deliveries(events: &Events, records: &[SqsRecord], now: SystemTime) -> BatchResponse {
    let handled = join_all(records.iter().map(|record| async move {
        let Ok(message) = serde_json::from_str::<DeliveryMessage>(&record.body) else {
            tracing::error!(message = %record.message_id, "not a delivery message: dropped");
            return None;
        };
        match deliver(events, &message, now).await {
            Ok(done) => {
                tracing::info!(message = %record.message_id, outcome = ?done, "delivery");
                None
            }
            Err(e) => {
                tracing::error!(message = %record.message_id, error = %e, "the delivery failed: its message comes back");
                Some(ItemFailure { id: record.message_id.clone() })
            }
        }
    }))
    .await;
    BatchResponse { failures: handled.into_iter().flatten().collect() }
}

/// What one round of the driver did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub ticked: usize,
    pub polls: usize,
    pub deliveries: usize,
}

/// One round: a tick at `now` (when `tick`), then both queues received
/// until they answer nothing, each batch through its handler, the messages
/// the handler took deleted (the others come back after their visibility
/// timeout, as under Lambda).
pub async fn round(events: &Arc<Events>, now: SystemTime, tick: bool) -> Result<Round, super::EventsError> {
    let mut round = Round::default();
    if tick {
        round.ticked = super::tick::tick(events, now, None).await?.sent;
    }
    loop {
        let polls = events.receive(&events.settings.poll_queue_url, Duration::ZERO).await?;
        let deliveries = events.receive(&events.settings.delivery_queue_url, Duration::ZERO).await?;
        if polls.is_empty() && deliveries.is_empty() {
            return Ok(round);
        }
        round.polls += polls.len();
        round.deliveries += deliveries.len();
        let records: Vec<SqsRecord> = polls.iter().map(|(_, r)| r.clone()).collect();
        let failed = handle_polls(events, &records, now).await;
        delete_taken(events, &events.settings.poll_queue_url, &polls, &failed).await?;
        let records: Vec<SqsRecord> = deliveries.iter().map(|(_, r)| r.clone()).collect();
        let failed = handle_deliveries(events, &records, now).await;
        delete_taken(events, &events.settings.delivery_queue_url, &deliveries, &failed).await?;
    }
}

/// A tick at `now` and the poll queue only (the deliveries left queued):
/// for tests that lose or hold deliveries.
pub async fn round_polls_only(events: &Arc<Events>, now: SystemTime) {
    let _ = super::tick::tick(events, now, None).await;
    while let Ok(polls) = events.receive(&events.settings.poll_queue_url, Duration::ZERO).await {
        if polls.is_empty() {
            return;
        }
        let records: Vec<SqsRecord> = polls.iter().map(|(_, r)| r.clone()).collect();
        let failed = handle_polls(events, &records, now).await;
        if delete_taken(events, &events.settings.poll_queue_url, &polls, &failed).await.is_err() {
            return;
        }
    }
}

async fn delete_taken(
    events: &Events,
    queue: &str,
    received: &[(String, SqsRecord)],
    failed: &BatchResponse,
) -> Result<(), super::EventsError> {
    for (receipt, record) in received {
        if !failed.failures.iter().any(|f| f.id == record.message_id) {
            events.delete(queue, receipt).await?;
        }
    }
    Ok(())
}

/// The local driver: a tick every `tick_every` (a minute, as the schedule),
/// the queues drained every second in between. Runs until killed.
pub async fn run(events: Arc<Events>, tick_every: Duration) {
    let mut next_tick = tokio::time::Instant::now();
    loop {
        let tick = tokio::time::Instant::now() >= next_tick;
        if tick {
            next_tick += tick_every;
        }
        match round(&events, SystemTime::now(), tick).await {
            Ok(r) if r != Round::default() => tracing::info!(
                ticked = r.ticked,
                polls = r.polls,
                deliveries = r.deliveries,
                "events: a round of the local driver"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "events: the local driver's round failed; trying again"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
