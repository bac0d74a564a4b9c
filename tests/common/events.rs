//! The events' tests' world: an instance with events on, the JIRA
//! stand-in, the callback receiver and moto's queues, and time moved by
//! hand (`tests/events.rs`, `tests/events_burst.rs`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::receiver::CallbackReceiver;
use super::standin::JiraStandIn;
use super::*;
use instances::events::{driver, Events, EventsSettings};
use instances::outbound::address::AllowList;
use instances::sdk::Deferred;
use serde_json::{json, Value};

/// The app's settings for the events' tests: the JIRA check on, against
/// the stand-in at `localhost`, trusting the stand-in's and the callback
/// receiver's authorities (one file for both, as the functions take one).
pub fn trusting(env: &TestEnv, jira: &JiraStandIn, receiver: &CallbackReceiver) -> instances::settings::Settings {
    let dir = std::env::temp_dir().join(unique("events-ca"));
    std::fs::create_dir_all(&dir).unwrap();
    let both = dir.join("cas.pem");
    let mut pem = std::fs::read(&jira.ca_file).unwrap();
    pem.extend(std::fs::read(&receiver.ca_file).unwrap());
    std::fs::write(&both, pem).unwrap();
    let mut settings = env.settings.clone();
    settings.provider_check = true;
    settings.provider_check_timeout = Duration::from_millis(3000);
    settings.provider_allowed_hosts = AllowList::parse("localhost");
    settings.provider_test_ca_file = Some(both.to_string_lossy().into_owned());
    settings
}

/// The events' two queues made on moto through `sqs` (`visibility`: their
/// visibility timeout in seconds, SQS's own when `None`), callbacks allowed
/// on loopback, retried after `retry_waits`.
pub async fn queues(sqs: &aws_sdk_sqs::Client, visibility: Option<u32>, retry_waits: Vec<Duration>) -> EventsSettings {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let name = unique("q");
    let mut fifo = sqs.create_queue().queue_name(format!("{name}-polls.fifo")).attributes(A::FifoQueue, "true");
    let mut standard = sqs.create_queue().queue_name(format!("{name}-deliveries"));
    if let Some(seconds) = visibility {
        fifo = fifo.attributes(A::VisibilityTimeout, seconds.to_string());
        standard = standard.attributes(A::VisibilityTimeout, seconds.to_string());
    }
    EventsSettings {
        poll_queue_url: fifo.send().await.unwrap().queue_url.unwrap(),
        delivery_queue_url: standard.send().await.unwrap().queue_url.unwrap(),
        callback_allowed_hosts: AllowList::parse("127.0.0.1"),
        retry_waits,
    }
}

pub const KEY: &str = "the-application's-signing-key";

pub struct World {
    pub env: TestEnv,
    pub jira: JiraStandIn,
    pub receiver: CallbackReceiver,
    pub events: Arc<Events>,
    /// The caller's `Authorization`, and the same with the instance's token.
    pub auth: String,
    pub with_token: String,
    pub id: u64,
    /// What "now" is for the steps: real time plus this.
    pub ahead: Duration,
}

impl World {
    /// An instance with events on (interval 1 minute, signed), checked with
    /// the stand-in of `flavor`, its callback the receiver.
    pub async fn new(flavor: &str, extra: Value) -> World {
        let env = TestEnv::new().await;
        let jira = JiraStandIn::start(flavor);
        let receiver = CallbackReceiver::start();
        let app = env.app_with(trusting(&env, &jira, &receiver));
        let sqs = aws_sdk_sqs::Client::new(&env.sdk);
        let events_settings = queues(&sqs, Some(2), vec![Duration::from_secs(1), Duration::from_secs(1)]).await;
        let events = Arc::new(Events::new(app, events_settings, Deferred::ready(sqs)));

        let creds = env.credentials().await;
        let mut configuration = json!({
            "jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url,
            "event.notification.enabled": true,
            "event.vendor.type": "polling",
            "event.notification.callback.url": receiver.url,
            "event.notification.signature.key": KEY,
            "event.poller.refresh_interval": 1,
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            configuration[k] = v;
        }
        let mut body = seed_body();
        body["configuration"] = configuration;
        let created = post(Some(&creds.authorization()), &body).send(&events.app).await;
        assert_eq!(created.status, 200, "{}", created.text);
        let with_token = format!("{}, Element {}", creds.authorization(), created.token());
        World {
            id: created.id(),
            auth: creds.authorization(),
            with_token,
            env,
            jira,
            receiver,
            events,
            ahead: Duration::ZERO,
        }
    }

    pub fn now(&self) -> SystemTime {
        SystemTime::now() + self.ahead
    }

    /// Moves the steps' clock and JIRA's on by `by`, then runs a tick and
    /// both queues.
    pub async fn after(&mut self, by: Duration) -> driver::Round {
        self.ahead += by;
        self.jira.advance(by).await;
        driver::round(&self.events, self.now(), true).await.expect("a round of the driver")
    }

    /// As [`World::after`], the tick and the poll queue only (the
    /// deliveries left queued).
    pub async fn polls_after(&mut self, by: Duration) {
        self.ahead += by;
        self.jira.advance(by).await;
        driver::round_polls_only(&self.events, self.now()).await;
    }

    /// The queues only, now (a retry's delayed message).
    pub async fn drain(&self) -> driver::Round {
        driver::round(&self.events, self.now(), false).await.expect("a round of the driver")
    }

    pub async fn notifications(&self) -> Vec<Value> {
        self.receiver.requests().await
    }

    pub async fn searches(&self) -> usize {
        self.jira.requests().await.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains("/search"))).count()
    }

    /// `PATCH /instances/{id}` of `configuration`.
    pub async fn configure(&self, configuration: Value) -> Answer {
        let path = format!("/instances/{}", self.id);
        with_json("PATCH", &path, &self.auth, &json!({ "configuration": configuration })).send(&self.events.app).await
    }

    pub async fn events_api(&self, path: &str, auth: &str) -> Answer {
        request("GET", path).header("authorization", auth).send(&self.events.app).await
    }

    pub async fn item(&self) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        let pk = format!("INSTANCE#{}", self.id);
        self.env
            .instance_items()
            .await
            .into_iter()
            .find(|i| i.get("PK").and_then(|v| v.as_s().ok()) == Some(&pk))
            .expect("the instance's item")
    }
}

pub fn body_of(n: &Value) -> Value {
    serde_json::from_str(n["body"].as_str().unwrap()).unwrap()
}

pub fn object_ids(notifications: &[Value]) -> Vec<String> {
    notifications
        .iter()
        .filter(|n| n["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .flat_map(|n| body_of(n)["message"]["events"].as_array().cloned().unwrap_or_default())
        .map(|e| e["objectId"].as_str().unwrap().to_owned())
        .collect()
}

pub const MINUTE: Duration = Duration::from_secs(61);

/// The events the receiver was notified of: `(objectId, date, eventType)`.
pub fn notified_events(notifications: &[Value]) -> Vec<(String, String, String)> {
    notifications
        .iter()
        .filter(|n| n["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .flat_map(|n| body_of(n)["message"]["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_owned();
            (text("objectId"), text("date"), text("eventType"))
        })
        .collect()
}

pub fn instant(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).unwrap().to_string()
}

/// The events the instance's log holds (every notification recorded):
/// `(objectId, date, eventType)`.
pub async fn logged_events(w: &World) -> Vec<(String, String, String)> {
    let pk = format!("EVENTS#{}", w.id);
    let items = w.env.store().scan_raw().await.unwrap();
    items
        .iter()
        .filter(|i| i.get("PK").and_then(|v| v.as_s().ok()) == Some(&pk))
        .flat_map(|i| i["events"].as_l().unwrap().clone())
        .map(|e| {
            let m = e.as_m().unwrap();
            let text = |k: &str| m[k].as_s().unwrap().clone();
            (text("objectId"), text("date"), text("eventType"))
        })
        .collect()
}
