//! POST /instances against the local DynamoDB/KMS server: the documented
//! answer, what is stored, and every row of the contract's error table.

mod common;

use base64::Engine as _;
use common::*;
use instances::api::error::CODES;
use instances::domain::token::{Token, MAX_SAFE_INTEGER};
use lambda_http::Body;
use serde_json::{json, Value};

#[tokio::test]
async fn the_documented_request_gets_the_documented_answer() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.headers["cache-control"], "no-store");

    let documented: Value = serde_json::from_str(
        r#"{"id":1234,"name":"Test","token":"AfYuaYxrBBbeSsE47JUwnOW/wYoBOx+rKoYh7rmd5lg=",
        "element":{"id":1,"name":"JIRA","key":"jira","description":"JIRA element","image":"elements/provider_jira.png",
        "active":true,"deleted":false,"typeOauth":false,"trialAccount":false,
        "configDescription":"If you do not have an JIRA account, you can create one at <a href=\"http://www.atlassian.com/software/jira/pricing\" target=\"_blank\">JIRA Signup</a>",
        "signupURL":"http://www.atlassian.com/software/jira/pricing"},
        "provisionInteractions":[],"valid":true,"disabled":false,"maxCacheSize":0,"cacheTimeToLive":0,"cachingEnabled":false}"#,
    )
    .unwrap();
    let body = a.json.as_object().unwrap();
    for (key, sample) in documented.as_object().unwrap() {
        let got = &body[key];
        assert_eq!(std::mem::discriminant(got), std::mem::discriminant(sample), "type of {key}");
        // `valid` says whether JIRA accepted the credentials: this app's check
        // is off (tests/provider.rs has it on, and `valid` true).
        if key == "valid" {
            assert_eq!(got, &json!(false), "nothing was checked");
        } else if !["id", "token"].contains(&key.as_str()) {
            assert_eq!(got, sample, "{key}");
        }
    }
    let extra: Vec<_> = body.keys().filter(|k| !documented.as_object().unwrap().contains_key(*k)).collect();
    assert_eq!(extra, ["createdDate", "tags", "updatedDate"]);
    assert_eq!(a.json["tags"], json!(["support"]));
    assert!(a.json["createdDate"].as_str().unwrap().ends_with('Z'));

    let id = a.id();
    assert!((1..=MAX_SAFE_INTEGER).contains(&id));
    let token = a.json["token"].as_str().unwrap();
    assert_eq!(token.len(), 44);
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(token).unwrap().len(), 32);
}

#[tokio::test]
async fn the_instance_is_stored_with_its_owner_and_its_token_only_as_a_digest() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    let id = a.id();
    let token = Token::parse(a.json["token"].as_str().unwrap()).unwrap();

    let items = env.instance_items().await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    let s = |k: &str| item[k].as_s().unwrap().clone();
    assert_eq!(item["id"].as_n().unwrap(), &id.to_string());
    assert_eq!(s("organization"), creds.organization);
    assert_eq!(s("user"), creds.user);
    assert_eq!(s("name"), "Test");
    assert_eq!(s("elementKey"), "jira");
    assert_eq!(item["elementId"].as_n().unwrap(), "1");
    assert_eq!(item["tags"].as_l().unwrap().len(), 1);
    let config = item["configuration"].as_m().unwrap();
    assert_eq!(config["jira.username"].as_s().unwrap(), "jira-user@example.com");
    assert_eq!(config["jira.api.url"].as_s().unwrap(), "https://example.atlassian.net");
    assert_eq!(config["filter.response.nulls"].as_s().unwrap(), "true");
    assert!(!config.contains_key("jira.password"), "secrets are not stored with the plain configuration");
    assert!(item["secrets"].as_m().unwrap().contains_key("jira.password"));
    assert_eq!(item["tokenDigest"].as_b().unwrap().as_ref(), token.digest().0);
    assert_eq!(item["valid"].as_bool().unwrap(), &false, "the check is off here: nothing vouches for them");
    assert_eq!(item["disabled"].as_bool().unwrap(), &false);
    assert_eq!(s("createdDate"), a.json["createdDate"].as_str().unwrap());

    // The token resolves to its instance with one consistent read; a forged one does not.
    let found = env.store().instance_by_token(&token).await.unwrap().unwrap();
    assert_eq!(found.summary.id.get(), id);
    let mut raw = base64::engine::general_purpose::STANDARD.decode(token.expose()).unwrap();
    raw[31] ^= 1;
    let forged = Token::parse(&base64::engine::general_purpose::STANDARD.encode(raw)).unwrap();
    assert!(env.store().instance_by_token(&forged).await.unwrap().is_none());
    // And the organization's listing shows it.
    let listed = env.store().list_instances(&creds.organization).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id.get()).collect::<Vec<_>>(), [id]);
}

#[tokio::test]
async fn no_secret_is_stored_in_clear_and_sealed_values_are_bound_to_their_item() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"]["event.notification.signature.key"] = json!("Signing-Key-Never-Stored-Plain");
    let a = post(Some(&creds.authorization()), &body).header("idempotency-key", "k-1").send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let b = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    assert_eq!(b.status, 200);

    let everything = format!("{:?}", env.store().scan_raw().await.unwrap());
    let token = a.json["token"].as_str().unwrap();
    for secret in [
        "Sup3r-Secret-Jira-Password",
        "Signing-Key-Never-Stored-Plain",
        token,
        &token[..20],
        &creds.user_secret,
        &creds.organization_secret,
    ] {
        assert!(!everything.contains(secret), "{secret} is stored in clear");
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert!(!everything.contains(&b64("Sup3r-Secret-Jira-Password")));

    // The sealed password opens with its own binding only.
    let rec_a =
        env.store().get_instance(instances::domain::token::InstanceId::new(a.id()).unwrap()).await.unwrap().unwrap();
    let rec_b =
        env.store().get_instance(instances::domain::token::InstanceId::new(b.id()).unwrap()).await.unwrap().unwrap();
    let sealed = &rec_a.secrets().iter().find(|(k, _)| k == "jira.password").unwrap().1;
    let opened = app
        .sealer
        .open(
            &rec_a.sealed_data_key,
            &instances::seal::aad(&creds.organization, rec_a.summary.id, "jira.password"),
            sealed,
        )
        .await
        .unwrap();
    assert_eq!(&opened[..], b"Sup3r-Secret-Jira-Password");
    let copied = app
        .sealer
        .open(
            &rec_a.sealed_data_key,
            &instances::seal::aad(&creds.organization, rec_b.summary.id, "jira.password"),
            sealed,
        )
        .await;
    assert!(copied.is_err(), "a sealed value copied onto another instance must not open");
    let other_org = app
        .sealer
        .open(&rec_a.sealed_data_key, &instances::seal::aad("someone-else", rec_a.summary.id, "jira.password"), sealed)
        .await;
    assert!(other_org.is_err());
    // A fresh environment (no cached data key) opens it through KMS Decrypt.
    let cold = env.app();
    let opened = cold
        .sealer
        .open(
            &rec_a.sealed_data_key,
            &instances::seal::aad(&creds.organization, rec_a.summary.id, "jira.password"),
            sealed,
        )
        .await
        .unwrap();
    assert_eq!(&opened[..], b"Sup3r-Secret-Jira-Password");
}

#[tokio::test]
async fn concurrent_creates_are_all_distinct_and_all_stored() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let answers: Vec<Answer> = futures::future::join_all(
        (0..40)
            .map(|i| {
                let mut body = seed_body();
                body["name"] = json!(format!("instance {i}"));
                post(Some(&auth), &body).send(&app)
            })
            .collect::<Vec<_>>(),
    )
    .await;
    let mut ids: Vec<u64> = answers.iter().map(|a| a.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    let mut tokens: Vec<&str> = answers.iter().map(|a| a.json["token"].as_str().unwrap()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 40);
    let mut stored: Vec<u64> =
        env.instance_items().await.iter().map(|i| i["id"].as_n().unwrap().parse().unwrap()).collect();
    stored.sort();
    assert_eq!(stored, ids);
}

// ---- the error table -----------------------------------------------------

#[tokio::test]
async fn row_400_malformed_json_and_bodies_that_are_not_objects() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    for text in ["{bad", "", "[1,2", "{\"name\": \"x\"", "\u{feff}{}"] {
        let a = post(Some(&auth), &json!(null)).body(Body::Text(text.into())).send(&app).await;
        a.error(400, "malformed_json");
    }
    let a = post(Some(&auth), &json!(null)).body(Body::Binary(vec![0xff, 0xfe, b'{'])).send(&app).await;
    a.error(400, "malformed_json");
    for not_object in [json!([1]), json!("x"), json!(5), json!(null)] {
        post(Some(&auth), &not_object).send(&app).await.error(400, "invalid_request");
    }
    assert!(env.instance_items().await.is_empty(), "bad input loses nothing and writes nothing");
}

#[tokio::test]
async fn row_400_unknown_element_names_the_key_and_the_known_keys() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["element"] = json!({"key": "jiraa"});
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "unknown_element");
    let message = a.json["message"].as_str().unwrap();
    assert!(message.contains("\"jiraa\"") && message.contains("jira"), "{message}");
    assert!(message.contains("Did you mean \"jira\""), "{message}");
    assert_eq!(a.json["unknown"], json!(["jiraa"]));
    body["element"] = json!({"key": "JIRA"});
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "unknown_element");
    assert!(a.json["message"].as_str().unwrap().contains("Did you mean \"jira\""), "{}", a.text);
    body["element"] = json!({"id": 999});
    post(Some(&creds.authorization()), &body).send(&app).await.error(400, "unknown_element");
    body["element"] = json!({"id": 1});
    assert_eq!(post(Some(&creds.authorization()), &body).send(&app).await.status, 200);
}

#[tokio::test]
async fn row_400_missing_configuration_lists_every_missing_entry_in_catalog_order() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"] = json!({"jira.password": "  "});
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "missing_configuration");
    assert_eq!(a.json["missing"], json!(["jira.username", "jira.password", "jira.api.url"]));
    assert!(a.json.get("unknown").is_none());
    body.as_object_mut().unwrap().remove("configuration");
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "missing_configuration");
    assert_eq!(a.json["missing"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn row_400_unknown_configuration_names_it_with_a_near_match() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    let password = body["configuration"].as_object_mut().unwrap().remove("jira.password").unwrap();
    body["configuration"]["jira.pasword"] = password;
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "unknown_configuration");
    assert_eq!(a.json["unknown"], json!(["jira.pasword"]));
    assert_eq!(a.json["missing"], json!(["jira.password"]));
    assert!(a.json["message"].as_str().unwrap().contains("did you mean jira.password?"));
    assert!(!a.text.contains("Sup3r-Secret"), "the value of a mistyped secret entry is not echoed");
}

#[tokio::test]
async fn row_400_invalid_typed_configuration_name_tags_and_idempotency_key() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "configuration",
            json!({"jira.username": "u", "jira.password": "p", "jira.api.url": "http://x.atlassian.net"}),
            "invalid_configuration",
        ),
        (
            "configuration",
            json!({"jira.username": "u", "jira.password": "p", "jira.api.url": "https://u:p@x.io"}),
            "invalid_configuration",
        ),
        (
            "configuration",
            json!({"jira.username": 5, "jira.password": "p", "jira.api.url": "x.io"}),
            "invalid_configuration",
        ),
        (
            "configuration",
            json!({"jira.username": "u", "jira.password": "p", "jira.api.url": "x.io", "event.poller.refresh_interval": "soon"}),
            "invalid_configuration",
        ),
        ("configuration", json!("jira"), "invalid_configuration"),
        ("name", json!("   "), "invalid_name"),
        ("name", json!("n".repeat(256)), "invalid_name"),
        ("name", json!(null), "invalid_name"),
        ("tags", json!(["a", "a"]), "invalid_tags"),
        ("tags", json!([""]), "invalid_tags"),
        ("tags", json!((0..51).map(|i| i.to_string()).collect::<Vec<_>>()), "invalid_tags"),
        ("tags", json!("support"), "invalid_tags"),
        ("element", json!("jira"), "invalid_request"),
    ];
    for (field, value, code) in cases {
        let mut body = seed_body();
        body[field] = value.clone();
        let a = post(Some(&auth), &body).send(&app).await;
        assert_eq!(a.json["code"], code, "{field} = {value}: {}", a.text);
        a.error(400, code);
    }
    for key in ["", "\"\"", "caf\u{e9}", &"k".repeat(256)] {
        let a = post(Some(&auth), &seed_body()).header("idempotency-key", key).send(&app).await;
        a.error(400, "invalid_idempotency_key");
    }
    // Booleans and numbers as the platform's examples send them, and a bare host.
    let mut body = seed_body();
    body["configuration"]["jira.api.url"] = json!("example.atlassian.net");
    body["configuration"]["event.notification.enabled"] = json!("true");
    body["configuration"]["event.poller.refresh_interval"] = json!("15");
    body["configuration"]["event.notification.callback.url"] = json!("https://app.example.com/events");
    body["configuration"]["filter.response.nulls"] = json!(false);
    body["unknownTopLevel"] = json!({"ignored": true});
    assert_eq!(post(Some(&auth), &body).send(&app).await.status, 200);
    assert_eq!(env.instance_items().await.len(), 1);
}

/// Several invalid values in one body are named all at once, beside missing
/// and unknown entries: one round trip tells a client everything to fix.
#[tokio::test]
async fn row_400_names_every_invalid_value_at_once() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let body = json!({
        "element": {"key": "jira"},
        "configuration": {
            "jira.password": "p",
            "jira.api.url": "http://x.atlassian.net",
            "event.vendor.type": "carrier-pigeon",
            "event.notification.enabled": "yes",
            "jira.pasword": "typo"
        },
        "name": "   ",
        "tags": ["ok", " "]
    });
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    a.error(400, "unknown_configuration");
    assert_eq!(a.json["missing"], json!(["jira.username"]));
    assert_eq!(a.json["unknown"], json!(["jira.pasword"]));
    let invalid: Vec<&str> = a.json["invalid"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for field in ["jira.api.url", "event.vendor.type", "event.notification.enabled", "name", "tags"] {
        assert!(invalid.contains(&field), "{field} is named in {invalid:?}");
    }
    assert_eq!(invalid.len(), 5, "{invalid:?}");
    let message = a.json["message"].as_str().unwrap();
    for part in [
        "jira.username",
        "jira.pasword",
        "Configuration entry jira.api.url must be an absolute https URL",
        "Configuration entry event.vendor.type must be one of",
        "Configuration entry event.notification.enabled must be true or false",
        "Name must not be blank",
        "Tags must be distinct, non-blank and at most 100 characters each:",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    // Without unknown or missing entries, the code is the first invalid field's.
    let mut only_name = seed_body();
    only_name["name"] = json!(" ");
    only_name["tags"] = json!([""]);
    let a = post(Some(&creds.authorization()), &only_name).send(&app).await;
    a.error(400, "invalid_name");
    assert_eq!(a.json["invalid"], json!(["name", "tags"]));
    assert!(env.instance_items().await.is_empty());
}

#[tokio::test]
async fn row_401_no_malformed_or_wrong_credentials_all_get_one_message() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let other = env.credentials().await;
    let (u, o) = (&creds.user_secret, &creds.organization_secret);
    let cases = vec![
        None,
        Some(String::new()),
        Some(format!("User {u}")),
        Some(format!("User {u}, User {u}")),
        Some(format!("User {u}, Organization {o}, Organization {o}")),
        Some(format!("Bearer {u}")),
        Some(format!("User {u}x, Organization {o}")),
        Some(format!("User {u}, Organization {o}x")),
        Some(format!("User {o}, Organization {u}")),
        Some(format!("User {}, Organization {o}", other.user_secret)),
        Some(format!("User {u}, Organization {}", other.organization_secret)),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for auth in cases {
        let a = post(auth.as_deref(), &seed_body()).send(&app).await;
        a.error(401, "unauthorized");
        assert_eq!(
            a.headers["www-authenticate"], r#"User realm="instances", Organization realm="instances""#,
            "a 401 carries the challenge of the API's scheme"
        );
        messages.insert(a.json["message"].as_str().unwrap().to_owned());
        assert!(!a.text.contains(u.as_str()) && !a.text.contains(o.as_str()));
    }
    assert_eq!(messages.len(), 1, "one message that does not tell which secret was wrong");
    // Either order and surrounding white space are accepted.
    let a = post(Some(&format!("  Organization {o} ,User {u} ")), &seed_body()).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(env.instance_items().await.len(), 1);
}

#[tokio::test]
async fn row_401_comes_before_validation_so_strangers_learn_nothing_of_the_body_rules() {
    let env = TestEnv::new().await;
    let app = env.app();
    let a = post(Some("User nobody, Organization nothing"), &json!({"element": {"key": "nope"}})).send(&app).await;
    a.error(401, "unauthorized");
}

#[tokio::test]
async fn row_404_and_405() {
    let env = TestEnv::new().await;
    let app = env.app();
    for path in ["/anything-else", "/", "/instancesx", "/instances//", "//instances", "/instances/1/x/y"] {
        request("POST", path).send(&app).await.error(404, "not_found");
    }
    // One trailing slash is the same path, as API Gateway's REST APIs have it.
    let creds = env.credentials().await;
    let mut req = post(Some(&creds.authorization()), &seed_body());
    req = req.uri("/instances/");
    assert_eq!(req.send(&app).await.status, 200);
    // Allow lists the methods each path serves.
    for (method, path, allow) in [
        ("HEAD", "/instances", "DELETE, GET, PATCH, POST, PUT"),
        ("POST", "/instances/1", "DELETE, GET, PATCH, PUT"),
        ("PUT", "/elements/jira/instances", "GET, POST"),
        ("POST", "/elements/jira/instances/1", "DELETE, GET, PUT"),
        ("PUT", "/instances/1/configuration", "GET"),
        ("DELETE", "/instances/configuration/1", "GET, PATCH"),
        ("POST", "/elements", "GET"),
    ] {
        let a = request(method, path).send(&app).await;
        a.error(405, "method_not_allowed");
        assert_eq!(a.headers["allow"], allow, "{method} {path}");
    }
}

#[tokio::test]
async fn row_413_is_checked_on_the_decoded_body_before_anything_else_of_it() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let mut body = seed_body().to_string();
    // Exactly 64 KiB of valid JSON passes.
    let pad = 64 * 1024 - body.len();
    body.insert_str(1, &" ".repeat(pad));
    assert_eq!(body.len(), 65536);
    assert_eq!(post(Some(&auth), &json!(null)).body(Body::Text(body.clone())).send(&app).await.status, 200);
    body.insert(1, ' ');
    post(Some(&auth), &json!(null)).body(Body::Text(body)).send(&app).await.error(413, "payload_too_large");
    // Not JSON at all, but too large: 413 wins over 400.
    post(Some(&auth), &json!(null))
        .body(Body::Binary(vec![b'x'; 70_000]))
        .send(&app)
        .await
        .error(413, "payload_too_large");
    assert_eq!(env.instance_items().await.len(), 1);
}

#[tokio::test]
async fn row_415_non_json_content_types() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x"]
    {
        let a = post(Some(&auth), &seed_body()).content_type(ct).send(&app).await;
        a.error(415, "unsupported_media_type");
        let message = a.json["message"].as_str().unwrap();
        assert!(message.contains(&format!("{ct:?}")), "the message names the type received: {message}");
    }
    for ct in ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.cloud-elements+json"] {
        let a = post(Some(&auth), &seed_body()).content_type(ct).send(&app).await;
        assert_eq!(a.status, 200, "{ct}: {}", a.text);
    }
    let a = post(Some(&auth), &seed_body()).without_content_type().send(&app).await;
    assert_eq!(a.status, 200, "an absent Content-Type is read as JSON");
}

#[test]
fn every_code_is_listed_once() {
    let mut codes = CODES.to_vec();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), CODES.len());
    // The API page lists them (tools/check-docs.py checks its table both ways).
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    for code in CODES {
        assert!(page.contains(&format!("`{code}`")), "docs/api.md does not list {code}");
    }
}

/// `createdDate` and `updatedDate` always carry three digits of milliseconds,
/// in the answer and in the store, whatever the clock read.
#[tokio::test]
async fn timestamps_have_one_width_over_many_creates() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let well_formed = |s: &str| {
        s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.' && s[20..23].bytes().all(|b| b.is_ascii_digit())
    };
    for _ in 0..150 {
        let a = post(Some(&auth), &seed_body()).send(&app).await;
        for field in ["createdDate", "updatedDate"] {
            let v = a.json[field].as_str().unwrap();
            assert!(well_formed(v), "{field} {v}");
        }
    }
    for item in env.instance_items().await {
        let created = item["createdDate"].as_s().unwrap();
        assert!(well_formed(created), "stored {created}");
        assert!(item["GSI1SK"].as_s().unwrap().contains(created.as_str()));
    }
}

/// Names and tags are stored and answered as plain text; a create without
/// tags is tagged with its name.
#[tokio::test]
async fn names_and_tags_lose_their_markup_and_tags_default_to_the_name() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["name"] = json!(r##"<a href="#" onclick="alert(1)">churros-xss</a>"##);
    body.as_object_mut().unwrap().remove("tags");
    let a = post(Some(&creds.authorization()), &body).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["name"], "churros-xss");
    assert_eq!(a.json["tags"], json!(["churros-xss"]));
    let items = env.instance_items().await;
    assert_eq!(items[0]["name"].as_s().unwrap(), "churros-xss");
    assert_eq!(items[0]["tags"].as_l().unwrap()[0].as_s().unwrap(), "churros-xss");

    body["name"] = json!("Ops");
    body["tags"] = json!(["<script>alert(1)</script>eu", "<b>support</b>"]);
    let b = post(Some(&creds.authorization()), &body).send(&app).await;
    assert_eq!(b.json["tags"], json!(["eu", "support"]));
}
