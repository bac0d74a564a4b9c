//! A partial update (`PATCH /instances/{id}`, or `/instances` for the
//! instance the `Element` token names): the body merged with what is stored
//! (`domain::update`), changed secrets sealed anew, and one conditional write
//! on the instance's version.

use std::time::SystemTime;

use crate::app::App;
use crate::domain::instance::{InstanceRecord, InstanceSummary, Principal};
use crate::domain::request::RequestError;
use crate::domain::time::iso8601;
use crate::domain::token::{InstanceId, Token};
use crate::domain::update::Patch;
use crate::seal::{aad, SealError};
use crate::service::enable::{if_match_names, UpdateError};
use crate::service::read::{self, ReadError};

use crate::service::ATTEMPTS;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The body asks for something a create would refuse.
    #[error("invalid request: {0:?}")]
    Invalid(RequestError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl From<ReadError> for PatchError {
    fn from(e: ReadError) -> Self {
        PatchError::Update(UpdateError::Read(e))
    }
}

impl From<crate::store::StoreError> for PatchError {
    fn from(e: crate::store::StoreError) -> Self {
        PatchError::Update(e.into())
    }
}

pub async fn patch(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    if_match: Option<&str>,
    body: &serde_json::Value,
) -> Result<InstanceSummary, PatchError> {
    let mut record = read::resolve(app, principal, id, token).await?;
    if token.is_some() && record.disabled {
        return Err(ReadError::Disabled.into());
    }
    for _ in 0..ATTEMPTS {
        if if_match.is_some_and(|h| !if_match_names(h, &record.summary())) {
            return Err(UpdateError::PreconditionFailed.into());
        }
        let element = app.catalog.by_key(&record.element_key).ok_or_else(|| {
            ReadError::Store(crate::store::StoreError::Corrupt {
                pk: format!("INSTANCE#{}", record.id),
                detail: format!("element {} is not in the catalog", record.element_key),
            })
        })?;
        let secret_keys: Vec<String> = record.secrets.iter().map(|(k, _)| k.clone()).collect();
        let patch = Patch::parse(body, element, &record.configuration, &secret_keys).map_err(PatchError::Invalid)?;
        let next = apply(app, &record, patch).await?;
        match app.store.update_instance(&next).await? {
            Some(updated) => return Ok(updated.summary()),
            None => record = read::resolve(app, principal, Some(record.id), None).await?,
        }
    }
    Err(UpdateError::Busy.into())
}

/// The instance's next state: the patch applied, secrets sealed anew when
/// one changed (all of them under the current data key, so that one item
/// never holds values sealed under two).
async fn apply(app: &App, record: &InstanceRecord, patch: Patch) -> Result<InstanceRecord, PatchError> {
    let mut next = record.clone();
    if let Some(name) = patch.name {
        next.name = name.as_str().to_owned();
    }
    if let Some(tags) = patch.tags {
        next.tags = tags.as_slice().to_vec();
    }
    if let Some(merged) = patch.configuration {
        next.configuration = merged.plain;
        let kept: Vec<(String, Vec<u8>)> =
            record.secrets.iter().filter(|(k, _)| merged.kept_secrets.contains(k)).cloned().collect();
        if merged.new_secrets.is_empty() {
            next.secrets = kept;
        } else {
            let data_key = app.sealer.writing_key().await?;
            let mut secrets = Vec::new();
            for (key, sealed) in &kept {
                let binding = aad(&record.organization, record.id, key);
                let plain = app.sealer.open(&record.sealed_data_key, &binding, sealed).await?;
                secrets.push((key.clone(), data_key.seal(&binding, &plain)?));
            }
            for (key, secret) in &merged.new_secrets {
                let binding = aad(&record.organization, record.id, key);
                secrets.push((key.clone(), data_key.seal(&binding, secret.expose().as_bytes())?));
            }
            secrets.sort();
            next.secrets = secrets;
            next.sealed_data_key = data_key.encrypted_key().to_vec();
        }
    }
    next.updated_date = iso8601(SystemTime::now());
    next.version = record.version + 1;
    Ok(next)
}
