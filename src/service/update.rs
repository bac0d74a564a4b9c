//! Updates (`PATCH` and `PUT` of `/instances/{id}`, or of `/instances` for
//! the instance the `Element` token names): the body merged with what is
//! stored (`domain::update`), changed secrets sealed anew, and one
//! conditional write on the instance's version.

use std::time::SystemTime;

use crate::app::App;
use crate::domain::catalog::Element;
use crate::domain::configuration::name_of;
use crate::domain::events;
use crate::domain::instance::{InstanceRecord, InstanceSummary, Principal};
use crate::domain::request::RequestError;
use crate::domain::time::iso8601;
use crate::domain::token::{InstanceId, Token};
use crate::domain::update::{MergedConfiguration, Mode, Patch};
use crate::seal::{aad, SealError};
use crate::service::change::{Tries, UpdateError};
use crate::service::read::{ReadError, Target};
use crate::service::verify::{self, Values, VerifyError};
use crate::store::Guard;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The body asks for something a create would refuse.
    #[error("invalid request: {0:?}")]
    Invalid(RequestError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
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

/// `PATCH` ([`Mode::Merge`]) or `PUT` ([`Mode::Replace`]) of the instance
/// `id` (or the one `token` names; under `/elements/{keyOrId}` the path's
/// `element` must be its own, else `NotFound`).
#[allow(clippy::too_many_arguments)]
pub async fn change(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    if_match: Option<&str>,
    body: &serde_json::Value,
    mode: Mode,
    element: Option<&Element>,
) -> Result<InstanceSummary, PatchError> {
    if if_match.is_none() {
        if let Some(patch) = Patch::names_only(body, mode).map_err(PatchError::Invalid)? {
            if let Some(done) = set_names(app, principal, id, token, element, patch).await? {
                return Ok(done);
            }
            // Not changed: read it, which says why (404, 401, 403).
        }
    }
    let target = Target::new(id, token, element);
    let record = target.read(app, principal).await?;
    change_record(app, principal, &target, record, if_match, body, mode).await
}

/// The same change of an instance the caller has already read as `target`
/// names it: merged, checked, written once on its version; read again (with
/// the target's rules) only if another change landed in between.
pub async fn change_record(
    app: &App,
    principal: &Principal,
    target: &Target<'_>,
    record: InstanceRecord,
    if_match: Option<&str>,
    body: &serde_json::Value,
    mode: Mode,
) -> Result<InstanceSummary, PatchError> {
    let mut verified = None;
    let mut tries = Tries::new(target, record, if_match);
    loop {
        let record = tries.next(app, principal).await?;
        let element = app.catalog.by_key(&record.summary.element_key).ok_or_else(|| {
            ReadError::Store(crate::store::StoreError::Corrupt {
                pk: format!("INSTANCE#{}", record.summary.id),
                detail: format!("element {} is not in the catalog", record.summary.element_key),
            })
        })?;
        let patch = Patch::parse(body, element, &record.summary, mode).map_err(PatchError::Invalid)?;
        let (mut valid, mut flavor) = (record.summary.valid, record.summary.flavor.clone());
        let mut credentials_changed = false;
        if let Some(merged) = &patch.configuration {
            if let Some(checked) = verify_change(app, element, &record, merged, &mut verified).await? {
                (valid, flavor) = (checked.valid, checked.flavor);
                credentials_changed = true;
            }
        }
        let mut next = apply(app, &record, patch).await?;
        next.summary.valid = valid;
        next.summary.flavor = flavor;
        // The site is the credential check's URL entry.
        let site = |configuration: &[(String, String)]| {
            let url = element.credential_check.as_ref().map(|c| c.url.as_str());
            // (`https://host/jira/` and `https://host/jira` are one site.)
            configuration
                .iter()
                .find(|(k, _)| Some(k.as_str()) == url)
                .map(|(_, v)| v.trim_end_matches('/').to_ascii_lowercase())
        };
        let credentials = match credentials_changed {
            false => events::Credentials::Same,
            true if site(&record.summary.configuration) != site(&next.summary.configuration) => {
                events::Credentials::NewSite
            }
            true => events::Credentials::Changed,
        };
        next.polls = events::poll_change(
            record.summary.id,
            events::settings(&record.summary.configuration, &record.summary.secret_keys).as_ref(),
            events::settings(&next.summary.configuration, &next.summary.secret_keys).as_ref(),
            credentials,
            !record.summary.disabled && (record.summary.valid || !app.settings.provider_check),
            epoch_ms_now(),
        );
        if let Some(updated) = app.store.update_instance(&next).await? {
            return Ok(updated.summary);
        }
    }
}

/// The vendor's verdict when the change touches the credentials or the URL
/// (a stored password is opened to be sent along with a new user name or
/// the same site's new path). `verified` remembers what passed, so that a
/// write retried after a concurrent change does not ask again for the same
/// values. `Some` when they changed: whether the vendor accepted them
/// (`false` when the check is off) and the kind of site it told; `None`
/// when they did not.
async fn verify_change(
    app: &App,
    element: &Element,
    record: &InstanceRecord,
    merged: &MergedConfiguration,
    verified: &mut Option<([u8; 32], Option<String>)>,
) -> Result<Option<Checked>, PatchError> {
    let Some(check) = element.credential_check.as_ref() else {
        return Ok(None);
    };
    let now = |key: &str| merged.plain.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let before = |key: &str| record.summary.configuration.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let new_password = merged.new_secrets.iter().find(|(k, _)| k == &check.password).map(|(_, s)| s);
    let changed = now(&check.url) != before(&check.url)
        || now(&check.username) != before(&check.username)
        || new_password.is_some();
    if !changed {
        return Ok(None);
    }
    if !verify::enabled(app, element) {
        return Ok(Some(Checked { valid: false, flavor: None }));
    }
    let password = match new_password {
        Some(secret) => Zeroizing::new(secret.expose().to_owned()),
        None => {
            let Some((_, sealed)) = record.secrets().iter().find(|(k, _)| k == &check.password) else {
                return Ok(Some(Checked { valid: false, flavor: None })); // no password: the merge refuses that
            };
            let binding = aad(&record.summary.organization, record.summary.id, &check.password);
            let plain = app.sealer.open(&record.sealed_data_key, &binding, sealed).await?;
            Zeroizing::new(String::from_utf8_lossy(&plain).into_owned())
        }
    };
    let values = Values {
        url: now(&check.url).unwrap_or_default(),
        username: now(&check.username).unwrap_or_default(),
        password: &password,
        url_name: name_of(&merged.names, &check.url),
    };
    let digest: [u8; 32] = {
        let joined = Zeroizing::new(format!("{}\0{}\0{}", values.url, values.username, values.password));
        Sha256::digest(joined.as_bytes()).into()
    };
    if let Some((seen, flavor)) = verified.as_ref().filter(|(seen, _)| *seen == digest) {
        let _ = seen;
        return Ok(Some(Checked { valid: true, flavor: flavor.clone() }));
    }
    let flavor = verify::credentials(app, element, &values).await?;
    *verified = Some((digest, flavor.clone()));
    Ok(Some(Checked { valid: true, flavor }))
}

/// What a check of changed credentials found.
struct Checked {
    valid: bool,
    flavor: Option<String>,
}

/// A change of `name`/`tags` only: one conditional write, no read. `None`
/// when the instance is not there to change as named (the caller reads it to
/// say why).
async fn set_names(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    element: Option<&Element>,
    patch: Patch,
) -> Result<Option<InstanceSummary>, PatchError> {
    let Some(id) = id.or_else(|| token.and_then(Token::instance_id)) else {
        return Ok(None);
    };
    let guard = Guard {
        organization: &principal.organization,
        token_digest: token.map(Token::digest),
        element_key: element.map(|e| e.info.key.as_str()),
    };
    let tags = patch.tags.as_ref().map(|t| t.as_slice());
    let name = patch.name.as_ref().map(|n| n.as_str());
    let now = iso8601(SystemTime::now());
    Ok(app.store.set_names(id, &guard, name, tags, &now).await?.map(|r| r.summary))
}

/// The instance's next state: the change applied, secrets sealed anew when
/// one changed (all of them under the current data key, so that one item
/// never holds values sealed under two).
async fn apply(app: &App, record: &InstanceRecord, patch: Patch) -> Result<InstanceRecord, PatchError> {
    let mut next = record.clone();
    let summary = &mut next.summary;
    if let Some(name) = patch.name {
        summary.name = name.as_str().to_owned();
    }
    if let Some(tags) = patch.tags {
        summary.tags = tags.as_slice().to_vec();
    }
    summary.updated_date = iso8601(SystemTime::now());
    summary.version = record.summary.version + 1;
    let Some(merged) = patch.configuration else {
        return Ok(next);
    };
    summary.configuration = merged.plain;
    summary.names = merged.names;
    let (organization, id) = (&record.summary.organization, record.summary.id);
    let kept: Vec<(String, Vec<u8>)> =
        record.secrets().iter().filter(|(k, _)| merged.kept_secrets.contains(k)).cloned().collect();
    if merged.new_secrets.is_empty() {
        next.set_secrets(kept);
        return Ok(next);
    }
    let data_key = app.sealer.writing_key().await?;
    let mut secrets = Vec::new();
    for (key, sealed) in &kept {
        let binding = aad(organization, id, key);
        let plain = app.sealer.open(&record.sealed_data_key, &binding, sealed).await?;
        secrets.push((key.clone(), data_key.seal(&binding, &plain)?));
    }
    for (key, secret) in &merged.new_secrets {
        let binding = aad(organization, id, key);
        secrets.push((key.clone(), data_key.seal(&binding, secret.expose().as_bytes())?));
    }
    next.set_secrets(secrets);
    next.sealed_data_key = data_key.encrypted_key().to_vec();
    Ok(next)
}

fn epoch_ms_now() -> i64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
