//! Instance items: the create's one write (alone, or in one transaction with
//! its idempotency record), reads by id and by token, the organization's
//! index.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};

use super::idempotency::{replay_item, replay_pk};
use super::{
    b, bug, failed, failed_transaction, item, key, n, query_all, s, Item, Reader, ReplayRecord, Store, StoreError,
    GSI1, TTL_ATTRIBUTE,
};
use crate::domain::events::PollChange;
use crate::domain::instance::{InstanceRecord, InstanceSummary};
use crate::domain::listing::{Cursor, ListFilter};
use crate::domain::secret::SecretDigest;
use crate::domain::token::{InstanceId, Token};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// An instance with this id exists: draw another id.
    IdTaken,
    /// The idempotency record exists (and has not expired).
    KeyTaken,
    /// Another transaction on the same idempotency record is in flight.
    KeyBusy,
}

impl Store {
    /// One conditional `PutItem`: the floor of a create. When the condition
    /// fails on an item that carries this record's token digest, the item is
    /// this very write, committed by an attempt whose answer was lost and
    /// retried by the SDK: that is a success, not a collision (which would
    /// otherwise leave an orphan instance behind).
    pub async fn put_instance(&self, record: &InstanceRecord) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(instance_item(record)))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(collision(record, c.item())),
                _ => Err(failed("PutItem", e)),
            },
        }
    }

    /// One `TransactWriteItems` of the instance and its idempotency record:
    /// both or neither. An expired record (TTL deletion is lazy) may be
    /// replaced. As with [`Store::put_instance`], finding our own instance
    /// means an earlier attempt of this very transaction committed.
    pub async fn put_instance_with_replay(
        &self,
        record: &InstanceRecord,
        replay: &ReplayRecord,
        now_epoch: i64,
    ) -> Result<PutOutcome, StoreError> {
        let instance = Put::builder()
            .table_name(&self.table)
            .set_item(Some(instance_item(record)))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(bug)?;
        let idempotency = Put::builder()
            .table_name(&self.table)
            .set_item(Some(replay_item(replay)))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now_epoch))
            .build()
            .map_err(bug)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(instance).build())
            .transact_items(TransactWriteItem::builder().put(idempotency).build())
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(PutOutcome::Created),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = e.as_service_error() else {
            return Err(failed_transaction("TransactWriteItems", e));
        };
        let reasons = cancelled.cancellation_reasons();
        let code = |i: usize| reasons.get(i).and_then(|r| r.code());
        match (code(0), code(1)) {
            (Some("ConditionalCheckFailed"), _) if collision(record, reasons[0].item()) == PutOutcome::Created => {
                Ok(PutOutcome::Created)
            }
            (_, Some("ConditionalCheckFailed")) => Ok(PutOutcome::KeyTaken),
            (Some("ConditionalCheckFailed"), _) => Ok(PutOutcome::IdTaken),
            (_, Some("TransactionConflict")) => Ok(PutOutcome::KeyBusy),
            _ => Err(failed_transaction("TransactWriteItems", e)),
        }
    }

    /// An instance by id, read strongly consistently.
    pub async fn get_instance(&self, id: InstanceId) -> Result<Option<InstanceRecord>, StoreError> {
        let pk = instance_pk(id);
        let item = self.get_consistent(&pk, "INSTANCE").await?;
        item.map(|item| read_instance(&pk, &item)).transpose()
    }

    /// Disables or enables an instance: one `UpdateItem` that sets
    /// `disabled`, moves `updatedDate` and increments `version`, conditioned
    /// on the instance still being at `version` (an item written before
    /// `version` existed counts as 1). `None` when it is not: changed
    /// meanwhile, or gone; the caller reads it again. Answers the new state.
    pub async fn set_disabled(
        &self,
        id: InstanceId,
        disabled: bool,
        version: u64,
        now: &str,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let pk = instance_pk(id);
        let write = WriteId::new()?;
        let update = self.client.update_item();
        // Enabled again: polls a disable stopped go on, at once, and a hold
        // from before is not shown as standing (only where events are on:
        // without `pollShard` the due index does not hold it).
        let update = if disabled {
            update.update_expression("SET disabled = :disabled, updatedDate = :now, #version = :next, writeId = :write")
        } else {
            update
                .update_expression(
                    "SET disabled = :disabled, updatedDate = :now, #version = :next, writeId = :write, \
                     pollDue = :due REMOVE pollProblem, pollProblemAt",
                )
                .expression_attribute_values(":due", n(epoch_ms_now()))
        };
        let result = update
            .table_name(&self.table)
            .set_key(Some(key(&pk, "INSTANCE")))
            .condition_expression(at_version(version))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":disabled", AttributeValue::Bool(disabled))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":next", n(version + 1))
            .expression_attribute_values(":write", s(&write.0))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        updated(&pk, result, Some(&write))
    }

    /// Keeps the vendor's word on the instance's credentials (the hub): one
    /// `UpdateItem` that sets `valid` and increments `version` (a change an
    /// update in flight must see), conditioned on the instance being at the
    /// `version` the call read (a change of the credentials meanwhile has the
    /// last word) with the other value; `false` when it was not.
    pub async fn set_valid(&self, id: InstanceId, valid: bool, version: u64) -> Result<bool, StoreError> {
        let condition = format!("{} AND valid <> :valid", at_version(version));
        let update = self.client.update_item();
        // Accepted again: polls a refused login stopped go on, at once
        // (only where events are on: without `pollShard` the due index does
        // not hold it).
        let update = if valid {
            update
                .update_expression(
                    "SET valid = :valid, #version = :next, pollDue = :due REMOVE pollProblem, pollProblemAt",
                )
                .expression_attribute_values(":due", n(epoch_ms_now()))
        } else {
            update.update_expression("SET valid = :valid, #version = :next")
        };
        let result = update
            .table_name(&self.table)
            .set_key(Some(key(&instance_pk(id), "INSTANCE")))
            .condition_expression(condition)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":valid", AttributeValue::Bool(valid))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":next", n(version + 1))
            .send()
            .await;
        applied(result)
    }

    /// Keeps which kind of site the vendor is, as the hub found it, where
    /// nothing has said it yet: one conditional `UpdateItem` (no version
    /// change: it is what the site is, not a change of the instance).
    pub async fn set_flavor(&self, id: InstanceId, flavor: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&instance_pk(id), "INSTANCE")))
            .update_expression("SET flavor = :flavor")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(flavor)")
            .expression_attribute_values(":flavor", s(flavor))
            .send()
            .await;
        applied(result)
    }

    /// Sets `name` and/or `tags` without reading the instance first: one
    /// `UpdateItem` that moves `updatedDate` and increments `version`
    /// (atomically, so a concurrent change is neither lost nor overwritten),
    /// conditioned on the instance existing and being what the caller may
    /// change (`guard`). `None` when it is not (gone, another organization's,
    /// not the token's, disabled, another element's): the caller reads it to
    /// say which. Answers the new state.
    pub async fn set_names(
        &self,
        id: InstanceId,
        guard: &Guard<'_>,
        name: Option<&str>,
        tags: Option<&[String]>,
        now: &str,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let pk = instance_pk(id);
        let mut set = vec!["updatedDate = :now", "#version = if_not_exists(#version, :one) + :one"];
        let mut condition = vec!["attribute_exists(PK)", "organization = :org"];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk, "INSTANCE")))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":one", n(1u64))
            .expression_attribute_values(":org", s(guard.organization));
        if let Some(name) = name {
            set.push("#name = :name, searchName = :search");
            update = update
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name))
                .expression_attribute_values(":search", s(search_name(name)));
        }
        if let Some(tags) = tags {
            set.push("tags = :tags");
            update = update.expression_attribute_values(":tags", strings(tags));
        }
        if let Some(digest) = &guard.token_digest {
            condition.push("tokenDigest = :digest AND disabled = :false");
            update = update
                .expression_attribute_values(":digest", b(&digest.0))
                .expression_attribute_values(":false", AttributeValue::Bool(false));
        }
        if let Some(element_key) = guard.element_key {
            condition.push("elementKey = :element");
            update = update.expression_attribute_values(":element", s(element_key));
        }
        let result = update
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition.join(" AND "))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        // Not conditioned on a version: an SDK retry of a committed write
        // applies the same names again, which is what was asked.
        updated(&pk, result, None)
    }

    /// Writes an instance's new state (`record`, its `version` one past the
    /// stored one): one `UpdateItem` of the fields an update can change,
    /// conditioned on the stored `version` being `record.version - 1`. `None`
    /// when it is not (changed meanwhile, or gone).
    pub async fn update_instance(&self, record: &InstanceRecord) -> Result<Option<InstanceRecord>, StoreError> {
        let summary = &record.summary;
        let pk = instance_pk(summary.id);
        let expected = summary.version.saturating_sub(1);
        let write = WriteId::new()?;
        let mut update = self.client.update_item();
        let mut set = vec![
            "#name = :name, searchName = :search, tags = :tags, #configuration = :configuration, configNames = :names, \
             secrets = :secrets, secretKeys = :secretKeys, sealedDataKey = :dataKey, updatedDate = :now, \
             valid = :valid, #version = :next, writeId = :write"
                .to_owned(),
        ];
        let mut remove = vec![];
        match &summary.flavor {
            Some(flavor) => {
                set.push("flavor = :flavor".into());
                update = update.expression_attribute_values(":flavor", s(flavor));
            }
            None => remove.push("flavor".to_owned()),
        }
        let (poll_set, poll_remove, poll_values) = poll_clause(&record.polls);
        set.extend(poll_set);
        remove.extend(poll_remove);
        for (name, value) in poll_values {
            update = update.expression_attribute_values(name, value);
        }
        let remove = if remove.is_empty() { String::new() } else { format!(" REMOVE {}", remove.join(", ")) };
        let result = update
            .table_name(&self.table)
            .set_key(Some(key(&pk, "INSTANCE")))
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .condition_expression(at_version(expected))
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#configuration", "configuration")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":name", s(&summary.name))
            .expression_attribute_values(":search", s(search_name(&summary.name)))
            .expression_attribute_values(":tags", strings(&summary.tags))
            .expression_attribute_values(":configuration", string_map(&summary.configuration))
            .expression_attribute_values(":names", string_map(&summary.names))
            .expression_attribute_values(":secrets", sealed_map(record.secrets()))
            .expression_attribute_values(":secretKeys", strings(&summary.secret_keys))
            .expression_attribute_values(":dataKey", b(&record.sealed_data_key))
            .expression_attribute_values(":now", s(&summary.updated_date))
            .expression_attribute_values(":version", n(expected))
            .expression_attribute_values(":next", n(summary.version))
            .expression_attribute_values(":valid", AttributeValue::Bool(summary.valid))
            .expression_attribute_values(":write", s(&write.0))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        updated(&pk, result, Some(&write))
    }

    /// Deletes an instance and the idempotency record that replays its
    /// token, all or none: one `TransactWriteItems` of the two deletes (of
    /// the instance alone when it was created without a key), conditioned on
    /// the instance still being at its `version`. The record is deleted only
    /// if it still names this instance (past its 24 h the key may have
    /// created another); if it names another, or is gone, the instance goes
    /// alone.
    ///
    /// A transaction even for one item: the SDK gives it a
    /// `ClientRequestToken` and sends the same one again when an answer is
    /// lost, and DynamoDB answers such a retry of a committed transaction as
    /// committed (for 10 minutes). So an instance found gone at the write
    /// was deleted by another call, after this one read it: `Changed` (read
    /// again: `404`). (moto ignores the token: there, a lost answer's retry
    /// reads as that race.)
    pub async fn delete_instance(&self, record: &InstanceRecord) -> Result<DeleteOutcome, StoreError> {
        let with_record = record.replay_key.is_some();
        let result = self.delete_transaction(record, with_record).await?;
        let verdict = match result {
            None => return Ok(DeleteOutcome::Deleted),
            Some(reasons) => transaction_verdict(&reasons),
        };
        match verdict {
            TransactionVerdict::Outcome(outcome) => Ok(outcome),
            // Only the record's condition failed: it is gone or names another.
            TransactionVerdict::RecordOnly if with_record => match self.delete_transaction(record, false).await? {
                None => Ok(DeleteOutcome::Deleted),
                Some(reasons) => match transaction_verdict(&reasons) {
                    TransactionVerdict::Outcome(outcome) => Ok(outcome),
                    _ => Err(StoreError::Bug("a one-item delete was cancelled for another item".into())),
                },
            },
            // (delete_transaction answers no other cancellation.)
            TransactionVerdict::RecordOnly | TransactionVerdict::Failed => {
                Err(StoreError::Bug("a one-item delete was cancelled for another item".into()))
            }
        }
    }

    /// The delete transaction; `None` when it committed, else the reasons
    /// of its cancellation (a cancellation for transient reasons only is
    /// `Unavailable`).
    async fn delete_transaction(
        &self,
        record: &InstanceRecord,
        with_record: bool,
    ) -> Result<Option<Vec<CancellationReason>>, StoreError> {
        let pk = instance_pk(record.summary.id);
        let instance = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, "INSTANCE")))
            .condition_expression(at_version(record.summary.version))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(record.summary.version))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(bug)?;
        let mut request =
            self.client.transact_write_items().transact_items(TransactWriteItem::builder().delete(instance).build());
        if let (true, Some(digest)) = (with_record, &record.replay_key) {
            let replay = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(&replay_pk(&record.summary.organization, digest), "IDEMPOTENCY")))
                .condition_expression("instanceId = :id")
                .expression_attribute_values(":id", n(record.summary.id.get()))
                .build()
                .map_err(bug)?;
            request = request.transact_items(TransactWriteItem::builder().delete(replay).build());
        }
        match request.send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if transaction_verdict(c.cancellation_reasons()) != TransactionVerdict::Failed =>
                {
                    Ok(Some(c.cancellation_reasons().to_vec()))
                }
                _ => Err(failed_transaction("TransactWriteItems", e)),
            },
        }
    }

    /// The instance an `Element <token>` belongs to: one strongly consistent
    /// read (the token carries the id), then a constant-time comparison of
    /// the token's digest with the stored one.
    pub async fn instance_by_token(&self, token: &Token) -> Result<Option<InstanceRecord>, StoreError> {
        let Some(id) = token.instance_id() else {
            return Ok(None);
        };
        let found = self.get_instance(id).await?;
        Ok(found.filter(|r| r.token_digest.ct_eq(&token.digest())))
    }

    /// One page of an organization's instances, newest first: one `Query` on
    /// `GSI1` (eventually consistent), the filters applied by DynamoDB. Without
    /// a filter it asks for one item more than the page, to know whether
    /// another page follows; with one, it reads what one query reads (up to
    /// 1 MB of the index) and keeps the first `page_size` matches, so a page
    /// may hold fewer and still be followed by another. Returns the page and
    /// where the next one starts.
    pub async fn list_page(
        &self,
        organization: &str,
        filter: &ListFilter,
        page_size: usize,
        after: Option<&Cursor>,
    ) -> Result<(Vec<InstanceSummary>, Option<Cursor>), StoreError> {
        let partition = format!("ORG#{organization}");
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :sk)")
            .expression_attribute_values(":pk", s(&partition))
            .expression_attribute_values(":sk", s("INSTANCE#"))
            .scan_index_forward(false);
        let mut conditions = Vec::new();
        for (i, tag) in filter.tags.iter().enumerate() {
            conditions.push(format!("contains(tags, :t{i})"));
            query = query.expression_attribute_values(format!(":t{i}"), s(tag));
        }
        if let Some(text) = &filter.search_text {
            conditions.push("(contains(searchName, :q) OR contains(elementKey, :q))".to_owned());
            query = query.expression_attribute_values(":q", s(text));
        }
        if let Some(key) = &filter.element_key {
            conditions.push("elementKey = :element".to_owned());
            query = query.expression_attribute_values(":element", s(key));
        }
        query = if conditions.is_empty() {
            query.limit(i32::try_from(page_size + 1).unwrap_or(i32::MAX))
        } else {
            query.filter_expression(conditions.join(" AND "))
        };
        if let Some(c) = after {
            query = query
                .exclusive_start_key("GSI1PK", s(&partition))
                .exclusive_start_key("GSI1SK", s(gsi1_sk(&c.created_date, c.id)))
                .exclusive_start_key("PK", s(instance_pk(c.id)))
                .exclusive_start_key("SK", s("INSTANCE"));
        }
        let out = query.send().await.map_err(|e| failed("Query", e))?;
        let mut page = out.items().iter().map(read_summary).collect::<Result<Vec<_>, _>>()?;
        let next = if page.len() > page_size {
            page.truncate(page_size);
            page.last().map(|last| Cursor { created_date: last.created_date.clone(), id: last.id })
        } else {
            out.last_evaluated_key().and_then(cursor_after)
        };
        Ok((page, next))
    }

    /// An organization's instances, oldest first (through `GSI1`, eventually
    /// consistent): for tests and the operator.
    pub async fn list_instances(&self, organization: &str) -> Result<Vec<InstanceSummary>, StoreError> {
        let items: Vec<Item> = query_all(self.organization_index(organization)).await?;
        items.iter().map(read_summary).collect()
    }
}

/// The condition of a change: the instance is still at `version` (an item
/// written before `version` existed counts as 1). Uses `#version`.
pub(super) fn at_version(version: u64) -> &'static str {
    if version == 1 {
        "attribute_exists(PK) AND (#version = :version OR attribute_not_exists(#version))"
    } else {
        "#version = :version"
    }
}

/// Whether a conditional `UpdateItem` applied (`false`: its condition failed).
fn applied(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(failed("UpdateItem", e)),
    }
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// This call deleted it.
    Deleted,
    /// It is at another version, gone (another call deleted it), or another
    /// transaction is writing it: read it again and decide again.
    Changed,
}

/// What a cancelled delete transaction (the instance, then its idempotency
/// record) means.
#[derive(Debug, PartialEq, Eq)]
pub enum TransactionVerdict {
    Outcome(DeleteOutcome),
    /// Only the record's condition failed: the instance may go alone.
    RecordOnly,
    /// Cancelled for another reason (validation, throttling, capacity).
    Failed,
}

pub fn transaction_verdict(reasons: &[CancellationReason]) -> TransactionVerdict {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    let known = |c: &str| matches!(c, "None" | "ConditionalCheckFailed" | "TransactionConflict");
    if reasons.is_empty() || !(0..reasons.len()).all(|i| known(code(i))) {
        return TransactionVerdict::Failed;
    }
    // Another transaction is writing one of the two: read again, decide again.
    if (0..reasons.len()).any(|i| code(i) == "TransactionConflict") {
        return TransactionVerdict::Outcome(DeleteOutcome::Changed);
    }
    // The instance's condition failed: at another version, or gone (deleted
    // by another call: this call's own retry is answered as committed).
    match code(0) {
        "ConditionalCheckFailed" => TransactionVerdict::Outcome(DeleteOutcome::Changed),
        _ => TransactionVerdict::RecordOnly,
    }
}

/// A write's own mark (`writeId`, 16 random bytes in hex), set by every
/// change conditioned on a version: when DynamoDB applied a write but its
/// answer was lost and the SDK sent it again, the second attempt fails its
/// own condition; the item it fails on carrying this mark says the write is
/// ours and landed.
pub(super) struct WriteId(pub(super) String);

impl WriteId {
    pub(super) fn new() -> Result<Self, StoreError> {
        let mut raw = [0u8; 16];
        getrandom::getrandom(&mut raw).map_err(|e| StoreError::Bug(format!("no random bytes: {e}")))?;
        Ok(WriteId(raw.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// The outcome of a conditional `UpdateItem` asked for `ALL_NEW` (and, with
/// a `write` mark, for the old item when its condition fails): the new
/// state; or `None` when the condition failed (changed meanwhile, or gone)
/// or another transaction is writing the item (`TransactionConflict`, which
/// the SDK does not retry): the caller reads it again. A condition that
/// failed on the caller's own `write` is the new state.
fn updated(
    pk: &str,
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
    write: Option<&WriteId>,
) -> Result<Option<InstanceRecord>, StoreError> {
    let e = match result {
        Ok(out) => return out.attributes().map(|item| read_instance(pk, item)).transpose(),
        Err(e) => e,
    };
    match e.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(c)) => match (c.item(), write) {
            (Some(item), Some(write)) if is_own_write(item, write) => read_instance(pk, item).map(Some),
            _ => Ok(None),
        },
        Some(UpdateItemError::TransactionConflictException(_)) => Ok(None),
        _ => Err(failed("UpdateItem", e)),
    }
}

fn is_own_write(item: &Item, write: &WriteId) -> bool {
    item.get("writeId").and_then(|v| v.as_s().ok()).is_some_and(|w| *w == write.0)
}

/// What a failed `attribute_not_exists(PK)` on an instance means, given the
/// item that is there.
fn collision(record: &InstanceRecord, existing: Option<&Item>) -> PutOutcome {
    let ours = existing
        .and_then(|item| item.get("tokenDigest"))
        .and_then(|v| v.as_b().ok())
        .and_then(|b| SecretDigest::from_slice(b.as_ref()))
        .is_some_and(|d| d.ct_eq(&record.token_digest));
    if ours {
        PutOutcome::Created
    } else {
        PutOutcome::IdTaken
    }
}

pub(super) fn instance_pk(id: InstanceId) -> String {
    format!("INSTANCE#{id}")
}

/// The organization index's sort key: creation time (fixed width, so string
/// order is time order), then the id.
pub(super) fn gsi1_sk(created_date: &str, id: InstanceId) -> String {
    format!("INSTANCE#{created_date}#{id}")
}

fn strings(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(s).collect())
}

fn string_map(pairs: &[(String, String)]) -> AttributeValue {
    AttributeValue::M(pairs.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn sealed_map(pairs: &[(String, Vec<u8>)]) -> AttributeValue {
    AttributeValue::M(pairs.iter().map(|(k, v)| (k.clone(), b(v))).collect())
}

fn instance_item(record: &InstanceRecord) -> Item {
    let r = &record.summary;
    let mut item = item([
        ("PK", s(instance_pk(r.id))),
        ("SK", s("INSTANCE")),
        ("GSI1PK", s(format!("ORG#{}", r.organization))),
        ("GSI1SK", s(gsi1_sk(&r.created_date, r.id))),
        ("id", n(r.id.get())),
        ("organization", s(&r.organization)),
        ("user", s(&r.user)),
        ("name", s(&r.name)),
        ("tags", strings(&r.tags)),
        ("elementKey", s(&r.element_key)),
        ("elementId", n(r.element_id)),
        ("configuration", string_map(&r.configuration)),
        ("configNames", string_map(&r.names)),
        ("secrets", sealed_map(record.secrets())),
        ("sealedDataKey", b(&record.sealed_data_key)),
        ("tokenDigest", b(&record.token_digest.0)),
        ("createdDate", s(&r.created_date)),
        ("updatedDate", s(&r.updated_date)),
        ("valid", AttributeValue::Bool(r.valid)),
        ("disabled", AttributeValue::Bool(r.disabled)),
        ("cachingEnabled", AttributeValue::Bool(r.caching_enabled)),
        ("maxCacheSize", n(r.max_cache_size)),
        ("cacheTimeToLive", n(r.cache_time_to_live)),
        ("secretKeys", strings(&r.secret_keys)),
        ("searchName", s(search_name(&r.name))),
        ("version", n(r.version)),
    ]);
    if let Some(key) = &record.replay_key {
        item.insert("replayKey".into(), s(key));
    }
    if let Some(flavor) = &r.flavor {
        item.insert("flavor".into(), s(flavor));
    }
    for (name, value) in poll_attributes(&record.polls) {
        item.insert(name.into(), value);
    }
    item
}

/// What a change made without reading the instance first requires of it.
pub struct Guard<'a> {
    /// The caller's organization: it must be the instance's.
    pub organization: &'a str,
    /// When the instance is named by its `Element` token: the token's digest,
    /// which must be the instance's, and the instance must be enabled.
    pub token_digest: Option<SecretDigest>,
    /// Under `/elements/{keyOrId}`: the instance must be of that element.
    pub element_key: Option<&'a str>,
}

/// What the organization's index (`GSI1`) projects besides its keys: what a
/// list answers and filters on, never a sealed value or the token digest.
pub const INDEX_PROJECTION: &[&str] = &[
    "id",
    "organization",
    "user",
    "name",
    "tags",
    "elementKey",
    "elementId",
    "configuration",
    "configNames",
    "secretKeys",
    "searchName",
    "createdDate",
    "updatedDate",
    "valid",
    "disabled",
    "cachingEnabled",
    "maxCacheSize",
    "cacheTimeToLive",
    "version",
];

/// The name as a search compares it (`searchText` is case-insensitive;
/// DynamoDB's `contains` is not).
pub(super) fn search_name(name: &str) -> String {
    name.to_lowercase()
}

/// A map of strings (the configuration's plain values, the names entries
/// were given by), sorted by key; an absent optional one is empty.
fn string_pairs(r: &Reader<'_>, name: &str, optional: bool) -> Result<Vec<(String, String)>, StoreError> {
    if optional && !r.has(name) {
        return Ok(vec![]);
    }
    let mut pairs: Vec<(String, String)> = r
        .get(name)?
        .as_m()
        .map_err(|_| r.corrupt(name))?
        .iter()
        .map(|(k, v)| v.as_s().map(|v| (k.clone(), v.clone())).map_err(|_| r.corrupt(name)))
        .collect::<Result<_, _>>()?;
    pairs.sort();
    Ok(pairs)
}

fn tags(r: &Reader<'_>) -> Result<Vec<String>, StoreError> {
    r.get("tags")?
        .as_l()
        .map_err(|_| r.corrupt("tags"))?
        .iter()
        .map(|t| t.as_s().cloned().map_err(|_| r.corrupt("tags")))
        .collect()
}

/// An item of the organization's index (`GSI1` projects what a list
/// needs: no sealed value, no token digest). Items written before
/// `secretKeys` and `version` existed read with what their `secrets` say and
/// version 1 (`admin migrate-dates` adds both).
pub(super) fn read_summary(item: &Item) -> Result<InstanceSummary, StoreError> {
    let pk = item.get("PK").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
    let r = Reader::new(pk, item);
    let secret_keys = match item.get("secretKeys") {
        Some(v) => v
            .as_l()
            .map_err(|_| r.corrupt("secretKeys"))?
            .iter()
            .map(|k| k.as_s().cloned().map_err(|_| r.corrupt("secretKeys")))
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            item.get("secrets").and_then(|m| m.as_m().ok()).map(|m| m.keys().cloned().collect()).unwrap_or_default()
        }
    };
    Ok(InstanceSummary {
        id: r.id("id")?,
        organization: r.s("organization")?,
        user: r.s("user")?,
        name: r.s("name")?,
        tags: tags(&r)?,
        element_key: r.s("elementKey")?,
        element_id: r.n("elementId")?,
        configuration: string_pairs(&r, "configuration", false)?,
        secret_keys,
        names: string_pairs(&r, "configNames", true)?,
        created_date: r.stamp("createdDate")?,
        updated_date: r.stamp("updatedDate")?,
        valid: r.bool("valid")?,
        disabled: r.bool("disabled")?,
        caching_enabled: r.bool("cachingEnabled")?,
        max_cache_size: r.n("maxCacheSize")?,
        cache_time_to_live: r.n("cacheTimeToLive")?,
        version: if item.contains_key("version") { r.n("version")? } else { 1 },
        flavor: if r.has("flavor") { Some(r.s("flavor")?) } else { None },
    })
}

/// The cursor after an index item's key (`GSI1SK` is `INSTANCE#<date>#<id>`).
fn cursor_after(key: &Item) -> Option<Cursor> {
    let sk = key.get("GSI1SK")?.as_s().ok()?.strip_prefix("INSTANCE#")?;
    let (created_date, id) = sk.rsplit_once('#')?;
    Some(Cursor { created_date: created_date.to_owned(), id: InstanceId::new(id.parse().ok()?)? })
}

pub(super) fn read_instance(pk: &str, item: &Item) -> Result<InstanceRecord, StoreError> {
    let r = Reader::new(pk, item);
    let secrets: Vec<(String, Vec<u8>)> = r
        .get("secrets")?
        .as_m()
        .map_err(|_| r.corrupt("secrets"))?
        .iter()
        .map(|(k, v)| v.as_b().map(|v| (k.clone(), v.as_ref().to_vec())).map_err(|_| r.corrupt("secrets")))
        .collect::<Result<_, _>>()?;
    let replay_key = if r.has("replayKey") { Some(r.s("replayKey")?) } else { None };
    Ok(InstanceRecord::new(read_summary(item)?, secrets, r.b("sealedDataKey")?, r.digest("tokenDigest")?, replay_key))
}

/// Now, in epoch milliseconds (when a poll stopped or is due again).
fn epoch_ms_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The update expression's part of a change of the instance for its polls,
/// and its values.
pub(super) fn poll_clause(change: &PollChange) -> (Vec<String>, Vec<String>, Vec<(&'static str, AttributeValue)>) {
    const ALL: &str = "pollShard, pollDue, pollCursor, pollFloor, pollClock, pollSeen, pollWindow, pollZone, \
                       pollZoneAt, pollOutbox, pollOutboxOf, pollWrite, pollProblem, pollProblemAt";
    match change {
        PollChange::Keep => (vec![], vec![], vec![]),
        PollChange::Start { .. } => {
            let values = poll_attributes(change).into_iter().map(|(name, v)| (value_name(name), v)).collect();
            (
                vec!["pollShard = :pollShard, pollDue = :pollDue, pollCursor = :pollCursor, pollFloor = :pollFloor"
                    .into()],
                vec!["pollSeen, pollWindow, pollClock, pollZone, pollZoneAt, pollOutbox, pollOutboxOf, pollProblem, \
                     pollProblemAt"
                    .into()],
                values,
            )
        }
        PollChange::Stop => (vec![], vec![ALL.into()], vec![]),
        PollChange::Resume { due_ms } => (
            vec!["pollDue = if_not_exists(pollDue, :pollDue)".into()],
            // (The same site: its window and clock stand. Another site is a
            // Start, see `domain::events::poll_change`.)
            vec!["pollZone, pollZoneAt, pollProblem, pollProblemAt".into()],
            vec![(":pollDue", n(due_ms))],
        ),
        PollChange::Reschedule { due_ms } => (
            vec!["pollDue = :pollDue".into()],
            vec!["pollProblem, pollProblemAt".into()],
            vec![(":pollDue", n(due_ms))],
        ),
    }
}

fn value_name(attribute: &str) -> &'static str {
    match attribute {
        "pollShard" => ":pollShard",
        "pollDue" => ":pollDue",
        "pollCursor" => ":pollCursor",
        _ => ":pollFloor",
    }
}

/// The attributes a create writes for its polls.
pub(super) fn poll_attributes(change: &PollChange) -> Vec<(&'static str, AttributeValue)> {
    match change {
        PollChange::Start { shard, due_ms, since_ms } => vec![
            ("pollShard", s(shard)),
            ("pollDue", n(due_ms)),
            ("pollCursor", n(since_ms)),
            ("pollFloor", n(since_ms - crate::domain::poll::SKEW_MS)),
        ],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[(&str, bool)]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|(code, with_item)| {
                let r = CancellationReason::builder().code(*code);
                if *with_item {
                    r.item("PK", s("INSTANCE#1")).build()
                } else {
                    r.build()
                }
            })
            .collect()
    }

    #[test]
    fn a_cancelled_delete_is_read_as_a_change_meanwhile_never_as_done() {
        use TransactionVerdict::*;
        let changed = Outcome(DeleteOutcome::Changed);
        // At another version, or gone: another call changed or deleted it.
        assert_eq!(transaction_verdict(&reasons(&[("ConditionalCheckFailed", true)])), changed);
        assert_eq!(transaction_verdict(&reasons(&[("ConditionalCheckFailed", false)])), changed);
        assert_eq!(transaction_verdict(&reasons(&[("ConditionalCheckFailed", false), ("None", false)])), changed);
        // Another transaction on either item.
        assert_eq!(transaction_verdict(&reasons(&[("TransactionConflict", false), ("None", false)])), changed);
        assert_eq!(transaction_verdict(&reasons(&[("None", false), ("TransactionConflict", false)])), changed);
        // Only the record's condition: the instance may go alone.
        assert_eq!(transaction_verdict(&reasons(&[("None", false), ("ConditionalCheckFailed", false)])), RecordOnly);
        // Anything else is not a verdict.
        assert_eq!(transaction_verdict(&reasons(&[("ThrottlingError", false), ("None", false)])), Failed);
        assert_eq!(transaction_verdict(&[]), Failed);
    }
}
