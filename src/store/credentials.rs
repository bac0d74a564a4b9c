//! Organizations, users and their secrets (as digests): authentication
//! and the operator's commands.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, KeysAndAttributes, TransactWriteItem, Update};

use super::{b, bug, failed, item, key, s, Item, Reader, Store, StoreError};
use crate::domain::instance::Principal;
use crate::domain::secret::SecretDigest;

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

impl Store {
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
}
