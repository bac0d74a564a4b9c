//! DynamoDB or KMS down, throttling or hanging: a 503 with `Retry-After`,
//! never a partial record, and a 200 only for what is stored.

mod common;

use common::proxy::{Mode, Proxy};
use common::*;

#[tokio::test]
async fn dynamodb_unreachable_is_503_and_no_item() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = env.app_via(&proxy.url, &endpoint()).await;
    let auth = creds.authorization();
    // Warm: the credential is verified and cached, the data key fetched.
    let mut app_settings = env.settings.clone();
    app_settings.auth_cache = std::time::Duration::from_secs(60);
    let app_cached = env.app_via_with(&proxy.url, &endpoint(), app_settings);
    assert_eq!(post(Some(&auth), &seed_body()).send(&app_cached).await.status, 200);

    for mode in [Mode::Drop, Mode::Throttle, Mode::Stall] {
        proxy.set(mode);
        for (a, what) in [
            (post(Some(&auth), &seed_body()).send(&app_cached).await, "the write"),
            (post(Some(&auth), &seed_body()).header("idempotency-key", "f").send(&app_cached).await, "the transaction"),
            (post(Some(&auth), &seed_body()).send(&app).await, "authentication"),
        ] {
            a.error(503, "service_unavailable");
            assert_eq!(a.headers["retry-after"], "1", "{mode:?} {what}");
            assert!(!a.text.contains("Throttling") && !a.text.contains("127.0.0.1"), "no internal detail: {}", a.text);
        }
    }
    proxy.set(Mode::Forward);
    assert_eq!(env.instance_items().await.len(), 1, "nothing but the first create is stored");
    let items = env.store().scan_raw().await.unwrap();
    assert!(!items.iter().any(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY"), "no half transaction");
    // And it recovers, for a client that retries as Retry-After says (the
    // SDK's retry quota, drained by the faults, refills with successes).
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let a = post(Some(&auth), &seed_body()).send(&app_cached).await;
        statuses.push(a.status);
        if a.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert_eq!(env.instance_items().await.len(), 2);
}

#[tokio::test]
async fn kms_unreachable_is_503_and_no_item() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let app = env.app_via(&endpoint(), &closed_port_url()).await;
    let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    a.error(503, "service_unavailable");
    assert_eq!(a.headers["retry-after"], "1");
    assert!(env.instance_items().await.is_empty());
}

#[tokio::test]
async fn kms_throttling_is_503() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    proxy.set(Mode::Throttle);
    let app = env.app_via(&endpoint(), &proxy.url).await;
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(503, "service_unavailable");
    assert!(env.instance_items().await.is_empty());
}

#[tokio::test]
async fn an_id_collision_is_refused_by_the_store_never_overwritten() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    let id = instances::domain::token::InstanceId::new(a.id()).unwrap();
    let mut record = env.store().get_instance(id).await.unwrap().unwrap();
    let original = record.clone();
    record.summary.name = "overwritten?".into();
    // Another create that drew the same id has another token.
    record.token_digest = instances::domain::secret::SecretDigest::of(b"another token");
    assert_eq!(env.store().put_instance(&record).await.unwrap(), instances::store::PutOutcome::IdTaken);
    assert_eq!(env.store().get_instance(id).await.unwrap().unwrap(), original);
}

#[tokio::test]
async fn a_lost_answer_retried_by_the_sdk_is_one_instance_not_two() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let mut settings = env.settings.clone();
    settings.auth_cache = std::time::Duration::from_secs(60);
    let app = env.app_via_with(&proxy.url, &endpoint(), settings);
    let auth = creds.authorization();
    assert_eq!(post(Some(&auth), &seed_body()).send(&app).await.status, 200, "warm: credential cached");
    for keyed in [false, true] {
        let before = env.instance_items().await.len();
        proxy.lose_next_answers(1);
        let mut req = post(Some(&auth), &seed_body());
        if keyed {
            req = req.header("idempotency-key", "lost-answer");
        }
        let a = req.send(&app).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let items = env.instance_items().await;
        assert_eq!(items.len(), before + 1, "the SDK's retry of a committed write must not leave a second instance");
        assert!(
            items.iter().any(|i| i["id"].as_n().unwrap() == &a.id().to_string()),
            "the answered id is the stored one"
        );
        assert!(a.headers.get("idempotent-replayed").is_none(), "the first answer is not a replay");
    }
}

/// 32 clients creating while the server goes down, throttles and hangs in
/// turn: every answer is 200 or 503 with Retry-After, every 200 is stored,
/// no item is partial, and clients that retry with their Idempotency-Key end
/// with exactly one instance per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_in_the_middle_of_a_load() {
    use std::sync::Arc;
    let env = Arc::new(TestEnv::new().await);
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let mut settings = env.settings.clone();
    settings.auth_cache = std::time::Duration::from_secs(60);
    let app = Arc::new(env.app_via_with(&proxy.url, &endpoint(), settings));
    let auth = Arc::new(creds.authorization());

    let toggler = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            for mode in
                [Mode::Forward, Mode::Drop, Mode::Forward, Mode::Throttle, Mode::Forward, Mode::Stall, Mode::Forward]
            {
                proxy.set(mode);
                tokio::time::sleep(std::time::Duration::from_millis(if mode == Mode::Stall { 2500 } else { 700 }))
                    .await;
            }
        })
    };
    let mut clients = Vec::new();
    for client in 0..32 {
        let (app, auth) = (app.clone(), auth.clone());
        clients.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..4 {
                let key = format!("client-{client}-{n}");
                // Retry as Retry-After says, with the same key, until a 200 (bounded).
                let mut answers = Vec::new();
                for _ in 0..40 {
                    let mut body = seed_body();
                    body["name"] = serde_json::json!(key.clone());
                    let a = post(Some(&auth), &body).header("idempotency-key", &key).send(&app).await;
                    let done = a.status == 200;
                    answers.push(a);
                    if done {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                outcomes.push((key, answers));
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    toggler.await.unwrap();
    proxy.set(Mode::Forward);

    let mut unavailable = 0;
    let mut ids = std::collections::BTreeMap::new();
    for (key, answers) in &all {
        for a in answers {
            match a.status {
                200 => {}
                503 => {
                    a.error(503, "service_unavailable");
                    assert_eq!(a.headers["retry-after"], "1");
                    unavailable += 1;
                }
                other => panic!("{key}: {other} {}", a.text),
            }
        }
        let last = answers.last().unwrap();
        assert_eq!(last.status, 200, "{key} never succeeded");
        let firsts: std::collections::BTreeSet<u64> =
            answers.iter().filter(|a| a.status == 200).map(|a| a.id()).collect();
        assert_eq!(firsts.len(), 1);
        ids.insert(key.clone(), last.id());
    }
    assert!(unavailable > 0, "the faults were felt");
    let items = env.instance_items().await;
    assert_eq!(items.len(), all.len(), "exactly one instance per key: {} items for {} keys", items.len(), all.len());
    for item in &items {
        let name = item["name"].as_s().unwrap();
        let id: u64 = item["id"].as_n().unwrap().parse().unwrap();
        assert_eq!(ids.get(name), Some(&id), "the stored instance is the one answered");
        for attribute in ["tokenDigest", "secrets", "sealedDataKey", "configuration", "organization", "createdDate"] {
            assert!(item.contains_key(attribute), "partial item: no {attribute}");
        }
    }
}

/// Faults that retrying will not mend answer 500 `internal_error`, without
/// `Retry-After` and without detail: a corrupt item, a table that does not
/// exist, a KMS key that does not exist, a replay record that does not open.
#[tokio::test]
async fn permanent_faults_are_500_and_not_to_be_retried() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let internal = |a: &Answer, what: &str| {
        assert_eq!(a.status, 500, "{what}: {}", a.text);
        a.error(500, "internal_error");
        assert!(a.headers.get("retry-after").is_none(), "{what}: a permanent fault is not to be retried");
        assert!(!a.text.contains("DynamoDB") && !a.text.contains("KMS"), "{what}: no internal detail: {}", a.text);
    };

    // A replay record whose sealed response was altered does not open.
    let app = env.app();
    assert_eq!(post(Some(&auth), &seed_body()).header("idempotency-key", "k").send(&app).await.status, 200);
    let items = env.store().scan_raw().await.unwrap();
    let record = items.iter().find(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY").unwrap();
    let mut sealed = record["sealedResponse"].as_b().unwrap().as_ref().to_vec();
    *sealed.last_mut().unwrap() ^= 1;
    dynamodb
        .update_item()
        .table_name(&env.settings.table_name)
        .key("PK", record["PK"].clone())
        .key("SK", record["SK"].clone())
        .update_expression("SET sealedResponse = :b")
        .expression_attribute_values(":b", AttributeValue::B(sealed.into()))
        .send()
        .await
        .unwrap();
    internal(&post(Some(&auth), &seed_body()).header("idempotency-key", "k").send(&app).await, "altered record");

    // A user item that is not as documented.
    let users = env.store().scan_raw().await.unwrap();
    let user = users.iter().find(|i| i["SK"].as_s().unwrap() == "USERSECRET").unwrap();
    dynamodb
        .update_item()
        .table_name(&env.settings.table_name)
        .key("PK", user["PK"].clone())
        .key("SK", user["SK"].clone())
        .update_expression("SET enabled = :s")
        .expression_attribute_values(":s", AttributeValue::S("yes".into()))
        .send()
        .await
        .unwrap();
    internal(&post(Some(&auth), &seed_body()).send(&app).await, "corrupt user item");

    // A table that does not exist (a deployment's misconfiguration).
    let mut settings = env.settings.clone();
    settings.table_name = unique("no-such-table");
    internal(&post(Some(&auth), &seed_body()).send(&env.app_with(settings)).await, "missing table");

    // A KMS key that does not exist (moto does not refuse a disabled key's
    // GenerateDataKey, so the refusal is made with a key that is not there).
    let other = TestEnv::new().await;
    let creds = other.credentials().await;
    let mut settings = other.settings.clone();
    settings.kms_key_id = format!("alias/{}", unique("no-such-key"));
    internal(&post(Some(&creds.authorization()), &seed_body()).send(&other.app_with(settings)).await, "missing key");
    assert!(other.instance_items().await.is_empty());
}

/// A request has a deadline well inside the function's timeout: with
/// DynamoDB hanging, the answer is the API's own 503 with `Retry-After` at
/// the deadline, not after the SDK's timeouts and retries (6 s here, more
/// than a function timeout or API Gateway's 29 s could hold with a few calls
/// in a row).
#[tokio::test]
async fn a_request_is_answered_503_at_its_deadline() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let mut settings = env.settings.clone();
    settings.request_deadline = std::time::Duration::from_millis(400);
    let app = env.app_via_with(&proxy.url, &endpoint(), settings);
    proxy.set(Mode::Stall);
    let started = std::time::Instant::now();
    let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    let took = started.elapsed();
    a.error(503, "service_unavailable");
    assert_eq!(a.headers["retry-after"], "1");
    assert!(took < std::time::Duration::from_secs(3), "answered at the deadline, not the SDK's 6 s: {took:?}");
    proxy.set(Mode::Forward);
    assert!(env.instance_items().await.is_empty());
}
