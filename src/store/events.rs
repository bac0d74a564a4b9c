//! The polls' state and the event log.
//!
//! **On the instance item** (`INSTANCE#<id>`/`INSTANCE`), written only while
//! its events are enabled, never moving its `version` (they are not changes
//! of the instance): `pollShard` (`DUE#00`..`DUE#31`, from the id) and
//! `pollDue` N (epoch ms of the next poll; absent while the polls are
//! stopped: disabled instance, refused login), the keys of the sparse index
//! `DUE`; `pollCursor` N (epoch ms: the latest `updated` a poll saw, JIRA's
//! clock; the first poll looks back to when events were enabled) and
//! `pollSeen` L of S (`<updated ms>:<issue id>` of the changes inside the
//! overlap before it, at most [`MAX_SEEN`]); `pollFloor` N (when events were
//! enabled, less the clocks' allowance, or the end of the last window read
//! by id ranges: no change before it is an event); `pollClock` N (JIRA's
//! clock less ours, ms, as its last answer's `Date` told); `pollWindow` S
//! (`from:until:after:span`: a burst's window being read by id ranges,
//! while it is); `pollProblem` S and `pollProblemAt` N (why the polls are
//! held or stopped, as the events API tells the user, and since when;
//! removed by the next poll that goes through); `pollOutbox` L of S and
//! `pollOutboxOf` N (the notifications the last poll recorded and the
//! `pollDue` it ran for: a poll's message that comes back after its commit
//! sends them again instead of being lost);
//! `pollWrite` (the mark of the last commit: an SDK retry of a commit that
//! landed knows it). Keeping them on the instance makes the poll one read
//! (configuration, credentials and cursor together) and one write, and an
//! update, a disable or a delete of the instance one write with them.
//!
//! **Index `DUE`** (`pollShard`, `pollDue`; keys only): what is due, by
//! when: the instances' next polls (partitions `DUE#00`..`DUE#31`) and the
//! notifications' next attempts (`PENDING#00`..`PENDING#31`). One `Query` of
//! each a shard a tick, `pollDue <= now`; spread over 32 partitions each so
//! that no partition takes every write. (One index for both: an existing
//! table gains one index in one stack update, as CloudFormation allows.)
//!
//! **Notifications** (the event log): PK `EVENTS#<instance id>`, SK
//! `N#<poll ms, 13 digits>#<seq, 3 digits>` (newest first is a backward
//! `Query`): `notificationId` (the `Elements-Webhook-Id`), `body` (the exact
//! bytes sent and signed), `events` L of M (`id`, `objectType`, `objectId`,
//! `eventType`, `date`), `status` (`NEW`, `DISPATCHED`, `NOTIFIED`,
//! `FAILED`), `attempts` N, `createdDate`, `lastAttemptDate`, `lastResult`,
//! `nextAttemptAt` N (epoch ms), `leaseUntil` N and `leaseId` (an attempt
//! in flight, and its mark: only it may say how it ended), `pollShard`
//! (`PENDING#00`..`PENDING#31`) and `pollDue` N (when it is due to be
//! attempted: its keys in the index `DUE`, removed once it is delivered or
//! failed; the tick sends again what is overdue, a delivery message lost),
//! `expiresAt` N (30 days after the poll; TTL). Written in the
//! poll's one transaction with the cursor's move, each conditioned on not
//! existing: the cursor moves once, with its events, or not at all.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::instances::instance_pk;
use super::{bug, failed, failed_transaction, key, n, s, Item, Reader, Store, StoreError, DUE_INDEX};
use crate::domain::events::PollChange;
use crate::domain::instance::InstanceRecord;
use crate::domain::poll::{Cursor, EventEntry, Notification, Window};
use crate::domain::time::iso8601;
use crate::domain::token::InstanceId;

/// How long the event log keeps a notification.
pub const RETENTION_SECONDS: i64 = 30 * 24 * 3600;

/// What the polls keep on an instance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PollState {
    pub due_ms: Option<i64>,
    pub cursor: Cursor,
    pub outbox: Vec<String>,
    pub outbox_of: Option<i64>,
    /// Why the polls are held or stopped, as the user is told, and since
    /// when (epoch ms).
    pub problem: Option<(String, i64)>,
}

/// A poll's outcome, to be written on the `pollDue` it ran for.
pub struct PollCommit<'a> {
    pub cursor: &'a Cursor,
    pub next_due_ms: i64,
    pub notifications: &'a [Notification],
    /// What held the poll after a part of its reading (none: it went through).
    pub problem: Option<&'a str>,
}

/// The most changes the cursor remembers (each about 25 bytes of the
/// instance item, whose limit is 400 KB): past it, the oldest go, which can
/// only make a change found late inside the overlap notified again.
pub const MAX_SEEN: usize = 1_000;

/// A notification taken for one attempt, and the mark of that attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub logged: Logged,
    pub lease: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Written (by this call, or by an earlier attempt of it whose answer was lost).
    Done,
    /// Another poll (or a change of the instance) moved it first: nothing written.
    Stale,
}

/// A notification as the log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub instance: InstanceId,
    pub sort_key: String,
    pub notification_id: String,
    pub body: String,
    pub events: Vec<EventEntry>,
    pub status: String,
    pub attempts: u32,
    pub created_date: String,
    pub last_attempt_date: Option<String>,
    pub last_result: Option<String>,
    pub next_attempt_ms: Option<i64>,
}

/// How one delivery attempt ended.
pub enum Attempted<'a> {
    Delivered { result: &'a str },
    Retry { result: &'a str, next_attempt_ms: i64 },
    Failed { result: &'a str },
}

/// The sort key of a notification.
pub fn notification_sk(poll_ms: i64, seq: usize) -> String {
    format!("N#{poll_ms:013}#{seq:03}")
}

/// The partition of the `PENDING` index a notification of `id` is in.
pub fn pending_shard(id: InstanceId) -> String {
    format!("PENDING#{:02}", id.get() % u64::from(crate::domain::events::SHARDS))
}

fn events_pk(id: InstanceId) -> String {
    format!("EVENTS#{id}")
}

impl Store {
    /// An instance and its polls' state: one strongly consistent `GetItem`.
    pub async fn poll_target(&self, id: InstanceId) -> Result<Option<(InstanceRecord, PollState)>, StoreError> {
        let pk = instance_pk(id);
        let Some(item) = self.get_consistent(&pk, "INSTANCE").await? else {
            return Ok(None);
        };
        let record = super::instances::read_instance(&pk, &item)?;
        Ok(Some((record, poll_state(&pk, &item)?)))
    }

    /// One page of the instances of `shard` due at `now_ms` (`Query` of
    /// `DUE`, keys only), and where the next page starts.
    pub async fn due_page(
        &self,
        shard: &str,
        now_ms: i64,
        start: Option<Item>,
    ) -> Result<(Vec<(InstanceId, i64)>, Option<Item>), StoreError> {
        let (keys, next) = self.due_keys(shard, now_ms, start, "INSTANCE#").await?;
        Ok((keys.into_iter().map(|(id, _, due)| (id, due)).collect(), next))
    }

    /// One page of what the index `DUE` holds in `shard` due by `before_ms`:
    /// each item's instance (its PK after `prefix`), sort key and due time.
    async fn due_keys(
        &self,
        shard: &str,
        before_ms: i64,
        start: Option<Item>,
        prefix: &str,
    ) -> Result<(Vec<(InstanceId, String, i64)>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("pollShard = :shard AND pollDue <= :before")
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":before", n(before_ms))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let mut keys = Vec::new();
        for item in out.items() {
            let r = Reader::new(DUE_INDEX, item);
            let pk = r.s("PK")?;
            match pk.strip_prefix(prefix).and_then(|i| i.parse().ok()).and_then(InstanceId::new) {
                Some(id) => keys.push((id, r.s("SK")?, r.n("pollDue")?)),
                None => return Err(r.corrupt("PK")),
            }
        }
        Ok((keys, out.last_evaluated_key))
    }

    /// Writes a poll's outcome on the `pollDue` it ran for: the cursor, the
    /// next due time, and its notifications, in one `TransactWriteItems`
    /// (one `UpdateItem` when there are none).
    pub async fn commit_poll(
        &self,
        id: InstanceId,
        ran_for: i64,
        commit: &PollCommit<'_>,
    ) -> Result<Committed, StoreError> {
        let write = super::instances::WriteId::new()?;
        let mut newest: Vec<&(String, i64)> = commit.cursor.seen.iter().collect();
        newest.sort_by_key(|(_, ms)| std::cmp::Reverse(*ms));
        newest.truncate(MAX_SEEN);
        let seen: Vec<AttributeValue> = newest.iter().map(|(issue, ms)| s(format!("{ms}:{issue}"))).collect();
        let outbox: Vec<AttributeValue> =
            commit.notifications.iter().map(|x| s(notification_sk(x.poll_ms, x.seq))).collect();
        let mut set = vec![
            "pollCursor = :cursor",
            "pollFloor = :floor",
            "pollClock = :clock",
            "pollSeen = :seen",
            "pollDue = :next",
        ];
        // (The account's zone, which polls before 0.5.0 kept, is not asked any more.)
        let mut remove = vec!["pollZone, pollZoneAt"];
        let mut values = vec![
            (":cursor", n(commit.cursor.since_ms)),
            (":floor", n(commit.cursor.floor_ms)),
            (":clock", n(commit.cursor.clock_ms)),
            (":seen", AttributeValue::L(seen)),
            (":next", n(commit.next_due_ms)),
            (":due", n(ran_for)),
        ];
        match &commit.cursor.window {
            Some(window) => {
                set.push("pollWindow = :window");
                values.push((":window", s(window.encode())));
            }
            None => remove.push("pollWindow"),
        }
        match commit.problem {
            Some(problem) => {
                set.push("pollProblem = :problem, pollProblemAt = if_not_exists(pollProblemAt, :due)");
                values.push((":problem", s(problem)));
            }
            None => remove.push("pollProblem, pollProblemAt"),
        }
        if outbox.is_empty() {
            // Nothing to hand over: a commit of ours found landed would be
            // read as another's, which changes nothing. So no mark (the item
            // stays under 1 KB, one write unit, as long as it can).
            remove.push("pollOutbox, pollOutboxOf, pollWrite");
        } else {
            set.push("pollOutbox = :outbox, pollOutboxOf = :due, pollWrite = :write");
            values.push((":outbox", AttributeValue::L(outbox)));
            values.push((":write", s(&write.0)));
        }
        let expression = format!(
            "SET {}{}",
            set.join(", "),
            if remove.is_empty() { String::new() } else { format!(" REMOVE {}", remove.join(", ")) }
        );
        let pk = instance_pk(id);
        if commit.notifications.is_empty() {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, "INSTANCE")))
                .update_expression(expression)
                .condition_expression("pollDue = :due")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            for (name, value) in values {
                update = update.expression_attribute_values(name, value);
            }
            return match update.send().await {
                Ok(_) => Ok(Committed::Done),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(own(c.item(), &write.0)),
                    _ => Err(failed("UpdateItem", e)),
                },
            };
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, "INSTANCE")))
            .update_expression(expression)
            .condition_expression("pollDue = :due")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let mut writes = vec![TransactWriteItem::builder().update(update.build().map_err(bug)?).build()];
        for x in commit.notifications {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(notification_item(id, x)))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(bug)?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(Committed::Done),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().first().and_then(|r| r.code()) == Some("ConditionalCheckFailed") =>
                {
                    Ok(own(c.cancellation_reasons()[0].item(), &write.0))
                }
                _ => Err(failed_transaction("TransactWriteItems", e)),
            },
        }
    }

    /// Moves the next poll without moving the cursor (JIRA's `429`, a
    /// failure of the site, a search JIRA refuses), with why (`problem`,
    /// what the events API shows): one conditional `UpdateItem`; `false`
    /// when another poll moved it first.
    pub async fn reschedule_poll(
        &self,
        id: InstanceId,
        ran_for: i64,
        next_due_ms: i64,
        problem: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&instance_pk(id), "INSTANCE")))
            .condition_expression("pollDue = :due")
            .expression_attribute_values(":due", n(ran_for))
            .expression_attribute_values(":next", n(next_due_ms));
        update = match problem {
            Some(problem) => update
                .update_expression(
                    "SET pollDue = :next, pollProblem = :problem, pollProblemAt = if_not_exists(pollProblemAt, :due)",
                )
                .expression_attribute_values(":problem", s(problem)),
            None => update.update_expression("SET pollDue = :next"),
        };
        conditional(update.send().await)
    }

    /// Stops an instance's polls until something starts them again (an
    /// update of its credentials, enabling it): `pollDue` goes, which takes
    /// it out of the due index, and `why` is kept for the events API.
    /// `refused`: JIRA refused its login, which `valid` tells (and `version`
    /// moves, as for any change of what the instance shows). Conditioned on
    /// the due time the poll ran for and on the `version` it read: a change
    /// of the instance meanwhile (new credentials, enabled again) has the
    /// last word.
    pub async fn park_polls(
        &self,
        id: InstanceId,
        ran_for: i64,
        version: u64,
        refused: bool,
        why: &str,
    ) -> Result<bool, StoreError> {
        // (An item written before `version` existed is at 1.)
        let at = super::instances::at_version(version);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&instance_pk(id), "INSTANCE")))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":due", n(ran_for))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":why", s(why));
        update = if refused {
            // The hub may have kept the same refusal first (`valid` false,
            // a version on): the polls stop all the same.
            update
                .condition_expression(format!("pollDue = :due AND (({at}) OR valid = :false)"))
                .update_expression(
                    "SET valid = :false, #version = if_not_exists(#version, :one) + :one, pollProblem = :why, \
                     pollProblemAt = :due REMOVE pollDue",
                )
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":one", n(1))
        } else {
            update
                .condition_expression(format!("pollDue = :due AND ({at})"))
                .update_expression("SET pollProblem = :why, pollProblemAt = :due REMOVE pollDue")
        };
        conditional(update.send().await)
    }

    /// Takes a notification for one delivery attempt: one `UpdateItem` that
    /// counts the attempt and leases it for `lease_ms` under a mark of its
    /// own, conditioned on it being neither delivered nor failed, nor leased,
    /// nor waiting for a later attempt. `None` when it is not to be attempted now.
    pub async fn claim_delivery(
        &self,
        id: InstanceId,
        sort_key: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        let lease = super::instances::WriteId::new()?.0;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&events_pk(id), sort_key)))
            .update_expression(
                "SET attempts = attempts + :one, #status = :dispatched, leaseUntil = :until, leaseId = :lease, \
                 lastAttemptDate = :date, pollDue = :until",
            )
            .condition_expression(
                "attribute_exists(PK) AND #status IN (:new, :dispatched) AND \
                 (attribute_not_exists(leaseUntil) OR leaseUntil < :now) AND \
                 (attribute_not_exists(nextAttemptAt) OR nextAttemptAt <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":dispatched", s("DISPATCHED"))
            .expression_attribute_values(":new", s("NEW"))
            .expression_attribute_values(":until", n(now_ms + lease_ms))
            .expression_attribute_values(":lease", s(&lease))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":date", s(iso8601(at(now_ms))))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes.as_ref() {
                Some(item) => Ok(Some(Claimed { logged: read_logged(id, item)?, lease })),
                None => Ok(None),
            },
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(failed("UpdateItem", e)),
        }
    }

    /// Keeps how an attempt ended, if the attempt still holds the
    /// notification (`lease`); the lease goes. `false` when it did not (its
    /// lease ran out and another attempt took it).
    pub async fn finish_delivery(
        &self,
        id: InstanceId,
        sort_key: &str,
        lease: &str,
        how: Attempted<'_>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&events_pk(id), sort_key)))
            .condition_expression("leaseId = :lease AND #status = :dispatched")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", s(lease))
            .expression_attribute_values(":dispatched", s("DISPATCHED"));
        const DONE: &str = "SET #status = :status, lastResult = :result \
                            REMOVE leaseUntil, leaseId, nextAttemptAt, pollShard, pollDue";
        let update = match how {
            Attempted::Delivered { result } => update
                .update_expression(DONE)
                .expression_attribute_values(":status", s("NOTIFIED"))
                .expression_attribute_values(":result", s(result)),
            Attempted::Failed { result } => update
                .update_expression(DONE)
                .expression_attribute_values(":status", s("FAILED"))
                .expression_attribute_values(":result", s(result)),
            Attempted::Retry { result, next_attempt_ms } => update
                .update_expression(
                    "SET lastResult = :result, nextAttemptAt = :next, pollDue = :next REMOVE leaseUntil, leaseId",
                )
                .expression_attribute_values(":result", s(result))
                .expression_attribute_values(":next", n(next_attempt_ms)),
        };
        conditional(update.send().await)
    }

    /// The notifications of `shard` (`PENDING#nn`) that should have been
    /// attempted by `before_ms` and are neither delivered nor failed (`Query`
    /// of `DUE`, keys only): those whose delivery message was lost.
    pub async fn overdue_page(
        &self,
        shard: &str,
        before_ms: i64,
        start: Option<Item>,
    ) -> Result<(Vec<(InstanceId, String, i64)>, Option<Item>), StoreError> {
        self.due_keys(shard, before_ms, start, "EVENTS#").await
    }

    /// The instances with no polls' state: a `Scan`, for the operator's
    /// one-off `admin start-polls` only (instances that enabled events
    /// before polls existed).
    pub async fn instances_without_polls(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let items = super::scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("SK = :sk AND attribute_not_exists(pollShard)")
                .expression_attribute_values(":sk", s("INSTANCE")),
        )
        .await?;
        items
            .iter()
            .map(|item| {
                let pk = item.get("PK").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
                super::instances::read_instance(pk, item)
            })
            .collect()
    }

    /// Starts an instance's polls (`change`, a [`PollChange::Start`]) where
    /// it has none, conditioned on the `version` read; `false` when it
    /// changed meanwhile (or has polls now).
    pub async fn start_polls(&self, id: InstanceId, version: u64, change: &PollChange) -> Result<bool, StoreError> {
        let (set, _, values) = super::instances::poll_clause(change);
        if set.is_empty() {
            return Ok(false);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&instance_pk(id), "INSTANCE")))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(format!(
                "attribute_not_exists(pollShard) AND ({})",
                super::instances::at_version(version)
            ))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(version));
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        conditional(update.send().await)
    }

    /// Moves an overdue notification's due time on (`was` to `to`), so that
    /// the tick sends it again once a period at most: `false` when it moved
    /// meanwhile (an attempt took it, or another tick).
    pub async fn postpone_overdue(
        &self,
        id: InstanceId,
        sort_key: &str,
        was: i64,
        to: i64,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&events_pk(id), sort_key)))
            .condition_expression("pollDue = :was")
            .update_expression("SET pollDue = :to")
            .expression_attribute_values(":was", n(was))
            .expression_attribute_values(":to", n(to));
        conditional(update.send().await)
    }

    /// A notification of the log, read strongly consistently.
    pub async fn notification(&self, id: InstanceId, sort_key: &str) -> Result<Option<Logged>, StoreError> {
        let item = self.get_consistent(&events_pk(id), sort_key).await?;
        item.map(|item| read_logged(id, &item)).transpose()
    }

    /// Drops a notification whose instance is gone.
    pub async fn drop_notification(&self, id: InstanceId, sort_key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&events_pk(id), sort_key)))
            .send()
            .await
            .map_err(|e| failed("DeleteItem", e))?;
        Ok(())
    }

    /// The log's notifications of an instance, newest first, from `at` (a
    /// sort key, itself included) on: one `Query`, `limit` items at most.
    pub async fn notifications_page(
        &self,
        id: InstanceId,
        at: Option<&str>,
        limit: i32,
        now_ms: i64,
    ) -> Result<(Vec<Logged>, bool), StoreError> {
        // TTL deletes lazily (up to days): what is past its 30 days is not shown.
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(limit)
            .filter_expression("#expires > :nowSeconds")
            .expression_attribute_names("#expires", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":nowSeconds", n(now_ms / 1000))
            .expression_attribute_values(":pk", s(events_pk(id)));
        query = match at {
            Some(sk) => query
                .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :sk")
                .expression_attribute_values(":low", s("N#"))
                .expression_attribute_values(":sk", s(sk)),
            None => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :low)")
                .expression_attribute_values(":low", s("N#")),
        };
        let out = query.send().await.map_err(|e| failed("Query", e))?;
        let logged = out.items().iter().map(|item| read_logged(id, item)).collect::<Result<Vec<_>, _>>()?;
        Ok((logged, out.last_evaluated_key.is_some()))
    }
}

fn own(old: Option<&Item>, write: &str) -> Committed {
    match old.and_then(|i| i.get("pollWrite")).and_then(|v| v.as_s().ok()) {
        Some(w) if w == write => Committed::Done,
        _ => Committed::Stale,
    }
}

fn conditional<E, R>(
    result: Result<R, aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(failed("UpdateItem", e)),
    }
}

fn poll_state(pk: &str, item: &Item) -> Result<PollState, StoreError> {
    let r = Reader::new(pk, item);
    let opt_n = |name: &str| if r.has(name) { r.n::<i64>(name).map(Some) } else { Ok(None) };
    let list = |name: &str| -> Result<Vec<String>, StoreError> {
        match item.get(name) {
            None => Ok(vec![]),
            Some(v) => v
                .as_l()
                .map_err(|_| r.corrupt(name))?
                .iter()
                .map(|x| x.as_s().cloned().map_err(|_| r.corrupt(name)))
                .collect(),
        }
    };
    let seen = list("pollSeen")?
        .into_iter()
        .map(|entry| {
            let (ms, issue) = entry.split_once(':').ok_or_else(|| r.corrupt("pollSeen"))?;
            Ok((issue.to_owned(), ms.parse().map_err(|_| r.corrupt("pollSeen"))?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(PollState {
        due_ms: opt_n("pollDue")?,
        cursor: Cursor {
            since_ms: opt_n("pollCursor")?.unwrap_or(0),
            seen,
            floor_ms: opt_n("pollFloor")?.unwrap_or(0),
            clock_ms: opt_n("pollClock")?.unwrap_or(0),
            window: match item.get("pollWindow") {
                None => None,
                Some(_) => Some(Window::decode(&r.s("pollWindow")?).ok_or_else(|| r.corrupt("pollWindow"))?),
            },
        },
        outbox: list("pollOutbox")?,
        outbox_of: opt_n("pollOutboxOf")?,
        problem: match item.get("pollProblem") {
            None => None,
            Some(_) => Some((r.s("pollProblem")?, opt_n("pollProblemAt")?.unwrap_or(0))),
        },
    })
}

fn notification_item(id: InstanceId, x: &Notification) -> Item {
    let events = x
        .events
        .iter()
        .map(|e| {
            AttributeValue::M(
                [
                    ("id", s(&e.id)),
                    ("objectType", s(&e.object_type)),
                    ("objectId", s(&e.object_id)),
                    ("eventType", s(&e.event_type)),
                    ("date", s(&e.date)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            )
        })
        .collect();
    super::item([
        ("PK", s(events_pk(id))),
        ("SK", s(notification_sk(x.poll_ms, x.seq))),
        ("instanceId", n(id.get())),
        ("notificationId", s(&x.id)),
        ("body", s(&x.body)),
        ("events", AttributeValue::L(events)),
        ("status", s("NEW")),
        ("attempts", n(0)),
        ("createdDate", s(iso8601(at(x.poll_ms)))),
        ("pollShard", s(pending_shard(id))),
        ("pollDue", n(x.poll_ms)),
        (super::TTL_ATTRIBUTE, n(x.poll_ms / 1000 + RETENTION_SECONDS)),
    ])
}

fn read_logged(id: InstanceId, item: &Item) -> Result<Logged, StoreError> {
    let pk = events_pk(id);
    let r = Reader::new(&pk, item);
    let opt_s = |name: &str| if r.has(name) { r.s(name).map(Some) } else { Ok(None) };
    let events = r
        .get("events")?
        .as_l()
        .map_err(|_| r.corrupt("events"))?
        .iter()
        .map(|e| {
            let m = e.as_m().map_err(|_| r.corrupt("events"))?;
            let get = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned().ok_or_else(|| r.corrupt("events"));
            Ok(EventEntry {
                id: get("id")?,
                object_type: get("objectType")?,
                object_id: get("objectId")?,
                event_type: get("eventType")?,
                date: get("date")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Logged {
        instance: id,
        sort_key: r.s("SK")?,
        notification_id: r.s("notificationId")?,
        body: r.s("body")?,
        events,
        status: r.s("status")?,
        attempts: r.n("attempts")?,
        created_date: r.s("createdDate")?,
        last_attempt_date: opt_s("lastAttemptDate")?,
        last_result: opt_s("lastResult")?,
        next_attempt_ms: if r.has("nextAttemptAt") { Some(r.n("nextAttemptAt")?) } else { None },
    })
}

fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}
