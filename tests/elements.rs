//! Discovery: `GET /elements` and `GET /elements/{keyOrId}` answer the
//! catalog, each element's fields as in the create's answer and its
//! configuration entries, so a client can build its form.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn the_catalog_is_answered_with_each_elements_configuration_entries() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let a = request("GET", "/elements").header("authorization", &auth).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers["content-type"], "application/json");
    let elements = a.json.as_array().unwrap();
    let catalog: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/elements.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(elements.len(), catalog["elements"].as_array().unwrap().len());

    // The element's fields are those the create answers.
    let created = post(Some(&auth), &seed_body()).send(&app).await;
    let jira = &elements[0];
    for (key, value) in created.json["element"].as_object().unwrap() {
        assert_eq!(&jira[key], value, "{key}");
    }
    // Then every configuration entry of the catalog, in catalog order.
    let mut expected: Vec<Value> = catalog["elements"][0]["configuration"].as_array().unwrap().clone();
    expected.extend(catalog["commonConfiguration"].as_array().unwrap().iter().cloned());
    let entries = jira["configuration"].as_array().unwrap();
    assert_eq!(entries.len(), expected.len());
    for (got, want) in entries.iter().zip(&expected) {
        for field in ["key", "name", "type", "required", "secret", "description"] {
            assert_eq!(got[field], want[field], "{field} of {}", want["key"]);
        }
        assert_eq!(got["default"], want.get("default").cloned().unwrap_or(Value::Null), "default of {}", want["key"]);
    }
    let password = entries.iter().find(|e| e["key"] == "jira.password").unwrap();
    assert_eq!((password["required"].clone(), password["secret"].clone()), (json!(true), json!(true)));

    // One element, by key or by id.
    for path in ["/elements/jira", "/elements/1", "/elements/jira/"] {
        let one = request("GET", path).header("authorization", &auth).send(&app).await;
        assert_eq!(one.status, 200, "{path}: {}", one.text);
        assert_eq!(&one.json, jira, "{path}");
    }
}

#[tokio::test]
async fn elements_errors() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    request("GET", "/elements").send(&app).await.error(401, "unauthorized");
    request("GET", "/elements/jira")
        .header("authorization", "User x, Organization y")
        .send(&app)
        .await
        .error(401, "unauthorized");
    for path in ["/elements/nope", "/elements/999", "/elements/jira/things"] {
        request("GET", path).header("authorization", &auth).send(&app).await.error(404, "not_found");
    }
    // A key in the wrong case is suggested, as the create suggests it; the
    // message names the element, not the path called.
    for path in ["/elements/JIRA", "/elements/Jira/instances"] {
        let a = request("GET", path).header("authorization", &auth).send(&app).await;
        a.error(404, "not_found");
        let message = a.json["message"].as_str().unwrap();
        assert!(message.contains("Did you mean \"jira\"?") && !message.contains("/instances/{id}"), "{message}");
        assert_eq!(a.headers["instances-version"], env!("CARGO_PKG_VERSION"), "every answer says its version");
    }
    for (method, path) in [("POST", "/elements"), ("DELETE", "/elements/jira"), ("PUT", "/elements")] {
        let a = request(method, path).header("authorization", &auth).send(&app).await;
        a.error(405, "method_not_allowed");
        assert_eq!(a.headers["allow"], "GET");
    }
}
