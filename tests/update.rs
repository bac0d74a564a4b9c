//! Partial updates (`PATCH`): entries merged, `"********"` meaning
//! unchanged, validation as at create, one conditional write on the version
//! (`ETag`, `If-Match`), and concurrent updates that never lose one another.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

fn patch_req(path: &str, auth: &str, body: &Value) -> Req {
    with_json("PATCH", path, auth, body)
}

#[tokio::test]
async fn a_patch_merges_and_keeps_what_it_is_not_given() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).send(&app).await;
    let id = created.id();
    let path = format!("/instances/{id}");
    let read = request("GET", &path).header("authorization", &auth).send(&app).await;

    // Sending back what a read answered changes no value, secrets included.
    let same = patch_req(
        &path,
        &auth,
        &json!({"configuration": read.json["configuration"], "name": read.json["name"], "tags": read.json["tags"]}),
    )
    .send(&app)
    .await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.json["configuration"], read.json["configuration"]);
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Sup3r-Secret-Jira-Password"));
    assert_eq!(same.headers["etag"], format!("\"{id}-2\""), "a write, so the version moves");

    // Entries merge; read-only fields are ignored.
    let a = patch_req(&path, &auth, &json!({
        "configuration": {"jira.username": " new-user ", "event.vendor.type": "polling", "jira.password": "********"},
        "name": "Renamed",
        "id": 1, "token": "x", "element": {"key": "other"}, "createdDate": "2000-01-01T00:00:00.000Z"
    }))
    .send(&app)
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["id"], id);
    assert_eq!(a.json["name"], "Renamed");
    assert_eq!(a.json["tags"], json!(["support"]), "tags not given are kept");
    let marked =
        patch_req(&path, &auth, &json!({"name": "<i>Renamed</i>", "tags": ["<b>support</b>"]})).send(&app).await;
    assert_eq!((&marked.json["name"], &marked.json["tags"]), (&json!("Renamed"), &json!(["support"])), "plain text");
    assert_eq!(a.json["configuration"]["jira.username"], "new-user");
    assert_eq!(a.json["configuration"]["event.vendor.type"], "polling");
    assert_eq!(a.json["configuration"]["jira.api.url"], "https://example.atlassian.net");
    assert_eq!(a.json["configuration"]["jira.password"], "********");
    assert_eq!(a.json["createdDate"], created.json["createdDate"]);
    assert!(a.json["updatedDate"].as_str() >= created.json["updatedDate"].as_str());
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Sup3r-Secret-Jira-Password"));

    // A new secret is sealed anew; null removes an optional entry; tags [] clears.
    let b = patch_req(
        &path,
        &auth,
        &json!({
            "configuration": {"jira.password": "Another-Password", "event.vendor.type": null,
                              "event.notification.signature.key": "Sig-Key"},
            "tags": []
        }),
    )
    .send(&app)
    .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["configuration"]["event.vendor.type"], Value::Null);
    assert_eq!(b.json["configuration"]["event.notification.signature.key"], "********");
    assert_eq!(b.json["tags"], json!([]));
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Another-Password"));
    assert_eq!(stored_secret(&env, &app, id, "event.notification.signature.key").await.as_deref(), Some("Sig-Key"));
    assert!(!b.text.contains("Another-Password") && !b.text.contains("Sig-Key"));
    let raw = env.store().scan_raw().await.unwrap();
    assert!(!format!("{raw:?}").contains("Another-Password"), "never stored in clear");
}

#[tokio::test]
async fn a_patch_is_checked_as_a_create_and_refuses_what_is_not_the_callers() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (creds, other) = (env.credentials().await, env.credentials().await);
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).send(&app).await;
    let (id, token) = (created.id(), created.json["token"].as_str().unwrap().to_owned());
    let path = format!("/instances/{id}");

    let a = patch_req(
        &path,
        &auth,
        &json!({
            "configuration": {"jira.username": null, "jira.pasword": "x", "jira.api.url": "http://x.io"},
            "name": " "
        }),
    )
    .send(&app)
    .await;
    a.error(400, "unknown_configuration");
    assert_eq!(a.json["missing"], json!(["jira.username"]));
    assert_eq!(a.json["invalid"], json!(["jira.api.url", "name"]));
    patch_req(&path, &auth, &json!([1])).send(&app).await.error(400, "invalid_request");
    request("PATCH", &path)
        .header("authorization", &auth)
        .body(lambda_http::Body::Text("{".into()))
        .send(&app)
        .await
        .error(400, "malformed_json");
    patch_req(&path, &other.authorization(), &json!({"name": "x"})).send(&app).await.error(404, "not_found");
    patch_req("/instances", &auth, &json!({"name": "x"})).send(&app).await.error(401, "unauthorized");
    let stale =
        patch_req(&path, &auth, &json!({"name": "x"})).header("if-match", &format!("\"{id}-9\"")).send(&app).await;
    stale.error(412, "precondition_failed");
    let unchanged = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(unchanged.json["name"], "Test", "nothing was written");

    // By token, without an id.
    let by_token = format!("{auth}, Element {token}");
    let b = patch_req("/instances", &by_token, &json!({"name": "By token"})).send(&app).await;
    assert_eq!((b.status, &b.json["name"]), (200, &json!("By token")), "{}", b.text);
    request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await;
    patch_req("/instances", &by_token, &json!({"name": "x"})).send(&app).await.error(403, "instance_disabled");
}

/// Two clients change different fields at once: neither change is lost.
/// With `If-Match` on the same tag, one wins and the other is told 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_with_and_without_if_match() {
    let env = TestEnv::new().await;
    let app = Arc::new(env.app());
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let id = post(Some(&auth), &seed_body()).send(&app).await.id();
    let path = format!("/instances/{id}");

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, auth, path) = (app.clone(), auth.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let body =
                if i % 2 == 0 { json!({"name": format!("name-{i}")}) } else { json!({"tags": [format!("tag-{i}")]}) };
            patch_req(&path, &auth, &body).send(&app).await.status
        }));
    }
    let statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    let now = request("GET", &path).header("authorization", &auth).send(&app).await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    let version: u64 =
        now.headers["etag"].to_str().unwrap().trim_matches('"').rsplit('-').next().unwrap().parse().unwrap();
    assert_eq!(version, 1 + ok, "every answered write is counted: none overwrote another");
    assert!(now.json["name"].as_str().unwrap().starts_with("name-") || ok < 8, "{}", now.text);

    let tag = now.headers["etag"].to_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..2 {
        let (app, auth, path, tag) = (app.clone(), auth.clone(), path.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            patch_req(&path, &auth, &json!({"name": format!("if-match-{i}")}))
                .header("if-match", &tag)
                .send(&app)
                .await
                .status
        }));
    }
    let mut statuses: Vec<u16> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 412], "one wins, the other is told its tag is stale");
}

/// A change of name or tags alone is one conditional write: it refuses
/// what a read would (another organization's, a token of another instance, a
/// deleted instance) and, answered, counts every change.
#[tokio::test]
async fn a_change_of_names_alone_refuses_what_a_read_refuses() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (creds, other) = (env.credentials().await, env.credentials().await);
    let auth = creds.authorization();
    let first = post(Some(&auth), &seed_body()).send(&app).await;
    let second = post(Some(&auth), &seed_body()).send(&app).await;
    let (id, token) = (first.id(), first.json["token"].as_str().unwrap().to_owned());
    let path = format!("/instances/{id}");

    let a = patch_req(&path, &auth, &json!({"tags": ["x"]})).send(&app).await;
    assert_eq!((a.status, &a.json["tags"], a.json["name"].as_str()), (200, &json!(["x"]), Some("Test")), "{}", a.text);
    assert_eq!(a.headers["etag"], format!("\"{id}-2\""));
    assert_eq!(a.json["configuration"]["jira.password"], "********", "answered as every read answers");

    // The token of the first instance does not name the second.
    let wrong = format!("{auth}, Element {token}");
    patch_req(&format!("/instances/{}", second.id()), &wrong, &json!({"name": "x"}))
        .send(&app)
        .await
        .error(401, "unauthorized");
    let other_token = format!("{}, Element {token}", other.authorization());
    patch_req("/instances", &other_token, &json!({"name": "x"})).send(&app).await.error(401, "unauthorized");
    with_json("PUT", &path, &other.authorization(), &json!({"name": "x"})).send(&app).await.error(404, "not_found");
    request("DELETE", &path).header("authorization", &auth).send(&app).await;
    patch_req(&path, &auth, &json!({"name": "x"})).send(&app).await.error(404, "not_found");
    patch_req("/instances", &wrong, &json!({"name": "x"})).send(&app).await.error(401, "unauthorized");
    let kept = request("GET", &format!("/instances/{}", second.id())).header("authorization", &auth).send(&app).await;
    assert_eq!(kept.json["name"], "Test", "nothing else was written");
}
