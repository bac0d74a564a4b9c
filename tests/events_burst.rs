//! A burst: 5,000 issues changed inside one minute, then one more; every
//! change notified once. Its own binary: it keeps the local server busy,
//! and the other events' tests run beside each other, not beside it.

mod common;

use std::time::{Duration, SystemTime};

use common::events::*;
use serde_json::{json, Value};

#[tokio::test]
async fn a_burst_of_5000_changes_inside_one_minute_and_one_more_are_each_notified_once() {
    let mut w = World::new("cloud", json!({})).await;
    // 5,000 issues changed within one minute (a bulk change), JIRA's clock.
    let start = SystemTime::now() + Duration::from_secs(1);
    let mut made = Vec::new();
    for batch in 0..10 {
        let issues: Vec<Value> = (0..500)
            .map(|i| {
                let at = instant(start + Duration::from_millis(((batch * 500 + i) * 11 % 58_000) as u64));
                json!({"summary": format!("Bulk {batch}-{i}"), "created": at, "updated": at})
            })
            .collect();
        made.extend(w.jira.create_issues(issues).await.into_iter().map(|m| m["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(made.len(), 5_000);
    // The polls only (the 500 deliveries are the deliveries' tests' business):
    // what is notified is what the log records, each recorded once.
    w.polls_after(3 * MINUTE).await;
    let mut polls = 1;
    while logged_events(&w).await.len() < 5_000 && polls < 12 {
        w.polls_after(MINUTE).await;
        polls += 1;
    }
    // Then one more change, after the burst.
    let one = w.jira.create_issue(json!({"summary": "One more"})).await["id"].as_str().unwrap().to_owned();
    let mut after = 0;
    while logged_events(&w).await.len() < 5_001 && after < 8 {
        w.polls_after(MINUTE).await;
        after += 1;
    }
    let events = logged_events(&w).await;
    let mut unique = events.clone();
    unique.sort();
    unique.dedup();
    let mut ids: Vec<String> = events.iter().map(|(id, ..)| id.clone()).collect();
    ids.sort();
    let mut expected = made.clone();
    expected.push(one);
    expected.sort();
    println!(
        "burst: 5,001 changes made, {} notified, {} duplicates, {polls} polls for the burst, {after} for the one after",
        events.len(),
        events.len() - unique.len()
    );
    assert_eq!(unique.len(), events.len(), "none notified twice");
    assert!(ids == expected, "every change notified once: {} of {}", ids.len(), expected.len());
    assert!(events.iter().filter(|(.., t)| t == "CREATED").count() >= 5_000, "created in the window: CREATED");
    // The events API says the polls go on.
    let listed = w.events_api(&format!("/instances/{}/events?pageSize=1", w.id), &w.auth).await;
    assert_eq!(listed.headers["elements-events-state"], "polling");
    assert!(listed.headers.get("elements-events-problem").is_none());
}
