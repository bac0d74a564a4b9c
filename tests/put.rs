//! `PUT`: an update with a create's body, typically what a read answered,
//! edited. The configuration, when given, is replaced; what the body leaves
//! out is kept; read-only fields are ignored; the element cannot change.

mod common;

use common::*;
use serde_json::{json, Value};

fn put(path: &str, auth: &str, body: &Value) -> Req {
    with_json("PUT", path, auth, body)
}

#[tokio::test]
async fn a_put_of_what_a_read_answered_changes_nothing_and_an_edit_changes_what_it_says() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (auth, created) = one_instance(&env, &app).await;
    let (id, token) = (created.id(), created.token());
    let path = format!("/instances/{id}");
    let read = request("GET", &path).header("authorization", &auth).send(&app).await;

    // The whole representation sent back, read-only fields and all.
    let same = put(&path, &auth, &read.json).send(&app).await;
    assert_eq!(same.status, 200, "{}", same.text);
    for field in ["name", "tags", "configuration", "element", "createdDate", "user", "disabled"] {
        assert_eq!(same.json[field], read.json[field], "{field}");
    }
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Sup3r-Secret-Jira-Password"));
    assert_eq!(same.headers["etag"], format!("\"{id}-2\""));
    // And with the token the create answered (ignored: it is not a field).
    let mut with_token = read.json.clone();
    with_token["token"] = json!(token);
    with_token["providerData"] = json!({"code": "x"});
    let again = put(&path, &auth, &with_token).send(&app).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert!(!again.text.contains(&token) && again.json.get("providerData").is_none(), "{}", again.text);

    // An edit: the configuration replaced (an entry left out is gone), the
    // name set, tags left out kept, a new secret sealed anew.
    let mut edited = read.json.clone();
    edited["name"] = json!("<b>Edited</b>");
    edited.as_object_mut().unwrap().remove("tags");
    edited["configuration"] = json!({
        "jira.username": "other-user", "jira.password": "New-Password", "jira.api.url": "other.atlassian.net",
        "event.vendor.type": "polling"
    });
    let a = put(&path, &auth, &edited).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["name"], "Edited");
    assert_eq!(a.json["tags"], json!(["support"]), "left out: kept");
    assert_eq!(a.json["configuration"]["jira.username"], "other-user");
    assert_eq!(a.json["configuration"]["jira.api.url"], "https://other.atlassian.net");
    assert_eq!(a.json["configuration"]["event.vendor.type"], "polling");
    assert_eq!(a.json["configuration"]["filter.response.nulls"], "true", "the catalog default");
    assert_eq!(a.json["configuration"]["jira.password"], "********");
    assert_eq!(a.json["createdDate"], created.json["createdDate"]);
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("New-Password"));

    // Tags [] clears; a PUT without configuration keeps it.
    let b = put(&path, &auth, &json!({"tags": []})).send(&app).await;
    assert_eq!(b.json["tags"], json!([]));
    assert_eq!(b.json["configuration"], a.json["configuration"]);

    // By token, and under the element's path.
    let by_token = format!("{auth}, Element {token}");
    let c = put("/instances", &by_token, &json!({"name": "By token"})).send(&app).await;
    assert_eq!((c.status, &c.json["name"]), (200, &json!("By token")), "{}", c.text);
    let d = put(&format!("/elements/jira/instances/{id}"), &auth, &json!({"name": "By path"})).send(&app).await;
    assert_eq!((d.status, &d.json["name"]), (200, &json!("By path")), "{}", d.text);
    put(&format!("/elements/99/instances/{id}"), &auth, &json!({"name": "x"})).send(&app).await.error(404, "not_found");
}

#[tokio::test]
async fn a_put_is_checked_as_a_create_and_the_element_cannot_change() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (creds, other) = (env.credentials().await, env.credentials().await);
    let auth = creds.authorization();
    let id = post(Some(&auth), &seed_body()).send(&app).await.id();
    let path = format!("/instances/{id}");

    for element in [json!({"key": "zendesk"}), json!({"id": 2}), json!({"key": "jira", "id": 3})] {
        let a = put(&path, &auth, &json!({"element": element, "name": "x"})).send(&app).await;
        a.error(400, "invalid_request");
        assert!(a.json["message"].as_str().unwrap().contains("cannot change"), "{}", a.text);
    }
    let a = put(&path, &auth, &json!({"configuration": {"jira.username": "u"}, "name": ""})).send(&app).await;
    a.error(400, "missing_configuration");
    assert_eq!(a.json["missing"], json!(["jira.password", "jira.api.url"]), "a replaced configuration is whole");
    assert_eq!(a.json["invalid"], json!(["name"]));
    put(&path, &auth, &json!({"configuration": "x"})).send(&app).await.error(400, "invalid_configuration");
    put(&path, &other.authorization(), &json!({"name": "x"})).send(&app).await.error(404, "not_found");
    put("/instances", &auth, &json!({"name": "x"})).send(&app).await.error(401, "unauthorized");
    put(&path, &auth, &json!({"name": "x"}))
        .header("if-match", "\"1-1\"")
        .send(&app)
        .await
        .error(412, "precondition_failed");
    let unchanged = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(
        (unchanged.json["name"].as_str(), unchanged.headers["etag"].to_str().unwrap()),
        (Some("Test"), &*format!("\"{id}-1\"")),
        "nothing was written"
    );
}
