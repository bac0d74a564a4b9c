//! What events cost (`make bench`): the requests of a tick per due instance,
//! of a poll with no change, and per event delivered, counted as they leave
//! the SDK (DynamoDB, KMS, SQS: an interceptor of the clients) and as the
//! JIRA stand-in and the callback receiver see them; then a million
//! instances at a 15-minute interval in requests and dollars a month, from
//! those counts and AWS's list prices. Needs the local DynamoDB/KMS/SQS
//! server (`AWS_ENDPOINT_URL`, as `make bench` starts it) and the project's
//! virtualenv (the stand-ins). Writes `target/bench/events.json`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use common::receiver::CallbackReceiver;
use common::standin::JiraStandIn;
use common::*;
use instances::app::App;
use instances::events::{driver, tick, Events, SqsRecord};
use instances::sdk::Deferred;
use serde_json::{json, Value};

/// Every request the SDK clients send, by `X-Amz-Target` (`GetItem`, `Decrypt`, `SendMessageBatch`, ...).
#[derive(Debug, Default, Clone)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "Counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn per(counts: &BTreeMap<String, u64>, n: f64) -> BTreeMap<String, f64> {
    counts.iter().map(|(k, v)| (k.clone(), (*v as f64 / n * 1000.0).round() / 1000.0)).collect()
}

const INSTANCES: usize = 200;

#[tokio::main]
async fn main() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let receiver = CallbackReceiver::start();
    let counter = Counter::default();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.sdk).interceptor(counter.clone()).build(),
    );
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&env.sdk).interceptor(counter.clone()).build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&env.sdk).interceptor(counter.clone()).build(),
    );
    let settings = common::events::trusting(&env, &jira, &receiver);
    let app = App::with_clients(dynamodb, kms, settings).unwrap();
    let events_settings = common::events::queues(&sqs, None, vec![Duration::from_secs(60)]).await;
    let events = Arc::new(Events::new(app, events_settings, Deferred::ready(sqs)));

    // Instances with events on, at 15 minutes.
    let creds = env.credentials().await;
    let mut ids = Vec::new();
    for i in 0..INSTANCES {
        let mut body = seed_body();
        body["name"] = json!(format!("Bench {i}"));
        body["configuration"] = json!({
            "jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url,
            "event.notification.enabled": true, "event.notification.callback.url": receiver.url,
            "event.notification.signature.key": "bench-key",
        });
        let created = post(Some(&creds.authorization()), &body).send(&events.app).await;
        assert_eq!(created.status, 200, "{}", created.text);
        ids.push(created.id());
    }
    let item = env.instance_items().await.into_iter().next().unwrap();
    let item_bytes: usize = item.iter().map(|(k, v)| k.len() + attribute_size(v)).sum();

    // The tick, per due instance.
    let t0 = SystemTime::now();
    let at = |minutes: u64| t0 + Duration::from_secs(minutes * 60 + 30);
    counter.take();
    let ticked = tick::tick(&events, at(15), None).await.unwrap();
    let tick_counts = counter.take();
    assert_eq!(ticked.sent, INSTANCES);

    // The first polls (they learn the account's zone), then the steady ones with no change.
    drain_polls(&events, at(15), &counter).await;
    jira.forget_requests().await;
    tick::tick(&events, at(31), None).await.unwrap();
    counter.take();
    let started = Instant::now();
    let (received, esm) = drain_polls(&events, at(31), &counter).await;
    let poll_wall = started.elapsed();
    let poll_counts = counter.take();
    assert_eq!(received, INSTANCES);
    let jira_per_poll = jira.requests().await.len() as f64 / INSTANCES as f64;

    // Ten changes of one instance: one notification, delivered.
    for i in 0..10 {
        jira.create_issue(json!({"summary": format!("Bench change {i}")})).await;
    }
    let one = instances::domain::token::InstanceId::new(ids[0]).unwrap();
    let item = env.instance_items().await.into_iter().find(|i| i["id"].as_n().unwrap() == &ids[0].to_string()).unwrap();
    let due: i64 = item["pollDue"].as_n().unwrap().parse().unwrap();
    counter.take();
    jira.forget_requests().await;
    let polled = instances::events::poll::poll(&events, one, due, at(47)).await.unwrap();
    let changed_poll = counter.take();
    let changed_jira = jira.requests().await.len();
    let messages = events.receive(&events.settings.delivery_queue_url, Duration::ZERO).await.unwrap();
    counter.take();
    let records: Vec<SqsRecord> = messages.iter().map(|(_, r)| r.clone()).collect();
    driver::handle_deliveries(&events, &records, at(47)).await;
    let delivery_counts = counter.take();
    let posts = receiver.requests().await.len();
    assert_eq!((records.len(), posts), (1, 1), "{polled:?}");

    let report = json!({
        "instances": INSTANCES,
        "instanceItemBytes": item_bytes,
        "tickPerDueInstance": per(&tick_counts, INSTANCES as f64),
        "pollNoChange": {"aws": per(&poll_counts, INSTANCES as f64), "jira": jira_per_poll,
                          "sqsEventSourcePerPoll": esm as f64 / INSTANCES as f64,
                          "wallMsPerBatchOf10": poll_wall.as_secs_f64() * 1000.0 / (INSTANCES as f64 / 10.0)},
        "pollWithTenChanges": {"aws": changed_poll, "jira": changed_jira, "outcome": format!("{polled:?}")},
        "deliveryOfTenEvents": {"aws": delivery_counts, "callbackPosts": posts},
    });
    let cost = cost(&report);
    let out = json!({"measured": report, "millionAt15Minutes": cost});
    std::fs::create_dir_all("target/bench").unwrap();
    std::fs::write("target/bench/events.json", serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}

/// Receives the poll queue and hands it to the poll handler ten at a time,
/// deleting what it took: how many messages, and the event source's own
/// SQS requests (a receive and a delete a batch).
async fn drain_polls(events: &Arc<Events>, now: SystemTime, counter: &Counter) -> (usize, u64) {
    let (mut received, mut esm) = (0, 0);
    loop {
        let batch = events.receive(&events.settings.poll_queue_url, Duration::ZERO).await.unwrap();
        esm += 1;
        if batch.is_empty() {
            let _ = counter.0.lock().unwrap().remove("ReceiveMessage");
            return (received, esm);
        }
        received += batch.len();
        let records: Vec<SqsRecord> = batch.iter().map(|(_, r)| r.clone()).collect();
        let failed = driver::handle_polls(events, &records, now).await;
        assert!(failed.failures.is_empty(), "{failed:?}");
        for (receipt, _) in &batch {
            events.delete(&events.settings.poll_queue_url, receipt).await.unwrap();
        }
        esm += 1;
        let mut c = counter.0.lock().unwrap();
        c.remove("ReceiveMessage");
        c.remove("DeleteMessage");
    }
}

fn attribute_size(v: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match v {
        A::S(s) => s.len(),
        A::N(n) => n.len().div_ceil(2) + 1,
        A::B(b) => b.as_ref().len(),
        A::Bool(_) | A::Null(_) => 1,
        A::L(l) => 3 + l.iter().map(|x| 1 + attribute_size(x)).sum::<usize>(),
        A::M(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + attribute_size(x)).sum::<usize>(),
        A::Ss(s) => s.iter().map(String::len).sum(),
        _ => 0,
    }
}

/// A million instances at 15 minutes: 2.88 billion polls a month (30
/// days), from the counts measured and AWS's list prices for us-east-1 as
/// published in 2025 (not checked today: no network here).
fn cost(m: &Value) -> Value {
    const POLLS: f64 = 1e6 * 4.0 * 24.0 * 30.0;
    const MINUTES: f64 = 60.0 * 24.0 * 30.0;
    let price_wru = 0.625 / 1e6;
    let price_rru = 0.125 / 1e6;
    let price_sqs_fifo = 0.50 / 1e6;
    let price_kms = 0.03 / 1e4;
    let price_lambda_request = 0.20 / 1e6;
    let price_gb_s = 0.000_013_333_4;
    let price_scheduler = 1.00 / 1e6;
    let get = |path: &[&str]| path.iter().fold(m, |v, k| &v[*k]).as_f64().unwrap_or(0.0);
    let item_kb = (get(&["instanceItemBytes"]) / 1024.0).ceil().max(1.0);
    // A poll: one strongly consistent read of the instance (4 KB a unit), one
    // write of it (a unit a KB) and of its entry in DUE (its key moves: a
    // delete and a put, one unit each).
    let reads = get(&["pollNoChange", "aws", "GetItem"]) * (item_kb / 4.0).ceil().max(1.0);
    let writes = get(&["pollNoChange", "aws", "UpdateItem"]) * (item_kb + 2.0);
    let sqs = get(&["tickPerDueInstance", "SendMessageBatch"]) + get(&["pollNoChange", "sqsEventSourcePerPoll"]);
    let kms = get(&["pollNoChange", "aws", "Decrypt"]);
    // Polls are handled ten a batch, side by side: a batch waits for about
    // one JIRA search (300 ms assumed for Jira Cloud), at 512 MB.
    let gb_s = POLLS / 10.0 * 0.3 * 0.5;
    let rows = json!({
        "polls": POLLS,
        "dynamodbReadUnits": POLLS * reads + MINUTES * 32.0,
        "dynamodbWriteUnits": POLLS * writes,
        "sqsRequests": POLLS * sqs,
        "kmsDecryptMeasured": POLLS * kms,
        "kmsDecryptIfNoneCached": POLLS,
        "lambdaInvocations": POLLS / 10.0 + MINUTES,
        "lambdaGbSeconds": gb_s,
        "jiraSearches": POLLS * get(&["pollNoChange", "jira"]),
    });
    let dollars = json!({
        "dynamodb": POLLS * reads * price_rru + POLLS * writes * price_wru,
        "sqs": POLLS * sqs * price_sqs_fifo,
        "lambda": (POLLS / 10.0 + MINUTES) * price_lambda_request + gb_s * price_gb_s,
        "scheduler": MINUTES * price_scheduler,
        "kmsMeasured": POLLS * kms * price_kms,
        "kmsIfNoneCached": POLLS * price_kms,
    });
    json!({"requests": rows, "dollarsPerMonth": dollars})
}
