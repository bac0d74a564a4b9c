//! The operator's commands (`admin`): set up the table and key for a local
//! DynamoDB/KMS API server, create organizations and users, disable and
//! rotate. Each prints one JSON object as its last line on standard output.
//! Secrets are shown once, here, and stored only as digests.

use serde_json::{json, Value};

use crate::domain::secret::Secret;
use crate::domain::time::iso8601;
use crate::settings::Settings;
use crate::store::{AdminOutcome, Store, StoreError};

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

fn authorization(user: &Secret, org: &Secret) -> String {
    format!("User {}, Organization {}", user.expose(), org.expose())
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
        let (org_secret, user_secret) = (fresh_secret()?, fresh_secret()?);
        match self.store.create_organization(org, &org_secret.digest(), email, &user_secret.digest(), &now()).await? {
            AdminOutcome::Done => Ok(json!({
                "organization": org,
                "user": email,
                "organizationSecret": org_secret.expose(),
                "userSecret": user_secret.expose(),
                "authorization": authorization(&user_secret, &org_secret),
            })),
            other => Err(refused(other, org, email)),
        }
    }

    pub async fn add_user(&self, org: &str, email: &str) -> Result<Value, AdminError> {
        check_organization(org)?;
        check_email(email)?;
        let user_secret = fresh_secret()?;
        match self.store.add_user(org, email, &user_secret.digest(), &now()).await? {
            AdminOutcome::Done => Ok(json!({"organization": org, "user": email, "userSecret": user_secret.expose()})),
            other => Err(refused(other, org, email)),
        }
    }

    pub async fn set_user_enabled(&self, org: &str, email: &str, enabled: bool) -> Result<Value, AdminError> {
        match self.store.set_user_enabled(org, email, enabled).await? {
            AdminOutcome::Done => Ok(json!({"organization": org, "user": email, "enabled": enabled})),
            other => Err(refused(other, org, email)),
        }
    }

    pub async fn rotate_user_secret(&self, org: &str, email: &str) -> Result<Value, AdminError> {
        let user_secret = fresh_secret()?;
        match self.store.rotate_user_secret(org, email, &user_secret.digest()).await? {
            AdminOutcome::Done => Ok(json!({"organization": org, "user": email, "userSecret": user_secret.expose()})),
            other => Err(refused(other, org, email)),
        }
    }

    /// Rewrites instances stored with timestamps of another width (see
    /// [`Store::migrate_timestamps`]).
    pub async fn migrate_dates(&self) -> Result<Value, AdminError> {
        let (rewritten, left) = self.store.migrate_timestamps().await?;
        Ok(json!({"tableName": self.store.table(), "rewritten": rewritten, "changedMeanwhile": left}))
    }

    pub async fn rotate_organization_secret(&self, org: &str) -> Result<Value, AdminError> {
        let org_secret = fresh_secret()?;
        match self.store.rotate_organization_secret(org, &org_secret.digest()).await? {
            AdminOutcome::Done => Ok(json!({"organization": org, "organizationSecret": org_secret.expose()})),
            other => Err(refused(other, org, "")),
        }
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
        for bad in ["", "ops", "@acme", "a@b@c", "a b@c"] {
            assert!(check_email(bad).is_err());
        }
    }
}
