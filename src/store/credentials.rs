//! Organizations, users and their secrets (as digests): authentication
//! and the operator's commands.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Select, TransactWriteItem, Update};

use super::{b, bug, failed, item, key, n, query_all, s, Item, Reader, Store, StoreError, TTL_ATTRIBUTE};
use crate::domain::instance::Principal;
use crate::domain::secret::SecretDigest;

/// The partition that lists every organization (`admin list-organizations`):
/// one item per organization, SK `ORG#<org>`, written and deleted in the
/// same transaction as the organization item.
const REGISTRY_PK: &str = "ORGS";

/// Milliseconds since the epoch: the unit of `validUntil`.
pub fn epoch_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn from_epoch_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
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
    /// The user secret was rotated and its grace period has ended.
    UserSecretExpired,
    /// The organization secret was rotated and its grace period has ended.
    OrganizationSecretExpired,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownUserSecret => "unknown user secret",
            Refusal::UnknownOrganizationSecret => "unknown organization secret",
            Refusal::DigestMismatch => "stored secret digest differs",
            Refusal::OrganizationMismatch => "user and organization secrets belong to different organizations",
            Refusal::UserDisabled => "user disabled",
            Refusal::UserSecretExpired => "user secret rotated, its grace period over",
            Refusal::OrganizationSecretExpired => "organization secret rotated, its grace period over",
        }
    }
}

/// A user as last read: what a change of it is conditioned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserState {
    pub digest: SecretDigest,
    pub enabled: bool,
    /// The secret a rotation replaced and left working for a grace period
    /// (its lookup item may be past `validUntil`, or gone through TTL).
    pub previous: Option<SecretDigest>,
}

/// An organization as last read: what its rotation and deletion are
/// conditioned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationState {
    pub digest: SecretDigest,
    pub previous: Option<SecretDigest>,
    /// Moved by every user added, so that a deletion that counted no users
    /// cannot commit after a user was added meanwhile.
    pub users_version: Option<u64>,
}

/// An organization as `admin list-organizations` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationEntry {
    pub organization: String,
    pub created_date: String,
}

/// A user as `admin list-users` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub email: String,
    pub enabled: bool,
    pub created_date: String,
    /// Until when the secret replaced by the last rotation still works, if
    /// that is in the future.
    pub previous_valid_until: Option<SystemTime>,
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

impl Store {
    /// Who owns this pair of secret digests (see [`Store::verify_principal`]).
    pub async fn find_principal(
        &self,
        user: &SecretDigest,
        org: &SecretDigest,
    ) -> Result<Result<Principal, Refusal>, StoreError> {
        Ok(self.verify_principal(user, org, SystemTime::now()).await?.map(|(principal, _)| principal))
    }

    /// Who owns this pair of secret digests at `now`: one strongly consistent
    /// `BatchGetItem` of the two secret items. Refused (with the reason, for
    /// the operator's log) unless both exist, belong to one organization, the
    /// user is enabled, and neither is a replaced secret past its grace
    /// (`validUntil`: compared here, since TTL deletes expired items only
    /// lazily). Also answers until when the pair may be trusted: the earliest
    /// `validUntil` of the two, if either is a replaced secret.
    pub async fn verify_principal(
        &self,
        user: &SecretDigest,
        org: &SecretDigest,
        now: SystemTime,
    ) -> Result<Result<(Principal, Option<SystemTime>), Refusal>, StoreError> {
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
        let now = epoch_millis(now);
        let (user_until, org_until) = (valid_until(&ur)?, valid_until(&or)?);
        if user_until.is_some_and(|until| now >= until) {
            return Ok(Err(Refusal::UserSecretExpired));
        }
        if org_until.is_some_and(|until| now >= until) {
            return Ok(Err(Refusal::OrganizationSecretExpired));
        }
        if ur.s("organization")? != organization {
            return Ok(Err(Refusal::OrganizationMismatch));
        }
        if !ur.bool("enabled")? {
            return Ok(Err(Refusal::UserDisabled));
        }
        let until = match (user_until, org_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Ok((Principal { organization, user: ur.s("email")? }, until.map(from_epoch_millis))))
    }

    /// A new organization, its entry in the registry and its first user, all
    /// or nothing.
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
        let mut writes = vec![
            self.put_new(org_item)?,
            self.put_new(org_secret_item)?,
            self.put_new(registry_item(organization, now))?,
        ];
        writes.extend(self.user_puts(organization, email, user_secret, now)?);
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(match reasons.first().map(String::as_str) {
            None => AdminOutcome::Done,
            Some("ConditionalCheckFailed") => AdminOutcome::OrganizationExists,
            _ if reasons.get(2).is_some_and(|r| r == "ConditionalCheckFailed") => AdminOutcome::OrganizationExists,
            Some(_) => AdminOutcome::Raced,
        })
    }

    /// A further user of an existing organization. The organization item's
    /// `usersVersion` moves with it, so that a deletion of the organization
    /// that counted its users before cannot commit after.
    pub async fn add_user(
        &self,
        organization: &str,
        email: &str,
        user_secret: &SecretDigest,
        now: &str,
    ) -> Result<AdminOutcome, StoreError> {
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(&format!("ORG#{organization}"), "ORG")))
            .update_expression("SET usersVersion = if_not_exists(usersVersion, :zero) + :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(bug)?;
        let mut writes = vec![TransactWriteItem::builder().update(bump).build()];
        writes.extend(self.user_puts(organization, email, user_secret, now)?);
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(match reasons.iter().position(|r| r == "ConditionalCheckFailed") {
            None if reasons.is_empty() => AdminOutcome::Done,
            Some(0) => AdminOutcome::NoSuchOrganization,
            Some(1) => AdminOutcome::UserExists,
            _ => AdminOutcome::Raced,
        })
    }

    /// Enables or disables a user: the user item and its secret item
    /// together. A disable also ends the grace of a secret replaced by a
    /// rotation (its lookup item is deleted), so that it cannot be used
    /// meanwhile; an enable does not bring it back.
    pub async fn set_user_enabled(
        &self,
        organization: &str,
        email: &str,
        enabled: bool,
    ) -> Result<AdminOutcome, StoreError> {
        let (user_pk, user_sk) = (format!("ORG#{organization}"), format!("USER#{email}"));
        let Some(seen) = self.user_state(organization, email).await? else {
            return Ok(AdminOutcome::NoSuchUser);
        };
        let digest = &seen.digest;
        let set = |pk: &str, sk: &str, end_grace: bool| -> Result<TransactWriteItem, StoreError> {
            let expression = if end_grace {
                "SET enabled = :e REMOVE previousDigest, previousValidUntil"
            } else {
                "SET enabled = :e"
            };
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression(expression)
                .condition_expression("attribute_exists(PK) AND secretDigest = :d")
                .expression_attribute_values(":e", AttributeValue::Bool(enabled))
                .expression_attribute_values(":d", b(&digest.0))
                .build()
                .map_err(bug)?;
            Ok(TransactWriteItem::builder().update(update).build())
        };
        let end_grace = !enabled && seen.previous.is_some();
        let mut writes = vec![set(&user_pk, &user_sk, end_grace)?, set(&user_secret_pk(digest), "USERSECRET", false)?];
        if let (true, Some(previous)) = (end_grace, &seen.previous) {
            writes.push(self.delete_if_any(&user_secret_pk(previous), "USERSECRET")?);
        }
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
        Ok(Some(UserState { digest: r.digest("secretDigest")?, enabled: r.bool("enabled")?, previous: previous(&r)? }))
    }

    /// What a rotation or deletion of an organization is conditioned on,
    /// read strongly consistently.
    pub async fn organization_state(&self, organization: &str) -> Result<Option<OrganizationState>, StoreError> {
        let pk = format!("ORG#{organization}");
        let Some(org) = self.get_consistent(&pk, "ORG").await? else {
            return Ok(None);
        };
        let r = Reader::new(&pk, &org);
        let users_version = if r.has("usersVersion") { Some(r.n("usersVersion")?) } else { None };
        Ok(Some(OrganizationState { digest: r.digest("secretDigest")?, previous: previous(&r)?, users_version }))
    }

    /// Replaces a user's secret. With `old_valid_until`, the old secret keeps
    /// working until then (its lookup item marked `validUntil`); without, it
    /// stops at once (up to the function's credential cache bound).
    pub async fn rotate_user_secret(
        &self,
        organization: &str,
        email: &str,
        new: &SecretDigest,
        old_valid_until: Option<SystemTime>,
    ) -> Result<AdminOutcome, StoreError> {
        match self.user_state(organization, email).await? {
            Some(seen) => self.replace_user_secret(organization, email, &seen, new, old_valid_until).await,
            None => Ok(AdminOutcome::NoSuchUser),
        }
    }

    /// Replaces the secret of a user last seen as `seen`. The new lookup item
    /// copies `seen.enabled`, so the swap is conditioned on both the digest
    /// and the flag: a disable (or enable) that lands between the read and
    /// this write makes it `Raced`, never undone. A secret an earlier
    /// rotation left in its grace stops now: at most two work at once.
    pub async fn replace_user_secret(
        &self,
        organization: &str,
        email: &str,
        seen: &UserState,
        new: &SecretDigest,
        old_valid_until: Option<SystemTime>,
    ) -> Result<AdminOutcome, StoreError> {
        let new_secret_item = item([
            ("PK", s(user_secret_pk(new))),
            ("SK", s("USERSECRET")),
            ("organization", s(organization)),
            ("email", s(email)),
            ("secretDigest", b(&new.0)),
            ("enabled", AttributeValue::Bool(seen.enabled)),
        ]);
        let owner = (format!("ORG#{organization}"), format!("USER#{email}"));
        let swap = self.swap_digest(&owner.0, &owner.1, &seen.digest, new, Some(seen.enabled), old_valid_until)?;
        let rotation =
            Rotation { lookup: "USERSECRET", old: &seen.digest, earlier: seen.previous.as_ref(), old_valid_until };
        self.replace_secret(swap, rotation, new_secret_item).await
    }

    /// Replaces an organization's secret; `old_valid_until` as for a user.
    pub async fn rotate_organization_secret(
        &self,
        organization: &str,
        new: &SecretDigest,
        old_valid_until: Option<SystemTime>,
    ) -> Result<AdminOutcome, StoreError> {
        let Some(seen) = self.organization_state(organization).await? else {
            return Ok(AdminOutcome::NoSuchOrganization);
        };
        let new_secret_item = item([
            ("PK", s(format!("ORGSECRET#{}", new.hex()))),
            ("SK", s("ORGSECRET")),
            ("organization", s(organization)),
            ("secretDigest", b(&new.0)),
        ]);
        let swap = self.swap_digest(&format!("ORG#{organization}"), "ORG", &seen.digest, new, None, old_valid_until)?;
        let rotation =
            Rotation { lookup: "ORGSECRET", old: &seen.digest, earlier: seen.previous.as_ref(), old_valid_until };
        self.replace_secret(swap, rotation, new_secret_item).await
    }

    /// One transaction: the owner's digest swapped (`swap`, conditioned on
    /// what was read), the old lookup item marked with its `validUntil` (and
    /// `expiresAt`, so TTL removes it some time after) or deleted, the new
    /// one put, and the lookup item of a secret an earlier rotation left
    /// working deleted.
    async fn replace_secret(
        &self,
        swap: TransactWriteItem,
        rotation: Rotation<'_>,
        new_lookup_item: Item,
    ) -> Result<AdminOutcome, StoreError> {
        let lookup = rotation.lookup;
        let old_pk = format!("{lookup}#{}", rotation.old.hex());
        let old = match rotation.old_valid_until {
            Some(until) => {
                let until = epoch_millis(until);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&old_pk, lookup)))
                    .update_expression("SET validUntil = :until, #ttl = :ttl")
                    .condition_expression("secretDigest = :old")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":until", n(until))
                    .expression_attribute_values(":ttl", n(until.div_ceil(1000)))
                    .expression_attribute_values(":old", b(&rotation.old.0))
                    .build()
                    .map_err(bug)?;
                TransactWriteItem::builder().update(update).build()
            }
            None => self.delete(&old_pk, lookup)?,
        };
        let mut writes = vec![swap, old, self.put_new(new_lookup_item)?];
        if let Some(earlier) = rotation.earlier.filter(|e| *e != rotation.old) {
            writes.push(self.delete_if_any(&format!("{lookup}#{}", earlier.hex()), lookup)?);
        }
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(if reasons.is_empty() { AdminOutcome::Done } else { AdminOutcome::Raced })
    }

    /// Deletes a user: the user item, its secret's lookup item and that of a
    /// secret still in a rotation's grace, in one transaction conditioned on
    /// the digest read, so that a rotation meanwhile makes it `Raced` rather
    /// than leave the new secret working.
    pub async fn delete_user(&self, organization: &str, email: &str) -> Result<AdminOutcome, StoreError> {
        match self.user_state(organization, email).await? {
            Some(seen) => self.delete_user_seen(organization, email, &seen).await,
            None => Ok(AdminOutcome::NoSuchUser),
        }
    }

    /// Deletes a user last seen as `seen` (see [`Store::delete_user`]).
    pub async fn delete_user_seen(
        &self,
        organization: &str,
        email: &str,
        seen: &UserState,
    ) -> Result<AdminOutcome, StoreError> {
        let on_digest = |pk: &str, sk: &str| -> Result<TransactWriteItem, StoreError> {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .condition_expression("secretDigest = :d")
                .expression_attribute_values(":d", b(&seen.digest.0))
                .build()
                .map_err(bug)?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        };
        let mut writes = vec![
            on_digest(&format!("ORG#{organization}"), &format!("USER#{email}"))?,
            on_digest(&user_secret_pk(&seen.digest), "USERSECRET")?,
        ];
        if let Some(previous) = &seen.previous {
            writes.push(self.delete_if_any(&user_secret_pk(previous), "USERSECRET")?);
        }
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(if reasons.is_empty() { AdminOutcome::Done } else { AdminOutcome::Raced })
    }

    /// Deletes an organization last seen as `seen`: its item, its secrets'
    /// lookup items and its registry entry, in one transaction conditioned
    /// on the digest and `usersVersion` read (a rotation or a user added
    /// meanwhile makes it `Raced`). The caller has counted no users.
    pub async fn delete_organization(
        &self,
        organization: &str,
        seen: &OrganizationState,
    ) -> Result<AdminOutcome, StoreError> {
        let mut org = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&format!("ORG#{organization}"), "ORG")))
            .expression_attribute_values(":d", b(&seen.digest.0));
        org = match seen.users_version {
            Some(v) => org
                .condition_expression("secretDigest = :d AND usersVersion = :v")
                .expression_attribute_values(":v", n(v)),
            None => org.condition_expression("secretDigest = :d AND attribute_not_exists(usersVersion)"),
        };
        let org = org.build().map_err(bug)?;
        let mut writes = vec![
            TransactWriteItem::builder().delete(org).build(),
            self.delete(&format!("ORGSECRET#{}", seen.digest.hex()), "ORGSECRET")?,
            self.delete_if_any(REGISTRY_PK, &registry_sk(organization))?,
        ];
        if let Some(previous) = &seen.previous {
            writes.push(self.delete_if_any(&format!("ORGSECRET#{}", previous.hex()), "ORGSECRET")?);
        }
        let reasons = self.transact("TransactWriteItems", writes).await?;
        Ok(if reasons.is_empty() { AdminOutcome::Done } else { AdminOutcome::Raced })
    }

    /// Every organization of the registry, in name order: a strongly
    /// consistent `Query` of the partition `ORGS`.
    pub async fn list_organizations(&self) -> Result<Vec<OrganizationEntry>, StoreError> {
        let items: Vec<Item> = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(REGISTRY_PK))
                .consistent_read(true),
        )
        .await?;
        items
            .iter()
            .map(|i| {
                let r = Reader::new(REGISTRY_PK, i);
                Ok(OrganizationEntry { organization: r.s("organization")?, created_date: r.stamp("createdDate")? })
            })
            .collect()
    }

    /// An organization's users, in address order: a strongly consistent
    /// `Query` of its partition.
    pub async fn list_users(&self, organization: &str) -> Result<Vec<UserEntry>, StoreError> {
        let pk = format!("ORG#{organization}");
        let items: Vec<Item> = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":sk", s("USER#"))
                .consistent_read(true),
        )
        .await?;
        let now = epoch_millis(SystemTime::now());
        items
            .iter()
            .map(|i| {
                let r = Reader::new(&pk, i);
                let until = if r.has("previousValidUntil") { Some(r.n::<u64>("previousValidUntil")?) } else { None };
                Ok(UserEntry {
                    email: r.s("email")?,
                    enabled: r.bool("enabled")?,
                    created_date: r.stamp("createdDate")?,
                    previous_valid_until: until.filter(|u| *u > now).map(from_epoch_millis),
                })
            })
            .collect()
    }

    /// How many users an organization has: a strongly consistent `Query` of
    /// its partition that counts.
    pub async fn count_users(&self, organization: &str) -> Result<usize, StoreError> {
        let pages: Vec<_> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
            .expression_attribute_values(":pk", s(format!("ORG#{organization}")))
            .expression_attribute_values(":sk", s("USER#"))
            .select(Select::Count)
            .consistent_read(true)
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| failed("Query", e))?;
        Ok(pages.iter().map(|p| p.count().max(0) as usize).sum())
    }

    /// How many instances an organization has: a `Query` of `GSI1` that
    /// counts (eventually consistent, as every read of the index).
    pub async fn count_instances(&self, organization: &str) -> Result<usize, StoreError> {
        let pages: Vec<_> = self
            .organization_index(organization)
            .select(Select::Count)
            .into_paginator()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| failed("Query", e))?;
        Ok(pages.iter().map(|p| p.count().max(0) as usize).sum())
    }

    /// Enters organizations created before the registry existed in it: a
    /// `Scan` for organization items (they share no key: nothing else finds
    /// them), then per organization not yet registered one transaction of
    /// its registry entry and a check that the organization is still there.
    /// Returns how many were registered. For the operator (`admin
    /// register-organizations`), once after upgrading; safe to run again.
    pub async fn register_organizations(&self) -> Result<usize, StoreError> {
        let items: Vec<Item> = self.scan_sort_key("ORG").await?;
        let mut registered = 0;
        for org in &items {
            let pk = org.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let r = Reader::new(&pk, org);
            let organization = r.s("organization")?;
            let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(&pk, "ORG")))
                .condition_expression("attribute_exists(PK)")
                .build()
                .map_err(bug)?;
            let writes = vec![
                self.put_new(registry_item(&organization, &r.stamp("createdDate")?))?,
                TransactWriteItem::builder().condition_check(check).build(),
            ];
            if self.transact("TransactWriteItems", writes).await?.is_empty() {
                registered += 1;
            }
        }
        Ok(registered)
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
            ("PK", s(user_secret_pk(secret))),
            ("SK", s("USERSECRET")),
            ("organization", s(organization)),
            ("email", s(email)),
            ("secretDigest", b(&secret.0)),
            ("enabled", AttributeValue::Bool(true)),
        ]);
        Ok(vec![self.put_new(user)?, self.put_new(lookup)?])
    }

    /// `secretDigest` set to `new` if it is still `old` (and, for a user,
    /// `enabled` still `enabled`); the old digest kept as `previousDigest`
    /// until `old_valid_until`, or no previous one at all.
    fn swap_digest(
        &self,
        pk: &str,
        sk: &str,
        old: &SecretDigest,
        new: &SecretDigest,
        enabled: Option<bool>,
        old_valid_until: Option<SystemTime>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("secretDigest = :old")
            .expression_attribute_values(":new", b(&new.0))
            .expression_attribute_values(":old", b(&old.0));
        update = match old_valid_until {
            Some(until) => update
                .update_expression("SET secretDigest = :new, previousDigest = :old, previousValidUntil = :until")
                .expression_attribute_values(":until", n(epoch_millis(until))),
            None => update.update_expression("SET secretDigest = :new REMOVE previousDigest, previousValidUntil"),
        };
        if let Some(enabled) = enabled {
            update = update
                .condition_expression("secretDigest = :old AND enabled = :enabled")
                .expression_attribute_values(":enabled", AttributeValue::Bool(enabled));
        }
        let update = update.build().map_err(bug)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A delete of an item that may be gone already (TTL, an older build).
    fn delete_if_any(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build().map_err(bug)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// What a rotation replaces: the lookup items' kind (`USERSECRET` or
/// `ORGSECRET`), the secret replaced, a secret an earlier rotation left
/// working, and until when the replaced one works (`None`: it stops now).
struct Rotation<'a> {
    lookup: &'static str,
    old: &'a SecretDigest,
    earlier: Option<&'a SecretDigest>,
    old_valid_until: Option<SystemTime>,
}

fn user_secret_pk(digest: &SecretDigest) -> String {
    format!("USERSECRET#{}", digest.hex())
}

fn registry_sk(organization: &str) -> String {
    format!("ORG#{organization}")
}

fn registry_item(organization: &str, created_date: &str) -> Item {
    item([
        ("PK", s(REGISTRY_PK)),
        ("SK", s(registry_sk(organization))),
        ("organization", s(organization)),
        ("createdDate", s(created_date)),
    ])
}

/// The `validUntil` of a secret's lookup item: set when a rotation replaced
/// it with a grace period.
fn valid_until(r: &Reader<'_>) -> Result<Option<u64>, StoreError> {
    Ok(if r.has("validUntil") { Some(r.n("validUntil")?) } else { None })
}

/// The secret a rotation replaced and left working, if any.
fn previous(r: &Reader<'_>) -> Result<Option<SecretDigest>, StoreError> {
    Ok(if r.has("previousDigest") { Some(r.digest("previousDigest")?) } else { None })
}
