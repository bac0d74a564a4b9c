//! Events: JIRA's changes reach the application. Against the JIRA stand-in
//! (`tools/jira_standin.py`), an HTTPS callback receiver
//! (`tools/callback_receiver.py`) and moto's DynamoDB, KMS and SQS: the
//! steps run through the local driver (`events::driver::round`), which
//! plays the schedule and the queues' triggers by calling the functions'
//! own handlers. Time moves by handing the steps a later `now` (the polls'
//! intervals are minutes); JIRA's clock is its own.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::events::*;
use common::*;
use hmac::{Hmac, Mac};
use instances::events::{driver, poll, Events, PollMessage, SqsRecord};
use instances::sdk::Deferred;
use serde_json::{json, Value};

#[tokio::test]
async fn created_and_updated_issues_become_one_signed_notification_each_once() {
    let mut w = World::new("cloud", json!({})).await;
    // Nothing is due before its interval.
    let early = driver::round(&w.events, w.now(), true).await.unwrap();
    assert_eq!(early.ticked, 0);

    let created = w.jira.create_issue(json!({"summary": "Printer on fire"})).await;
    let new_id = created["id"].as_str().unwrap().to_owned();
    let patched = with_json("PATCH", "/incidents/DEMO-1", &w.with_token, &json!({"fields": {"summary": "Updated"}}))
        .send(&w.events.app)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let demo1 = patched.json["id"].as_str().unwrap().to_owned();
    w.jira.forget_requests().await;

    let round = w.after(MINUTE).await;
    assert_eq!((round.ticked, round.polls), (1, 1), "{round:?}");
    let got = w.notifications().await;
    assert_eq!(got.len(), 1, "one notification of two events: {got:#?}");
    let n = &got[0];
    assert_eq!(n["method"], "POST");
    assert_eq!(n["headers"]["content-type"], "application/json");
    let body = body_of(n);
    let message = &body["message"];
    assert_eq!(message["instanceId"], w.id);
    assert_eq!(message["elementKey"], "jira");
    assert_eq!(n["headers"]["elements-webhook-id"], message["eventId"]);
    let mut kinds: Vec<(String, String)> = message["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(
                (e["objectType"].as_str(), e["hubKey"].as_str(), e["elementKey"].as_str()),
                (Some("incidents"), Some("helpdesk"), Some("jira"))
            );
            assert!(e["date"].as_str().unwrap().ends_with('Z') && e["pollDate"].is_string(), "{e}");
            (e["objectId"].as_str().unwrap().to_owned(), e["eventType"].as_str().unwrap().to_owned())
        })
        .collect();
    kinds.sort();
    let mut expected = vec![(new_id.clone(), "CREATED".to_owned()), (demo1.clone(), "UPDATED".to_owned())];
    expected.sort();
    assert_eq!(kinds, expected);
    assert_eq!(message["raw"]["incidents"].as_array().map(Vec::len), Some(2));
    // Signed: sha256= and the base64 of HMAC-SHA256 of the exact body.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(n["body"].as_str().unwrap().as_bytes());
    let expected = format!("sha256={}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(n["headers"]["elements-webhook-signature"], expected.as_str());
    // The first poll asked one search, by dates relative to JIRA's now (no
    // time zone needed), and kept JIRA's clock as its `Date` told.
    let asked = w.jira.requests().await;
    assert!(!asked.iter().any(|r| r["path"] == "/rest/api/2/myself"), "{asked:#?}");
    assert_eq!(w.searches().await, 1, "{asked:#?}");
    let search = asked.iter().find(|r| r["path"].as_str().is_some_and(|p| p.contains("/search"))).unwrap();
    assert_eq!(search["method"], "POST", "the JQL in the body, never in a URL");
    let jql = search["body"]["jql"].as_str().unwrap();
    assert!(jql.starts_with("updated >= \"-") && jql.ends_with("m\" ORDER BY updated ASC"), "{jql}");
    let item = w.item().await;
    let clock: i64 = item["pollClock"].as_n().unwrap().parse().unwrap();
    assert!(clock.abs() < 5_000, "JIRA's clock and the steps' moved on together: {clock} ms");

    // The next poll sees both again (the overlap) and notifies nothing: one
    // search, no account read.
    w.jira.forget_requests().await;
    let round = w.after(MINUTE).await;
    assert_eq!(round.polls, 1);
    assert_eq!(w.notifications().await.len(), 1, "nothing notified twice");
    assert_eq!(w.searches().await, 1);
    assert_eq!(w.jira.requests().await.len(), 1, "one JIRA request for a poll with no change");

    // A change after it is notified, once.
    let again =
        with_json("PATCH", &format!("/incidents/{new_id}"), &w.with_token, &json!({"fields": {"summary": "Out"}}))
            .send(&w.events.app)
            .await;
    assert_eq!(again.status, 200);
    w.after(MINUTE).await;
    let got = w.notifications().await;
    assert_eq!(object_ids(&got), {
        let mut first = object_ids(&got[..1]);
        first.push(new_id.clone());
        first
    });
    assert_eq!(body_of(&got[1])["message"]["events"][0]["eventType"], "UPDATED");

    // The events API: newest first, delivered, one attempt; by id and by token.
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let events = listed.json.as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "{}", listed.text);
    assert_eq!(events[0]["objectId"], new_id.as_str());
    assert_eq!(events[0]["eventType"], "UPDATED");
    for e in &events {
        assert_eq!((e["status"].as_str(), e["attempts"].as_u64()), (Some("NOTIFIED"), Some(1)), "{e}");
        for field in ["id", "eventDate", "objectType", "objectId", "eventType"] {
            assert!(e[field].is_string(), "{field} in {e}");
        }
    }
    let by_token = w.events_api("/instances/events", &w.with_token).await;
    assert_eq!(by_token.json, listed.json);
    // Pages of one.
    let first = w.events_api(&format!("/instances/{}/events?pageSize=2", w.id), &w.auth).await;
    assert_eq!(first.json.as_array().map(Vec::len), Some(2));
    let token = first.headers["elements-next-page-token"].to_str().unwrap().to_owned();
    let second = w.events_api(&format!("/instances/{}/events?pageSize=2&nextPage={token}", w.id), &w.auth).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json.as_array().map(Vec::len), Some(1));
    assert_eq!(second.json[0], events[2]);
    assert!(second.headers.get("elements-next-page-token").is_none());
    // Another organization's caller does not see them.
    let other = w.env.credentials().await;
    w.events_api(&format!("/instances/{}/events", w.id), &other.authorization()).await.error(404, "not_found");
}

#[tokio::test]
async fn more_changes_than_a_page_are_read_by_id_ranges_and_notified_in_tens_on_jira_server() {
    let mut w = World::new("server", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..105 {
        let issue = w.jira.create_issue(json!({"summary": format!("Issue {i}")})).await;
        ids.push(issue["id"].as_str().unwrap().to_owned());
    }
    w.jira.forget_requests().await;
    // Read once JIRA's search can no longer lag behind them (two minutes).
    w.after(3 * MINUTE).await;
    let got = w.notifications().await;
    assert_eq!(got.len(), 11, "105 events, ten a notification");
    assert!(got.iter().all(|n| body_of(n)["message"]["events"].as_array().unwrap().len() <= 10));
    let mut notified = object_ids(&got);
    notified.sort();
    ids.sort();
    assert_eq!(notified, ids, "every change once");
    let pages: Vec<Value> = w.jira.requests().await.into_iter().filter(|r| r["path"] == "/rest/api/2/search").collect();
    for page in &pages {
        assert!(page["body"].get("startAt").is_none(), "never a second offset page: {page:#?}");
    }
    assert!(
        pages.iter().any(|p| p["body"]["jql"].as_str().unwrap().contains("AND key > \"DEMO-")),
        "read on in the keys' order: {pages:#?}"
    );
    // Nothing twice on the next polls.
    w.after(MINUTE).await;
    w.after(MINUTE).await;
    assert_eq!(w.notifications().await.len(), 11);
}

#[tokio::test]
async fn a_refusing_callback_is_retried_with_the_same_id_and_kept_as_failed_at_last() {
    let mut w = World::new("cloud", json!({})).await;
    w.receiver.next(json!({"answers": [{"status": 500}, {"status": 302, "headers": {"Location": "https://127.0.0.1:9/elsewhere"}}]})).await;
    w.jira.create_issue(json!({"summary": "Retried"})).await;
    w.after(MINUTE).await;
    for _ in 0..20 {
        if w.notifications().await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.drain().await;
    }
    let got = w.notifications().await;
    let statuses: Vec<u64> = got.iter().map(|n| n["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [500, 302, 200], "{got:#?}");
    let ids: Vec<&Value> = got.iter().map(|n| &n["headers"]["elements-webhook-id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one notification id across retries: {ids:?}");
    assert!(got.iter().all(|n| n["path"] == "/callback"), "no redirect followed");
    let bodies: Vec<&Value> = got.iter().map(|n| &n["body"]).collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]), "the same bytes every time");
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!((listed.json[0]["status"].as_str(), listed.json[0]["attempts"].as_u64()), (Some("NOTIFIED"), Some(3)));

    // Three refusals: kept as FAILED after the last wait, with why.
    w.receiver.reset().await;
    w.receiver.next(json!({"answers": [{"status": 503}, {"status": 503}, {"status": 404}, {"status": 404}]})).await;
    w.jira.create_issue(json!({"summary": "Never taken"})).await;
    w.after(MINUTE).await;
    for _ in 0..20 {
        if w.notifications().await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.drain().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.drain().await;
    assert_eq!(w.notifications().await.len(), 3, "three attempts, then no more");
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    let last = &listed.json[0];
    assert_eq!((last["status"].as_str(), last["attempts"].as_u64()), (Some("FAILED"), Some(3)), "{last}");
    assert_eq!(last["lastResult"], "HTTP 404");
}

#[tokio::test]
async fn jira_refusing_the_login_stops_the_polls_until_the_credentials_change() {
    let mut w = World::new("cloud", json!({})).await;
    w.jira.next(json!({"preset": "unauthorized", "match": {"path": "/rest/api/2/search"}})).await;
    w.after(MINUTE).await;
    let item = w.item().await;
    assert_eq!(item["valid"].as_bool(), Ok(&false));
    assert!(!item.contains_key("pollDue"), "out of the due index");
    let shown =
        request("GET", &format!("/instances/{}", w.id)).header("authorization", &w.auth).send(&w.events.app).await;
    assert_eq!(shown.json["valid"], false);
    w.jira.forget_requests().await;
    w.after(MINUTE * 3).await;
    assert!(w.jira.requests().await.is_empty(), "no login tried again");

    // New credentials (checked: accepted) start them again.
    let changed = w.configure(json!({"jira.password": w.jira.password})).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json["valid"], true);
    w.jira.create_issue(json!({"summary": "After the fix"})).await;
    w.after(MINUTE).await;
    assert_eq!(w.notifications().await.len(), 1);
}

#[tokio::test]
async fn jiras_rate_limit_holds_the_next_poll_for_its_retry_after() {
    let mut w = World::new("cloud", json!({})).await;
    w.jira.next(json!({"preset": "rate-limited", "retryAfter": 300, "match": {"path": "/rest/api/2/search"}})).await;
    w.jira.create_issue(json!({"summary": "Held"})).await;
    w.after(MINUTE).await;
    assert!(w.notifications().await.is_empty());
    let due = w.item().await["pollDue"].as_n().unwrap().parse::<i64>().unwrap();
    let now = instances::events::epoch_ms(w.now());
    assert!((due - now - 300_000).abs() < 5_000, "due {due}, now {now}");
    w.jira.forget_requests().await;
    w.after(Duration::from_secs(120)).await;
    assert_eq!(w.searches().await, 0, "not before its Retry-After");
    w.after(Duration::from_secs(200)).await;
    assert_eq!(w.notifications().await.len(), 1, "then the change, not lost");
}

#[tokio::test]
async fn disabled_and_deleted_instances_are_not_polled_and_a_deleted_ones_deliveries_go() {
    let mut w = World::new("cloud", json!({})).await;
    let off = request("DELETE", &format!("/instances/{}/enabled", w.id))
        .header("authorization", &w.auth)
        .send(&w.events.app)
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    w.jira.create_issue(json!({"summary": "While disabled"})).await;
    w.jira.forget_requests().await;
    w.after(MINUTE).await;
    w.after(MINUTE).await;
    assert_eq!(w.searches().await, 0, "a disabled instance is not polled");
    let on = request("PUT", &format!("/instances/{}/enabled", w.id))
        .header("authorization", &w.auth)
        .send(&w.events.app)
        .await;
    assert_eq!(on.status, 200);
    w.after(MINUTE).await;
    assert_eq!(w.notifications().await.len(), 1, "enabled again: the change made meanwhile comes");

    // A delivery pending when the instance is deleted goes with it.
    w.receiver.next(json!({"answers": [{"status": 500}]})).await;
    w.jira.create_issue(json!({"summary": "Pending"})).await;
    w.after(MINUTE).await;
    assert_eq!(w.notifications().await.len(), 2);
    let gone =
        request("DELETE", &format!("/instances/{}", w.id)).header("authorization", &w.auth).send(&w.events.app).await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.jira.forget_requests().await;
    w.after(MINUTE).await;
    assert_eq!(w.notifications().await.len(), 2, "no attempt after the delete");
    assert_eq!(w.searches().await, 0, "a deleted instance is not polled");
    let left: Vec<_> = w
        .env
        .store()
        .scan_raw()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.get("PK").and_then(|v| v.as_s().ok()) == Some(&format!("EVENTS#{}", w.id)))
        .filter(|i| i.get("status").and_then(|v| v.as_s().ok()).is_some_and(|s| s != "NOTIFIED"))
        .collect();
    assert!(left.is_empty(), "the pending notification went: {left:?}");
}

#[tokio::test]
async fn a_poll_broken_off_or_run_twice_loses_nothing_and_notifies_nothing_twice() {
    let mut w = World::new("server", json!({})).await;
    for i in 0..105 {
        w.jira.create_issue(json!({"summary": format!("Issue {i}")})).await;
    }
    // The first page's connection drops: the poll records nothing, the
    // cursor stays.
    w.jira.next(json!({"drop": true, "match": {"path": "/rest/api/2/search"}, "times": 1})).await;
    w.after(MINUTE).await;
    assert!(w.notifications().await.is_empty(), "nothing from a poll whose first page failed");
    // Then a later page's connection drops: what the pages before it read
    // is recorded, and the next poll goes on from there.
    w.jira
        .next(json!([
            {"passThrough": true, "match": {"path": "/rest/api/2/search"}, "times": 2},
            {"drop": true, "match": {"path": "/rest/api/2/search"}, "times": 1}
        ]))
        .await;
    w.after(Duration::from_secs(5 * 60)).await;
    let first = object_ids(&w.notifications().await).len();
    assert!(first > 0 && first < 105, "what the pages before the break read, recorded: {first}");
    for _ in 0..3 {
        w.after(Duration::from_secs(60)).await;
    }
    let got = w.notifications().await;
    let mut ids = object_ids(&got);
    assert_eq!(ids.len(), 105, "every change, after the break: {}", ids.len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 105, "none twice");

    // The same poll message twice at once (a repeated SQS delivery): one poll
    // records, the other finds it done.
    w.jira.create_issue(json!({"summary": "Once"})).await;
    w.ahead += MINUTE;
    let due = w.item().await["pollDue"].as_n().unwrap().parse::<i64>().unwrap();
    let id = instances::domain::token::InstanceId::new(w.id).unwrap();
    let (a, b) = tokio::join!(poll::poll(&w.events, id, due, w.now()), poll::poll(&w.events, id, due, w.now()));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| matches!(o, poll::Polled::Recorded { .. })).count(), 1, "{outcomes:?}");
    // And again after its commit (its answer lost): its deliveries are handed
    // over again, and the deliverer sends each once.
    let message = serde_json::to_string(&PollMessage { instance: w.id, due }).unwrap();
    driver::handle_polls(&w.events, &[SqsRecord { message_id: "again".into(), body: message }], w.now()).await;
    w.drain().await;
    let got = w.notifications().await;
    assert_eq!(object_ids(&got).len(), 106, "{got:#?}");
    let mut webhook_ids: Vec<&str> =
        got.iter().map(|n| n["headers"]["elements-webhook-id"].as_str().unwrap()).collect();
    webhook_ids.sort();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), got.len(), "each notification sent once");
}

#[tokio::test]
async fn event_settings_are_checked_at_the_create_and_the_update() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let with = |config: Value| {
        let mut body = seed_body();
        for (k, v) in config.as_object().unwrap() {
            body["configuration"][k] = v.clone();
        }
        body
    };
    let webhook = post(
        Some(&creds.authorization()),
        &with(json!({
        "event.notification.enabled": true, "event.vendor.type": "webhook",
        "event.notification.callback.url": "https://app.example.com/cb"})),
    )
    .send(&app)
    .await;
    webhook.error(400, "invalid_configuration");
    assert!(webhook.text.contains("webhook events are not served"), "{}", webhook.text);
    let no_callback =
        post(Some(&creds.authorization()), &with(json!({"event.notification.enabled": true}))).send(&app).await;
    no_callback.error(400, "missing_configuration");
    assert!(no_callback.text.contains("event.notification.callback.url"), "{}", no_callback.text);
    let bad_where = post(
        Some(&creds.authorization()),
        &with(json!({
        "event.notification.enabled": true, "event.notification.callback.url": "https://app.example.com/cb",
        "event.poller.configuration": {"incidents": {"where": "priority = "}}})),
    )
    .send(&app)
    .await;
    bad_where.error(400, "invalid_configuration");
    // Off by default: nothing is polled, nothing kept for polls.
    let plain = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    assert_eq!(plain.status, 200);
    let items = env.instance_items().await;
    assert!(items.iter().all(|i| !i.contains_key("pollShard")), "{items:?}");
    // Enabled by an update: a callback is needed then too; with one, the polls start.
    let path = format!("/instances/{}", plain.id());
    let refused = with_json(
        "PATCH",
        &path,
        &creds.authorization(),
        &json!({"configuration": {"event.notification.enabled": true}}),
    )
    .send(&app)
    .await;
    refused.error(400, "missing_configuration");
    let on = with_json(
        "PATCH",
        &path,
        &creds.authorization(),
        &json!({"configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": "https://app.example.com/cb"}}),
    )
    .send(&app)
    .await;
    assert_eq!(on.status, 200, "{}", on.text);
    let items = env.instance_items().await;
    let item = items.iter().find(|i| i["id"].as_n().unwrap() == &plain.id().to_string()).unwrap();
    assert!(item["pollShard"].as_s().unwrap().starts_with("DUE#"));
    let due: i64 = item["pollDue"].as_n().unwrap().parse().unwrap();
    let since: i64 = item["pollCursor"].as_n().unwrap().parse().unwrap();
    assert_eq!(due - since, 15 * 60_000, "the default interval, 15 minutes");
    // Turned off: everything the polls kept goes.
    let off = with_json(
        "PATCH",
        &path,
        &creds.authorization(),
        &json!({"configuration": {"event.notification.enabled": false}}),
    )
    .send(&app)
    .await;
    assert_eq!(off.status, 200);
    let items = env.instance_items().await;
    let item = items.iter().find(|i| i["id"].as_n().unwrap() == &plain.id().to_string()).unwrap();
    assert!(!item.contains_key("pollShard") && !item.contains_key("pollCursor"), "{item:?}");
}

#[tokio::test]
async fn a_lost_delivery_message_is_sent_again_by_the_tick() {
    let mut w = World::new("cloud", json!({})).await;
    w.jira.create_issue(json!({"summary": "Its message lost"})).await;
    // The poll only (no delivery): the tick, then the poll queue.
    w.ahead += MINUTE;
    driver::round_polls_only(&w.events, w.now()).await;
    // The delivery message is lost (purged, as a crash or a dead-letter queue would).
    let sqs = aws_sdk_sqs::Client::new(&w.env.sdk);
    sqs.purge_queue().queue_url(&w.events.settings.delivery_queue_url).send().await.unwrap();
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.json[0]["status"], "NEW", "{}", listed.text);
    // Not before it is overdue; then the tick sends it again.
    w.after(Duration::from_secs(5 * 60)).await;
    assert!(w.notifications().await.is_empty());
    w.after(Duration::from_secs(12 * 60)).await;
    let got = w.notifications().await;
    assert_eq!(got.len(), 1, "sent again, once: {got:#?}");
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.json[0]["status"], "NOTIFIED");
}

#[tokio::test]
async fn a_poll_does_not_stop_the_polls_on_credentials_changed_meanwhile_and_a_new_interval_counts_at_once() {
    let w = World::new("cloud", json!({})).await;
    let id = instances::domain::token::InstanceId::new(w.id).unwrap();
    let (read, state) = w.events.app.store.poll_target(id).await.unwrap().unwrap();
    let due = state.due_ms.unwrap();
    // An update lands between the poll's read and its 401's write.
    let changed = w.configure(json!({"jira.password": w.jira.password})).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(!w.events.app.store.park_polls(id, due, read.summary.version, true, "refused").await.unwrap());
    let item = w.item().await;
    assert_eq!((item["valid"].as_bool(), item.contains_key("pollDue")), (Ok(&true), true));
    // A shorter interval: the next poll an interval (the new one) from now.
    let at = instances::events::epoch_ms(SystemTime::now());
    let shorter = w.configure(json!({"event.poller.refresh_interval": 5})).await;
    assert_eq!(shorter.status, 200);
    let due: i64 = w.item().await["pollDue"].as_n().unwrap().parse().unwrap();
    assert!((due - at - 5 * 60_000).abs() < 10_000, "due {due}, now {at}");
}

#[tokio::test]
async fn admin_start_polls_starts_instances_that_enabled_events_before_polls_existed() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"]["event.notification.enabled"] = json!(true);
    body["configuration"]["event.notification.callback.url"] = json!("https://app.example.com/cb");
    let created = post(Some(&creds.authorization()), &body).send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let plain = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    // As 0.3.0 stored it: the entries, no polls.
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.sdk);
    dynamodb
        .update_item()
        .table_name(&env.settings.table_name)
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("INSTANCE#{}", created.id())))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S("INSTANCE".into()))
        .update_expression("REMOVE pollShard, pollDue, pollCursor, pollFloor")
        .send()
        .await
        .unwrap();
    let out = env.admin.start_polls().await.unwrap();
    assert_eq!(out["started"], json!([created.id()]), "{out}");
    let items = env.instance_items().await;
    let item = items.iter().find(|i| i["id"].as_n().unwrap() == &created.id().to_string()).unwrap();
    assert!(item.contains_key("pollShard") && item.contains_key("pollDue") && item.contains_key("pollCursor"));
    let other = items.iter().find(|i| i["id"].as_n().unwrap() == &plain.id().to_string()).unwrap();
    assert!(!other.contains_key("pollShard"), "events off: nothing started");
    assert_eq!(env.admin.start_polls().await.unwrap()["started"], json!([]), "safe to run again");
}

#[tokio::test]
async fn a_retry_whose_message_cannot_be_handed_on_fails_its_message_so_sqs_hands_it_over_again() {
    let mut w = World::new("cloud", json!({})).await;
    w.jira.create_issue(json!({"summary": "Its retry's message lost"})).await;
    w.ahead += MINUTE;
    driver::round_polls_only(&w.events, w.now()).await;
    let queue = w.events.settings.delivery_queue_url.clone();
    let taken = w.events.receive(&queue, Duration::ZERO).await.unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let (receipt, record) = taken.into_iter().next().unwrap();
    // The callback refuses; the retry is recorded, but the queue refuses its message.
    w.receiver.next(json!({"answers": [{"status": 500}]})).await;
    let mut broken_settings = w.events.settings.clone();
    broken_settings.delivery_queue_url = format!("{queue}-gone");
    let app = w.env.app_with(w.events.app.settings.clone());
    let broken = Events::new(app, broken_settings, Deferred::ready(aws_sdk_sqs::Client::new(&w.env.sdk)));
    let answer = driver::handle_deliveries(&broken, std::slice::from_ref(&record), w.now()).await;
    assert_eq!(answer.failures.len(), 1, "the message fails, SQS hands it over again: {answer:?}");
    assert_eq!(w.notifications().await.len(), 1, "the one refused attempt");
    // Handed over again (the message itself, not deleted): it waits its retry, then is delivered.
    assert!(driver::handle_deliveries(&w.events, &[record], w.now()).await.failures.is_empty());
    w.events.delete(&queue, &receipt).await.ok();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.ahead += Duration::from_secs(2);
    for _ in 0..5 {
        w.drain().await;
        if w.notifications().await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = w.notifications().await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1]["status"], 200);
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.json[0]["status"], "NOTIFIED", "{}", listed.text);
}

#[tokio::test]
async fn a_time_zone_changed_in_the_accounts_profile_loses_no_change() {
    let mut w = World::new("cloud", json!({})).await;
    w.jira.config(json!({"timeZone": "Europe/Berlin"})).await;
    w.jira.create_issue(json!({"summary": "In Berlin"})).await;
    w.after(MINUTE).await;
    assert_eq!(object_ids(&w.notifications().await).len(), 1);
    // The profile's zone changes: JIRA reads JQL's absolute dates in UTC now.
    w.jira.config(json!({"timeZone": "UTC"})).await;
    let after_switch = w.jira.create_issue(json!({"summary": "In UTC"})).await["id"].as_str().unwrap().to_owned();
    w.after(MINUTE).await;
    w.after(MINUTE).await;
    let ids = object_ids(&w.notifications().await);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], after_switch);
    // Every date asked was relative to JIRA's now: no zone to get wrong.
    for r in w.jira.requests().await.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains("/search"))) {
        let jql = r["body"]["jql"].as_str().unwrap();
        assert!(!jql.contains('/'), "no absolute date: {jql}");
    }
}

#[tokio::test]
async fn a_fold_of_the_accounts_clock_turned_back_loses_and_repeats_nothing() {
    let mut w = World::new("cloud", json!({})).await;
    // JIRA's clock at 02:30 the second time (Sydney turns 03:00 back to
    // 02:00 on 2027-04-04: 16:00Z), the account's zone Sydney.
    let fold_end: jiff::Timestamp = "2027-04-03T16:00:00Z".parse().unwrap();
    let sydney = jiff::tz::TimeZone::get("Australia/Sydney").unwrap();
    let civil = jiff::civil::date(2027, 4, 4).at(2, 30, 0, 0);
    assert!(sydney.to_ambiguous_timestamp(civil).is_ambiguous(), "02:30 that night is read twice");
    let jira_now = fold_end.as_second() + 30 * 60;
    let offset = Duration::from_secs((jira_now - jiff::Timestamp::now().as_second()) as u64);
    // JIRA's clock and ours both that night.
    w.jira.advance(offset).await;
    w.ahead += offset;
    let mut made = Vec::new();
    // 150 changes across the fold's two 02:xx hours, the last ten minutes of each.
    for i in 0..150i64 {
        let at = if i % 2 == 0 { fold_end.as_second() - 600 + i } else { jira_now - 600 + i };
        let at = jiff::Timestamp::from_second(at).unwrap().to_string();
        made.push(json!({"summary": format!("Fold {i}"), "created": at, "updated": at}));
    }
    let mut ids: Vec<String> =
        w.jira.create_issues(made).await.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    // The instance's cursor as if it had polled up to 01:40 the first time.
    let id = instances::domain::token::InstanceId::new(w.id).unwrap();
    let pk = format!("INSTANCE#{}", w.id);
    let since = (fold_end.as_second() - 20 * 60) * 1000;
    let key = |k: &str| aws_sdk_dynamodb::types::AttributeValue::S(k.to_owned());
    dynamodb_client(&w.env.sdk, &endpoint())
        .update_item()
        .table_name(&w.env.settings.table_name)
        .key("PK", key(&pk))
        .key("SK", key("INSTANCE"))
        .update_expression("SET pollCursor = :c, pollFloor = :c")
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::N(since.to_string()))
        .send()
        .await
        .unwrap();
    assert!(w.events.app.store.poll_target(id).await.unwrap().is_some());
    for _ in 0..6 {
        w.after(MINUTE).await;
    }
    let mut notified = object_ids(&w.notifications().await);
    assert_eq!(notified.len(), 150, "once each");
    notified.sort();
    ids.sort();
    assert_eq!(notified, ids);
}

#[tokio::test]
async fn a_refusal_on_a_later_page_keeps_what_was_read_and_25_re_edits_between_pages_lose_nothing() {
    let mut w = World::new("server", json!({})).await;
    let start = SystemTime::now() + Duration::from_secs(1);
    let issues: Vec<Value> = (0..300)
        .map(|i| {
            let at = instant(start + Duration::from_millis(i * 150));
            json!({"summary": format!("Burst {i}"), "created": at, "updated": at})
        })
        .collect();
    let made = w.jira.create_issues(issues).await;
    // Two pages go through (the one page, more than a page: the window's
    // first), then JIRA's rate limit.
    w.jira
        .next(json!([
            {"passThrough": true, "match": {"path": "/rest/api/2/search"}, "times": 2},
            {"status": 429, "headers": {"Retry-After": "120"}, "body": {"errorMessages": ["Rate limit exceeded."]},
             "match": {"path": "/rest/api/2/search"}, "times": 1}
        ]))
        .await;
    w.after(3 * MINUTE).await;
    let first = object_ids(&w.notifications().await);
    assert!(!first.is_empty() && first.len() < 300, "the pages before the refusal, kept: {}", first.len());
    let listed = w.events_api(&format!("/instances/{}/events?pageSize=1", w.id), &w.auth).await;
    assert_eq!(listed.headers["elements-events-state"], "held", "{:?}", listed.headers);
    let problem = listed.headers["elements-events-problem"].to_str().unwrap();
    assert!(problem.contains("rate limit"), "{problem}");
    // The last issue read is deleted (JIRA no longer reads `key > "it"`: the
    // reading steps back from it), and 25 issues already read change again
    // before the next pages are read.
    let number = |m: &Value| m["key"].as_str().unwrap()["DEMO-".len()..].parse::<u64>().unwrap();
    let last = made
        .iter()
        .filter(|m| first.contains(&m["id"].as_str().unwrap().to_owned()))
        .max_by_key(|m| number(m))
        .unwrap();
    let deleted = request("DELETE", &format!("/incidents/{}", last["key"].as_str().unwrap()))
        .header("authorization", &w.with_token)
        .send(&w.events.app)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let keys: Vec<String> = made
        .iter()
        .filter(|m| first.contains(&m["id"].as_str().unwrap().to_owned()) && m["id"] != last["id"])
        .take(25)
        .map(|m| m["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 25);
    for key in &keys {
        let patched =
            with_json("PATCH", &format!("/incidents/{key}"), &w.with_token, &json!({"fields": {"summary": "Again"}}))
                .send(&w.events.app)
                .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
    }
    for _ in 0..6 {
        w.after(MINUTE).await;
    }
    let events = notified_events(&w.notifications().await);
    let mut unique = events.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), events.len(), "none twice");
    let mut ids: Vec<String> = events.iter().filter(|(.., t)| t == "CREATED").map(|(id, ..)| id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = made.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every change of the burst once");
    assert_eq!(events.iter().filter(|(.., t)| t == "UPDATED").count(), 25, "the re-edits, once each");
    let refused: Vec<Value> = w
        .jira
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/rest/api/2/search" && r["status"] == 400)
        .collect();
    assert!(!refused.is_empty(), "JIRA refused the deleted key, and the reading stepped back from it");
    let listed = w.events_api(&format!("/instances/{}/events?pageSize=1", w.id), &w.auth).await;
    assert_eq!(listed.headers["elements-events-state"], "polling");
}

#[tokio::test]
async fn a_filter_jira_refuses_holds_the_polls_and_the_events_api_says_why() {
    let mut w =
        World::new("cloud", json!({"event.poller.configuration": {"incidents": {"where": "project = 'GONE'"}}})).await;
    w.jira.create_issue(json!({"summary": "Not seen while the filter is refused"})).await;
    let round = w.after(MINUTE).await;
    assert_eq!(round.polls, 1);
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.headers["elements-events-state"], "held");
    let problem = listed.headers["elements-events-problem"].to_str().unwrap().to_owned();
    assert!(problem.contains("HTTP 400") && problem.contains("GONE"), "{problem}");
    assert!(listed.headers.contains_key("elements-events-next-poll"));
    // Held an hour, not asked again every minute.
    w.jira.forget_requests().await;
    w.after(MINUTE).await;
    assert_eq!(w.searches().await, 0);
    // The filter mended: polled again, and the problem goes.
    let mended = w.configure(json!({"event.poller.configuration": {"incidents": {"where": "project = 'DEMO'"}}})).await;
    assert_eq!(mended.status, 200, "{}", mended.text);
    w.after(MINUTE).await;
    let listed = w.events_api(&format!("/instances/{}/events", w.id), &w.auth).await;
    assert_eq!(listed.headers["elements-events-state"], "polling", "{:?}", listed.headers);
    assert!(listed.headers.get("elements-events-problem").is_none());
}
