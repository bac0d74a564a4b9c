//! Every DynamoDB call of the service, and the item layout. Nothing else in
//! the crate builds an `AttributeValue`.
//!
//! One table (`TABLE_NAME`), keys `PK` (S) and `SK` (S), one global secondary
//! index `GSI1` (`GSI1PK`, `GSI1SK`, all attributes), TTL attribute
//! `expiresAt` (epoch seconds). Timestamps are ISO 8601 UTC with exactly three
//! digits of milliseconds, so that `GSI1SK` sorts in time order; items written
//! before the width was fixed read as the same instant and are rewritten by
//! [`Store::migrate_timestamps`] (`admin migrate-dates`).
//!
//! | item | PK | SK | other attributes |
//! |---|---|---|---|
//! | instance | `INSTANCE#<id>` | `INSTANCE` | `GSI1PK`=`ORG#<org>`, `GSI1SK`=`INSTANCE#<createdDate>#<id>`, `id` N, `organization`, `user`, `name`, `tags` L, `elementKey`, `elementId` N, `configuration` M (non-secret values, S), `secrets` M (sealed values, B), `sealedDataKey` B, `tokenDigest` B, `createdDate`, `updatedDate`, `valid`, `disabled`, `cachingEnabled` BOOL, `maxCacheSize`, `cacheTimeToLive` N |
//! | idempotency record | `IDEMPOTENCY#<org>#<sha256(key) hex>` | `IDEMPOTENCY` | `instanceId` N, `sealedDataKey` B, `sealedResponse` B (the first response and the request's fingerprint, sealed), `createdDate`, `expiresAt` N (created + 24 h; TTL) |
//! | organization | `ORG#<org>` | `ORG` | `organization`, `secretDigest` B, `createdDate` |
//! | organization secret | `ORGSECRET#<sha256 hex>` | `ORGSECRET` | `organization`, `secretDigest` B |
//! | user | `ORG#<org>` | `USER#<email>` | `email`, `secretDigest` B, `enabled` BOOL, `createdDate` |
//! | user secret | `USERSECRET#<sha256 hex>` | `USERSECRET` | `organization`, `email`, `secretDigest` B, `enabled` BOOL |
//!
//! Access patterns: create an instance (one conditional `PutItem`; with an
//! idempotency key, one `TransactWriteItems` of the instance and its record);
//! get an instance or resolve a token (one strongly consistent `GetItem`: the
//! token carries the id); list an organization's instances (`GSI1`, newest
//! last); authenticate (one strongly consistent `BatchGetItem` of the two
//! secret items). Every put of a new item is conditional on
//! `attribute_not_exists(PK)`: nothing is ever overwritten.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use crate::domain::secret::SecretDigest;
use crate::domain::token::{InstanceId, Token};
use crate::sdk::{describe_error, is_transient, Deferred};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

type Item = HashMap<String, AttributeValue>;

pub const GSI1: &str = "GSI1";
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

/// An instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub organization: String,
    pub user: String,
    pub name: String,
    pub tags: Vec<String>,
    pub element_key: String,
    pub element_id: u64,
    /// Non-secret configuration values.
    pub configuration: Vec<(String, String)>,
    /// Sealed secret configuration values (see `seal`).
    pub secrets: Vec<(String, Vec<u8>)>,
    /// The KMS-encrypted data key the secrets are sealed under.
    pub sealed_data_key: Vec<u8>,
    pub token_digest: SecretDigest,
    pub created_date: String,
    pub updated_date: String,
    pub valid: bool,
    pub disabled: bool,
    pub caching_enabled: bool,
    pub max_cache_size: u64,
    pub cache_time_to_live: u64,
}

/// What an `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRecord {
    pub organization: String,
    pub key_digest: String,
    pub instance_id: InstanceId,
    pub sealed_data_key: Vec<u8>,
    pub sealed_response: Vec<u8>,
    pub created_date: String,
    pub expires_at: i64,
}

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

/// Why a pair of secrets was refused: for the operator's log only (the
/// answer is one `401` whatever the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownUserSecret,
    UnknownOrganizationSecret,
    /// The stored digest differs from the one looked up: a hand edit.
    DigestMismatch,
    /// The user belongs to another organization than the secret names.
    OrganizationMismatch,
    UserDisabled,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownUserSecret => "unknown user secret",
            Refusal::UnknownOrganizationSecret => "unknown organization secret",
            Refusal::DigestMismatch => "stored secret digest differs",
            Refusal::OrganizationMismatch => "user and organization secrets belong to different organizations",
            Refusal::UserDisabled => "user disabled",
        }
    }
}

/// The owner of a verified pair of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization: String,
    pub user: String,
}

/// A user as last read: what a change of it is conditioned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub digest: SecretDigest,
    pub enabled: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    Done,
    OrganizationExists,
    NoSuchOrganization,
    UserExists,
    NoSuchUser,
    /// Someone changed the item meanwhile; nothing was written.
    Raced,
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

    // ---- instances -------------------------------------------------------

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
            return Err(failed("TransactWriteItems", e));
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
            _ => Err(failed("TransactWriteItems", e)),
        }
    }

    /// The idempotency record, read strongly consistently.
    pub async fn get_replay(&self, organization: &str, key_digest: &str) -> Result<Option<ReplayRecord>, StoreError> {
        let pk = replay_pk(organization, key_digest);
        let item = self.get_consistent(&pk, "IDEMPOTENCY").await?;
        item.map(|item| {
            let r = Reader::new(&pk, &item);
            Ok(ReplayRecord {
                organization: organization.to_owned(),
                key_digest: key_digest.to_owned(),
                instance_id: r.id("instanceId")?,
                sealed_data_key: r.b("sealedDataKey")?,
                sealed_response: r.b("sealedResponse")?,
                created_date: r.s("createdDate")?,
                expires_at: r.n("expiresAt")?,
            })
        })
        .transpose()
    }

    /// An instance by id, read strongly consistently.
    pub async fn get_instance(&self, id: InstanceId) -> Result<Option<InstanceRecord>, StoreError> {
        let pk = instance_pk(id);
        let item = self.get_consistent(&pk, "INSTANCE").await?;
        item.map(|item| read_instance(&pk, &item)).transpose()
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

    /// An organization's instances, oldest first (through `GSI1`, eventually
    /// consistent).
    pub async fn list_instances(&self, organization: &str) -> Result<Vec<InstanceRecord>, StoreError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :sk)")
            .expression_attribute_values(":pk", s(format!("ORG#{organization}")))
            .expression_attribute_values(":sk", s("INSTANCE#"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| failed("Query", e))?;
        items
            .iter()
            .map(|item| {
                let pk = item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                read_instance(&pk, item)
            })
            .collect()
    }

    // ---- credentials -----------------------------------------------------

    /// Who owns this pair of secret digests: one strongly consistent
    /// `BatchGetItem` of the two secret items. Refused (with the reason, for
    /// the operator's log) unless both exist, belong to one organization, and
    /// the user is enabled.
    pub async fn find_principal(
        &self,
        user: &SecretDigest,
        org: &SecretDigest,
    ) -> Result<Result<Principal, Refusal>, StoreError> {
        let user_pk = format!("USERSECRET#{}", user.hex());
        let org_pk = format!("ORGSECRET#{}", org.hex());
        let keys = KeysAndAttributes::builder()
            .keys(key(&user_pk, "USERSECRET"))
            .keys(key(&org_pk, "ORGSECRET"))
            .consistent_read(true)
            .build()
            .map_err(bug)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| failed("BatchGetItem", e))?;
        if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable {
                operation: "BatchGetItem",
                detail: "keys left unprocessed (throttled)".into(),
            });
        }
        let items = out.responses().and_then(|r| r.get(&self.table)).map(Vec::as_slice).unwrap_or_default();
        let find = |pk: &str| items.iter().find(|i| i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|v| v == pk));
        let (u, o) = match (find(&user_pk), find(&org_pk)) {
            (Some(u), Some(o)) => (u, o),
            (None, _) => return Ok(Err(Refusal::UnknownUserSecret)),
            (_, None) => return Ok(Err(Refusal::UnknownOrganizationSecret)),
        };
        let (ur, or) = (Reader::new(&user_pk, u), Reader::new(&org_pk, o));
        let digests_match = ur.digest("secretDigest")?.ct_eq(user) & or.digest("secretDigest")?.ct_eq(org);
        let organization = or.s("organization")?;
        if !digests_match {
            return Ok(Err(Refusal::DigestMismatch));
        }
        if ur.s("organization")? != organization {
            return Ok(Err(Refusal::OrganizationMismatch));
        }
        if !ur.bool("enabled")? {
            return Ok(Err(Refusal::UserDisabled));
        }
        Ok(Ok(Principal { organization, user: ur.s("email")? }))
    }

    /// A new organization and its first user, all or nothing.
    pub async fn create_organization(
        &self,
        organization: &str,
        org_secret: &SecretDigest,
        email: &str,
        user_secret: &SecretDigest,
        now: &str,
    ) -> Result<AdminOutcome, StoreError> {
        let org_item = item([
            ("PK", s(format!("ORG#{organization}"))),
            ("SK", s("ORG")),
            ("organization", s(organization)),
            ("secretDigest", b(&org_secret.0)),
            ("createdDate", s(now)),
        ]);
        let org_secret_item = item([
            ("PK", s(format!("ORGSECRET#{}", org_secret.hex()))),
            ("SK", s("ORGSECRET")),
            ("organization", s(organization)),
            ("secretDigest", b(&org_secret.0)),
        ]);
        let mut writes = vec![self.put_new(org_item)?, self.put_new(org_secret_item)?];
        writes.extend(self.user_puts(organization, email, user_secret, now)?);
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(match reasons.first().map(String::as_str) {
            None => AdminOutcome::Done,
            Some("ConditionalCheckFailed") => AdminOutcome::OrganizationExists,
            Some(_) => AdminOutcome::Raced,
        })
    }

    /// A further user of an existing organization.
    pub async fn add_user(
        &self,
        organization: &str,
        email: &str,
        user_secret: &SecretDigest,
        now: &str,
    ) -> Result<AdminOutcome, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(&format!("ORG#{organization}"), "ORG")))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(bug)?;
        let mut writes = vec![TransactWriteItem::builder().condition_check(check).build()];
        writes.extend(self.user_puts(organization, email, user_secret, now)?);
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(match reasons.iter().position(|r| r == "ConditionalCheckFailed") {
            None if reasons.is_empty() => AdminOutcome::Done,
            Some(0) => AdminOutcome::NoSuchOrganization,
            Some(1) => AdminOutcome::UserExists,
            _ => AdminOutcome::Raced,
        })
    }

    /// Enables or disables a user: the user item and its secret item together.
    pub async fn set_user_enabled(
        &self,
        organization: &str,
        email: &str,
        enabled: bool,
    ) -> Result<AdminOutcome, StoreError> {
        let user_pk = format!("ORG#{organization}");
        let user_sk = format!("USER#{email}");
        let Some(user) = self.get_consistent(&user_pk, &user_sk).await? else {
            return Ok(AdminOutcome::NoSuchUser);
        };
        let digest = Reader::new(&user_pk, &user).digest("secretDigest")?;
        let set = |pk: &str, sk: &str| -> Result<TransactWriteItem, StoreError> {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET enabled = :e")
                .condition_expression("attribute_exists(PK) AND secretDigest = :d")
                .expression_attribute_values(":e", AttributeValue::Bool(enabled))
                .expression_attribute_values(":d", b(&digest.0))
                .build()
                .map_err(bug)?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        let writes = vec![set(&user_pk, &user_sk)?, set(&format!("USERSECRET#{}", digest.hex()), "USERSECRET")?];
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(if reasons.is_empty() { AdminOutcome::Done } else { AdminOutcome::Raced })
    }

    /// What a change of a user is conditioned on, read strongly consistently.
    pub async fn user_state(&self, organization: &str, email: &str) -> Result<Option<UserState>, StoreError> {
        let (pk, sk) = (format!("ORG#{organization}"), format!("USER#{email}"));
        let Some(user) = self.get_consistent(&pk, &sk).await? else {
            return Ok(None);
        };
        let r = Reader::new(&pk, &user);
        Ok(Some(UserState { digest: r.digest("secretDigest")?, enabled: r.bool("enabled")? }))
    }

    /// Replaces a user's secret: the old one stops working at once (up to
    /// the function's credential cache bound).
    pub async fn rotate_user_secret(
        &self,
        organization: &str,
        email: &str,
        new: &SecretDigest,
    ) -> Result<AdminOutcome, StoreError> {
        match self.user_state(organization, email).await? {
            Some(seen) => self.replace_user_secret(organization, email, &seen, new).await,
            None => Ok(AdminOutcome::NoSuchUser),
        }
    }

    /// Replaces the secret of a user last seen as `seen`. The new lookup item
    /// copies `seen.enabled`, so the swap is conditioned on both the digest
    /// and the flag: a disable (or enable) that lands between the read and
    /// this write makes it `Raced`, never undone.
    pub async fn replace_user_secret(
        &self,
        organization: &str,
        email: &str,
        seen: &UserState,
        new: &SecretDigest,
    ) -> Result<AdminOutcome, StoreError> {
        let new_secret_item = item([
            ("PK", s(format!("USERSECRET#{}", new.hex()))),
            ("SK", s("USERSECRET")),
            ("organization", s(organization)),
            ("email", s(email)),
            ("secretDigest", b(&new.0)),
            ("enabled", AttributeValue::Bool(seen.enabled)),
        ]);
        let owner = (format!("ORG#{organization}"), format!("USER#{email}"));
        let swap = self.swap_digest(&owner.0, &owner.1, &seen.digest, new, Some(seen.enabled))?;
        self.replace_secret(swap, &seen.digest, "USERSECRET", new_secret_item).await
    }

    /// Replaces an organization's secret.
    pub async fn rotate_organization_secret(
        &self,
        organization: &str,
        new: &SecretDigest,
    ) -> Result<AdminOutcome, StoreError> {
        let pk = format!("ORG#{organization}");
        let Some(org) = self.get_consistent(&pk, "ORG").await? else {
            return Ok(AdminOutcome::NoSuchOrganization);
        };
        let old = Reader::new(&pk, &org).digest("secretDigest")?;
        let new_secret_item = item([
            ("PK", s(format!("ORGSECRET#{}", new.hex()))),
            ("SK", s("ORGSECRET")),
            ("organization", s(organization)),
            ("secretDigest", b(&new.0)),
        ]);
        let swap = self.swap_digest(&pk, "ORG", &old, new, None)?;
        self.replace_secret(swap, &old, "ORGSECRET", new_secret_item).await
    }

    /// One transaction: the owner's digest swapped (`swap`, conditioned on
    /// what was read), the old lookup item deleted, the new one put.
    async fn replace_secret(
        &self,
        swap: TransactWriteItem,
        old: &SecretDigest,
        lookup: &str,
        new_lookup_item: Item,
    ) -> Result<AdminOutcome, StoreError> {
        let writes =
            vec![swap, self.delete(&format!("{lookup}#{}", old.hex()), lookup)?, self.put_new(new_lookup_item)?];
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(if reasons.is_empty() { AdminOutcome::Done } else { AdminOutcome::Raced })
    }

    // ---- setup -----------------------------------------------------------

    /// Creates the table (on demand, `GSI1`, TTL on `expiresAt`) unless it
    /// exists. Returns whether it was created. For a local DynamoDB API
    /// server; in the cloud the SAM template owns the table.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(failed("DescribeTable", e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(bug)
        };
        let key_el =
            |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build().map_err(bug);
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key_el("GSI1PK", KeyType::Hash)?)
            .key_schema(key_el("GSI1SK", KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(bug)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("PK")?)
            .attribute_definitions(attr("SK")?)
            .attribute_definitions(attr("GSI1PK")?)
            .attribute_definitions(attr("GSI1SK")?)
            .key_schema(key_el("PK", KeyType::Hash)?)
            .key_schema(key_el("SK", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(failed("CreateTable", e)),
        }
        for _ in 0..60 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| failed("DescribeTable", e))?;
            if d.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().map_err(bug)?,
            )
            .send()
            .await
            .map_err(|e| failed("UpdateTimeToLive", e))?;
        Ok(true)
    }

    // ---- migrations ------------------------------------------------------

    /// Rewrites the instances stored before timestamps had a fixed width
    /// (`...:20.04Z`) in the three-digit form (`...:20.040Z`), the index key
    /// `GSI1SK` with them, so that an organization's index sorts in time
    /// order. Each item is one `UpdateItem` conditioned on the values read;
    /// an item changed meanwhile is left for the next run. Returns how many
    /// items were rewritten and how many were left. For the operator
    /// (`admin migrate-dates`); safe to run again.
    pub async fn migrate_timestamps(&self) -> Result<(usize, usize), StoreError> {
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("SK = :sk")
            .expression_attribute_values(":sk", s("INSTANCE"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| failed("Scan", e))?;
        let (mut rewritten, mut left) = (0, 0);
        for item in &items {
            let pk = item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let r = Reader::new(&pk, item);
            let (created, updated, id) = (r.s("createdDate")?, r.s("updatedDate")?, r.id("id")?);
            let (new_created, new_updated) = (r.stamp("createdDate")?, r.stamp("updatedDate")?);
            if new_created == created && new_updated == updated {
                continue;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, "INSTANCE")))
                .update_expression("SET createdDate = :c, updatedDate = :u, GSI1SK = :g")
                .condition_expression("createdDate = :oc AND updatedDate = :ou")
                .expression_attribute_values(":c", s(&new_created))
                .expression_attribute_values(":u", s(&new_updated))
                .expression_attribute_values(":g", s(gsi1_sk(&new_created, id)))
                .expression_attribute_values(":oc", s(created))
                .expression_attribute_values(":ou", s(updated))
                .send()
                .await;
            match result {
                Ok(_) => rewritten += 1,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => left += 1,
                Err(e) => return Err(failed("UpdateItem", e)),
            }
        }
        Ok((rewritten, left))
    }

    /// Every item of the table, raw: for tests and the operator's checks
    /// that nothing secret is stored in clear.
    pub async fn scan_raw(&self) -> Result<Vec<Item>, StoreError> {
        self.client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| failed("Scan", e))
    }

    // ---- helpers ---------------------------------------------------------

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

    fn user_puts(
        &self,
        organization: &str,
        email: &str,
        secret: &SecretDigest,
        now: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let user = item([
            ("PK", s(format!("ORG#{organization}"))),
            ("SK", s(format!("USER#{email}"))),
            ("email", s(email)),
            ("secretDigest", b(&secret.0)),
            ("enabled", AttributeValue::Bool(true)),
            ("createdDate", s(now)),
        ]);
        let lookup = item([
            ("PK", s(format!("USERSECRET#{}", secret.hex()))),
            ("SK", s("USERSECRET")),
            ("organization", s(organization)),
            ("email", s(email)),
            ("secretDigest", b(&secret.0)),
            ("enabled", AttributeValue::Bool(true)),
        ]);
        Ok(vec![self.put_new(user)?, self.put_new(lookup)?])
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

    /// `secretDigest` set to `new` if it is still `old` (and, for a user,
    /// `enabled` still `enabled`).
    fn swap_digest(
        &self,
        pk: &str,
        sk: &str,
        old: &SecretDigest,
        new: &SecretDigest,
        enabled: Option<bool>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .update_expression("SET secretDigest = :new")
            .condition_expression("secretDigest = :old")
            .expression_attribute_values(":new", b(&new.0))
            .expression_attribute_values(":old", b(&old.0));
        if let Some(enabled) = enabled {
            update = update
                .condition_expression("secretDigest = :old AND enabled = :enabled")
                .expression_attribute_values(":enabled", AttributeValue::Bool(enabled));
        }
        let update = update.build().map_err(bug)?;
        Ok(TransactWriteItem::builder().update(update).build())
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
                _ => Err(failed(operation, e)),
            },
        }
    }
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

fn instance_pk(id: InstanceId) -> String {
    format!("INSTANCE#{id}")
}

/// The organization index's sort key: creation time (fixed width, so string
/// order is time order), then the id.
fn gsi1_sk(created_date: &str, id: InstanceId) -> String {
    format!("INSTANCE#{created_date}#{id}")
}

fn replay_pk(organization: &str, key_digest: &str) -> String {
    format!("IDEMPOTENCY#{organization}#{key_digest}")
}

fn instance_item(r: &InstanceRecord) -> Item {
    let configuration = r.configuration.iter().map(|(k, v)| (k.clone(), s(v))).collect();
    let secrets = r.secrets.iter().map(|(k, v)| (k.clone(), b(v))).collect();
    item([
        ("PK", s(instance_pk(r.id))),
        ("SK", s("INSTANCE")),
        ("GSI1PK", s(format!("ORG#{}", r.organization))),
        ("GSI1SK", s(gsi1_sk(&r.created_date, r.id))),
        ("id", n(r.id.get())),
        ("organization", s(&r.organization)),
        ("user", s(&r.user)),
        ("name", s(&r.name)),
        ("tags", AttributeValue::L(r.tags.iter().map(s).collect())),
        ("elementKey", s(&r.element_key)),
        ("elementId", n(r.element_id)),
        ("configuration", AttributeValue::M(configuration)),
        ("secrets", AttributeValue::M(secrets)),
        ("sealedDataKey", b(&r.sealed_data_key)),
        ("tokenDigest", b(&r.token_digest.0)),
        ("createdDate", s(&r.created_date)),
        ("updatedDate", s(&r.updated_date)),
        ("valid", AttributeValue::Bool(r.valid)),
        ("disabled", AttributeValue::Bool(r.disabled)),
        ("cachingEnabled", AttributeValue::Bool(r.caching_enabled)),
        ("maxCacheSize", n(r.max_cache_size)),
        ("cacheTimeToLive", n(r.cache_time_to_live)),
    ])
}

fn read_instance(pk: &str, item: &Item) -> Result<InstanceRecord, StoreError> {
    let r = Reader::new(pk, item);
    let map = |name: &str| -> Result<&HashMap<String, AttributeValue>, StoreError> {
        r.get(name)?.as_m().map_err(|_| r.corrupt(name))
    };
    let mut configuration: Vec<(String, String)> = map("configuration")?
        .iter()
        .map(|(k, v)| v.as_s().map(|v| (k.clone(), v.clone())).map_err(|_| r.corrupt("configuration")))
        .collect::<Result<_, _>>()?;
    configuration.sort();
    let mut secrets: Vec<(String, Vec<u8>)> = map("secrets")?
        .iter()
        .map(|(k, v)| v.as_b().map(|v| (k.clone(), v.as_ref().to_vec())).map_err(|_| r.corrupt("secrets")))
        .collect::<Result<_, _>>()?;
    secrets.sort();
    let tags = r
        .get("tags")?
        .as_l()
        .map_err(|_| r.corrupt("tags"))?
        .iter()
        .map(|t| t.as_s().cloned().map_err(|_| r.corrupt("tags")))
        .collect::<Result<_, _>>()?;
    Ok(InstanceRecord {
        id: r.id("id")?,
        organization: r.s("organization")?,
        user: r.s("user")?,
        name: r.s("name")?,
        tags,
        element_key: r.s("elementKey")?,
        element_id: r.n("elementId")?,
        configuration,
        secrets,
        sealed_data_key: r.b("sealedDataKey")?,
        token_digest: r.digest("tokenDigest")?,
        created_date: r.stamp("createdDate")?,
        updated_date: r.stamp("updatedDate")?,
        valid: r.bool("valid")?,
        disabled: r.bool("disabled")?,
        caching_enabled: r.bool("cachingEnabled")?,
        max_cache_size: r.n("maxCacheSize")?,
        cache_time_to_live: r.n("cacheTimeToLive")?,
    })
}

fn replay_item(r: &ReplayRecord) -> Item {
    item([
        ("PK", s(replay_pk(&r.organization, &r.key_digest))),
        ("SK", s("IDEMPOTENCY")),
        ("instanceId", n(r.instance_id.get())),
        ("sealedDataKey", b(&r.sealed_data_key)),
        ("sealedResponse", b(&r.sealed_response)),
        ("createdDate", s(&r.created_date)),
        (TTL_ATTRIBUTE, n(r.expires_at)),
    ])
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
