//! The Create Instance use case: mint, seal, write once, answer; or replay
//! what an `Idempotency-Key` already answered.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subtle::ConstantTimeEq;

use crate::app::App;
use crate::domain::configuration::ConfigText;
use crate::domain::events;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::instance::{InstanceRecord, InstanceSummary, Principal};
use crate::domain::representation::instance_json;
use crate::domain::request::CreateInstance;
use crate::domain::time::iso8601;
use crate::domain::token::{InstanceId, Token};
use crate::seal::{aad, DataKey, SealError};
use crate::service::verify::{self, Values, VerifyError};
use crate::store::{PutOutcome, ReplayRecord, StoreError};

/// How long an `Idempotency-Key` replays its first response.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Attempts at a write: a fresh id after an (astronomically rare) id
/// collision, or a short wait while a request with the same key is in flight.
const ATTEMPTS: u32 = 4;

#[derive(Debug)]
pub struct Created {
    pub id: InstanceId,
    /// The response body, token included.
    pub body: Vec<u8>,
    /// True when this is the replay of an earlier response.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the idempotency key was first used with a different request")]
    KeyReused,
    #[error("a request with the same idempotency key is still in flight")]
    KeyInFlight,
    #[error("no free instance id after {ATTEMPTS} attempts")]
    NoFreeId,
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl CreateError {
    /// Whether retrying later may succeed: DynamoDB or KMS throttled,
    /// unreachable or timed out, or a request with the same key in flight.
    /// A corrupt item, a value that does not open, a key KMS refuses or no
    /// free id will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            CreateError::Store(e) => e.is_transient(),
            CreateError::Seal(e) => e.is_transient(),
            CreateError::KeyInFlight => true,
            CreateError::KeyReused | CreateError::NoFreeId | CreateError::Verify(_) => false,
        }
    }
}

impl From<getrandom::Error> for CreateError {
    fn from(_: getrandom::Error) -> Self {
        CreateError::Seal(SealError::Random)
    }
}

pub async fn create_instance(
    app: &App,
    principal: &Principal,
    request: &CreateInstance<'_>,
    key: Option<&IdempotencyKey>,
    now: SystemTime,
) -> Result<Created, CreateError> {
    let fingerprint = key.map(|_| request.fingerprint());
    // `valid` says whether JIRA accepted the credentials: true only when the
    // check ran (and passed: else nothing is stored).
    let checked = verify::enabled(app, request.element);
    let mut flavor = None;
    if checked {
        // A replay answers what was created, checked then: not asked again.
        if let (Some(key), Some(fingerprint)) = (key, &fingerprint) {
            if let Some(created) = replay_of(app, principal, key, fingerprint, now).await? {
                return Ok(created);
            }
        }
        flavor = check_credentials(app, request).await?;
    }
    let data_key = app.sealer.writing_key().await?;
    let stamp = iso8601(now);
    let mut last = CreateError::NoFreeId;
    for attempt in 0..ATTEMPTS {
        let Draft { id, mut record, body } = draft(principal, request, &data_key, &stamp, checked)?;
        record.summary.flavor = flavor.clone();
        let (Some(key), Some(fingerprint)) = (key, fingerprint) else {
            match app.store.put_instance(&record).await? {
                PutOutcome::Created => return Ok(Created { id, body, replayed: false }),
                _ => continue,
            }
        };
        let replay = replay_record(principal, key, &data_key, id, &fingerprint, &body, &stamp, now)?;
        record.replay_key = Some(replay.key_digest.clone());
        match app.store.put_instance_with_replay(&record, &replay, epoch(now)).await? {
            PutOutcome::Created => return Ok(Created { id, body, replayed: false }),
            PutOutcome::IdTaken => last = CreateError::NoFreeId,
            outcome @ (PutOutcome::KeyTaken | PutOutcome::KeyBusy) => {
                match replay_of(app, principal, key, &fingerprint, now).await? {
                    Some(created) => return Ok(created),
                    // The record was in flight (or expired and went away): try again shortly.
                    None if outcome == PutOutcome::KeyBusy => last = CreateError::KeyInFlight,
                    None => last = CreateError::NoFreeId,
                }
                if let Some(pause) = backoff(attempt) {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    Err(last)
}

/// The vendor's verdict on the request's credentials, before anything is
/// stored; the kind of site the account tells.
async fn check_credentials(app: &App, request: &CreateInstance<'_>) -> Result<Option<String>, CreateError> {
    let Some(check) = &request.element.credential_check else {
        return Ok(None);
    };
    let value = |key: &str| request.configuration.get(key).map(ConfigText::expose).unwrap_or_default();
    let values = Values {
        url: value(&check.url),
        username: value(&check.username),
        password: value(&check.password),
        url_name: request.configuration.name_of(&check.url),
    };
    Ok(verify::credentials(app, request.element, &values).await?)
}

/// The wait before the next attempt after a busy or vanishing idempotency
/// record: 50, 100, 200 ms; none after the last attempt, which answers at once.
fn backoff(attempt: u32) -> Option<Duration> {
    (attempt + 1 < ATTEMPTS).then(|| Duration::from_millis(50 << attempt))
}

/// The earlier response to this key, if there is a live one; `KeyReused` if
/// it answered a different request.
async fn replay_of(
    app: &App,
    principal: &Principal,
    key: &IdempotencyKey,
    fingerprint: &[u8; 32],
    now: SystemTime,
) -> Result<Option<Created>, CreateError> {
    let digest = key.digest_hex();
    let Some(found) = app.store.get_replay(&principal.organization, &digest).await? else {
        return Ok(None);
    };
    if found.expires_at < epoch(now) {
        return Ok(None);
    }
    let binding = replay_aad(&principal.organization, found.instance_id, &digest);
    let payload = app.sealer.open(&found.sealed_data_key, &binding, &found.sealed_response).await?;
    if payload.len() < 32 || !bool::from(payload[..32].ct_eq(fingerprint)) {
        return Err(CreateError::KeyReused);
    }
    Ok(Some(Created { id: found.instance_id, body: payload[32..].to_vec(), replayed: true }))
}

/// A new instance, ready to write: a fresh id and token, the secrets
/// sealed, the response rendered. No I/O.
pub struct Draft {
    pub id: InstanceId,
    pub record: InstanceRecord,
    pub body: Vec<u8>,
}

/// `valid`: whether the vendor accepted the credentials (the check ran).
pub fn draft(
    principal: &Principal,
    request: &CreateInstance<'_>,
    data_key: &DataKey,
    stamp: &str,
    valid: bool,
) -> Result<Draft, CreateError> {
    let id = InstanceId::random()?;
    let token = Token::mint(id)?;
    let mut record = record(principal, request, data_key, id, &token, stamp)?;
    record.summary.valid = valid;
    let body = instance_json(&record, &request.element.info, &token);
    Ok(Draft { id, record, body })
}

fn record(
    principal: &Principal,
    request: &CreateInstance<'_>,
    data_key: &DataKey,
    id: InstanceId,
    token: &Token,
    stamp: &str,
) -> Result<InstanceRecord, CreateError> {
    let mut configuration = Vec::new();
    let mut secrets = Vec::new();
    for value in request.configuration.values() {
        match &value.value {
            ConfigText::Plain(text) => configuration.push((value.key.clone(), text.clone())),
            ConfigText::Secret(secret) => {
                let binding = aad(&principal.organization, id, &value.key);
                secrets.push((value.key.clone(), data_key.seal(&binding, secret.expose().as_bytes())?));
            }
        }
    }
    let summary = InstanceSummary {
        name: request.name.as_str().to_owned(),
        tags: request.tags.as_slice().to_vec(),
        configuration,
        names: request.configuration.names().to_vec(),
        ..InstanceSummary::fresh(id, principal, &request.element.info.key, request.element.info.id, stamp)
    };
    let settings = events::settings(&summary.configuration, &summary.secret_keys);
    let mut record = InstanceRecord::new(summary, secrets, data_key.encrypted_key().to_vec(), token.digest(), None);
    record.polls = events::poll_change(id, None, settings.as_ref(), events::Credentials::Same, true, epoch_ms(stamp));
    Ok(record)
}

/// An ISO 8601 stamp of ours in epoch milliseconds.
fn epoch_ms(stamp: &str) -> i64 {
    crate::domain::time::epoch_millis(stamp).unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn replay_record(
    principal: &Principal,
    key: &IdempotencyKey,
    data_key: &DataKey,
    id: InstanceId,
    fingerprint: &[u8; 32],
    body: &[u8],
    stamp: &str,
    now: SystemTime,
) -> Result<ReplayRecord, CreateError> {
    let digest = key.digest_hex();
    let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(32 + body.len()));
    payload.extend_from_slice(fingerprint);
    payload.extend_from_slice(body);
    let sealed_response = data_key.seal(&replay_aad(&principal.organization, id, &digest), &payload)?;
    Ok(ReplayRecord {
        organization: principal.organization.clone(),
        key_digest: digest,
        instance_id: id,
        sealed_data_key: data_key.encrypted_key().to_vec(),
        sealed_response,
        created_date: stamp.to_owned(),
        expires_at: epoch(now) + REPLAY_WINDOW.as_secs() as i64,
    })
}

fn replay_aad(organization: &str, id: InstanceId, key_digest: &str) -> Vec<u8> {
    aad(organization, id, &format!("idempotency#{key_digest}"))
}

fn epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_attempt_answers_without_waiting() {
        let waits: Vec<_> = (0..ATTEMPTS).map(backoff).collect();
        assert_eq!(waits.last(), Some(&None), "{waits:?}");
        let total: Duration = waits.iter().flatten().sum();
        assert_eq!(total, Duration::from_millis(350));
    }
}
