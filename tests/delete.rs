//! Deleting an instance: the instance and the idempotency record that
//! replays its token go together, all or none; the token stops resolving at
//! once; a second delete is 404.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use instances::domain::idempotency::IdempotencyKey;
use instances::domain::request::CreateInstance;
use instances::service::create_instance;
use instances::store::Principal;

fn with_token(creds: &Creds, token: &str) -> String {
    format!("{}, Element {token}", creds.authorization())
}

async fn kinds(env: &TestEnv) -> Vec<String> {
    let mut kinds: Vec<String> = env
        .store()
        .scan_raw()
        .await
        .unwrap()
        .iter()
        .map(|i| i["SK"].as_s().unwrap().clone())
        .filter(|sk| sk == "INSTANCE" || sk == "IDEMPOTENCY")
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn a_delete_takes_the_token_and_its_replay_with_it() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).header("idempotency-key", "to-delete").send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let (id, token) = (created.id(), created.json["token"].as_str().unwrap().to_owned());
    assert_eq!(kinds(&env).await, ["IDEMPOTENCY", "INSTANCE"]);

    let gone = request("DELETE", &format!("/instances/{id}")).header("authorization", &auth).send(&app).await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.json["id"], id, "it answers what it deleted");
    assert!(!gone.text.contains(&token) && gone.headers.get("etag").is_none());
    assert!(kinds(&env).await.is_empty(), "the instance and its idempotency record, together");

    // The token stops resolving at once; by id it is 404; a second delete is 404.
    request("GET", &format!("/instances/{id}"))
        .header("authorization", &with_token(&creds, &token))
        .send(&app)
        .await
        .error(401, "unauthorized");
    request("GET", &format!("/instances/{id}")).header("authorization", &auth).send(&app).await.error(404, "not_found");
    request("DELETE", &format!("/instances/{id}"))
        .header("authorization", &auth)
        .send(&app)
        .await
        .error(404, "not_found");
    // The key no longer replays the deleted instance: it creates anew.
    let again = post(Some(&auth), &seed_body()).header("idempotency-key", "to-delete").send(&app).await;
    assert_eq!(again.status, 200);
    assert_ne!(again.id(), id);
    assert!(again.headers.get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn delete_by_token_and_what_it_refuses() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (creds, other) = (env.credentials().await, env.credentials().await);
    let auth = creds.authorization();
    let a = post(Some(&auth), &seed_body()).send(&app).await;
    let b = post(Some(&auth), &seed_body()).send(&app).await;
    let (a_id, a_token) = (a.id(), a.json["token"].as_str().unwrap().to_owned());

    request("DELETE", &format!("/instances/{a_id}"))
        .header("authorization", &other.authorization())
        .send(&app)
        .await
        .error(404, "not_found");
    request("DELETE", "/instances").header("authorization", &auth).send(&app).await.error(401, "unauthorized");
    request("DELETE", &format!("/instances/{}", b.id()))
        .header("authorization", &with_token(&creds, &a_token))
        .send(&app)
        .await
        .error(401, "unauthorized");
    let stale = request("DELETE", &format!("/instances/{a_id}"))
        .header("authorization", &auth)
        .header("if-match", &format!("\"{a_id}-7\""))
        .send(&app)
        .await;
    stale.error(412, "precondition_failed");
    // Disabled, its token is refused for a delete too; by id it goes.
    request("DELETE", &format!("/instances/{a_id}/enabled")).header("authorization", &auth).send(&app).await;
    request("DELETE", "/instances")
        .header("authorization", &with_token(&creds, &a_token))
        .send(&app)
        .await
        .error(403, "instance_disabled");
    request("PUT", "/instances/enabled").header("authorization", &with_token(&creds, &a_token)).send(&app).await;
    let gone = request("DELETE", "/instances").header("authorization", &with_token(&creds, &a_token)).send(&app).await;
    assert_eq!((gone.status, gone.id()), (200, a_id), "{}", gone.text);
    assert_eq!(env.instance_items().await.len(), 1, "only the other instance is left");
    let b_under = request("DELETE", &format!("/elements/jira/instances/{}", b.id()))
        .header("authorization", &auth)
        .send(&app)
        .await;
    assert_eq!(b_under.status, 200, "{}", b_under.text);
    assert!(env.instance_items().await.is_empty());
}

/// Past its 24 hours a key may have created another instance: deleting the
/// first leaves the record that now replays the second.
#[tokio::test]
async fn a_delete_leaves_a_record_that_names_another_instance() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let principal = Principal { organization: creds.organization.clone(), user: creds.user.clone() };
    let body = seed_body();
    let request_ = CreateInstance::parse(&body, &app.catalog).unwrap();
    let key = IdempotencyKey::parse(b"daily").unwrap();
    let t0 = SystemTime::now();
    let first = create_instance(&app, &principal, &request_, Some(&key), t0).await.unwrap();
    let later = t0 + Duration::from_secs(25 * 3600);
    let second = create_instance(&app, &principal, &request_, Some(&key), later).await.unwrap();
    assert_ne!(first.id, second.id);

    let gone = request("DELETE", &format!("/instances/{}", first.id))
        .header("authorization", &creds.authorization())
        .send(&app)
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(kinds(&env).await, ["IDEMPOTENCY", "INSTANCE"], "the second instance and its record stay");
    let replay =
        create_instance(&app, &principal, &request_, Some(&key), later + Duration::from_secs(60)).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.id, second.id);
}
