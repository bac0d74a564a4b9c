//! Changes that race other changes, and DynamoDB faults that moto cannot
//! show by itself (it serializes requests), made with the fault proxy:
//! a retry after a version conflict keeps the first read's rules; a write
//! that landed but whose answer was lost is recognised as landed; a write
//! that meets another transaction is a change meanwhile, never a 500.

mod common;

use common::proxy::{Mode, Proxy};
use common::*;
use instances::domain::instance::Principal;
use instances::domain::token::Token;
use instances::domain::update::Mode as UpdateMode;
use instances::service::change::{Tries, UpdateError};
use instances::service::read::{ReadError, Target};
use instances::service::update::{self, PatchError};
use serde_json::json;

fn principal(creds: &Creds) -> Principal {
    Principal { organization: creds.organization.clone(), user: creds.user.clone() }
}

/// A change by token reads the instance (enabled), a disable lands, the
/// change's write fails its version condition: the second read applies the
/// first read's rules, and the token of a disabled instance is refused.
#[tokio::test]
async fn a_retry_after_a_conflict_keeps_the_rules_of_the_first_read() {
    let env = TestEnv::new().await;
    let app = env.app();
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let (id, token) = (created.id(), Token::parse(&created.token()).unwrap());
    let target = Target::new(None, Some(&token), None);
    let who = principal(&creds);

    // The state the change read, before the disable.
    let stale = target.read(&app, &who).await.unwrap();
    let disabled =
        request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &auth).send(&app).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);

    // The shared loop: the first state is the one read, the next is read
    // again under the token's rules.
    let mut tries = Tries::new(&target, stale.clone(), None);
    assert_eq!(tries.next(&app, &who).await.unwrap().summary.version, stale.summary.version);
    assert!(matches!(tries.next(&app, &who).await, Err(UpdateError::Read(ReadError::Disabled))));

    // The update built on it: its write on the stale version fails, and the
    // retry is refused (403), not applied.
    let change = json!({"configuration": {"jira.username": "raced"}});
    let outcome = update::change_record(&app, &who, &target, stale.clone(), None, &change, UpdateMode::Merge).await;
    assert!(matches!(outcome, Err(PatchError::Update(UpdateError::Read(ReadError::Disabled)))), "{outcome:?}");
    let now = env.store().get_instance(stale.summary.id).await.unwrap().unwrap();
    assert_eq!(now.summary.configuration, stale.summary.configuration, "nothing changed");

    // By id (the organization's right), the same stale state is retried and applied.
    let by_id = Target::new(Some(stale.summary.id), None, None);
    let done = update::change_record(&app, &who, &by_id, stale, None, &change, UpdateMode::Merge).await.unwrap();
    assert!(done.configuration.contains(&("jira.username".into(), "raced".into())));
    assert!(done.disabled);
}

/// DynamoDB applied the write, its answer was lost, the SDK sent it again,
/// and the second attempt failed its own condition: the client hears that
/// its change was made, not `412` or `404`.
#[tokio::test]
async fn a_write_whose_answer_was_lost_is_answered_as_made() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = env.app_via(&proxy.url, &endpoint()).await;
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let path = format!("/instances/{}", created.id());
    let etag = |a: &Answer| a.headers["etag"].to_str().unwrap().to_owned();

    let read = request("GET", &path).header("authorization", &auth).send(&app).await;
    proxy.lose_next_answers_to("UpdateItem", 1);
    let a = with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.username": "once"}}))
        .header("if-match", &etag(&read))
        .send(&app)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["configuration"]["jira.username"], "once");
    let after = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(etag(&after), etag(&a), "the answer is the stored state");

    proxy.lose_next_answers_to("UpdateItem", 1);
    let b = request("DELETE", &format!("{path}/enabled"))
        .header("authorization", &auth)
        .header("if-match", &etag(&after))
        .send(&app)
        .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json["disabled"], true);

    // A delete is one TransactWriteItems, whose retries DynamoDB answers as
    // committed by their ClientRequestToken: the SDK sends the same token
    // again. (moto ignores the token, so past it the retry here reads as a
    // concurrent delete: 404, which is what another caller's delete is.)
    proxy.lose_next_answers_to("TransactWriteItems", 2);
    let c = request("DELETE", &path).header("authorization", &auth).header("if-match", &etag(&b)).send(&app).await;
    let tokens: Vec<String> = proxy
        .lost_requests()
        .iter()
        .filter(|r| r.to_ascii_lowercase().contains("transactwriteitems"))
        .map(|r| {
            let body = &r[r.find("\r\n\r\n").unwrap() + 4..];
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["ClientRequestToken"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 2, "the delete and its retry: {tokens:?}");
    assert!(!tokens[0].is_empty() && tokens[0] == tokens[1], "one token for the retries: {tokens:?}");
    c.error(404, "not_found");
    assert!(env.instance_items().await.is_empty(), "deleted");
    // A second delete, after the first was answered, is 404 as ever.
    request("DELETE", &path).header("authorization", &auth).send(&app).await.error(404, "not_found");
}

/// Another transaction writing the item (`TransactionConflict`, not retried
/// by the SDK) is a change meanwhile: read again and decided again, and past
/// the attempts `503` with `Retry-After`; never `500`, and a delete never
/// leaves its idempotency record behind.
#[tokio::test]
async fn a_transaction_conflict_is_a_change_meanwhile() {
    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = env.app_via(&proxy.url, &endpoint()).await;
    let auth = creds.authorization();
    let created = post(Some(&auth), &seed_body()).header("idempotency-key", "conflicts").send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let path = format!("/instances/{}", created.id());

    proxy.set(Mode::ConflictWrites);
    for (method, uri, body) in [
        ("PATCH", path.clone(), json!({"configuration": {"jira.username": "x"}})),
        ("PATCH", path.clone(), json!({"name": "renamed"})),
        ("DELETE", format!("{path}/enabled"), json!({})),
    ] {
        let a = with_json(method, &uri, &auth, &body).send(&app).await;
        a.error(503, "service_unavailable");
        assert!(a.headers.contains_key("retry-after"), "{method} {uri}");
    }
    proxy.set(Mode::ConflictTransactions);
    let d = request("DELETE", &path).header("authorization", &auth).send(&app).await;
    d.error(503, "service_unavailable");
    let items = env.store().scan_raw().await.unwrap();
    assert!(items.iter().any(|i| i["SK"].as_s().unwrap() == "IDEMPOTENCY"), "the record stays with its instance");
    assert_eq!(env.instance_items().await.len(), 1);

    proxy.set(Mode::Forward);
    let e = request("DELETE", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(e.status, 200, "{}", e.text);
    let items = env.store().scan_raw().await.unwrap();
    assert!(items.iter().all(|i| !matches!(i["SK"].as_s().unwrap().as_str(), "INSTANCE" | "IDEMPOTENCY")));
}
