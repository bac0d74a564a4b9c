//! Disabling and enabling an instance, by id or by its token: the
//! configuration is kept, `disabled` shows it, its token answers 403 while
//! it is disabled (except to enable it), and each change is one conditional
//! write on the instance's version (`ETag`, `If-Match`).

mod common;

use common::*;
use serde_json::json;

fn with_token(creds: &Creds, token: &str) -> String {
    format!("{}, Element {token}", creds.authorization())
}

#[tokio::test]
async fn disable_and_enable_by_id_and_by_token() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let created = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    let (id, token) = (created.id(), created.json["token"].as_str().unwrap().to_owned());
    let auth = creds.authorization();
    let by_token = with_token(&creds, &token);
    let read = || request("GET", &format!("/instances/{id}")).header("authorization", &auth).send(&app);
    let before = read().await;

    let off = request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.json["disabled"], true);
    assert_eq!(off.json["configuration"], before.json["configuration"], "the configuration is kept");
    assert_eq!(off.json["createdDate"], before.json["createdDate"]);
    assert!(off.json["updatedDate"].as_str() >= before.json["updatedDate"].as_str());
    assert_eq!(off.headers["etag"], format!("\"{id}-2\""), "the version moved");
    assert!(!off.text.contains(&token));

    // While disabled, every call naming it by its token is 403, except enabling it.
    request("GET", &format!("/instances/{id}"))
        .header("authorization", &by_token)
        .send(&app)
        .await
        .error(403, "instance_disabled");
    request("GET", "/instances").header("authorization", &by_token).send(&app).await.error(403, "instance_disabled");
    request("DELETE", "/instances/enabled")
        .header("authorization", &by_token)
        .send(&app)
        .await
        .error(403, "instance_disabled");
    assert_eq!(read().await.json["disabled"], true, "by id it still reads");
    // Disabling again by id changes nothing.
    let again = request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await;
    assert_eq!((again.status, &again.headers["etag"]), (200, &off.headers["etag"]));

    let on = request("PUT", "/instances/enabled").header("authorization", &by_token).send(&app).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json["disabled"], false);
    assert_eq!(on.headers["etag"], format!("\"{id}-3\""));
    let a = request("GET", &format!("/instances/{id}")).header("authorization", &by_token).send(&app).await;
    assert_eq!((a.status, &a.json["disabled"]), (200, &json!(false)), "the token works again");

    // By token, without an id: disable works while it is enabled.
    let off = request("DELETE", "/instances/enabled").header("authorization", &by_token).send(&app).await;
    assert_eq!((off.status, &off.json["disabled"]), (200, &json!(true)));
}

#[tokio::test]
async fn enabling_refuses_what_is_not_the_callers_or_is_stale() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (a_creds, b_creds) = (env.credentials().await, env.credentials().await);
    let a = post(Some(&a_creds.authorization()), &seed_body()).send(&app).await;
    let b = post(Some(&b_creds.authorization()), &seed_body()).send(&app).await;
    let (id, a_token) = (a.id(), a.json["token"].as_str().unwrap());

    request("DELETE", &format!("/instances/{id}/enabled"))
        .header("authorization", &b_creds.authorization())
        .send(&app)
        .await
        .error(404, "not_found");
    request("DELETE", &format!("/instances/{}/enabled", b.id()))
        .header("authorization", &with_token(&b_creds, a_token))
        .send(&app)
        .await
        .error(401, "unauthorized");
    request("PUT", "/instances/enabled")
        .header("authorization", &a_creds.authorization())
        .send(&app)
        .await
        .error(401, "unauthorized");
    request("DELETE", "/instances/999/enabled")
        .header("authorization", &a_creds.authorization())
        .send(&app)
        .await
        .error(404, "not_found");
    let wrong = request("GET", &format!("/instances/{id}/enabled"))
        .header("authorization", &a_creds.authorization())
        .send(&app)
        .await;
    wrong.error(405, "method_not_allowed");
    assert_eq!(wrong.headers["allow"], "DELETE, PUT");

    // If-Match: the current tag goes through, a stale one is 412 and writes nothing.
    let current = format!("\"{id}-1\"");
    let off = request("DELETE", &format!("/instances/{id}/enabled"))
        .header("authorization", &a_creds.authorization())
        .header("if-match", &current)
        .send(&app)
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let stale = request("PUT", &format!("/instances/{id}/enabled"))
        .header("authorization", &a_creds.authorization())
        .header("if-match", &current)
        .send(&app)
        .await;
    stale.error(412, "precondition_failed");
    let now =
        request("GET", &format!("/instances/{id}")).header("authorization", &a_creds.authorization()).send(&app).await;
    assert_eq!((now.json["disabled"].clone(), now.headers["etag"].clone()), (json!(true), off.headers["etag"].clone()));
}

/// Concurrent disables and enables of one instance: every answer is a state
/// the instance was in, the version counts every write that changed it, and
/// none is lost (each write is conditioned on the version it read).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_are_never_lost() {
    let env = TestEnv::new().await;
    let app = std::sync::Arc::new(env.app());
    let creds = env.credentials().await;
    let id = post(Some(&creds.authorization()), &seed_body()).send(&app).await.id();
    let auth = creds.authorization();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (app, auth) = (app.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let method = if i % 2 == 0 { "DELETE" } else { "PUT" };
            request(method, &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await
        }));
    }
    // Each state answered is one the instance was in: one version never
    // shows two states, and the last version answered is the stored one.
    let mut states = std::collections::BTreeMap::new();
    let version_of = |a: &Answer| -> u64 {
        a.headers["etag"].to_str().unwrap().trim_matches('"').rsplit('-').next().unwrap().parse().unwrap()
    };
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.status == 200 || a.status == 503, "{}", a.text);
        if a.status == 200 {
            let previous = states.insert(version_of(&a), a.json["disabled"].as_bool().unwrap());
            assert!(previous.is_none_or(|p| Some(p) == a.json["disabled"].as_bool()), "one version, two states");
        }
    }
    let now = request("GET", &format!("/instances/{id}")).header("authorization", &auth).send(&app).await;
    let (last, disabled) = states.iter().next_back().map(|(v, d)| (*v, *d)).unwrap();
    assert_eq!(version_of(&now), last, "the stored version is the newest answered");
    assert_eq!(now.json["disabled"].as_bool(), Some(disabled));
    // Versions alternate states: each write flipped the flag.
    for (v, d) in &states {
        assert_eq!(*d, v % 2 == 0, "version {v}: disabled = {d}");
    }
}
