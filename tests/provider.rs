//! The JIRA credential check, against a local HTTPS stand-in: every row of
//! the answer table, every refused address class (as a literal and through
//! DNS), a timeout, a redirect to a private address, a DNS answer that
//! changes between two lookups, updates that change the credentials, and
//! replays. Nothing is stored when the check does not pass.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::jira::{Reply, StandIn, TestCa, TestDns};
use common::*;
use instances::app::App;
use instances::outbound::address::AllowList;
use serde_json::{json, Value};

const LOCAL: &str = "127.0.0.1";

fn account() -> Reply {
    Reply::json(200, json!({"accountId": "5b10ac8d82e05b22cc7d4ef5", "emailAddress": "jira-user@example.com"}))
}

/// The app with the check on: it trusts the test CA, allows `allow` and
/// resolves through `dns`.
fn app(env: &TestEnv, ca: &TestCa, allow: &str, dns: Arc<TestDns>) -> App {
    let mut settings = env.settings.clone();
    settings.provider_check = true;
    settings.provider_check_timeout = Duration::from_millis(1500);
    settings.provider_allowed_hosts = AllowList::parse(allow);
    settings.provider_test_ca_file = Some(ca.pem_file.to_string_lossy().into_owned());
    env.app_with(settings).with_lookup(dns)
}

fn body_with_url(url: &str) -> Value {
    let mut body = seed_body();
    body["configuration"]["jira.api.url"] = json!(url);
    body
}

fn no_dns() -> Arc<TestDns> {
    TestDns::new(&[("localhost", &[&["127.0.0.1"]])])
}

#[tokio::test]
async fn an_account_passes_and_the_check_is_basic_auth_on_myself() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let creds = env.credentials().await;

    let a = post(Some(&creds.authorization()), &body_with_url(&jira.url("localhost"))).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["valid"], true);
    let asked = jira.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, "/rest/api/2/myself");
    let basic = base64::engine::general_purpose::STANDARD.encode("jira-user@example.com:Sup3r-Secret-Jira-Password");
    assert_eq!(asked[0].authorization.as_deref(), Some(&*format!("Basic {basic}")));

    // Jira Server / Data Center names the account by `name`; a context path
    // is kept, a query of the stored URL is not sent.
    jira.answer(Reply::json(200, json!({"name": "admin", "key": "admin"})));
    let site = format!("{}/jira/?from=bookmark", jira.url("localhost"));
    let b = post(Some(&creds.authorization()), &body_with_url(&site)).send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(jira.asked()[1].path, "/jira/rest/api/2/myself");
    assert_eq!(env.instance_items().await.len(), 2);
}

#[tokio::test]
async fn refused_credentials_are_400_with_the_vendors_words_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let creds = env.credentials().await;
    let body = body_with_url(&jira.url("localhost"));
    let cases = [
        (
            Reply::json(
                401,
                json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."]}),
            ),
            "invalid_credentials",
            "You are not authenticated. Authentication required to perform this operation.",
        ),
        (
            Reply::json(403, json!({"message": "Basic auth with password is not allowed on this instance"})),
            "invalid_credentials",
            "Basic auth with password is not allowed on this instance",
        ),
        (
            account().header("X-Seraph-LoginReason", "AUTHENTICATED_FAILED"),
            "invalid_credentials",
            "HTTP 200 OK (AUTHENTICATED_FAILED)",
        ),
        (
            Reply::json(403, json!({}))
                .header("X-Seraph-LoginReason", "AUTHENTICATION_DENIED")
                .header("X-Authentication-Denied-Reason", "CAPTCHA_CHALLENGE; login-url=https://jira.test/login.jsp"),
            "captcha_required",
            "HTTP 403 Forbidden (AUTHENTICATION_DENIED)",
        ),
    ];
    for (reply, code, vendor) in cases {
        jira.answer(reply);
        let a = post(Some(&creds.authorization()), &body).send(&app).await;
        a.error(400, code);
        assert_eq!(a.json["providerMessage"], vendor, "{}", a.text);
        assert!(!a.text.contains("Sup3r-Secret"), "{}", a.text);
    }
    assert!(env.instance_items().await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn an_unreachable_slow_broken_or_failing_jira_is_502_and_nothing_is_stored() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira =
        StandIn::start(&ca, LOCAL.parse().unwrap(), Reply::json(503, json!({"message": "Service Unavailable"}))).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let creds = env.credentials().await;
    let auth = creds.authorization();

    let a = post(Some(&auth), &body_with_url(&jira.url("localhost"))).send(&app).await;
    a.error(502, "provider_unavailable");
    assert_eq!(a.json["providerMessage"], "Service Unavailable");

    jira.answer(account().after(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let b = post(Some(&auth), &body_with_url(&jira.url("localhost"))).send(&app).await;
    b.error(502, "provider_unavailable");
    assert_eq!(b.json["providerMessage"], instances::provider::UNREACHABLE);
    assert!(started.elapsed() < Duration::from_millis(2800), "the check gives up at its timeout");

    let closed = closed_port_url().replace("http://127.0.0.1", "https://localhost");
    let started = std::time::Instant::now();
    let c = post(Some(&auth), &body_with_url(&closed)).send(&app).await;
    c.error(502, "provider_unavailable");
    assert!(started.elapsed() >= Duration::from_millis(1500), "a closed port is answered at the deadline too");
    // A closed port, a silent one and a failed TLS session read alike: the
    // check cannot map the ports of a host.
    assert_eq!(c.json["providerMessage"], instances::provider::UNREACHABLE, "{}", c.text);
    assert_eq!(c.json["message"], b.json["message"]);

    // A certificate the function does not trust (no test CA): TLS fails.
    let mut settings = env.settings.clone();
    settings.provider_check = true;
    settings.provider_allowed_hosts = AllowList::parse("localhost");
    let untrusting = env.app_with(settings).with_lookup(no_dns());
    jira.answer(account());
    let d = post(Some(&auth), &body_with_url(&jira.url("localhost"))).send(&untrusting).await;
    d.error(502, "provider_unavailable");
    assert_eq!(d.json["providerMessage"], instances::provider::UNREACHABLE, "{}", d.text);
    assert_eq!(d.json["message"], b.json["message"]);
    assert!(env.instance_items().await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn every_refused_address_class_is_a_400_naming_the_entry_before_any_connection() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let refused = [
        "127.0.0.1",
        "10.1.2.3",
        "172.20.0.1",
        "192.168.0.10",
        "100.64.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.9",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "fd00:ec2::254",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "2002:a00:1::1",
    ];
    let dns_answers: Vec<(String, Vec<String>)> =
        refused.iter().enumerate().map(|(i, ip)| (format!("h{i}.test"), vec![ip.to_string()])).collect();
    let owned: Vec<(&str, Vec<&str>)> =
        dns_answers.iter().map(|(h, ips)| (h.as_str(), ips.iter().map(String::as_str).collect())).collect();
    let lists: Vec<Vec<&[&str]>> = owned.iter().map(|(_, ips)| vec![&ips[..]]).collect();
    let table: Vec<(&str, &[&[&str]])> = owned.iter().zip(&lists).map(|((h, _), l)| (*h, &l[..])).collect();
    let dns = TestDns::new(&table);
    let app = app(&env, &ca, "", dns.clone());
    let creds = env.credentials().await;
    for (i, ip) in refused.iter().enumerate() {
        let literal = match ip.parse::<IpAddr>().unwrap() {
            IpAddr::V4(_) => format!("https://{ip}"),
            IpAddr::V6(_) => format!("https://[{ip}]"),
        };
        for url in [literal, format!("https://h{i}.test")] {
            let a = post(Some(&creds.authorization()), &body_with_url(&url)).send(&app).await;
            a.error(400, "invalid_configuration");
            assert_eq!(a.json["invalid"], json!(["jira.api.url"]), "{url}: {}", a.text);
            assert!(a.json["message"].as_str().unwrap().contains("does not connect to"), "{url}: {}", a.text);
            if url.contains(".test") {
                assert!(!a.text.contains(ip), "the address a name resolves to is not told: {}", a.text);
            }
        }
    }
    // The entry is named as the client named it; one refused address among
    // public ones is enough.
    let dns = TestDns::new(&[("mixed.test", &[&["8.8.8.8", "10.0.0.7"]])]);
    let mixed = self::app(&env, &ca, "", dns);
    let mut body = seed_body();
    body["configuration"] = json!({"username": "u", "password": "p", "base.url": "https://mixed.test"});
    let b = post(Some(&creds.authorization()), &body).send(&mixed).await;
    b.error(400, "invalid_configuration");
    assert_eq!(b.json["invalid"], json!(["base.url"]));
    assert!(env.instance_items().await.is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_allow_list_opens_named_hosts_only() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(
        &ca,
        LOCAL.parse().unwrap(),
        Reply::json(302, json!({})).header("Location", "https://10.0.0.1/rest/api/2/myself"),
    )
    .await;
    let creds = env.credentials().await;
    let allowed = app(&env, &ca, "localhost", no_dns());
    let a = post(Some(&creds.authorization()), &body_with_url(&jira.url("localhost"))).send(&allowed).await;
    a.error(400, "invalid_configuration");
    assert!(a.json["message"].as_str().unwrap().contains("https://10.0.0.1/rest/api/2/myself"), "{}", a.text);
    assert_eq!(jira.hits(), 1, "asked once, the redirect not followed");

    // Without the allow list, the stand-in's loopback address is refused.
    let strict = app(&env, &ca, "", no_dns());
    jira.answer(account());
    post(Some(&creds.authorization()), &body_with_url(&jira.url("localhost")))
        .send(&strict)
        .await
        .error(400, "invalid_configuration");
    assert_eq!(jira.hits(), 1, "never connected");
    // An allowed address (not a name) opens that address only.
    let by_address = app(&env, &ca, "127.0.0.1", no_dns());
    let b = post(Some(&creds.authorization()), &body_with_url(&jira.url("localhost"))).send(&by_address).await;
    assert_eq!(b.status, 200, "{}", b.text);
}

/// A name whose DNS answer changes between two lookups (a public address to
/// pass the check, then a private one to connect to): the check connects to
/// the address it checked and looks the name up once.
#[tokio::test]
async fn a_dns_answer_that_changes_between_lookups_is_not_followed() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    // The "public" address is one the allow list admits; the second answer is
    // another loopback address, refused, where a second stand-in listens.
    let checked = StandIn::start(&ca, "127.0.0.2".parse().unwrap(), account()).await;
    let rebound = StandIn::start(&ca, "127.0.0.3".parse().unwrap(), account()).await;
    let dns = TestDns::new(&[("rebind.test", &[&["127.0.0.2"], &["127.0.0.3"]])]);
    let app = app(&env, &ca, "127.0.0.2", dns.clone());
    let creds = env.credentials().await;
    let url = format!("https://rebind.test:{}", checked.address.port());
    let a = post(Some(&creds.authorization()), &body_with_url(&url)).send(&app).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!((checked.hits(), rebound.hits(), dns.lookups()), (1, 0, 1));

    // The same name on the rebound address's port: the next lookup answers
    // 127.0.0.3, which is refused, so nothing reaches the second stand-in.
    let url = format!("https://rebind.test:{}", rebound.address.port());
    let b = post(Some(&creds.authorization()), &body_with_url(&url)).send(&app).await;
    b.error(400, "invalid_configuration");
    assert_eq!(rebound.hits(), 0);
}

#[tokio::test]
async fn updates_check_changed_credentials_only_and_replays_are_not_checked_again() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let creds = env.credentials().await;
    let auth = creds.authorization();
    let first = post(Some(&auth), &body_with_url(&jira.url("localhost")))
        .header("idempotency-key", "check-once")
        .send(&app)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replay = post(Some(&auth), &body_with_url(&jira.url("localhost")))
        .header("idempotency-key", "check-once")
        .send(&app)
        .await;
    assert_eq!(
        (replay.status, &replay.headers["idempotent-replayed"]),
        (200, &"true".parse::<http::HeaderValue>().unwrap())
    );
    assert_eq!(jira.hits(), 1, "a replay is not checked again");
    let id = first.id();
    let path = format!("/instances/{id}");

    assert_eq!(first.json["valid"], true, "JIRA accepted them");
    // Not the credentials: no check, still valid.
    let a = with_json("PATCH", &path, &auth, &json!({"name": "x", "configuration": {"event.vendor.type": "polling"}}))
        .send(&app)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(jira.hits(), 1);
    assert_eq!(a.json["valid"], true);

    // A new user name is checked with the stored password.
    let b =
        with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.username": "other-user"}})).send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
    let basic = base64::engine::general_purpose::STANDARD.encode("other-user:Sup3r-Secret-Jira-Password");
    assert_eq!(jira.asked()[1].authorization.as_deref(), Some(&*format!("Basic {basic}")));

    // A refused new password: 400, and the stored one stays.
    jira.answer(Reply::json(401, json!({"errorMessages": ["Unauthorized"]})));
    let c = with_json("PUT", &path, &auth, &json!({"configuration": {"jira.username": "other-user", "jira.password": "wrong", "jira.api.url": jira.url("localhost")}})).send(&app).await;
    c.error(400, "invalid_credentials");
    assert_eq!(stored_secret(&env, &app, id, "jira.password").await.as_deref(), Some("Sup3r-Secret-Jira-Password"));
    let entries = request("GET", &format!("{path}/configuration")).header("authorization", &auth).send(&app).await;
    let password_id =
        entries.json.as_array().unwrap().iter().find(|e| e["key"] == "jira.password").unwrap()["id"].clone();
    let d =
        with_json("PATCH", &format!("{path}/configuration/{password_id}"), &auth, &json!({"propertyValue": "wrong"}))
            .send(&app)
            .await;
    d.error(400, "invalid_credentials");
    assert_eq!(jira.hits(), 4);

    // A URL that leads elsewhere is refused before anything changes.
    let e = with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.api.url": "https://10.9.9.9"}}))
        .send(&app)
        .await;
    e.error(400, "invalid_configuration");
    let now = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(now.json["configuration"]["jira.username"], "other-user");
    assert_eq!(now.json["configuration"]["jira.api.url"], jira.url("localhost"));
    assert_eq!(now.json["valid"], true);

    // With the check off, a change of the credentials is stored unchecked:
    // `valid` turns false (a change of anything else keeps it).
    let unchecked = env.app();
    let f = with_json("PATCH", &path, &auth, &json!({"name": "y"})).send(&unchecked).await;
    assert_eq!((f.status, &f.json["valid"]), (200, &json!(true)), "{}", f.text);
    let g = with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.username": "unchecked"}}))
        .send(&unchecked)
        .await;
    assert_eq!((g.status, &g.json["valid"]), (200, &json!(false)), "{}", g.text);
    assert_eq!(jira.hits(), 4, "JIRA was not asked");
    // Checked again (check on): true again.
    jira.answer(account());
    let h =
        with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.username": "other-user"}})).send(&app).await;
    assert_eq!((h.status, &h.json["valid"]), (200, &json!(true)), "{}", h.text);
}

/// Credentials go only where they were given for: a change of the URL to
/// another origin (host, port or scheme) must carry the password, else `400`
/// naming the password entry, and nothing is sent anywhere; a path change on
/// the same origin keeps the stored password.
#[tokio::test]
async fn the_stored_password_never_goes_to_a_url_the_caller_names_later() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let elsewhere = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let auth = env.credentials().await.authorization();
    let created = post(Some(&auth), &body_with_url(&jira.url("localhost"))).send(&app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let path = format!("/instances/{}", created.id());
    let other = elsewhere.url("localhost"); // another port: another origin

    let entries = request("GET", &format!("{path}/configuration")).header("authorization", &auth).send(&app).await;
    let url_id = entries.json.as_array().unwrap().iter().find(|e| e["key"] == "jira.api.url").unwrap()["id"].clone();
    for (method, uri, body) in [
        ("PATCH", path.clone(), json!({"configuration": {"jira.api.url": other}})),
        (
            "PUT",
            path.clone(),
            json!({"name": "n", "configuration": {"jira.username": "jira-user@example.com",
                   "jira.password": "********", "jira.api.url": other}}),
        ),
        ("PATCH", format!("{path}/configuration/{url_id}"), json!({"propertyValue": other})),
    ] {
        let a = with_json(method, &uri, &auth, &body).send(&app).await;
        a.error(400, "invalid_configuration");
        assert_eq!(a.json["invalid"], json!(["jira.password"]), "{method} {uri}: {}", a.text);
        assert!(a.text.contains(&jira.url("localhost").replace("https://", "")), "names where it may go: {}", a.text);
    }
    assert_eq!((jira.hits(), elsewhere.hits()), (1, 0), "nothing was sent");
    let now = request("GET", &path).header("authorization", &auth).send(&app).await;
    assert_eq!(now.json["configuration"]["jira.api.url"], jira.url("localhost"));

    // A path on the same origin keeps the stored password (and is checked with it).
    let same = format!("{}/jira", jira.url("localhost"));
    let b = with_json("PATCH", &path, &auth, &json!({"configuration": {"jira.api.url": same}})).send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(jira.asked().last().unwrap().path, "/jira/rest/api/2/myself");

    // With the password in the same request, the URL moves, and the new
    // password is what the new site is asked with.
    let c = with_json(
        "PATCH",
        &path,
        &auth,
        &json!({"configuration": {"jira.api.url": other, "jira.password": "for-elsewhere"}}),
    )
    .send(&app)
    .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let basic = base64::engine::general_purpose::STANDARD.encode("jira-user@example.com:for-elsewhere");
    assert_eq!(elsewhere.asked()[0].authorization.as_deref(), Some(&*format!("Basic {basic}")));
    assert!(jira.asked().iter().all(|a| !a.authorization.as_deref().unwrap_or("").contains(&basic)));
}

/// URLs that cannot work are told at once: a host DNS says does not exist is
/// a `400` naming the URL entry (not a `502` to retry later), and the API's
/// own path after the site is read as the site (checked at `/myself`, not
/// `/rest/api/2/rest/api/2/myself`).
#[tokio::test]
async fn a_host_that_does_not_exist_is_400_and_the_apis_path_is_read_as_the_site() {
    let env = TestEnv::new().await;
    let ca = TestCa::new();
    let jira = StandIn::start(&ca, LOCAL.parse().unwrap(), account()).await;
    let app = app(&env, &ca, "localhost", no_dns());
    let auth = env.credentials().await.authorization();

    let a = post(Some(&auth), &body_with_url("https://no-such-site.test")).send(&app).await;
    a.error(400, "invalid_configuration");
    assert_eq!(a.json["invalid"], json!(["jira.api.url"]), "{}", a.text);
    assert!(a.json["message"].as_str().unwrap().contains("does not exist"), "{}", a.text);

    let given = format!("{}/rest/api/2/", jira.url("localhost"));
    let b = post(Some(&auth), &body_with_url(&given)).send(&app).await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(jira.asked()[0].path, "/rest/api/2/myself");
    let read = request("GET", &format!("/instances/{}", b.id())).header("authorization", &auth).send(&app).await;
    assert_eq!(read.json["configuration"]["jira.api.url"], jira.url("localhost"));
}
