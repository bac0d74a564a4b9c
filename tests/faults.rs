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
    record.name = "overwritten?".into();
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
