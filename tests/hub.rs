//! The hub: the Element token opens JIRA. Against the JIRA stand-in of
//! `tools/jira_standin.py` (Cloud and Server, written from Atlassian's
//! documentation), with the instance's credential check on: incidents (list,
//! create, read, update, delete), comments, transitions, the lookups, the
//! raw pass-through, CEQL queries and pages, the null filter, and JIRA's
//! refusals as the contract maps them.

mod common;

use std::time::Duration;

use common::standin::JiraStandIn;
use common::*;
use instances::app::App;
use instances::outbound::address::AllowList;
use serde_json::{json, Value};

/// The app with the check on, trusting the stand-in's CA and allowing it.
fn app(env: &TestEnv, jira: &JiraStandIn) -> App {
    let mut settings = env.settings.clone();
    settings.provider_check = true;
    settings.provider_check_timeout = Duration::from_millis(3000);
    settings.provider_allowed_hosts = AllowList::parse("localhost");
    settings.provider_test_ca_file = Some(jira.ca_file.to_string_lossy().into_owned());
    env.app_with(settings)
}

/// A JIRA instance on the stand-in; the `Authorization` with its token.
async fn instance(env: &TestEnv, app: &App, jira: &JiraStandIn) -> (String, u64, String) {
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"] =
        json!({"jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url});
    let created = post(Some(&creds.authorization()), &body).send(app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json["valid"], true);
    let with_token = format!("{}, Element {}", creds.authorization(), created.token());
    (with_token, created.id(), creds.authorization())
}

fn get(path: &str, auth: &str) -> Req {
    request("GET", path).header("authorization", auth)
}

fn ids(a: &Answer) -> Vec<String> {
    a.json.as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn incidents_on_jira_cloud_list_create_read_update_delete() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let app = app(&env, &jira);
    let (auth, id, _) = instance(&env, &app, &jira).await;

    // A list, newest first, issues with their fields (the enhanced search
    // answers bare ids unless fields are asked for); with and without the prefix.
    let a = get("/hubs/helpdesk/incidents", &auth).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.headers["elements-element-instance-id"], id.to_string().as_str());
    let all = ids(&a);
    assert!(all.len() >= 3 && all.iter().all(|k| k.starts_with("DEMO-")), "{all:?}");
    assert!(a.json[0]["fields"]["summary"].is_string(), "{}", a.text);
    assert_eq!(a.headers["elements-returned-count"], all.len().to_string().as_str());
    assert!(a.headers.get("elements-total-count").is_none(), "Cloud says no total");
    let b = get("/incidents", &auth).send(&app).await;
    assert_eq!(ids(&b), all);
    let searched = jira.requests().await;
    assert!(searched.iter().any(|r| r["path"] == "/rest/api/2/search/jql"), "{searched:?}");

    // Create: JIRA's body in JIRA's shape, answered as JIRA has it now.
    let created = with_json(
        "POST",
        "/hubs/helpdesk/incidents",
        &auth,
        &json!({"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": "Printer on fire"}}),
    )
    .send(&app)
    .await;
    assert!(created.status == 200 || created.status == 201, "{}", created.text);
    assert_eq!(created.json["fields"]["summary"], "Printer on fire");
    let key = created.json["key"].as_str().unwrap().to_owned();

    // Read, update (answered as it is now), comments, transitions.
    let one = get(&format!("/incidents/{key}"), &auth).send(&app).await;
    assert_eq!((one.status, &one.json["key"]), (200, &json!(key)));
    let patched =
        with_json("PATCH", &format!("/incidents/{key}"), &auth, &json!({"fields": {"summary": "Printer out"}}))
            .send(&app)
            .await;
    assert_eq!((patched.status, &patched.json["fields"]["summary"]), (200, &json!("Printer out")), "{}", patched.text);
    let comment = with_json("POST", &format!("/incidents/{key}/comments"), &auth, &json!({"body": "Water helps"}))
        .send(&app)
        .await;
    assert!(comment.status < 300, "{}", comment.text);
    let comments = get(&format!("/incidents/{key}/comments"), &auth).send(&app).await;
    assert_eq!(comments.json.as_array().map(Vec::len), Some(1), "the list JIRA wraps in comments: {}", comments.text);
    let cid = comments.json[0]["id"].as_str().unwrap().to_owned();
    let edited = with_json("PATCH", &format!("/incidents/{key}/comments/{cid}"), &auth, &json!({"body": "Sand helps"}))
        .send(&app)
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let transitions = get(&format!("/incidents/{key}/transitions"), &auth).send(&app).await;
    let tid = transitions.json[0]["id"].as_str().unwrap().to_owned();
    let moved = with_json("POST", &format!("/incidents/{key}/transitions"), &auth, &json!({"transition": {"id": tid}}))
        .send(&app)
        .await;
    assert_eq!((moved.status, &moved.json["key"]), (200, &json!(key)), "the issue as it is now: {}", moved.text);

    // Delete: 200, no body; then JIRA's 404 in its words.
    let gone = request("DELETE", &format!("/incidents/{key}")).header("authorization", &auth).send(&app).await;
    assert_eq!((gone.status, gone.text.as_str()), (200, ""));
    let missing = get(&format!("/incidents/{key}"), &auth).send(&app).await;
    missing.error(404, "provider_error");
    assert!(missing.json["providerMessage"].as_str().unwrap().contains("Issue does not exist"), "{}", missing.text);
    assert_eq!(missing.headers["elements-element-instance-id"], id.to_string().as_str());

    // The lookups, and the pass-through.
    for path in ["/priorities", "/statuses", "/incident-types", "/projects", "/projects/DEMO"] {
        let l = get(path, &auth).send(&app).await;
        assert_eq!(l.status, 200, "{path}: {}", l.text);
    }
    let me = get("/hubs/helpdesk/proxy/rest/api/2/myself", &auth).send(&app).await;
    assert_eq!((me.status, &me.json["emailAddress"]), (200, &json!(jira.user)), "{}", me.text);
    assert!(me.json.get("accountId").is_some(), "Cloud's account");
}

#[tokio::test]
async fn ceql_pages_and_jira_server() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("server");
    let app = app(&env, &jira);
    let (auth, _, _) = instance(&env, &app, &jira).await;

    // Server pages by offset and says the total.
    let first = get("/incidents?pageSize=2", &auth).send(&app).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(ids(&first).len(), 2);
    let total: usize = first.headers["elements-total-count"].to_str().unwrap().parse().unwrap();
    assert!(total >= 3);
    let token = first.headers["elements-next-page-token"].to_str().unwrap().to_owned();
    let second = get(&format!("/incidents?pageSize=2&nextPage={token}"), &auth).send(&app).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert!(ids(&second).iter().all(|k| !ids(&first).contains(k)), "the next page is the next");
    let by_number = get("/incidents?pageSize=2&page=2", &auth).send(&app).await;
    assert_eq!(ids(&by_number), ids(&second));
    // A token of another query is refused.
    get(&format!("/incidents?pageSize=3&nextPage={token}"), &auth).send(&app).await.error(400, "invalid_request");
    assert!(jira.requests().await.iter().any(|r| r["path"] == "/rest/api/2/search"));

    // CEQL to JQL: a value never leaves its string.
    jira.forget_requests().await;
    let todo = get("/incidents?where=status%20%3D%20%27To%20Do%27", &auth).send(&app).await;
    assert_eq!(todo.status, 200, "{}", todo.text);
    assert!(todo.json.as_array().unwrap().iter().all(|i| i["fields"]["status"]["name"] == "To Do"), "{}", todo.text);
    let hostile = "x' OR project = 'DEMO";
    let q = url::form_urlencoded::byte_serialize(format!("labels = '{}'", hostile.replace('\'', "''")).as_bytes())
        .collect::<String>();
    let none = get(&format!("/incidents?where={q}"), &auth).send(&app).await;
    assert_eq!((none.status, none.json.as_array().map(Vec::len)), (200, Some(0)), "{}", none.text);
    let sent = jira.requests().await;
    let jql = sent.last().unwrap()["query"]["jql"][0].as_str().unwrap().to_owned();
    assert!(jql.starts_with(&format!("(labels = \"{hostile}\") ORDER BY")), "one literal: {jql}");

    // A where that does not parse: 400, JIRA not asked.
    jira.forget_requests().await;
    let bad = get("/incidents?where=status%20%3D%20%27unclosed", &auth).send(&app).await;
    bad.error(400, "invalid_query");
    assert!(jira.requests().await.is_empty(), "JIRA was not asked");
}

#[tokio::test]
async fn jiras_refusals_and_faults_as_the_contract_maps_them() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let app = app(&env, &jira);
    let (auth, id, org_auth) = instance(&env, &app, &jira).await;
    let path = "/incidents/DEMO-1";

    // JIRA's 401 is never ours: 403 instance_invalid, valid turns false, and
    // back on the next call JIRA accepts.
    jira.next(json!({"preset": "unauthorized"})).await;
    let a = get(path, &auth).send(&app).await;
    a.error(403, "instance_invalid");
    let read = get(&format!("/instances/{id}"), &org_auth).send(&app).await;
    assert_eq!(read.json["valid"], false, "{}", read.text);
    assert_eq!(get(path, &auth).send(&app).await.status, 200);
    assert_eq!(get(&format!("/instances/{id}"), &org_auth).send(&app).await.json["valid"], true);

    // 429 with JIRA's Retry-After, no retry inside the call.
    jira.forget_requests().await;
    jira.next(json!({"preset": "rate-limited", "retryAfter": 7})).await;
    let b = get(path, &auth).send(&app).await;
    b.error(429, "provider_rate_limited");
    assert_eq!(b.headers["retry-after"], "7");
    assert_eq!(jira.requests().await.len(), 1, "asked once");

    // 5xx and an answer that is not JSON: 502.
    jira.next(json!({"preset": "server-error"})).await;
    get(path, &auth).send(&app).await.error(502, "provider_unavailable");
    jira.next(json!({"preset": "not-json"})).await;
    get(path, &auth).send(&app).await.error(502, "provider_bad_response");

    // Never out of the site: refused before anything is sent.
    jira.forget_requests().await;
    for bad in ["/incidents/%2e%2e/myself", "/incidents/..", "/proxy/rest/api/2/%2e%2e/x", "/incidents/a%2Fb/comments"]
    {
        get(bad, &auth).send(&app).await.error(400, "invalid_request");
    }
    assert!(jira.requests().await.is_empty());

    // The token's rules: none is 401 saying so; a disabled instance is 403.
    get(path, &org_auth).send(&app).await.error(401, "unauthorized");
    request("DELETE", &format!("/instances/{id}/enabled")).header("authorization", &org_auth).send(&app).await;
    get(path, &auth).send(&app).await.error(403, "instance_disabled");
    request("PUT", &format!("/instances/{id}/enabled")).header("authorization", &org_auth).send(&app).await;

    // Unknown resources, other methods, a body too large.
    get("/incidents/DEMO-1/nothing", &auth).send(&app).await.error(404, "not_found");
    let m = request("PUT", "/incidents").header("authorization", &auth).send(&app).await;
    m.error(405, "method_not_allowed");
    assert_eq!(m.headers["allow"], "GET, POST");
    let big = json!({"fields": {"summary": "x".repeat(1_100_000)}});
    with_json("POST", "/incidents", &auth, &big).send(&app).await.error(413, "payload_too_large");
}

#[tokio::test]
async fn nulls_are_filtered_unless_the_instance_says_not() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let app = app(&env, &jira);
    let (auth, id, org_auth) = instance(&env, &app, &jira).await;
    let has_null = |v: &Value| v.to_string().contains(":null");
    let filtered = get("/incidents/DEMO-1", &auth).send(&app).await;
    assert_eq!(filtered.status, 200, "{}", filtered.text);
    assert!(!has_null(&filtered.json), "{}", filtered.text);
    let kept = with_json(
        "PATCH",
        &format!("/instances/{id}"),
        &org_auth,
        &json!({"configuration": {"filter.response.nulls": false}}),
    )
    .send(&app)
    .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    let raw = get("/incidents/DEMO-1", &auth).send(&app).await;
    assert!(has_null(&raw.json), "JIRA answers some nulls: {}", raw.text);
}

#[tokio::test]
async fn the_pass_through_the_token_and_a_hostile_jira() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let app = app(&env, &jira);
    let (auth, _, _) = instance(&env, &app, &jira).await;

    // /proxy/ passes the method, query, body and Content-Type on, and JIRA's
    // status and body back.
    jira.forget_requests().await;
    let created = with_json(
        "POST",
        "/proxy/rest/api/2/issue",
        &auth,
        &json!({"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": "Through the proxy"}}),
    )
    .send(&app)
    .await;
    assert_eq!(created.status, 201, "JIRA's own status: {}", created.text);
    assert!(created.json["key"].as_str().unwrap().starts_with("DEMO-"));
    let found = get("/proxy/rest/api/2/search/jql?jql=project%20%3D%20DEMO&fields=summary&maxResults=1", &auth)
        .send(&app)
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    let seen = jira.requests().await;
    let search = seen.iter().find(|r| r["path"] == "/rest/api/2/search/jql").unwrap();
    assert_eq!(search["query"]["jql"][0], "project = DEMO");
    assert_eq!(search["query"]["maxResults"][0], "1");
    // Never TRACE (a server that echoes it would answer the Authorization).
    let trace = request("TRACE", "/proxy/rest/api/2/myself").header("authorization", &auth).send(&app).await;
    trace.error(405, "method_not_allowed");

    // Cloud pages: a token, and page=N walking the pages before it.
    let first = get("/incidents?pageSize=2", &auth).send(&app).await;
    let token = first.headers["elements-next-page-token"].to_str().unwrap().to_owned();
    let second = get(&format!("/incidents?pageSize=2&nextPage={token}"), &auth).send(&app).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let walked = get("/incidents?pageSize=2&page=2", &auth).send(&app).await;
    assert_eq!(ids(&walked), ids(&second));
    assert!(ids(&second).iter().all(|k| !ids(&first).contains(k)));

    // A hostile JIRA: a created id that would climb the site's paths.
    jira.forget_requests().await;
    jira.next(json!({"status": 201, "body": {"id": "..", "key": "..", "self": "x"}, "match": {"method": "POST", "path": "/rest/api/2/issue"}}))
        .await;
    let hostile = with_json("POST", "/incidents", &auth, &json!({"fields": {"summary": "x"}})).send(&app).await;
    hostile.error(502, "provider_bad_response");
    assert_eq!(jira.requests().await.len(), 1, "nothing sent after the hostile answer");

    // Another organization's token, another hub, a body that is not JSON.
    let other = env.credentials().await;
    let token_of_a = auth.rsplit("Element ").next().unwrap();
    get("/incidents/DEMO-1", &format!("{}, Element {token_of_a}", other.authorization()))
        .send(&app)
        .await
        .error(401, "unauthorized");
    get("/hubs/crm/incidents", &auth).send(&app).await.error(404, "not_found");
    get("/hubs/helpdesk", &auth).send(&app).await.error(404, "not_found");
    let text = request("POST", "/incidents")
        .header("authorization", &auth)
        .content_type("text/plain")
        .body(lambda_http::Body::Text("summary".into()))
        .send(&app)
        .await;
    text.error(415, "unsupported_media_type");
}

/// With the check off, the first list finds out which JIRA the site is, and
/// keeps it.
#[tokio::test]
async fn the_first_list_learns_the_kind_of_site() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("server");
    let mut settings = app(&env, &jira).settings.clone();
    settings.provider_check = false;
    let app = env.app_with(settings);
    let creds = env.credentials().await;
    let mut body = seed_body();
    body["configuration"] =
        json!({"jira.username": jira.user, "jira.password": jira.password, "jira.api.url": jira.url});
    let created = post(Some(&creds.authorization()), &body).send(&app).await;
    assert_eq!((created.status, &created.json["valid"]), (200, &json!(false)), "{}", created.text);
    let auth = format!("{}, Element {}", creds.authorization(), created.token());
    let listed = get("/incidents?pageSize=2", &auth).send(&app).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.headers.contains_key("elements-total-count"), "Server's search, found out");
    let id = instances::domain::token::InstanceId::new(created.id()).unwrap();
    let stored = env.store().get_instance(id).await.unwrap().unwrap();
    assert_eq!(stored.summary.flavor.as_deref(), Some("server"));
    assert!(stored.summary.valid, "JIRA accepted a call: valid");
}

/// The rows of the contract a JIRA can only be made to answer on purpose:
/// an answer over 5 MiB, a connection dropped without an answer; and what a
/// list passes on (`orderBy`, `fields`).
#[tokio::test]
async fn a_huge_or_dropped_answer_and_what_a_list_passes_on() {
    let env = TestEnv::new().await;
    let jira = JiraStandIn::start("cloud");
    let app = app(&env, &jira);
    let (auth, _, _) = instance(&env, &app, &jira).await;

    jira.next(json!({"status": 200, "body": "x".repeat(5 * 1024 * 1024 + 10), "contentType": "application/json"}))
        .await;
    get("/incidents/DEMO-1", &auth).send(&app).await.error(502, "provider_bad_response");
    jira.next(json!({"preset": "drop"})).await;
    let dropped = get("/incidents/DEMO-1", &auth).send(&app).await;
    dropped.error(502, "provider_unavailable");
    assert_eq!(dropped.json["providerMessage"], instances::outbound::UNREACHABLE);

    jira.forget_requests().await;
    let listed = get("/incidents?orderBy=key%20asc&fields=summary,status", &auth).send(&app).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let keys = ids(&listed);
    let mut sorted = keys.clone();
    sorted.sort_by_key(|k| k.trim_start_matches("DEMO-").parse::<u32>().unwrap_or(0));
    assert_eq!(keys, sorted, "ordered as asked");
    assert!(listed.json[0]["fields"].get("priority").is_none(), "only the fields asked for: {}", listed.text);
    let sent = jira.requests().await;
    let query = &sent.last().unwrap()["query"];
    assert_eq!(query["fields"][0], "summary,status");
    assert!(query["jql"][0].as_str().unwrap().ends_with("ORDER BY key ASC"), "{query}");
    get("/incidents?orderBy=key%20sideways", &auth).send(&app).await.error(400, "invalid_query");
    get("/incidents?fields=summary)%20OR%20x", &auth).send(&app).await.error(400, "invalid_request");
}
