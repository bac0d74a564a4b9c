//! The peak memory of one poll against a hostile JIRA (`make bench`): a
//! site that answers every request with the largest body the poll reads of
//! it, made of the smallest JSON values (`{"":0}`, seven bytes, which parse
//! to a map of their own each). The poll function runs four polls at once in
//! 512 MB: one instance's answers must not take the batch down. Counted by a
//! global allocator that keeps the most bytes held at once (the heap the
//! poll's work adds, from its start to its end). Needs the local
//! DynamoDB/KMS/SQS server (`AWS_ENDPOINT_URL`) and the project's virtualenv
//! (the stand-ins), as `make bench` starts them. Writes
//! `target/bench/poll_memory.json`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::receiver::CallbackReceiver;
use common::standin::JiraStandIn;
use common::*;
use instances::events::Events;
use instances::sdk::Deferred;
use serde_json::json;

/// The system's allocator, keeping the bytes held now and the most held.
struct Peak;

static HELD: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            MOST.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = HELD.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                MOST.fetch_max(now, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Peak = Peak;

/// The goal: four polls at once well inside the poll function's 512 MB.
const GOAL_MIB: f64 = 64.0;

/// `[{"":0},{"":0},...]` (eight bytes each, written compact) of just
/// under `bytes`.
fn tiny_values(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes);
    out.push('[');
    while out.len() + 9 < bytes {
        out.push_str(r#"{"":0},"#);
    }
    out.push_str(r#"{"":0}]"#);
    out
}

#[tokio::main]
async fn main() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let receiver = CallbackReceiver::start();
    let app = env.app_with(common::events::trusting(&env, &jira, &receiver));
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let events_settings = common::events::queues(&sqs, None, vec![Duration::from_secs(60)]).await;
    let events = Arc::new(Events::new(app, events_settings, Deferred::ready(sqs)));
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"] = json!({
        "jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url,
        "event.notification.enabled": true, "event.notification.callback.url": receiver.url,
        "event.poller.refresh_interval": 1,
    });
    let created = post(Some(&creds.authorization()), &body).send(&events.app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = instances::domain::token::InstanceId::new(created.id()).unwrap();

    // From now on, every answer is as large as the poll reads of it.
    let five_mib = 5 * 1024 * 1024;
    let one_mib = 1024 * 1024;
    let myself = format!(r#"{{"accountId":"x","timeZone":"UTC","padding":{}}}"#, tiny_values(five_mib - 1024));
    let page = format!(r#"{{"isLast":false,"nextPageToken":"more","issues":{}}}"#, tiny_values(one_mib - 1024));
    let probe = format!(r#"{{"isLast":false,"nextPageToken":"more","issues":{}}}"#, tiny_values(five_mib - 1024));
    let json_type = "application/json;charset=UTF-8";
    jira.next(json!([
        {"match": {"path": "/rest/api/2/myself"}, "status": 200, "body": myself, "contentType": json_type, "times": 100},
        {"match": {"path": "/rest/api/2/search/jql"}, "status": 200, "body": page, "contentType": json_type, "times": 100},
        {"match": {"path": "/rest/api/2/search"}, "status": 200, "body": probe, "contentType": json_type, "times": 100},
    ]))
    .await;

    let due: i64 = {
        let item = env.instance_items().await.into_iter().find(|i| i["id"].as_n().unwrap() == &id.to_string()).unwrap();
        item["pollDue"].as_n().unwrap().parse().unwrap()
    };
    // JIRA's clock and the poll's five minutes on: a window to read by id
    // ranges is open, so the poll reads every kind of page it reads.
    jira.advance(Duration::from_secs(300)).await;
    let at = SystemTime::now() + Duration::from_secs(300);
    let base = HELD.load(Ordering::Relaxed);
    MOST.store(base, Ordering::Relaxed);
    let outcome = instances::events::poll::poll(&events, id, due, at).await;
    let peak = MOST.load(Ordering::Relaxed).saturating_sub(base);
    let asked: Vec<String> =
        jira.requests().await.iter().filter_map(|r| r["path"].as_str().map(str::to_owned)).collect();
    let mib = peak as f64 / (1024.0 * 1024.0);
    let report = json!({
        "peakMiB": (mib * 10.0).round() / 10.0,
        "goalMiB": GOAL_MIB,
        "met": mib <= GOAL_MIB,
        "outcome": format!("{outcome:?}"),
        "jiraRequests": asked,
    });
    std::fs::create_dir_all("target/bench").unwrap();
    std::fs::write("target/bench/poll_memory.json", serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
