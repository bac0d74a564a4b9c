//! The instance resource's reads: one instance by id or by its `Element`
//! token, and the organization's list with its search and pages, against the
//! local DynamoDB/KMS server.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use serde_json::{json, Value};

fn with_token(creds: &Creds, token: &str) -> String {
    format!("{}, Element {token}", creds.authorization())
}

async fn create(app: &instances::app::App, creds: &Creds, name: &str, tags: Value) -> Answer {
    let mut body = seed_body();
    body["name"] = json!(name);
    body["tags"] = tags;
    let a = post(Some(&creds.authorization()), &body).send(app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a
}

#[tokio::test]
async fn one_instance_by_id_and_by_token_in_the_documented_representation() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let created = create(&app, &creds, "Desk", json!(["support"])).await;
    let (id, token) = (created.id(), created.json["token"].as_str().unwrap().to_owned());

    let a =
        request("GET", &format!("/instances/{id}")).header("authorization", &creds.authorization()).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(a.headers["etag"], format!("\"{id}-1\""));
    // The create's body without the token...
    for (key, value) in created.json.as_object().unwrap() {
        if key != "token" {
            assert_eq!(&a.json[key], value, "{key}");
        }
    }
    assert!(a.json.get("token").is_none() && !a.text.contains(&token), "no token");
    for never in ["tokenDigest", "sealed", "Sup3r-Secret-Jira-Password"] {
        assert!(!a.text.contains(never), "{never} in {}", a.text);
    }
    // ...plus every configuration entry of the element, secrets masked, unset ones null.
    let config = a.json["configuration"].as_object().unwrap();
    assert_eq!(config.len(), 11, "{config:?}");
    assert_eq!(config["jira.username"], "jira-user@example.com");
    assert_eq!(config["jira.password"], "********");
    assert_eq!(config["jira.api.url"], "https://example.atlassian.net");
    assert_eq!(config["filter.response.nulls"], "true", "a catalog default is stored and shown");
    assert_eq!(config["event.notification.signature.key"], Value::Null, "an unset secret is null, not masked");
    assert_eq!(config["event.vendor.type"], Value::Null);
    assert_eq!(a.json["user"]["emailAddress"], creds.user.as_str());
    assert!(a.json["user"]["id"].as_u64().is_some_and(|id| id > 0 && id < 1 << 53));

    // The same through the element's path, by key or id, and by token.
    for path in [format!("/elements/jira/instances/{id}"), format!("/elements/1/instances/{id}/")] {
        let b = request("GET", &path).header("authorization", &creds.authorization()).send(&app).await;
        assert_eq!((b.status, &b.json), (200, &a.json), "{path}");
    }
    let b = request("GET", &format!("/instances/{id}"))
        .header("authorization", &with_token(&creds, &token))
        .send(&app)
        .await;
    assert_eq!((b.status, &b.json), (200, &a.json), "by token");
}

#[tokio::test]
async fn reads_refuse_what_is_not_the_callers() {
    let env = TestEnv::new().await;
    let app = env.app();
    let (a_creds, b_creds) = (env.credentials().await, env.credentials().await);
    let a_first = create(&app, &a_creds, "A1", json!(["x"])).await;
    let a_second = create(&app, &a_creds, "A2", json!(["x"])).await;
    let b_one = create(&app, &b_creds, "B1", json!(["x"])).await;
    let (id, token) = (a_first.id(), a_first.json["token"].as_str().unwrap());

    // Another organization's instance is 404 by id, 401 by token, and absent from lists.
    request("GET", &format!("/instances/{id}"))
        .header("authorization", &b_creds.authorization())
        .send(&app)
        .await
        .error(404, "not_found");
    request("GET", &format!("/instances/{}", b_one.id()))
        .header("authorization", &with_token(&b_creds, token))
        .send(&app)
        .await
        .error(401, "unauthorized");
    let listed = request("GET", "/instances").header("authorization", &b_creds.authorization()).send(&app).await;
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    assert_eq!(listed.json[0]["id"], b_one.id());

    // A token must name the instance of the path; garbage and unknown ids are refused.
    let second_token = a_second.json["token"].as_str().unwrap();
    request("GET", &format!("/instances/{id}"))
        .header("authorization", &with_token(&a_creds, second_token))
        .send(&app)
        .await
        .error(401, "unauthorized");
    request("GET", &format!("/instances/{id}"))
        .header("authorization", &format!("{}, Element not-a-token", a_creds.authorization()))
        .send(&app)
        .await
        .error(401, "unauthorized");
    // Once the user and organization have authenticated, a 401 says what is
    // wrong with the Element part; a bad user or organization secret keeps
    // the one message that names neither.
    let message = |a: &Answer| a.json["message"].as_str().unwrap().to_owned();
    let missing = request("DELETE", "/instances").header("authorization", &a_creds.authorization()).send(&app).await;
    missing.error(401, "unauthorized");
    assert!(message(&missing).contains("Element <token>"), "{}", missing.text);
    assert!(message(&missing).contains("secrets were accepted"), "{}", missing.text);
    let mut dead = Vec::new();
    for auth in [
        with_token(&b_creds, token),
        format!("{}, Element not-a-token", a_creds.authorization()),
        with_token(&a_creds, second_token),
    ] {
        let a = request("GET", &format!("/instances/{id}")).header("authorization", &auth).send(&app).await;
        a.error(401, "unauthorized");
        dead.push(message(&a));
    }
    assert!(dead.iter().all(|m| m == &dead[0] && m.contains("names no instance of this organization")), "{dead:?}");
    let bad_secret = format!("User wrong-secret, Organization {}, Element {token}", a_creds.organization_secret);
    let generic = request("GET", "/instances").header("authorization", &bad_secret).send(&app).await;
    generic.error(401, "unauthorized");
    assert!(!message(&generic).contains("Element"), "a bad secret is not blamed on the token: {}", generic.text);
    assert!(message(&generic).contains("Authorization must be"));
    assert_eq!(generic.headers["www-authenticate"], instances::api::error::CHALLENGE);
    assert_eq!(missing.headers["www-authenticate"], instances::api::error::ELEMENT_CHALLENGE);

    for path in ["/instances/999", "/instances/abc", "/instances/0", "/elements/nope/instances/1"] {
        request("GET", path).header("authorization", &a_creds.authorization()).send(&app).await.error(404, "not_found");
    }
    request("GET", &format!("/instances/{id}")).send(&app).await.error(401, "unauthorized");
    let a = request("DELETE", "/elements/jira/instances")
        .header("authorization", &a_creds.authorization())
        .send(&app)
        .await;
    a.error(405, "method_not_allowed");
    assert_eq!(a.headers["allow"], "GET, POST");
}

#[tokio::test]
async fn a_disabled_instance_answers_403_to_its_token() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let created = create(&app, &creds, "To disable", json!([])).await;
    let (id, token) = (created.id(), created.json["token"].as_str().unwrap());
    // No disable call yet: the flag set as the store keeps it.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(&env.settings.table_name)
        .key("PK", AttributeValue::S(format!("INSTANCE#{id}")))
        .key("SK", AttributeValue::S("INSTANCE".into()))
        .update_expression("SET disabled = :t")
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
    for path in [format!("/instances/{id}"), "/instances".to_owned()] {
        request("GET", &path)
            .header("authorization", &with_token(&creds, token))
            .send(&app)
            .await
            .error(403, "instance_disabled");
    }
    let a =
        request("GET", &format!("/instances/{id}")).header("authorization", &creds.authorization()).send(&app).await;
    assert_eq!((a.status, &a.json["disabled"]), (200, &json!(true)), "by id, without the token, it reads");
}

#[tokio::test]
async fn lists_are_newest_first_searched_and_paged() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let empty = request("GET", "/instances").header("authorization", &auth).send(&app).await;
    assert_eq!((empty.status, &empty.json), (200, &json!([])), "an unfiltered empty list is 200 []");

    let mut ids = Vec::new();
    for (name, tags) in [
        ("Support desk", json!(["support", "eu"])),
        ("Sales", json!(["sales", "eu"])),
        ("support US", json!(["support", "us"])),
        ("Ops", json!([])),
        ("Support APAC", json!(["support", "apac", "eu"])),
    ] {
        ids.push(create(&app, &creds, name, tags).await.id());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let newest_first: Vec<u64> = ids.iter().rev().copied().collect();
    let list = |query: &str| request("GET", &format!("/instances{query}")).header("authorization", &auth).send(&app);
    let ids_of = |a: &Answer| a.json.as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect::<Vec<_>>();

    let all = list("").await;
    assert_eq!(ids_of(&all), newest_first);
    assert!(all.headers.get("elements-next-page-token").is_none());
    assert_eq!(all.json[0]["configuration"]["jira.password"], "********", "lists show the representation too");
    assert!(!all.text.contains("Sup3r-Secret"));

    // Pages of 2: every instance once, in order, the last page without a cursor.
    let mut seen = Vec::new();
    let mut query = "?pageSize=2".to_owned();
    for _ in 0..5 {
        let page = list(&query).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(ids_of(&page).len() <= 2);
        seen.extend(ids_of(&page));
        match page.headers.get("elements-next-page-token") {
            Some(next) => query = format!("?pageSize=2&nextPage={}", next.to_str().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    // tags[]: each given tag must be carried; searchText: case-insensitive, name or element key.
    assert_eq!(ids_of(&list("?tags[]=support&tags[]=eu").await), [ids[4], ids[0]]);
    assert_eq!(ids_of(&list("?tags%5B%5D=support").await), [ids[4], ids[2], ids[0]]);
    assert_eq!(ids_of(&list("?searchText=SUPPORT").await), [ids[4], ids[2], ids[0]]);
    assert_eq!(ids_of(&list("?searchText=Jira").await), newest_first, "the element key matches too");
    assert_eq!(ids_of(&list("?searchText=support&tags[]=us").await), [ids[2]]);
    let searched = list("?searchText=support&pageSize=1").await;
    assert_eq!(ids_of(&searched), [ids[4]]);
    let next = searched.headers["elements-next-page-token"].to_str().unwrap().to_owned();
    assert_eq!(ids_of(&list(&format!("?searchText=support&pageSize=1&nextPage={next}")).await), [ids[2]]);

    // A search that matches nothing is 404; bad parameters are 400.
    list("?searchText=nothing-like-it").await.error(404, "not_found");
    list("?tags[]=nope").await.error(404, "not_found");
    for bad in ["?pageSize=0", "?pageSize=501", "?pageSize=ten", "?nextPage=garbage", "?pageSize=&pageSize=2"] {
        list(bad).await.error(400, "invalid_request");
    }
    // As many tags as an instance carries is a query DynamoDB runs; more is
    // 400 (170 of them once exceeded DynamoDB's expression limits: a 500).
    let tags = |n: usize| (0..n).map(|i| format!("tags[]=tag-{i:03}")).collect::<Vec<_>>().join("&");
    list(&format!("?{}", tags(50))).await.error(404, "not_found");
    for n in [51, 170] {
        let a = list(&format!("?{}", tags(n))).await;
        a.error(400, "invalid_request");
        assert!(a.json["message"].as_str().unwrap().contains("at most 50"), "{}", a.text);
    }

    // Under the element's path.
    let a = request("GET", "/elements/jira/instances?pageSize=500").header("authorization", &auth).send(&app).await;
    assert_eq!(ids_of(&a), newest_first);
    request("GET", "/elements/nope/instances").header("authorization", &auth).send(&app).await.error(404, "not_found");
}

#[tokio::test]
async fn the_create_under_an_elements_path() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body.as_object_mut().unwrap().remove("element");
    let a = post(Some(&creds.authorization()), &body).uri("/elements/jira/instances").send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["element"]["key"], "jira");
    body["element"] = json!({"id": 1});
    assert_eq!(post(Some(&creds.authorization()), &body).uri("/elements/1/instances").send(&app).await.status, 200);
    body["element"] = json!({"key": "nope"});
    post(Some(&creds.authorization()), &body)
        .uri("/elements/jira/instances")
        .send(&app)
        .await
        .error(400, "unknown_element");
    post(Some(&creds.authorization()), &seed_body())
        .uri("/elements/nope/instances")
        .send(&app)
        .await
        .error(404, "not_found");
}
