//! The event functions' roles against what the code calls. moto enforces
//! no IAM, so a call the template does not allow passes every other test and
//! fails only on AWS (issue 24: the tick's `UpdateItem` of an overdue
//! notification and its delivery sent again were not in its role, so no
//! lost delivery was ever sent again). Here the tick runs against moto in a
//! state where it does all it can do (an instance's poll due, a
//! notification 15 minutes overdue), every AWS request it makes is recorded
//! as it leaves the SDK (an interceptor of the DynamoDB, KMS and SQS
//! clients: service, operation and what it acts on), the test's own table,
//! index, queues and key named as the template's resources that the
//! function's environment names them by (`TABLE_NAME` is `InstancesTable`,
//! ...), and written to `target/aws-calls/tick.json` (under
//! `CARGO_TARGET_DIR` when set). The template suite (`tools/iam_roles.py`,
//! from `tools/check-template-findings.py`) then evaluates each call against
//! the role of `EventsTickFunction` in `template.yaml`: it fails on a call
//! no statement allows, on a grant no call used, and when this file is
//! missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use common::events::{queues, trusting};
use common::receiver::CallbackReceiver;
use common::standin::JiraStandIn;
use common::*;
use instances::app::App;
use instances::events::{driver, tick, Events};
use instances::sdk::Deferred;
use serde_json::{json, Value};

/// Every request the SDK clients make, once an operation (not once an
/// attempt: a retry needs no other permission): the service and operation
/// the SDK names it by, and its serialized input (all three services speak
/// JSON).
#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(String, String, Value)>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_owned(), m.name().to_owned()),
            None => ("?".to_owned(), "?".to_owned()),
        };
        let input =
            context.request().body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        self.0.lock().unwrap().push((service, operation, input));
        Ok(())
    }
}

/// The test's own resources, and the template's logical resource each one
/// is (through the environment variable the code reads it from).
struct Names {
    table: String,
    key: String,
    poll_queue: String,
    delivery_queue: String,
}

impl Names {
    fn resources() -> Value {
        json!({
            "InstancesTable": "TABLE_NAME",
            "InstancesKey": "KMS_KEY_ID",
            "PollQueue": "POLL_QUEUE_URL",
            "DeliveryQueue": "DELIVERY_QUEUE_URL",
        })
    }

    fn table(&self, name: Option<&str>) -> String {
        match name {
            Some(n) if n == self.table => "InstancesTable".into(),
            other => format!("unknown table {other:?}"),
        }
    }

    fn queue(&self, url: Option<&str>) -> String {
        match url {
            Some(u) if u == self.poll_queue => "PollQueue".into(),
            Some(u) if u == self.delivery_queue => "DeliveryQueue".into(),
            other => format!("unknown queue {other:?}"),
        }
    }

    /// A `Decrypt` names no key (the ciphertext does): the function knows one.
    fn key(&self, id: Option<&str>) -> String {
        match id {
            None => "InstancesKey".into(),
            Some(k) if k == self.key => "InstancesKey".into(),
            other => format!("unknown key {other:?}"),
        }
    }

    /// One recorded request as the template's terms: what it acts on (or,
    /// for a transaction or a batch, each part and what that acts on).
    fn describe(&self, service: &str, operation: &str, input: &Value) -> Value {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let mut call = json!({ "service": service, "operation": operation });
        match (service, operation) {
            ("DynamoDB", "TransactWriteItems" | "TransactGetItems") => {
                let parts: Vec<Value> = input["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item.as_object()?.iter().next())
                    .map(|(kind, part)| {
                        json!({ "operation": kind, "resource": self.table(s(&part["TableName"]).as_deref()) })
                    })
                    .collect();
                call["parts"] = json!(parts);
            }
            ("DynamoDB", "BatchGetItem" | "BatchWriteItem") => {
                let parts: Vec<Value> = input["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(table, _)| json!({ "operation": operation, "resource": self.table(Some(table)) }))
                    .collect();
                call["parts"] = json!(parts);
            }
            ("DynamoDB", _) => {
                let table = self.table(s(&input["TableName"]).as_deref());
                call["resource"] = match s(&input["IndexName"]) {
                    Some(index) => json!(format!("{table}/index/{index}")),
                    None => json!(table),
                };
            }
            ("SQS", _) => call["resource"] = json!(self.queue(s(&input["QueueUrl"]).as_deref())),
            ("KMS", _) => {
                call["resource"] = json!(self.key(s(&input["KeyId"]).as_deref()));
                if let Some(context) = input.get("EncryptionContext") {
                    call["encryptionContext"] = context.clone();
                }
            }
            _ => call["resource"] = json!("unknown"),
        }
        call
    }

    /// The recorded requests, the same ones counted together.
    fn calls(&self, recorder: &Recorder) -> Vec<Value> {
        let mut counted: BTreeMap<String, (Value, u64)> = BTreeMap::new();
        for (service, operation, input) in recorder.0.lock().unwrap().iter() {
            let call = self.describe(service, operation, input);
            counted.entry(call.to_string()).or_insert((call, 0)).1 += 1;
        }
        counted
            .into_values()
            .map(|(mut call, n)| {
                call["count"] = json!(n);
                call
            })
            .collect()
    }
}

/// `target/aws-calls` (or `$CARGO_TARGET_DIR/aws-calls`), where the template
/// suite reads the recordings.
fn calls_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let target = if target.is_absolute() { target } else { Path::new(env!("CARGO_MANIFEST_DIR")).join(target) };
    target.join("aws-calls")
}

/// The clients of the function under test, each request recorded; as
/// patient as the tests' own set-up with the serial moto.
fn recorded_clients(
    env: &TestEnv,
    recorder: &Recorder,
) -> (aws_sdk_dynamodb::Client, aws_sdk_kms::Client, aws_sdk_sqs::Client) {
    let sdk = patient(&env.sdk);
    (
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(recorder.clone()).build(),
        ),
        aws_sdk_kms::Client::from_conf(aws_sdk_kms::config::Builder::from(&sdk).interceptor(recorder.clone()).build()),
        aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&sdk).interceptor(recorder.clone()).build()),
    )
}

const MINUTE: Duration = Duration::from_secs(61);

#[tokio::test]
async fn the_tick_sending_a_due_poll_and_an_overdue_delivery_again_is_recorded_for_its_role() {
    // A failed run leaves no recording of an earlier one behind.
    let out = calls_dir().join("tick.json");
    let _ = std::fs::remove_file(&out);

    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let receiver = CallbackReceiver::start();
    let settings = trusting(&env, &jira, &receiver);
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let events_settings = queues(&sqs, None, vec![Duration::from_secs(60)]).await;
    let set_up =
        Arc::new(Events::new(env.app_with(settings.clone()), events_settings.clone(), Deferred::ready(sqs.clone())));

    // An instance with events on, every minute, and a change in its JIRA.
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"] = json!({
        "jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url,
        "event.notification.enabled": true, "event.vendor.type": "polling",
        "event.notification.callback.url": receiver.url,
        "event.notification.signature.key": "roles-signing-key",
        "event.poller.refresh_interval": 1,
    });
    let created = post(Some(&creds.authorization()), &body).send(&set_up.app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    jira.create_issue(json!({"summary": "Its delivery message lost"})).await;

    // The tick and the poll: one notification recorded, its delivery
    // message lost (purged, as a crash or a dead-letter queue would).
    let t0 = SystemTime::now();
    driver::round_polls_only(&set_up, t0 + MINUTE).await;
    sqs.purge_queue().queue_url(&events_settings.delivery_queue_url).send().await.unwrap();

    // 17 minutes later the instance's next poll is due and the
    // notification 15 minutes overdue: the tick under test, recorded.
    let recorder = Recorder::default();
    let (dynamodb, kms, recorded_sqs) = recorded_clients(&env, &recorder);
    let events = Arc::new(Events::new(
        App::with_clients(dynamodb, kms, settings.clone()).unwrap(),
        events_settings.clone(),
        Deferred::ready(recorded_sqs),
    ));
    let ticked = tick::tick(&events, t0 + MINUTE + Duration::from_secs(17 * 60), None).await.unwrap();
    assert_eq!((ticked.sent, ticked.resent), (1, 1), "a poll sent and a delivery sent again: {ticked:?}");

    let names = Names {
        table: settings.table_name.clone(),
        key: settings.kms_key_id.clone(),
        poll_queue: events_settings.poll_queue_url.clone(),
        delivery_queue: events_settings.delivery_queue_url.clone(),
    };
    let calls = names.calls(&recorder);
    let recording = json!({
        "function": "EventsTickFunction",
        "run": "instances::events::tick::tick over every shard, with one instance's poll due and one notification \
                15 minutes overdue (tests/roles.rs)",
        "ticked": {"sent": ticked.sent, "resent": ticked.resent},
        "resources": Names::resources(),
        "calls": calls,
    });
    std::fs::create_dir_all(calls_dir()).unwrap();
    std::fs::write(&out, serde_json::to_string_pretty(&recording).unwrap()).unwrap();
    println!("{}: {}", out.display(), serde_json::to_string_pretty(&recording["calls"]).unwrap());
    // Every request was one of the test's own resources: the checker can
    // name each as the template's.
    assert!(!calls.is_empty());
    assert!(!recording["calls"].to_string().contains("unknown"), "{recording:#}");
}
