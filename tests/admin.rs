//! The operator command's effects, seen through the API.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn setup_is_idempotent_and_reports_the_table_and_key() {
    let env = TestEnv::new().await;
    let again = env.admin.setup().await.unwrap();
    assert_eq!(again["tableName"], env.settings.table_name.as_str());
    assert_eq!(again["kmsKeyId"], env.settings.kms_key_id.as_str());
    assert_eq!(again["tableCreated"], false);
    assert_eq!(again["kmsKeyCreated"], false);
}

#[tokio::test]
async fn secrets_are_stored_only_as_digests() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let everything = format!("{:?}", env.store().scan_raw().await.unwrap());
    assert!(!everything.contains(&creds.user_secret));
    assert!(!everything.contains(&creds.organization_secret));
    assert!(everything.contains(&creds.organization));
}

#[tokio::test]
async fn organizations_and_users_are_unique() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    assert!(env.admin.create_credentials(&creds.organization, "x@example.com").await.is_err());
    assert!(env.admin.add_user(&creds.organization, &creds.user).await.is_err());
    assert!(env.admin.add_user("no-such-org", "x@example.com").await.is_err());
    assert!(env.admin.create_credentials("bad org!", "x@example.com").await.is_err());
    assert!(env.admin.create_credentials("fine", "not-an-email").await.is_err());
}

#[tokio::test]
async fn add_disable_enable_and_rotate_take_effect() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let org = &creds.organization;
    let second = env.admin.add_user(org, "second@example.com").await.unwrap();
    let second_auth =
        format!("User {}, Organization {}", second["userSecret"].as_str().unwrap(), creds.organization_secret);
    assert_eq!(post(Some(&second_auth), &seed_body()).send(&app).await.status, 200);

    env.admin.set_user_enabled(org, "second@example.com", false).await.unwrap();
    post(Some(&second_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    assert_eq!(post(Some(&creds.authorization()), &seed_body()).send(&app).await.status, 200, "others are unaffected");
    env.admin.set_user_enabled(org, "second@example.com", true).await.unwrap();
    assert_eq!(post(Some(&second_auth), &seed_body()).send(&app).await.status, 200);

    let rotated = env.admin.rotate_user_secret(org, &creds.user).await.unwrap();
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    let new_user = rotated["userSecret"].as_str().unwrap();
    let auth = format!("User {new_user}, Organization {}", creds.organization_secret);
    assert_eq!(post(Some(&auth), &seed_body()).send(&app).await.status, 200);

    let rotated = env.admin.rotate_organization_secret(org).await.unwrap();
    post(Some(&auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    let auth = format!("User {new_user}, Organization {}", rotated["organizationSecret"].as_str().unwrap());
    assert_eq!(post(Some(&auth), &seed_body()).send(&app).await.status, 200);

    assert!(env.admin.set_user_enabled(org, "nobody@example.com", false).await.is_err());
    assert!(env.admin.rotate_organization_secret("no-such-org").await.is_err());
}

#[tokio::test]
async fn a_verified_credential_is_cached_for_a_bounded_time() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let mut settings = env.settings.clone();
    settings.auth_cache = Duration::from_secs(2);
    let app = env.app_with(settings);
    assert_eq!(post(Some(&creds.authorization()), &seed_body()).send(&app).await.status, 200);
    env.admin.set_user_enabled(&creds.organization, &creds.user, false).await.unwrap();
    // Within the bound the cached verification still stands...
    assert_eq!(post(Some(&creds.authorization()), &seed_body()).send(&app).await.status, 200);
    // ...and past it the user is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
}

/// A `disable-user` that lands between a rotation's read and its write is
/// not undone: the rotation is refused as raced, and the disabled user
/// authenticates with neither the old secret nor the new one.
#[tokio::test]
async fn a_disable_during_a_rotation_is_not_undone() {
    use instances::domain::secret::Secret;
    use instances::store::AdminOutcome;
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let (org, user) = (&creds.organization, &creds.user);
    let store = env.store();
    let seen = store.user_state(org, user).await.unwrap().expect("the user exists");
    assert!(seen.enabled);
    assert_eq!(store.set_user_enabled(org, user, false).await.unwrap(), AdminOutcome::Done);

    let new = Secret::generate().unwrap();
    assert_eq!(store.replace_user_secret(org, user, &seen, &new.digest()).await.unwrap(), AdminOutcome::Raced);

    let org_digest = Secret::new(creds.organization_secret.as_str()).digest();
    assert!(store.find_principal(&new.digest(), &org_digest).await.unwrap().is_err(), "the new secret was not stored");
    let new_auth = format!("User {}, Organization {}", new.expose(), creds.organization_secret);
    post(Some(&new_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    assert!(!store.user_state(org, user).await.unwrap().unwrap().enabled, "still disabled");

    // A rotation that reads the current state goes through, and keeps the user disabled.
    let rotated = env.admin.rotate_user_secret(org, user).await.unwrap();
    let auth = format!("User {}, Organization {}", rotated["userSecret"].as_str().unwrap(), creds.organization_secret);
    post(Some(&auth), &seed_body()).send(&app).await.error(401, "unauthorized");
}

/// Instances stored before timestamps had a fixed width read as the same
/// instant in the three-digit form, and `admin migrate-dates` rewrites them
/// (and their index key) so that the organization's list is in time order.
#[tokio::test]
async fn old_timestamps_read_canonically_and_migrate_dates_restores_list_order() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&env.sdk);
    // Two instances 7 ms apart, stored in the old narrow form: `.72Z` is
    // earlier than `.727Z` but sorts after it as a string.
    let mut ids = Vec::new();
    for stamp in ["2026-11-20T10:00:07.72Z", "2026-11-20T10:00:07.727Z"] {
        let a = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
        let id = a.id();
        dynamodb
            .update_item()
            .table_name(&env.settings.table_name)
            .key("PK", AttributeValue::S(format!("INSTANCE#{id}")))
            .key("SK", AttributeValue::S("INSTANCE".into()))
            .update_expression("SET createdDate = :d, updatedDate = :d, GSI1SK = :g")
            .expression_attribute_values(":d", AttributeValue::S(stamp.into()))
            .expression_attribute_values(":g", AttributeValue::S(format!("INSTANCE#{stamp}#{id}")))
            .send()
            .await
            .unwrap();
        ids.push(id);
    }
    let first = instances::domain::token::InstanceId::new(ids[0]).unwrap();
    let read = env.store().get_instance(first).await.unwrap().unwrap();
    assert_eq!(read.summary.created_date, "2026-11-20T10:00:07.720Z", "an old item reads in the three-digit form");

    let listed = |records: Vec<instances::domain::instance::InstanceSummary>| {
        records.iter().map(|r| r.id.get()).collect::<Vec<_>>()
    };
    let before = listed(env.store().list_instances(&creds.organization).await.unwrap());
    assert_eq!(before, [ids[1], ids[0]], "the old form sorts out of time order");

    let out = env.admin.migrate_dates().await.unwrap();
    assert_eq!(out["rewritten"], 1, "only the narrow one is rewritten: {out}");
    assert_eq!(listed(env.store().list_instances(&creds.organization).await.unwrap()), ids, "time order");
    let again = env.admin.migrate_dates().await.unwrap();
    assert_eq!(again["rewritten"], 0, "running it again changes nothing");
}

/// Every command prints one JSON object as its last line, usage errors and
/// failures included, and a failure reads as one sentence.
#[test]
fn the_command_line_answers_json_even_when_it_fails() {
    let admin = env!("CARGO_BIN_EXE_admin");
    let run = |args: &[&str], endpoint: &str| {
        let out = std::process::Command::new(admin)
            .args(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "y")
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .unwrap_or_else(|_| panic!("{args:?}: the last line is not JSON: {stdout:?}"));
        (out.status.code(), last)
    };
    let (code, v) = run(&["frobnicate"], "http://127.0.0.1:1");
    assert_eq!(code, Some(2));
    assert!(v["error"].as_str().unwrap().contains("frobnicate"), "{v}");
    let (code, v) = run(&["create-credentials", "--organization", "x"], "http://127.0.0.1:1");
    assert_eq!(code, Some(2));
    assert!(v["error"].as_str().unwrap().contains("--user"), "{v}");
    let (code, v) = run(&["setup"], &closed_port_url());
    assert_eq!(code, Some(1));
    let error = v["error"].as_str().unwrap();
    assert!(
        error.len() < 200 && !error.contains('\n') && error.contains("Connection refused"),
        "one sentence: {error}"
    );
}
