//! Events: JIRA's changes reach the application. Three steps, each a plain
//! async function that the functions' entries (`src/bin/events.rs`), the
//! local driver and the tests all call:
//!
//! - [`tick`]: once a minute (an EventBridge Scheduler schedule), the due
//!   instances of every shard of the due index, one poll message each on the
//!   poll queue (FIFO, grouped by instance: never two polls of one instance
//!   at once; deduplicated on the instance and its due time).
//! - [`poll`]: one instance's changes since its cursor, recorded as
//!   notifications with the cursor's move in one transaction, then one
//!   delivery message each on the delivery queue.
//! - [`deliver`]: one attempt of one notification, signed, through the
//!   guarded client with the callbacks' allow list; retried with growing
//!   waits, then kept as failed.
//!
//! Why this shape, and what it costs, is in `docs/design.md` ("Events").

pub mod deliver;
pub mod driver;
pub mod notification;
pub mod poll;
pub mod queue;
pub mod tick;
pub mod window;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::outbound::resolve::{Lookup, SystemLookup};
use crate::outbound::{self, address::AllowList, ClientSettings};
use crate::sdk::Deferred;

/// The waits before the second, third, ... attempt of a notification: the
/// first retry within a minute, the last about eight hours after the first
/// attempt; then it is kept as `FAILED`.
pub const RETRY_WAITS: &[Duration] = &[
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
];

/// What the event functions read from the environment.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    /// `POLL_QUEUE_URL`: the FIFO queue of polls.
    pub poll_queue_url: String,
    /// `DELIVERY_QUEUE_URL`: the queue of deliveries.
    pub delivery_queue_url: String,
    /// `CALLBACK_ALLOWED_HOSTS`: hosts and addresses a callback may be at
    /// although they are not public; comma-separated, default none.
    pub callback_allowed_hosts: AllowList,
    /// `EVENTS_RETRY_SECONDS`: the waits between attempts, comma-separated
    /// seconds (default [`RETRY_WAITS`]); for tests and trials.
    pub retry_waits: Vec<Duration>,
}

impl EventsSettings {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_default();
        let retry_waits: Vec<Duration> = var("EVENTS_RETRY_SECONDS")
            .split(',')
            .filter_map(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .collect();
        EventsSettings {
            poll_queue_url: var("POLL_QUEUE_URL"),
            delivery_queue_url: var("DELIVERY_QUEUE_URL"),
            callback_allowed_hosts: AllowList::parse(&var("CALLBACK_ALLOWED_HOSTS")),
            retry_waits: if retry_waits.is_empty() { RETRY_WAITS.to_vec() } else { retry_waits },
        }
    }
}

/// What lives for a whole execution environment of an event function.
pub struct Events {
    pub app: App,
    pub settings: EventsSettings,
    pub sqs: Deferred<aws_sdk_sqs::Client>,
    /// The guarded client to callbacks (`CALLBACK_ALLOWED_HOSTS`; the test
    /// trust file of `PROVIDER_TEST_CA_FILE` too), built on first use.
    pub callback: Deferred<Result<outbound::Client, String>>,
}

impl Events {
    pub async fn from_env() -> Result<Self, crate::domain::catalog::CatalogError> {
        let sdk = crate::sdk::load_function_sdk_config().await;
        let app = App::new(&sdk, crate::settings::Settings::from_env())?;
        let sqs_config = sdk.clone();
        Ok(Self::new(app, EventsSettings::from_env(), Deferred::new(move || aws_sdk_sqs::Client::new(&sqs_config))))
    }

    pub fn new(app: App, settings: EventsSettings, sqs: Deferred<aws_sdk_sqs::Client>) -> Self {
        let callback = callback_client(&app, &settings, Arc::new(SystemLookup));
        Events { app, settings, sqs, callback }
    }

    /// The same, its callbacks' client resolving names through `lookup`.
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.callback = callback_client(&self.app, &self.settings, lookup.clone());
        self.app = self.app.with_lookup(lookup);
        self
    }
}

fn callback_client(
    app: &App,
    settings: &EventsSettings,
    lookup: Arc<dyn Lookup>,
) -> Deferred<Result<outbound::Client, String>> {
    let ca = app.settings.provider_test_ca_file.clone();
    let allow = settings.callback_allowed_hosts.clone();
    Deferred::new(move || {
        let extra_roots_pem = match &ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("PROVIDER_TEST_CA_FILE {path}: {e}"))?),
            None => None,
        };
        outbound::Client::new(&ClientSettings { allow, extra_roots_pem }, lookup, deliver::TIMEOUT / 2)
    })
}

/// What failed in a step: its message is retried (SQS), nothing is lost.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("SQS {operation} failed: {detail}")]
    Queue { operation: &'static str, detail: String },
    #[error(transparent)]
    Seal(#[from] crate::seal::SealError),
    #[error("{0}")]
    Internal(String),
}

/// An SQS event as Lambda hands it over (the members used).
#[derive(Debug, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SqsRecord {
    #[serde(rename = "messageId")]
    pub message_id: String,
    pub body: String,
}

/// The answer to an SQS event: the messages to be delivered again (Lambda's
/// partial batch response; the others are deleted).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub id: String,
}

/// A poll message: the instance, and the due time it was sent for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PollMessage {
    pub instance: u64,
    pub due: i64,
}

/// A delivery message: the instance and the notification's sort key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryMessage {
    pub instance: u64,
    pub notification: String,
}

pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
