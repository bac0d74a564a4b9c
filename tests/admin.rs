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

    let rotated = env.admin.rotate_user_secret(org, &creds.user, Duration::ZERO).await.unwrap();
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    let new_user = rotated["userSecret"].as_str().unwrap();
    let auth = format!("User {new_user}, Organization {}", creds.organization_secret);
    assert_eq!(post(Some(&auth), &seed_body()).send(&app).await.status, 200);

    let rotated = env.admin.rotate_organization_secret(org, Duration::ZERO).await.unwrap();
    post(Some(&auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    let auth = format!("User {new_user}, Organization {}", rotated["organizationSecret"].as_str().unwrap());
    assert_eq!(post(Some(&auth), &seed_body()).send(&app).await.status, 200);

    assert!(env.admin.set_user_enabled(org, "nobody@example.com", false).await.is_err());
    assert!(env.admin.rotate_organization_secret("no-such-org", Duration::ZERO).await.is_err());
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
    assert_eq!(store.replace_user_secret(org, user, &seen, &new.digest(), None).await.unwrap(), AdminOutcome::Raced);

    let org_digest = Secret::new(creds.organization_secret.as_str()).digest();
    assert!(store.find_principal(&new.digest(), &org_digest).await.unwrap().is_err(), "the new secret was not stored");
    let new_auth = format!("User {}, Organization {}", new.expose(), creds.organization_secret);
    post(Some(&new_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    assert!(!store.user_state(org, user).await.unwrap().unwrap().enabled, "still disabled");

    // A rotation that reads the current state goes through, and keeps the user disabled.
    let rotated = env.admin.rotate_user_secret(org, user, Duration::ZERO).await.unwrap();
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

/// The status of a create with this `Authorization`.
async fn creates(app: &instances::app::App, authorization: &str) -> u16 {
    post(Some(authorization), &seed_body()).send(app).await.status
}

/// `add-user` prints the ready `authorization` line but for the
/// organization secret, which is stored only as a digest: a placeholder
/// that, filled in, authenticates.
#[tokio::test]
async fn add_user_prints_the_authorization_line_with_the_organization_secret_to_fill_in() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let added = env.admin.add_user(&creds.organization, "dev@example.com").await.unwrap();
    let secret = added["userSecret"].as_str().unwrap();
    let line = added["authorization"].as_str().unwrap();
    assert_eq!(line, format!("User {secret}, Organization <your organization secret>"));
    assert!(added["note"].as_str().unwrap().contains("stored only as a digest"), "{added}");
    let filled = line.replace("<your organization secret>", &creds.organization_secret);
    assert_eq!(creates(&app, &filled).await, 200);
}

/// During a rotation's grace the old and the new secret both work; after
/// it the old one is refused, the new one still works.
#[tokio::test]
async fn a_rotation_keeps_the_old_secret_working_until_its_grace_ends() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let (org, user) = (&creds.organization, &creds.user);
    let grace = Duration::from_secs(5);

    let rotated = env.admin.rotate_user_secret(org, user, grace).await.unwrap();
    let until = rotated["oldSecretValidUntil"].as_str().unwrap().to_owned();
    assert!(rotated.get("takesEffectWithinSeconds").is_none(), "a grace ends exactly: {rotated}");
    assert!(rotated["note"].as_str().unwrap().contains(&until), "{rotated}");
    let new_user = rotated["userSecret"].as_str().unwrap().to_owned();
    let new_auth = format!("User {new_user}, Organization {}", creds.organization_secret);
    assert_eq!(creates(&app, &creds.authorization()).await, 200, "the old user secret works during the grace");
    assert_eq!(creates(&app, &new_auth).await, 200, "the new one works at once");
    let listed = env.admin.list_users(org).await.unwrap();
    assert_eq!(listed["users"][0]["oldSecretValidUntil"], until.as_str(), "{listed}");

    let rotated = env.admin.rotate_organization_secret(org, grace).await.unwrap();
    let new_org = rotated["organizationSecret"].as_str().unwrap().to_owned();
    let both_new = format!("User {new_user}, Organization {new_org}");
    assert_eq!(creates(&app, &new_auth).await, 200, "the old organization secret works during the grace");
    assert_eq!(creates(&app, &both_new).await, 200);
    assert_eq!(creates(&app, &creds.authorization()).await, 200, "both old ones, within both graces");

    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    post(Some(&new_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    assert_eq!(creates(&app, &both_new).await, 200, "the new ones work on");
    let listed = env.admin.list_users(org).await.unwrap();
    assert!(listed["users"][0].get("oldSecretValidUntil").is_none(), "the grace is over: {listed}");
}

/// A function whose credential cache outlasts a grace does not trust the
/// old secret past it.
#[tokio::test]
async fn the_credential_cache_does_not_outlast_a_grace() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let mut settings = env.settings.clone();
    settings.auth_cache = Duration::from_secs(60);
    let app = env.app_with(settings);
    let grace = Duration::from_secs(2);
    env.admin.rotate_user_secret(&creds.organization, &creds.user, grace).await.unwrap();
    assert_eq!(creates(&app, &creds.authorization()).await, 200, "verified, and cached");
    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
}

/// `--grace 0` cuts the old secret off now, and says that running
/// functions may take their cache's bound to notice; a second rotation
/// ends the grace of the first (at most two secrets work at once); a
/// disable ends a grace too.
#[tokio::test]
async fn no_grace_a_second_rotation_and_a_disable_end_the_old_secret() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let (org, user) = (&creds.organization, &creds.user);
    let auth_of = |secret: &serde_json::Value| {
        format!("User {}, Organization {}", secret.as_str().unwrap(), creds.organization_secret)
    };

    let first = env.admin.rotate_user_secret(org, user, Duration::ZERO).await.unwrap();
    assert_eq!(first["takesEffectWithinSeconds"], 60, "{first}");
    assert!(first["note"].as_str().unwrap().contains("within 60 s"), "{first}");
    post(Some(&creds.authorization()), &seed_body()).send(&app).await.error(401, "unauthorized");
    let first_auth = auth_of(&first["userSecret"]);

    let second = env.admin.rotate_user_secret(org, user, Duration::from_secs(600)).await.unwrap();
    let second_auth = auth_of(&second["userSecret"]);
    assert_eq!(creates(&app, &first_auth).await, 200, "in its grace");
    let third = env.admin.rotate_user_secret(org, user, Duration::from_secs(600)).await.unwrap();
    let third_auth = auth_of(&third["userSecret"]);
    post(Some(&first_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    assert_eq!(creates(&app, &second_auth).await, 200, "in its grace");
    assert_eq!(creates(&app, &third_auth).await, 200);

    let disabled = env.admin.set_user_enabled(org, user, false).await.unwrap();
    assert_eq!(disabled["takesEffectWithinSeconds"], 60, "{disabled}");
    post(Some(&second_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    post(Some(&third_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    let enabled = env.admin.set_user_enabled(org, user, true).await.unwrap();
    assert!(enabled.get("takesEffectWithinSeconds").is_none(), "a grant works at once: {enabled}");
    assert_eq!(creates(&app, &third_auth).await, 200);
    post(Some(&second_auth), &seed_body()).send(&app).await.error(401, "unauthorized");
}

#[tokio::test]
async fn organizations_and_users_are_listed() {
    let env = TestEnv::new().await;
    let app = env.app();
    assert_eq!(env.admin.list_organizations().await.unwrap()["count"], 0);
    let a = env.credentials().await;
    let b = env.credentials().await;
    env.admin.add_user(&a.organization, "dev@example.com").await.unwrap();
    env.admin.set_user_enabled(&a.organization, "dev@example.com", false).await.unwrap();
    assert_eq!(creates(&app, &b.authorization()).await, 200);

    let listed = env.admin.list_organizations().await.unwrap();
    assert_eq!(listed["count"], 2, "{listed}");
    let of = |org: &str| listed["organizations"].as_array().unwrap().iter().find(|o| o["organization"] == org).cloned();
    let (la, lb) = (of(&a.organization).unwrap(), of(&b.organization).unwrap());
    assert_eq!((la["users"].as_u64(), la["instances"].as_u64()), (Some(2), Some(0)), "{la}");
    assert_eq!((lb["users"].as_u64(), lb["instances"].as_u64()), (Some(1), Some(1)), "{lb}");
    assert!(instances::domain::time::canonical(la["createdDate"].as_str().unwrap()).is_some(), "{la}");

    let users = env.admin.list_users(&a.organization).await.unwrap();
    assert_eq!(users["count"], 2, "{users}");
    assert_eq!(users["users"][0]["user"], "dev@example.com");
    assert_eq!(users["users"][0]["enabled"], false);
    assert_eq!(users["users"][1]["user"], "ops@example.com");
    assert_eq!(users["users"][1]["enabled"], true);
    assert!(users["users"][1]["createdDate"].is_string());
    assert!(env.admin.list_users("no-such-org").await.is_err());
}

/// Organizations created before the registry are entered into it once.
#[tokio::test]
async fn register_organizations_lists_those_created_before_the_registry() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    // As a build before the registry left it: no entry.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_item()
        .table_name(&env.settings.table_name)
        .key("PK", AttributeValue::S("ORGS".into()))
        .key("SK", AttributeValue::S(format!("ORG#{}", creds.organization)))
        .send()
        .await
        .unwrap();
    assert_eq!(env.admin.list_organizations().await.unwrap()["count"], 0);
    assert_eq!(env.admin.register_organizations().await.unwrap()["registered"], 1);
    let listed = env.admin.list_organizations().await.unwrap();
    assert_eq!(listed["organizations"][0]["organization"], creds.organization.as_str(), "{listed}");
    assert_eq!(listed["organizations"][0]["users"], 1, "{listed}");
    assert_eq!(env.admin.register_organizations().await.unwrap()["registered"], 0, "safe to run again");
}

/// A deleted user is refused with every secret it had (one in a rotation's
/// grace too), and a deletion that read the user before a rotation is
/// refused as raced rather than leave the new secret working.
#[tokio::test]
async fn delete_user_removes_every_secret_of_the_user() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let (org, user) = (&creds.organization, &creds.user);
    let rotated = env.admin.rotate_user_secret(org, user, Duration::from_secs(600)).await.unwrap();
    let new_auth =
        format!("User {}, Organization {}", rotated["userSecret"].as_str().unwrap(), creds.organization_secret);
    assert_eq!(creates(&app, &creds.authorization()).await, 200);

    let store = env.store();
    let seen = store.user_state(org, user).await.unwrap().unwrap();
    // A rotation meanwhile (with a grace, so the secret read is still there).
    let again = env.admin.rotate_user_secret(org, user, Duration::from_secs(600)).await.unwrap();
    let newest = format!("User {}, Organization {}", again["userSecret"].as_str().unwrap(), creds.organization_secret);
    assert_eq!(store.delete_user_seen(org, user, &seen).await.unwrap(), instances::store::AdminOutcome::Raced);
    assert_eq!(creates(&app, &newest).await, 200, "nothing was deleted");

    let rotated = env.admin.rotate_user_secret(org, user, Duration::from_secs(600)).await.unwrap();
    let last = format!("User {}, Organization {}", rotated["userSecret"].as_str().unwrap(), creds.organization_secret);
    let deleted = env.admin.delete_user(org, user).await.unwrap();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["takesEffectWithinSeconds"], 60, "{deleted}");
    for auth in [&creds.authorization(), &new_auth, &newest, &last] {
        post(Some(auth), &seed_body()).send(&app).await.error(401, "unauthorized");
    }
    let everything = format!("{:?}", store.scan_raw().await.unwrap());
    assert!(!everything.contains(&format!("USER#{user}")) && !everything.contains("USERSECRET#"), "{everything}");
    assert_eq!(env.admin.list_users(org).await.unwrap()["count"], 0);
    assert!(env.admin.delete_user(org, user).await.unwrap_err().to_string().contains("no user"));
}

/// An organization is deleted only without users; with instances only with
/// `--force`, which deletes them; its name is not reused while any remain.
#[tokio::test]
async fn delete_organization_refuses_while_users_or_instances_remain() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let org = &creds.organization;
    let created = post(Some(&creds.authorization()), &seed_body()).send(&app).await;
    let id = instances::domain::token::InstanceId::new(created.id()).unwrap();

    let refused = env.admin.delete_organization(org, true).await.unwrap_err().to_string();
    assert!(refused.contains("1 user") && refused.contains("admin delete-user"), "{refused}");
    env.admin.delete_user(org, &creds.user).await.unwrap();
    let refused = env.admin.delete_organization(org, false).await.unwrap_err().to_string();
    assert!(refused.contains("1 instance") && refused.contains("--force"), "{refused}");
    assert!(env.store().get_instance(id).await.unwrap().is_some(), "nothing deleted");

    let deleted = env.admin.delete_organization(org, true).await.unwrap();
    assert_eq!((deleted["organizationDeleted"].as_bool(), deleted["instancesDeleted"].as_u64()), (Some(true), Some(1)));
    assert_eq!(deleted["takesEffectWithinSeconds"], 60, "{deleted}");
    assert!(env.store().get_instance(id).await.unwrap().is_none());
    assert_eq!(env.admin.list_organizations().await.unwrap()["count"], 0);
    let left = format!("{:?}", env.store().scan_raw().await.unwrap());
    assert!(!left.contains(org.as_str()), "nothing of the organization is left: {left}");
    assert!(env.admin.delete_organization(org, true).await.unwrap_err().to_string().contains("no organization"));
    // The name is free again.
    env.admin.create_credentials(org, "ops@example.com").await.unwrap();
}

/// Instances left by an organization deleted meanwhile (a credential a
/// function had verified before) are never handed to a new organization of
/// the same name, and `--force` deletes them.
#[tokio::test]
async fn a_deleted_organizations_instances_are_not_handed_to_its_name() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let org = &creds.organization;
    assert_eq!(creates(&app, &creds.authorization()).await, 200);
    env.admin.delete_user(org, &creds.user).await.unwrap();
    let seen = env.store().organization_state(org).await.unwrap().unwrap();
    // The organization goes, an instance stays (as if created after the sweep).
    assert_eq!(env.store().delete_organization(org, &seen).await.unwrap(), instances::store::AdminOutcome::Done);
    let refused = env.admin.create_credentials(org, "new@example.com").await.unwrap_err().to_string();
    assert!(refused.contains("--force"), "{refused}");
    assert!(env.admin.delete_organization(org, false).await.unwrap_err().to_string().contains("no organization"));
    let swept = env.admin.delete_organization(org, true).await.unwrap();
    assert_eq!((swept["organizationDeleted"].as_bool(), swept["instancesDeleted"].as_u64()), (Some(false), Some(1)));
    let again = env.admin.create_credentials(org, "new@example.com").await.unwrap();
    let auth = format!(
        "User {}, Organization {}",
        again["userSecret"].as_str().unwrap(),
        again["organizationSecret"].as_str().unwrap()
    );
    let listed = request("GET", "/instances").header("authorization", &auth).send(&app).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json.as_array().map(Vec::len), Some(0), "{}", listed.text);
}

/// A user added after a deletion counted none makes the deletion refuse,
/// whether the organization had users added before (`usersVersion`) or not.
#[tokio::test]
async fn a_user_added_meanwhile_stops_an_organizations_deletion() {
    let env = TestEnv::new().await;
    for earlier in [None, Some("second@example.com")] {
        let creds = env.credentials().await;
        let org = &creds.organization;
        if let Some(second) = earlier {
            env.admin.add_user(org, second).await.unwrap();
            env.admin.delete_user(org, second).await.unwrap();
        }
        env.admin.delete_user(org, &creds.user).await.unwrap();
        let seen = env.store().organization_state(org).await.unwrap().unwrap();
        assert_eq!(seen.users_version.is_some(), earlier.is_some());
        env.admin.add_user(org, "late@example.com").await.unwrap();
        assert_eq!(
            env.store().delete_organization(org, &seen).await.unwrap(),
            instances::store::AdminOutcome::Raced,
            "{earlier:?}"
        );
        assert_eq!(env.admin.list_users(org).await.unwrap()["count"], 1, "the organization and its user stay");
    }
}

/// The command line: `--version`, a grace out of bounds, the note of a
/// change that takes the cache's bound on standard error, and the absence of
/// AWS credentials said as such.
#[tokio::test]
async fn the_command_line_versions_notes_and_missing_credentials() {
    let admin = env!("CARGO_BIN_EXE_admin");
    let out = std::process::Command::new(admin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("admin {}", env!("CARGO_PKG_VERSION")));

    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(admin)
            .args(args)
            .env("TABLE_NAME", &env.settings.table_name)
            .env("KMS_KEY_ID", &env.settings.kms_key_id)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
        (out.status.code(), last, String::from_utf8(out.stderr).unwrap())
    };
    let org = creds.organization.as_str();
    let (code, v, _) =
        run(&["rotate-user-secret", "--organization", org, "--user", &creds.user, "--grace", "99999999"]);
    assert_eq!(code, Some(2), "{v}");
    assert!(v["error"].as_str().unwrap().contains("--grace"), "{v}");
    let (code, v, stderr) = run(&["disable-user", "--organization", org, "--user", &creds.user]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["takesEffectWithinSeconds"], 60);
    assert!(stderr.contains("within 60 s"), "{stderr}");
    let (code, v, stderr) = run(&["rotate-organization-secret", "--organization", org]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["graceSeconds"], 86400, "the default grace: {v}");
    assert!(stderr.contains("keeps working until"), "{stderr}");

    // No credentials anywhere: no variables, no profile, no instance metadata.
    let out = std::process::Command::new(admin)
        .arg("list-organizations")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", closed_port_url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(error.starts_with("no AWS credentials found"), "{error}");
    for hint in ["AWS_PROFILE", "AWS_ACCESS_KEY_ID", ". .run/make-run/env"] {
        assert!(error.contains(hint), "{error}");
    }
    assert!(!error.contains("IMDS"), "{error}");
}
