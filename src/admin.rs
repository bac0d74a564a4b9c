//! The operator's commands (`admin`): set up the table and key for a local
//! DynamoDB/KMS API server, create, list and delete organizations and users,
//! disable and rotate. Each prints one JSON object as its last line on
//! standard output. Secrets are shown once, here, and stored only as digests.
//! A change that removes access says how long running functions may still
//! accept what it removed (`takesEffectWithinSeconds`, their credential
//! cache), and a `note` for the operator, which `admin` also writes on
//! standard error.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::auth::MAX_CACHE_SECONDS;
use crate::domain::secret::Secret;
use crate::domain::time::iso8601;
use crate::settings::Settings;
use crate::store::{AdminOutcome, DeleteOutcome, Store, StoreError};

/// The default grace period of a rotation: one day.
pub const DEFAULT_GRACE_SECONDS: u64 = 86_400;
/// The longest grace period: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

/// What the `authorization` line holds where `admin` cannot know the
/// organization secret (it is stored only as a digest).
pub const ORGANIZATION_SECRET_PLACEHOLDER: &str = "<your organization secret>";
/// The same for a user secret.
pub const USER_SECRET_PLACEHOLDER: &str = "<your user secret>";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("KMS {operation} failed: {detail}")]
    Kms { operation: &'static str, detail: String },
    #[error("the operating system's random source failed")]
    Random,
}

pub struct Admin {
    pub store: Store,
    pub kms: aws_sdk_kms::Client,
    pub settings: Settings,
}

/// An organization name: 1..=100 of `A-Z a-z 0-9 . _ -`.
pub fn check_organization(org: &str) -> Result<(), AdminError> {
    let ok =
        !org.is_empty() && org.len() <= 100 && org.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then_some(())
        .ok_or_else(|| AdminError::Usage(format!("organization {org:?} must be 1 to 100 of A-Z a-z 0-9 . _ -")))
}

/// A user's e-mail address: one `@`, no white space, at most 254 characters.
pub fn check_email(email: &str) -> Result<(), AdminError> {
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|p| !p.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(()).ok_or_else(|| AdminError::Usage(format!("user {email:?} must be an e-mail address")))
}

fn fresh_secret() -> Result<Secret, AdminError> {
    Secret::generate().map_err(|_| AdminError::Random)
}

fn now() -> String {
    iso8601(std::time::SystemTime::now())
}

fn refused(outcome: AdminOutcome, org: &str, user: &str) -> AdminError {
    AdminError::Refused(match outcome {
        AdminOutcome::OrganizationExists => format!("organization {org} exists already"),
        AdminOutcome::NoSuchOrganization => format!("no organization {org}"),
        AdminOutcome::UserExists => format!("user {user} of {org} exists already"),
        AdminOutcome::NoSuchUser => format!("no user {user} in organization {org}"),
        AdminOutcome::Raced | AdminOutcome::Done => "the item changed meanwhile; nothing was written, try again".into(),
    })
}

fn authorization(user: &str, org: &str) -> String {
    format!("User {user}, Organization {org}")
}

/// The note of a change that reaches running functions only when their
/// credential cache expires.
fn cache_note(what: &str) -> String {
    format!(
        "{what} within {MAX_CACHE_SECONDS} s: running functions trust a credential they verified for \
         AUTH_CACHE_SECONDS (at most {MAX_CACHE_SECONDS})"
    )
}

/// A rotation's grace period: at most [`MAX_GRACE_SECONDS`].
pub fn check_grace(seconds: u64) -> Result<Duration, AdminError> {
    (seconds <= MAX_GRACE_SECONDS).then(|| Duration::from_secs(seconds)).ok_or_else(|| {
        AdminError::Usage(format!("--grace {seconds} is longer than {MAX_GRACE_SECONDS} seconds (30 days)"))
    })
}

impl Admin {
    /// Creates the table and the KMS key where they are missing.
    pub async fn setup(&self) -> Result<Value, AdminError> {
        let table_created = self.store.create_table_if_missing().await?;
        let (key, key_created) = self.ensure_key().await?;
        Ok(json!({
            "tableName": self.store.table(),
            "kmsKeyId": self.settings.kms_key_id,
            "kmsKeyArn": key,
            "tableCreated": table_created,
            "kmsKeyCreated": key_created,
        }))
    }

    async fn ensure_key(&self) -> Result<(String, bool), AdminError> {
        fn kms_err<E>(operation: &'static str) -> impl Fn(&E) -> AdminError
        where
            E: std::error::Error + aws_sdk_kms::error::ProvideErrorMetadata + 'static,
        {
            move |e: &E| AdminError::Kms { operation, detail: crate::sdk::describe_error(e) }
        }
        let id = &self.settings.kms_key_id;
        match self.kms.describe_key().key_id(id).send().await {
            Ok(found) => {
                return Ok((
                    found.key_metadata().map(|m| m.arn().unwrap_or_default().to_owned()).unwrap_or_default(),
                    false,
                ))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) && id.starts_with("alias/") => {}
            Err(e) => return Err(kms_err("DescribeKey")(&e)),
        }
        let created = self
            .kms
            .create_key()
            .description("Seals the secrets of element instances (envelope encryption)")
            .send()
            .await
            .map_err(|e| kms_err("CreateKey")(&e))?;
        let meta = created
            .key_metadata()
            .ok_or_else(|| AdminError::Kms { operation: "CreateKey", detail: "no key metadata".into() })?;
        let key_id = meta.key_id().to_owned();
        self.kms.enable_key_rotation().key_id(&key_id).send().await.map_err(|e| kms_err("EnableKeyRotation")(&e))?;
        self.kms
            .create_alias()
            .alias_name(id)
            .target_key_id(&key_id)
            .send()
            .await
            .map_err(|e| kms_err("CreateAlias")(&e))?;
        Ok((meta.arn().unwrap_or_default().to_owned(), true))
    }

    pub async fn create_credentials(&self, org: &str, email: &str) -> Result<Value, AdminError> {
        check_organization(org)?;
        check_email(email)?;
        // A deleted organization's instances are never handed to a new one of the same name.
        let left = self.store.count_instances(org).await?;
        if left > 0 && self.store.organization_state(org).await?.is_none() {
            return Err(AdminError::Refused(format!(
                "organization {org} was deleted but {left} of its instances remain: \
                 admin delete-organization --organization {org} --force deletes them"
            )));
        }
        let (org_secret, user_secret) = (fresh_secret()?, fresh_secret()?);
        match self.store.create_organization(org, &org_secret.digest(), email, &user_secret.digest(), &now()).await? {
            AdminOutcome::Done => Ok(json!({
                "organization": org,
                "user": email,
                "organizationSecret": org_secret.expose(),
                "userSecret": user_secret.expose(),
                "authorization": authorization(user_secret.expose(), org_secret.expose()),
            })),
            other => Err(refused(other, org, email)),
        }
    }

    /// A further user. Its `authorization` line holds the new user secret
    /// and a placeholder for the organization secret, which `admin` cannot
    /// show (it is stored only as a digest; `create-credentials` or
    /// `rotate-organization-secret` printed it once).
    pub async fn add_user(&self, org: &str, email: &str) -> Result<Value, AdminError> {
        check_organization(org)?;
        check_email(email)?;
        let user_secret = fresh_secret()?;
        match self.store.add_user(org, email, &user_secret.digest(), &now()).await? {
            AdminOutcome::Done => Ok(json!({
                "organization": org,
                "user": email,
                "userSecret": user_secret.expose(),
                "authorization": authorization(user_secret.expose(), ORGANIZATION_SECRET_PLACEHOLDER),
                "note": format!(
                    "put the organization secret of {org} in place of {ORGANIZATION_SECRET_PLACEHOLDER}: \
                     it is stored only as a digest, so admin cannot show it (create-credentials or \
                     rotate-organization-secret printed it)"
                ),
            })),
            other => Err(refused(other, org, email)),
        }
    }

    pub async fn set_user_enabled(&self, org: &str, email: &str, enabled: bool) -> Result<Value, AdminError> {
        match self.store.set_user_enabled(org, email, enabled).await? {
            AdminOutcome::Done if enabled => Ok(json!({"organization": org, "user": email, "enabled": true})),
            AdminOutcome::Done => Ok(json!({
                "organization": org,
                "user": email,
                "enabled": false,
                "takesEffectWithinSeconds": MAX_CACHE_SECONDS,
                "note": cache_note(&format!("{email} is refused")),
            })),
            other => Err(refused(other, org, email)),
        }
    }

    /// The end of a grace of `grace` from now, or `None` for none.
    fn grace_end(grace: Duration) -> Option<SystemTime> {
        (!grace.is_zero()).then(|| SystemTime::now() + grace)
    }

    /// What a rotation's answer says of the old secret.
    fn old_secret_fields(out: &mut Value, what: &str, until: Option<SystemTime>) {
        match until {
            Some(until) => {
                out["oldSecretValidUntil"] = json!(iso8601(until));
                out["note"] = json!(format!(
                    "the old {what} secret keeps working until {} (the new one works now): move clients to the new one before then",
                    iso8601(until)
                ));
            }
            None => {
                out["oldSecretValidUntil"] = json!(now());
                out["takesEffectWithinSeconds"] = json!(MAX_CACHE_SECONDS);
                out["note"] = json!(cache_note(&format!("the old {what} secret is refused")));
            }
        }
    }

    /// Replaces a user's secret; the old one keeps working for `grace`
    /// (zero: it is refused now, within the functions' credential cache).
    pub async fn rotate_user_secret(&self, org: &str, email: &str, grace: Duration) -> Result<Value, AdminError> {
        let user_secret = fresh_secret()?;
        let until = Self::grace_end(grace);
        match self.store.rotate_user_secret(org, email, &user_secret.digest(), until).await? {
            AdminOutcome::Done => {
                let mut out = json!({
                    "organization": org,
                    "user": email,
                    "userSecret": user_secret.expose(),
                    "authorization": authorization(user_secret.expose(), ORGANIZATION_SECRET_PLACEHOLDER),
                    "graceSeconds": grace.as_secs(),
                });
                Self::old_secret_fields(&mut out, "user", until);
                Ok(out)
            }
            other => Err(refused(other, org, email)),
        }
    }

    /// Replaces an organization's secret; `grace` as for a user.
    pub async fn rotate_organization_secret(&self, org: &str, grace: Duration) -> Result<Value, AdminError> {
        let org_secret = fresh_secret()?;
        let until = Self::grace_end(grace);
        match self.store.rotate_organization_secret(org, &org_secret.digest(), until).await? {
            AdminOutcome::Done => {
                let mut out = json!({
                    "organization": org,
                    "organizationSecret": org_secret.expose(),
                    "authorization": authorization(USER_SECRET_PLACEHOLDER, org_secret.expose()),
                    "graceSeconds": grace.as_secs(),
                });
                Self::old_secret_fields(&mut out, "organization", until);
                Ok(out)
            }
            other => Err(refused(other, org, "")),
        }
    }

    /// Rewrites instances stored with timestamps of another width (see
    /// [`Store::migrate_timestamps`]).
    pub async fn migrate_dates(&self) -> Result<Value, AdminError> {
        let (rewritten, left) = self.store.migrate_timestamps().await?;
        Ok(json!({"tableName": self.store.table(), "rewritten": rewritten, "changedMeanwhile": left}))
    }

    /// Starts the polls of instances that enabled events before polls
    /// existed (0.3.0 took the entries and did nothing with them): each such
    /// instance polls from now on, an interval from now. Safe to run again.
    pub async fn start_polls(&self) -> Result<Value, AdminError> {
        let now = crate::events::epoch_ms(std::time::SystemTime::now());
        let (mut started, mut left) = (Vec::new(), 0);
        for record in self.store.instances_without_polls().await? {
            let summary = &record.summary;
            let settings = crate::domain::events::settings(&summary.configuration, &summary.secret_keys);
            let change = crate::domain::events::poll_change(
                summary.id,
                None,
                settings.as_ref(),
                crate::domain::events::Credentials::Same,
                true,
                now,
            );
            if settings.is_none() {
                continue;
            }
            if self.store.start_polls(summary.id, summary.version, &change).await? {
                started.push(summary.id.get());
            } else {
                left += 1;
            }
        }
        Ok(json!({"tableName": self.store.table(), "started": started, "changedMeanwhile": left}))
    }

    /// Enters organizations created before the registry into it (see
    /// [`Store::register_organizations`]).
    pub async fn register_organizations(&self) -> Result<Value, AdminError> {
        let registered = self.store.register_organizations().await?;
        Ok(json!({"tableName": self.store.table(), "registered": registered}))
    }

    /// Every organization of the registry, with its numbers of users and
    /// instances.
    pub async fn list_organizations(&self) -> Result<Value, AdminError> {
        let mut organizations = Vec::new();
        for entry in self.store.list_organizations().await? {
            let users = self.store.count_users(&entry.organization).await?;
            let instances = self.store.count_instances(&entry.organization).await?;
            organizations.push(json!({
                "organization": entry.organization,
                "createdDate": entry.created_date,
                "users": users,
                "instances": instances,
            }));
        }
        Ok(json!({"count": organizations.len(), "organizations": organizations}))
    }

    pub async fn list_users(&self, org: &str) -> Result<Value, AdminError> {
        check_organization(org)?;
        if self.store.organization_state(org).await?.is_none() {
            return Err(refused(AdminOutcome::NoSuchOrganization, org, ""));
        }
        let users: Vec<Value> = self
            .store
            .list_users(org)
            .await?
            .into_iter()
            .map(|u| {
                let mut user = json!({"user": u.email, "enabled": u.enabled, "createdDate": u.created_date});
                if let Some(until) = u.previous_valid_until {
                    user["oldSecretValidUntil"] = json!(iso8601(until));
                }
                user
            })
            .collect();
        Ok(json!({"organization": org, "count": users.len(), "users": users}))
    }

    /// Deletes a user and its secrets (a secret in a rotation's grace too).
    pub async fn delete_user(&self, org: &str, email: &str) -> Result<Value, AdminError> {
        match self.store.delete_user(org, email).await? {
            AdminOutcome::Done => Ok(json!({
                "organization": org,
                "user": email,
                "deleted": true,
                "takesEffectWithinSeconds": MAX_CACHE_SECONDS,
                "note": cache_note(&format!("{email} is refused")),
            })),
            other => Err(refused(other, org, email)),
        }
    }

    /// Deletes an organization: refused while it has users (each is removed
    /// with `delete-user`, deliberately); refused while it has instances
    /// unless `force`, which deletes them after the organization (so that
    /// none can be created meanwhile but by a credential a function
    /// verified in the last [`MAX_CACHE_SECONDS`]). With `force`, an
    /// organization already deleted whose instances remain has them deleted.
    pub async fn delete_organization(&self, org: &str, force: bool) -> Result<Value, AdminError> {
        check_organization(org)?;
        let state = self.store.organization_state(org).await?;
        let users = self.store.count_users(org).await?;
        if users > 0 {
            return Err(AdminError::Refused(format!(
                "organization {org} still has {users} user(s): delete each with \
                 admin delete-user --organization {org} --user EMAIL (admin list-users --organization {org} lists them)"
            )));
        }
        let instances = self.store.list_instances(org).await?;
        if state.is_none() && (instances.is_empty() || !force) {
            return Err(refused(AdminOutcome::NoSuchOrganization, org, ""));
        }
        if !instances.is_empty() && !force {
            return Err(AdminError::Refused(format!(
                "organization {org} still has {} instance(s): delete them through the API (DELETE /instances/{{id}}) \
                 while a user can, or add --force to delete them with the organization",
                instances.len()
            )));
        }
        let deleted_organization = match &state {
            Some(seen) => match self.store.delete_organization(org, seen).await? {
                AdminOutcome::Done => true,
                other => return Err(refused(other, org, "")),
            },
            None => false,
        };
        let mut deleted = 0;
        for summary in &instances {
            deleted += usize::from(self.delete_instance_as_found(summary.id).await?);
        }
        Ok(json!({
            "organization": org,
            "organizationDeleted": deleted_organization,
            "instancesDeleted": deleted,
            "takesEffectWithinSeconds": MAX_CACHE_SECONDS,
            "note": format!(
                "{org}'s secrets are refused within {MAX_CACHE_SECONDS} s (the functions' credential cache); \
                 an instance created meanwhile by a credential verified before is deleted by running \
                 admin delete-organization --organization {org} --force again after that"
            ),
        }))
    }

    /// Deletes an instance as it is found now (a change meanwhile reads it
    /// again); whether it was there.
    async fn delete_instance_as_found(&self, id: crate::domain::token::InstanceId) -> Result<bool, AdminError> {
        for _ in 0..5 {
            let Some(record) = self.store.get_instance(id).await? else {
                return Ok(false);
            };
            if self.store.delete_instance(&record).await? == DeleteOutcome::Deleted {
                return Ok(true);
            }
        }
        Err(AdminError::Refused(format!("instance {id} kept changing meanwhile; run the command again")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails() {
        assert!(check_organization("acme-1.io_x").is_ok());
        for bad in ["", "a b", "a#b", &"x".repeat(101)] {
            assert!(check_organization(bad).is_err());
        }
        assert!(check_email("ops@acme.io").is_ok());
        assert_eq!(check_grace(0).unwrap(), Duration::ZERO);
        assert_eq!(check_grace(MAX_GRACE_SECONDS).unwrap(), Duration::from_secs(MAX_GRACE_SECONDS));
        assert!(check_grace(MAX_GRACE_SECONDS + 1).is_err());
        for bad in ["", "ops", "@acme", "a@b@c", "a b@c"] {
            assert!(check_email(bad).is_err());
        }
    }
}
