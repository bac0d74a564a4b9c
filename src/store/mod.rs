//! Every DynamoDB call of the service, and the item layout. Nothing else in
//! the crate builds an `AttributeValue`. One file a concern: `instances`,
//! `idempotency`, `credentials` (organizations, users, authentication),
//! `setup` (table creation, migrations); this one holds the client, the
//! errors and the helpers they share.
//!
//! One table (`TABLE_NAME`), keys `PK` (S) and `SK` (S), two global secondary
//! indexes: `GSI1` (`GSI1PK`, `GSI1SK`; it projects `instances::INDEX_PROJECTION`,
//! what a list needs: no sealed value, no token digest) and `DUE`
//! (`pollShard` S, `pollDue` N, keys only: what is due, the instances' polls
//! and the notifications' attempts, laid out in `events` with the event
//! log), TTL attribute
//! `expiresAt` (epoch seconds). Timestamps are ISO 8601 UTC with exactly three
//! digits of milliseconds, so that `GSI1SK` sorts in time order; items written
//! before the width was fixed read as the same instant and are rewritten by
//! [`Store::migrate_timestamps`] (`admin migrate-dates`).
//!
//! | item | PK | SK | other attributes |
//! |---|---|---|---|
//! | instance | `INSTANCE#<id>` | `INSTANCE` | `GSI1PK`=`ORG#<org>`, `GSI1SK`=`INSTANCE#<createdDate>#<id>`, `id` N, `organization`, `user`, `name`, `tags` L, `elementKey`, `elementId` N, `configuration` M (non-secret values, S), `configNames` M (entry key to the alias its client gave it by, S; empty when none), `secrets` M (sealed values, B), `sealedDataKey` B, `tokenDigest` B, `createdDate`, `updatedDate`, `valid`, `disabled`, `cachingEnabled` BOOL, `maxCacheSize`, `cacheTimeToLive` N, `secretKeys` L (the secret entries set), `searchName` (the name in lower case), `version` N (1 at the create, +1 a change), `writeId` (the mark of the last change conditioned on a version, so that an SDK retry of a write that landed knows it), `flavor` (which kind of site the vendor is, `cloud`/`server`, as the credential check or the hub found it; absent until one has), `replayKey` (the key digest of its idempotency record, when created with one) |
//! | idempotency record | `IDEMPOTENCY#<org>#<sha256(key) hex>` | `IDEMPOTENCY` | `instanceId` N, `sealedDataKey` B, `sealedResponse` B (the first response and the request's fingerprint, sealed), `createdDate`, `expiresAt` N (created + 24 h; TTL) |
//! | organization | `ORG#<org>` | `ORG` | `organization`, `secretDigest` B, `createdDate`, `usersVersion` N (+1 at every user added; a deletion is conditioned on it), `previousDigest` B and `previousValidUntil` N (epoch ms: the secret a rotation replaced with a grace period, until when it works) |
//! | organization registry entry | `ORGS` | `ORG#<org>` | `organization`, `createdDate`: one per organization, put and deleted in the organization's own transactions (`admin list-organizations` is one `Query` of `ORGS`; `admin register-organizations` enters those created before it) |
//! | organization secret | `ORGSECRET#<sha256 hex>` | `ORGSECRET` | `organization`, `secretDigest` B; once replaced with a grace period, `validUntil` N (epoch ms, compared at authentication) and `expiresAt` N (TTL, which deletes lazily) |
//! | user | `ORG#<org>` | `USER#<email>` | `email`, `secretDigest` B, `enabled` BOOL, `createdDate`, `previousDigest` B and `previousValidUntil` N (as the organization's) |
//! | user secret | `USERSECRET#<sha256 hex>` | `USERSECRET` | `organization`, `email`, `secretDigest` B, `enabled` BOOL; `validUntil` N and `expiresAt` N (as the organization secret's) |
//!
//! Access patterns: create an instance (one conditional `PutItem`; with an
//! idempotency key, one `TransactWriteItems` of the instance and its record);
//! get an instance or resolve a token (one strongly consistent `GetItem`: the
//! token carries the id); a page of an organization's instances (one `Query`
//! on `GSI1`, newest first, filters applied by DynamoDB); change an instance
//! (one `UpdateItem` conditioned on its `version`; a failed condition answers
//! the old item, whose `writeId` tells a retried write that landed from a
//! concurrent change); delete it (one `TransactWriteItems` of the instance
//! and its idempotency record, or one `DeleteItem`, conditioned on its
//! `version`, always a transaction, whose retries the SDK's
//! `ClientRequestToken` makes idempotent; an instance found gone was deleted
//! by another call); a
//! `TransactionConflict` (another transaction writing the item, which the
//! SDK does not retry) is a change meanwhile: read again, decide again; authenticate (one strongly
//! consistent `BatchGetItem` of the two secret items; a replaced secret past
//! its `validUntil` is refused). The operator's lists: organizations (one
//! strongly consistent `Query` of `ORGS`, then per organization a counting
//! `Query` of its partition and of `GSI1`), users (one `Query` of `ORG#<org>`,
//! `begins_with(SK, "USER#")`). A rotation, a disable, a user's or an
//! organization's deletion is one `TransactWriteItems` conditioned on the
//! digest read. Every put of a new item
//! is conditional on `attribute_not_exists(PK)`: nothing is ever overwritten.

mod credentials;
pub mod events;
mod idempotency;
mod instances;
mod setup;

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

pub use crate::domain::instance::{InstanceRecord, Principal};
pub use credentials::{AdminOutcome, Refusal, UserState};
pub use idempotency::ReplayRecord;
pub use instances::{DeleteOutcome, Guard, PutOutcome};

use crate::domain::secret::SecretDigest;
use crate::domain::token::InstanceId;
use crate::sdk::{describe_error, is_transient, Deferred};

type Item = HashMap<String, AttributeValue>;

pub const GSI1: &str = "GSI1";
/// The sparse index of the instances whose polls are due (`store::events`).
pub const DUE_INDEX: &str = "DUE";
pub const TTL_ATTRIBUTE: &str = "expiresAt";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, unreachable, timed out or failing with a 5xx after the
    /// SDK's retries: may succeed later.
    #[error("DynamoDB {operation} failed: {detail}")]
    Unavailable { operation: &'static str, detail: String },
    /// Refused by DynamoDB for good (no such table, access denied, a request
    /// it finds invalid): retrying changes nothing.
    #[error("DynamoDB refused {operation}: {detail}")]
    Refused { operation: &'static str, detail: String },
    /// An item that does not have the layout above: a bug or a hand edit.
    #[error("item {pk} is not as documented: {detail}")]
    Corrupt { pk: String, detail: String },
    /// A request that could not be built: a bug.
    #[error("a DynamoDB request could not be built: {0}")]
    Bug(String),
}

impl StoreError {
    /// Whether retrying later may succeed (the API answers `503` then, `500` otherwise).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

pub struct Store {
    client: Deferred<Client>,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store { client: Deferred::ready(client), table: table.into() }
    }

    /// A store whose client is built on its first call.
    pub fn deferred(client: Deferred<Client>, table: impl Into<String>) -> Self {
        Store { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_consistent(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        Ok(out.item)
    }

    /// Every item whose sort key is `sk`: a `Scan`, for the operator's
    /// one-off commands only (never on a request's path).
    async fn scan_sort_key(&self, sk: &str) -> Result<Vec<Item>, StoreError> {
        scan_all(
            self.client
                .scan()
                .table_name(&self.table)
                .filter_expression("SK = :sk")
                .expression_attribute_values(":sk", s(sk)),
        )
        .await
    }

    /// A `Query` of an organization's instances in `GSI1`, to be sent.
    fn organization_index(
        &self,
        organization: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :sk)")
            .expression_attribute_values(":pk", s(format!("ORG#{organization}")))
            .expression_attribute_values(":sk", s("INSTANCE#"))
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .map_err(bug)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(bug)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction; returns the cancellation reasons (empty when it
    /// committed), one per item, "None" for items that were not the cause.
    async fn transact(
        &self,
        operation: &'static str,
        writes: Vec<TransactWriteItem>,
    ) -> Result<Vec<String>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(Vec::new()),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
                }
                _ => Err(failed_transaction(operation, e)),
            },
        }
    }
}

/// Codes a transaction's cancellation reason carries that retrying later may
/// get past: another transaction on the item, throttling, capacity.
const TRANSIENT_REASONS: &[&str] =
    &["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

/// Whether a cancelled transaction may go through later: every reason that
/// is not `None` is a transient one. (The cancellation itself is a `400`
/// `TransactionCanceledException`, whatever its reasons, so the SDK's
/// classification alone would call it permanent.)
fn cancelled_transiently(reasons: &[aws_sdk_dynamodb::types::CancellationReason]) -> bool {
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).filter(|c| *c != "None").collect();
    !codes.is_empty() && codes.iter().all(|c| TRANSIENT_REASONS.contains(c))
}

/// A failed `TransactWriteItems`, told apart as [`failed`] does, and a
/// cancellation for transient reasons only is `Unavailable` (`503`).
fn failed_transaction(
    operation: &'static str,
    e: SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, HttpResponse>,
) -> StoreError {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c))
            if cancelled_transiently(c.cancellation_reasons()) =>
        {
            StoreError::Unavailable { operation, detail: describe_error(&e) }
        }
        _ => failed(operation, e),
    }
}

/// Every item of a `Query`, page after page.
async fn query_all(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    query.into_paginator().items().send().collect::<Result<_, _>>().await.map_err(|e| failed("Query", e))
}

/// Every item of a `Scan`, page after page.
async fn scan_all(
    scan: aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    scan.into_paginator().items().send().collect::<Result<_, _>>().await.map_err(|e| failed("Scan", e))
}

struct Reader<'a> {
    pk: &'a str,
    item: &'a Item,
}

impl<'a> Reader<'a> {
    fn new(pk: &'a str, item: &'a Item) -> Self {
        Reader { pk, item }
    }
    fn corrupt(&self, attribute: &str) -> StoreError {
        StoreError::Corrupt { pk: self.pk.to_owned(), detail: format!("attribute {attribute} is missing or mistyped") }
    }
    fn get(&self, name: &str) -> Result<&'a AttributeValue, StoreError> {
        self.item.get(name).ok_or_else(|| self.corrupt(name))
    }
    fn has(&self, name: &str) -> bool {
        self.item.contains_key(name)
    }
    fn s(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)?.as_s().cloned().map_err(|_| self.corrupt(name))
    }
    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.get(name)?.as_n().ok().and_then(|v| v.parse().ok()).ok_or_else(|| self.corrupt(name))
    }
    fn b(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.get(name)?.as_b().map(|v| v.as_ref().to_vec()).map_err(|_| self.corrupt(name))
    }
    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        self.get(name)?.as_bool().copied().map_err(|_| self.corrupt(name))
    }
    fn id(&self, name: &str) -> Result<InstanceId, StoreError> {
        InstanceId::new(self.n(name)?).ok_or_else(|| self.corrupt(name))
    }
    /// A timestamp in the three-digit form, whatever width it was stored in.
    fn stamp(&self, name: &str) -> Result<String, StoreError> {
        crate::domain::time::canonical(&self.s(name)?).ok_or_else(|| self.corrupt(name))
    }
    fn digest(&self, name: &str) -> Result<SecretDigest, StoreError> {
        SecretDigest::from_slice(&self.b(name)?).ok_or_else(|| self.corrupt(name))
    }
}

fn item<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn key(pk: &str, sk: &str) -> Item {
    item([("PK", s(pk)), ("SK", s(sk))])
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn b(v: &[u8]) -> AttributeValue {
    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(v))
}

/// A failed call, told apart: transient (`Unavailable`) or for good (`Refused`).
fn failed<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let detail = describe_error(&e);
    if is_transient(&e) {
        StoreError::Unavailable { operation, detail }
    } else {
        StoreError::Refused { operation, detail }
    }
}

fn bug(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Bug(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::CancellationReason;

    #[test]
    fn a_transaction_cancelled_by_conflicts_or_throttling_only_may_succeed_later() {
        let of = |codes: &[&str]| -> Vec<CancellationReason> {
            codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect()
        };
        assert!(cancelled_transiently(&of(&["TransactionConflict", "None"])));
        assert!(cancelled_transiently(&of(&["None", "ThrottlingError", "TransactionConflict"])));
        assert!(cancelled_transiently(&of(&["ProvisionedThroughputExceeded"])));
        assert!(!cancelled_transiently(&of(&["ConditionalCheckFailed", "TransactionConflict"])));
        assert!(!cancelled_transiently(&of(&["ValidationError"])));
        assert!(!cancelled_transiently(&of(&["None", "None"])));
    }
}
