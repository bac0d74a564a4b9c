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
