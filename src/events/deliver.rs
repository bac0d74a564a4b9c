//! One delivery attempt of one notification: taken from the log (counted,
//! leased: two deliverers never send it at once), signed under the
//! instance's key, `POST`ed through the guarded client with the callbacks'
//! allow list (no redirect followed, 10 s), and its outcome kept: a `2xx` is
//! `NOTIFIED`; anything else waits the next of the retry waits, then is kept
//! as `FAILED`. A deleted instance's notifications go.

use std::time::{Duration, SystemTime};

use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;

use super::notification::{signature, ID_HEADER, SIGNATURE_HEADER};
use super::{epoch_ms, DeliveryMessage, Events, EventsError};
use crate::domain::events::{self, SIGNATURE_KEY};
use crate::domain::token::InstanceId;
use crate::outbound::Limits;
use crate::seal::aad;
use crate::store::events::Attempted;

/// How long the callback has to answer, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long an attempt holds its notification (more than [`TIMEOUT`]; less
/// than the delivery queue's visibility timeout).
pub const LEASE_MS: i64 = 30_000;
/// The most of a callback's answer read (it is not used, only its status).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Notified {
        attempt: u32,
    },
    /// Refused (or not answered): tried again after `wait`.
    Retrying {
        attempt: u32,
        wait: Duration,
        result: String,
    },
    /// The last attempt failed too: kept as `FAILED`.
    Failed {
        attempt: u32,
        result: String,
    },
    /// Not to be sent now: delivered or failed already, or in flight elsewhere.
    Skipped,
    /// A message early for its attempt: sent again for then.
    Waiting,
    /// The instance is gone: so is the notification.
    Dropped,
}

pub async fn deliver(events: &Events, message: &DeliveryMessage, now: SystemTime) -> Result<Delivered, EventsError> {
    let app = &events.app;
    let now_ms = epoch_ms(now);
    let id = InstanceId::new(message.instance)
        .ok_or_else(|| EventsError::Internal(format!("instance id {} in a delivery message", message.instance)))?;
    let sk = &message.notification;
    let Some(claimed) = app.store.claim_delivery(id, sk, now_ms, LEASE_MS).await? else {
        let Some(logged) = app.store.notification(id, sk).await? else {
            return Ok(Delivered::Skipped);
        };
        return match logged.next_attempt_ms {
            Some(next) if logged.status == "DISPATCHED" && next > now_ms => {
                events.send_delivery_later(message, Duration::from_millis((next - now_ms) as u64)).await?;
                Ok(Delivered::Waiting)
            }
            _ => Ok(Delivered::Skipped),
        };
    };
    let lease = claimed.lease;
    let claimed = claimed.logged;
    let attempt = Attempt { events, message, id, lease: &lease, number: claimed.attempts, now_ms };
    match attempt_one(&attempt, &claimed).await {
        Ok(done) => Ok(done),
        // A failure of ours after the attempt was counted (the store, the
        // key): an attempt that failed, waited on as any other, so that it
        // ends as FAILED like any other, never a message going round.
        Err(EventsError::Store(e)) if !e.is_transient() => Err(EventsError::Store(e)),
        // The retry was recorded but its message could not be handed on:
        // the message fails (the batch's partial response), so SQS hands it
        // over again, and the attempt waits its turn from there.
        Err(e @ EventsError::Queue { .. }) => Err(e),
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "a delivery failed before its POST");
            attempt.failed(format!("not sent: {e}"), &claimed.notification_id).await
        }
    }
}

/// One attempt of a notification the lease holds.
struct Attempt<'a> {
    events: &'a Events,
    message: &'a DeliveryMessage,
    id: InstanceId,
    lease: &'a str,
    number: u32,
    now_ms: i64,
}

impl Attempt<'_> {
    async fn finish(&self, how: Attempted<'_>) -> Result<bool, EventsError> {
        Ok(self.events.app.store.finish_delivery(self.id, &self.message.notification, self.lease, how).await?)
    }

    /// The attempt failed (`how`): the next after its wait, or kept as
    /// `FAILED` after the last.
    async fn failed(&self, how: String, notification_id: &str) -> Result<Delivered, EventsError> {
        let waits = &self.events.settings.retry_waits;
        match waits.get(self.number.saturating_sub(1) as usize) {
            Some(wait) => {
                let next_attempt_ms = self.now_ms + wait.as_millis() as i64;
                // Another attempt took it meanwhile (this one outlived its
                // lease): that one says how it ended.
                if self.finish(Attempted::Retry { result: &how, next_attempt_ms }).await? {
                    self.events.send_delivery_later(self.message, *wait).await?;
                }
                Ok(Delivered::Retrying { attempt: self.number, wait: *wait, result: how })
            }
            None => {
                self.finish(Attempted::Failed { result: &how }).await?;
                tracing::warn!(instance = %self.id, notification = %notification_id, result = %how, "kept as failed");
                Ok(Delivered::Failed { attempt: self.number, result: how })
            }
        }
    }
}

async fn attempt_one(attempt: &Attempt<'_>, claimed: &crate::store::events::Logged) -> Result<Delivered, EventsError> {
    let (events, id, sk) = (attempt.events, attempt.id, &attempt.message.notification);
    let app = &events.app;
    let number = attempt.number;
    let Some(record) = app.store.get_instance(id).await? else {
        app.store.drop_notification(id, sk).await?;
        return Ok(Delivered::Dropped);
    };
    let summary = &record.summary;
    let Some(settings) = events::settings(&summary.configuration, &summary.secret_keys) else {
        let result = "events were turned off before it could be delivered";
        attempt.finish(Attempted::Failed { result }).await?;
        return Ok(Delivered::Failed { attempt: number, result: result.into() });
    };
    let mut headers = HeaderMap::new();
    headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let text = |v: &str| HeaderValue::from_str(v).map_err(|e| EventsError::Internal(e.to_string()));
    headers.insert(HeaderName::from_static(ID_HEADER), text(&claimed.notification_id)?);
    if settings.signed {
        // Signed, or not sent: never an unsigned notification where one was asked for.
        let Some((_, sealed)) = record.secrets().iter().find(|(k, _)| k == SIGNATURE_KEY) else {
            let result = "the signature key is not stored";
            attempt.finish(Attempted::Failed { result }).await?;
            return Ok(Delivered::Failed { attempt: number, result: result.into() });
        };
        let binding = aad(&summary.organization, id, SIGNATURE_KEY);
        let key = app.sealer.open(&record.sealed_data_key, &binding, sealed).await?;
        let Some(signed) = signature(&key, claimed.body.as_bytes()) else {
            let result = "the signature could not be made";
            attempt.finish(Attempted::Failed { result }).await?;
            return Ok(Delivered::Failed { attempt: number, result: result.into() });
        };
        headers.insert(HeaderName::from_static(SIGNATURE_HEADER), text(&signed)?);
    }
    let result = send(events, &settings.callback_url, headers, claimed.body.clone()).await;
    let how = match &result {
        Ok(status) if (200..300).contains(status) => {
            attempt.finish(Attempted::Delivered { result: &format!("HTTP {status}") }).await?;
            return Ok(Delivered::Notified { attempt: number });
        }
        Ok(status) if (300..400).contains(status) => format!("HTTP {status} (redirects are not followed)"),
        Ok(status) => format!("HTTP {status}"),
        Err(why) => why.clone(),
    };
    attempt.failed(how, &claimed.notification_id).await
}

/// One `POST`: the status, or why there was none.
async fn send(events: &Events, url: &str, headers: HeaderMap, body: String) -> Result<u16, String> {
    let client = events.callback.as_ref().map_err(|e| format!("the callbacks' client: {e}"))?;
    let url = url::Url::parse(url).map_err(|e| format!("the callback URL does not read: {e}"))?;
    let request = crate::outbound::Request { method: Method::POST, url, headers, body: Bytes::from(body) };
    match client.send(request, Limits { timeout: TIMEOUT, max_answer_bytes: MAX_ANSWER_BYTES }).await {
        Ok(answer) => Ok(answer.status.as_u16()),
        Err(
            crate::outbound::OutboundError::TooLarge { status, .. }
            | crate::outbound::OutboundError::BrokeOff { status, .. },
        ) => Ok(status.as_u16()),
        Err(e) => Err(e.to_string()),
    }
}
