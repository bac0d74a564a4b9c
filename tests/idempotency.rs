//! `Idempotency-Key`: replay within 24 h, 422 on another body, scoped to the
//! organization, one instance under concurrency, one transaction.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use instances::domain::idempotency::IdempotencyKey;
use instances::domain::request::CreateInstance;
use instances::service::create_instance;
use instances::store::Principal;
use serde_json::json;

#[tokio::test]
async fn the_same_key_replays_the_first_response_and_writes_nothing_new() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let first = post(Some(&auth), &seed_body()).header("idempotency-key", "order-1").send(&app).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let before = env.store().scan_raw().await.unwrap().len();
    // Same meaning, other bytes (white space, key order, the quoted key form): a replay.
    let mut same = seed_body();
    same["name"] = json!("  Test  ");
    let again = post(Some(&auth), &same).header("idempotency-key", "\"order-1\"").send(&app).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.json, first.json, "same id, same token, same body");
    assert_eq!(env.store().scan_raw().await.unwrap().len(), before, "a replay writes nothing");
    assert_eq!(env.instance_items().await.len(), 1);
    // A cold environment (no cached data key) replays it too, through KMS Decrypt.
    let cold = env.app();
    let third = post(Some(&auth), &seed_body()).header("idempotency-key", "order-1").send(&cold).await;
    assert_eq!(third.json, first.json);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_changes_nothing() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let first = post(Some(&auth), &seed_body()).header("idempotency-key", "k").send(&app).await;
    assert_eq!(first.status, 200);
    let mut other = seed_body();
    other["configuration"]["jira.password"] = json!("another password");
    let a = post(Some(&auth), &other).header("idempotency-key", "k").send(&app).await;
    a.error(422, "idempotency_key_reused");
    assert!(!a.text.contains(first.json["token"].as_str().unwrap()));
    assert_eq!(env.instance_items().await.len(), 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_organization() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (a, b) = (env.credentials().await, env.credentials().await);
    let x = post(Some(&a.authorization()), &seed_body()).header("idempotency-key", "shared").send(&app).await;
    let y = post(Some(&b.authorization()), &seed_body()).header("idempotency-key", "shared").send(&app).await;
    assert_eq!((x.status, y.status), (200, 200));
    assert_ne!(x.id(), y.id());
    assert_eq!(env.instance_items().await.len(), 2);
}

#[tokio::test]
async fn concurrent_duplicates_create_exactly_one_instance() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let answers: Vec<Answer> = futures::future::join_all(
        (0..16).map(|_| post(Some(&auth), &seed_body()).header("idempotency-key", "race").send(&app)),
    )
    .await;
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    for a in &answers {
        assert!(a.status == 200 || a.status == 409, "{}", a.text);
        if a.status == 409 {
            a.error(409, "idempotency_key_in_flight");
            assert_eq!(a.headers["retry-after"], "1");
        }
    }
    assert!(!ok.is_empty());
    assert!(ok.iter().all(|a| a.json == ok[0].json), "every 200 carries the same id and token");
    assert_eq!(env.instance_items().await.len(), 1);
}

#[tokio::test]
async fn after_24_hours_a_key_creates_anew() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let principal = Principal { organization: creds.organization.clone(), user: creds.user.clone() };
    let body = seed_body();
    let request = CreateInstance::parse(&body, &app.catalog).unwrap();
    let key = IdempotencyKey::parse(b"daily").unwrap();
    let t0 = SystemTime::now();
    let first = create_instance(&app, &principal, &request, Some(&key), t0).await.unwrap();
    let within =
        create_instance(&app, &principal, &request, Some(&key), t0 + Duration::from_secs(23 * 3600)).await.unwrap();
    assert!(within.replayed);
    assert_eq!(within.id, first.id);
    let after =
        create_instance(&app, &principal, &request, Some(&key), t0 + Duration::from_secs(25 * 3600)).await.unwrap();
    assert!(!after.replayed);
    assert_ne!(after.id, first.id);
    assert_eq!(env.instance_items().await.len(), 2);
    // The record carries its TTL.
    let items = env.store().scan_raw().await.unwrap();
    let record = items.iter().find(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY").unwrap();
    let expires: i64 = record["expiresAt"].as_n().unwrap().parse().unwrap();
    let created =
        (t0 + Duration::from_secs(25 * 3600)).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(expires, created + 24 * 3600);
}

#[tokio::test]
async fn row_409_while_the_first_request_with_the_key_is_in_flight() {
    use common::proxy::{Mode, Proxy};
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    proxy.set(Mode::ConflictTransactions);
    let app = env.app_via(&proxy.url, &endpoint()).await;
    // DynamoDB cancels a transaction on an item another transaction is writing
    // (TransactionConflict); with no record to replay yet, the answer is 409.
    let a = post(Some(&creds.authorization()), &seed_body()).header("idempotency-key", "in-flight").send(&app).await;
    a.error(409, "idempotency_key_in_flight");
    assert_eq!(a.headers["retry-after"], "1");
    assert!(env.instance_items().await.is_empty());
    // Once the other request is done, the same key creates (or replays).
    proxy.set(Mode::Forward);
    let b = post(Some(&creds.authorization()), &seed_body()).header("idempotency-key", "in-flight").send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
}

/// The same instance said in other words (tags in another order, a
/// username with white space around it, a URL in another case with a
/// trailing slash, `+5` for `5`) is the same request: a replay, not a 422.
/// What is stored is the one normal form.
#[tokio::test]
async fn the_same_meaning_in_other_words_replays_and_is_stored_in_one_form() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let mut first = seed_body();
    first["tags"] = json!(["support", "prod", "eu"]);
    first["configuration"]["jira.username"] = json!("  jira-user@example.com ");
    first["configuration"]["jira.api.url"] = json!("HTTPS://Example.Atlassian.net:443/");
    first["configuration"]["event.poller.refresh_interval"] = json!("+5");
    let a = post(Some(&auth), &first).header("idempotency-key", "words").send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);

    let mut second = seed_body();
    second["tags"] = json!(["eu", "support", "prod"]);
    second["configuration"]["jira.api.url"] = json!("example.atlassian.net");
    second["configuration"]["event.poller.refresh_interval"] = json!(5);
    let b = post(Some(&auth), &second).header("idempotency-key", "words").send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.headers["idempotent-replayed"], "true");
    assert_eq!(b.id(), a.id());

    let items = env.instance_items().await;
    assert_eq!(items.len(), 1);
    let config = items[0]["configuration"].as_m().unwrap();
    assert_eq!(config["jira.username"].as_s().unwrap(), "jira-user@example.com");
    assert_eq!(config["jira.api.url"].as_s().unwrap(), "https://example.atlassian.net");
    assert_eq!(config["event.poller.refresh_interval"].as_s().unwrap(), "5");

    // A different set of tags is a different request.
    second["tags"] = json!(["eu", "support"]);
    post(Some(&auth), &second).header("idempotency-key", "words").send(&app).await.error(422, "idempotency_key_reused");
}
