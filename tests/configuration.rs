//! The configuration sub-resource (`/instances/{id}/configuration[/{configId}]`
//! and the token forms) and JIRA's alias keys (`username`, `password`,
//! `base.url`), answered under the names the client used.

mod common;

use common::*;
use serde_json::{json, Value};

fn entry<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|e| e["key"] == key).unwrap_or_else(|| panic!("{key} in {list}"))
}

#[tokio::test]
async fn the_configuration_lists_every_entry_with_a_stable_id_and_a_patch_sets_one() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (auth, created) = one_instance(&env, &app).await;
    let (id, token) = (created.id(), created.token());
    let path = format!("/instances/{id}/configuration");

    let list = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.headers["etag"], format!("\"{id}-1\""));
    let entries = list.json.as_array().unwrap();
    assert_eq!(entries.len(), 11, "every entry of the element");
    assert_eq!(entry(&list.json, "jira.password")["propertyValue"], "********");
    assert_eq!(entry(&list.json, "filter.response.nulls")["propertyValue"], "true", "values as strings");
    assert_eq!(entry(&list.json, "event.vendor.type")["propertyValue"], Value::Null);
    let mut ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 11, "each entry its own id");
    assert!(!list.text.contains("Sup3r-Secret"));

    // One entry by its id; by token without the instance id.
    let vendor = entry(&list.json, "event.vendor.type")["id"].as_u64().unwrap();
    let one = request("GET", &format!("{path}/{vendor}")).header("authorization", &auth).send(&app).await;
    assert_eq!(one.json, json!({"id": vendor, "key": "event.vendor.type", "propertyValue": null}));
    let by_token = format!("{auth}, Element {token}");
    let same = request("GET", "/instances/configuration").header("authorization", &by_token).send(&app).await;
    assert_eq!(same.json, list.json);

    // PATCH propertyValue: validated as at create, answers the entry.
    let entry_path = format!("{path}/{vendor}");
    let a = with_json("PATCH", &entry_path, &auth, &json!({"id": vendor, "key": "x", "propertyValue": " polling "}))
        .send(&app)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, json!({"id": vendor, "key": "event.vendor.type", "propertyValue": "polling"}));
    assert_eq!(a.headers["etag"], format!("\"{id}-2\""));
    let b = with_json("PATCH", &entry_path, &auth, &json!({"propertyValue": "carrier-pigeon"})).send(&app).await;
    b.error(400, "invalid_configuration");
    assert_eq!(b.json["invalid"], json!(["event.vendor.type"]));
    let c = with_json("PATCH", &entry_path, &auth, &json!({"propertyValue": null})).send(&app).await;
    assert_eq!(c.json["propertyValue"], Value::Null, "null removes an optional entry");
    let user = entry(&list.json, "jira.username")["id"].as_u64().unwrap();
    let d = with_json("PATCH", &format!("{path}/{user}"), &auth, &json!({"propertyValue": null})).send(&app).await;
    d.error(400, "missing_configuration");
    with_json("PATCH", &entry_path, &auth, &json!({"value": "polling"})).send(&app).await.error(400, "invalid_request");

    // A secret: the mask keeps it, a value is sealed anew and never answered.
    let password = entry(&list.json, "jira.password")["id"].as_u64().unwrap();
    let secret_path = format!("/instances/configuration/{password}");
    let e = with_json("PATCH", &secret_path, &by_token, &json!({"propertyValue": "Rotated-Password"})).send(&app).await;
    assert_eq!(e.json["propertyValue"], "********", "{}", e.text);
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Rotated-Password"));
    with_json("PATCH", &secret_path, &by_token, &json!({"propertyValue": "********"})).send(&app).await;
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Rotated-Password"));

    // Errors: no such entry, another organization's instance, stale If-Match,
    // no token on the token form, a disabled instance by its token.
    request("GET", &format!("{path}/999")).header("authorization", &auth).send(&app).await.error(404, "not_found");
    request("GET", &format!("{path}/x")).header("authorization", &auth).send(&app).await.error(404, "not_found");
    let other = env.credentials().await;
    request("GET", &path).header("authorization", &other.authorization()).send(&app).await.error(404, "not_found");
    with_json("PATCH", &entry_path, &auth, &json!({"propertyValue": "webhook"}))
        .header("if-match", &format!("\"{id}-1\""))
        .send(&app)
        .await
        .error(412, "precondition_failed");
    request("GET", "/instances/configuration")
        .header("authorization", &auth)
        .send(&app)
        .await
        .error(401, "unauthorized");
    request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await;
    request("GET", "/instances/configuration")
        .header("authorization", &by_token)
        .send(&app)
        .await
        .error(403, "instance_disabled");
    assert_eq!(request("GET", &path).header("authorization", &auth).send(&app).await.status, 200, "by id it reads");
}

#[tokio::test]
async fn jira_alias_keys_are_accepted_and_answered_under_the_clients_names() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let mut body = seed_body();
    body["configuration"] =
        json!({"username": "jira-user@example.com", "password": "Pw", "base.url": "https://example.atlassian.net"});
    let created = post(Some(&auth), &body).send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.id();
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Pw"), "held under the key");

    let read = request("GET", &format!("/instances/{id}")).header("authorization", &auth).send(&app).await;
    let config = read.json["configuration"].as_object().unwrap();
    assert_eq!(config["username"], "jira-user@example.com");
    assert_eq!(config["password"], "********");
    assert_eq!(config["base.url"], "https://example.atlassian.net");
    for key in ["jira.username", "jira.password", "jira.api.url"] {
        assert!(!config.contains_key(key), "{key}: one name per entry");
    }
    let list = request("GET", "/instances").header("authorization", &auth).send(&app).await;
    assert_eq!(list.json[0]["configuration"], read.json["configuration"], "the list (the index) names them so too");
    let entries =
        request("GET", &format!("/instances/{id}/configuration")).header("authorization", &auth).send(&app).await;
    assert_eq!(entry(&entries.json, "username")["propertyValue"], "jira-user@example.com");

    // A PUT of what was read changes nothing; giving an entry by its key renames it.
    let same = with_json("PUT", &format!("/instances/{id}"), &auth, &read.json).send(&app).await;
    assert_eq!(same.json["configuration"], read.json["configuration"], "{}", same.text);
    let renamed =
        with_json("PATCH", &format!("/instances/{id}"), &auth, &json!({"configuration": {"jira.username": "u2"}}))
            .send(&app)
            .await;
    assert_eq!(renamed.json["configuration"]["jira.username"], "u2");
    assert!(renamed.json["configuration"].get("username").is_none());
    assert_eq!(renamed.json["configuration"]["password"], "********", "the others keep theirs");

    // Both names of one entry: 400, nothing stored.
    let mut both = seed_body();
    both["configuration"]["username"] = json!("again");
    let a = post(Some(&auth), &both).send(&app).await;
    a.error(400, "invalid_configuration");
    assert_eq!(a.json["invalid"], json!(["jira.username"]));
    assert!(a.json["message"].as_str().unwrap().contains("jira.username and username"), "{}", a.text);
    let a = with_json(
        "PATCH",
        &format!("/instances/{id}"),
        &auth,
        &json!({"configuration": {"base.url": "a.io", "jira.api.url": "b.io"}}),
    )
    .send(&app)
    .await;
    a.error(400, "invalid_configuration");
    assert_eq!(env.instance_items().await.len(), 1);
}
