//! CPU per create without I/O: the whole request path from the API Gateway
//! event to the proxy response body, with the store left out — parse the
//! event, check the headers, authenticate against a cached credential,
//! validate against the catalog, seal the secret, mint the id and token,
//! render and serialize. The same functions the handler calls.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body as EventBody;
use criterion::{criterion_group, criterion_main, Criterion};
use instances::api::{created_response, parse_create, precheck};
use instances::auth::Authenticator;
use instances::domain::catalog::Catalog;
use instances::domain::credentials::Credentials;
use instances::seal::DataKey;
use instances::service::{draft, iso8601};
use instances::store::Principal;
use lambda_http::Body;

const USER: &str = "dIfzuI03o-Va_H3NeumgItxxnpfT20YKw3LTSUbX3QY";
const ORG: &str = "9xumTZJtDhTwk3IuS2zt5tPPAFiQhBUbkUVPU3_-ZRM";

fn create_without_io(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap();
    let auth = Authenticator::new(Duration::from_secs(3600));
    let principal = Principal { organization: "acme".into(), user: "ops@acme.io".into() };
    auth.remember(&Credentials::parse(&format!("User {USER}, Organization {ORG}")).unwrap(), principal);
    // A KMS-encrypted data key is about 184 bytes; its plaintext comes from KMS once per environment.
    let data_key = DataKey::new(&[7u8; 32], vec![0xA5; 184]).unwrap();
    let event = include_str!("../events/create-rest-api.json")
        .replace("{{USER_SECRET}}", USER)
        .replace("{{ORGANIZATION_SECRET}}", ORG);

    c.bench_function("create_without_io", |b| {
        b.iter(|| {
            let request = lambda_http::request::from_str(black_box(&event)).unwrap();
            let (credentials, bytes) = precheck(&request).unwrap();
            let principal = auth.cached(&credentials).unwrap();
            let (_key, parsed) = parse_create(&request, bytes, &catalog, None).unwrap();
            let stamp = iso8601(SystemTime::now());
            let drafted = draft(&principal, &parsed, &data_key, &stamp, true).unwrap();
            let response = created_response(drafted.body, false);
            let (parts, body) = response.into_parts();
            let mut proxy = ApiGatewayProxyResponse::default();
            proxy.status_code = parts.status.as_u16() as i64;
            proxy.multi_value_headers = parts.headers;
            proxy.body = match body {
                Body::Text(t) => Some(EventBody::Text(t)),
                _ => None,
            };
            black_box(serde_json::to_vec(&proxy).unwrap())
        })
    });
}

/// A warm environment that has seen the caller and one of its instances:
/// the credentials (with the instance's `Element` token) cached, and the
/// instance as a read finds it.
struct TokenFixture {
    catalog: Catalog,
    auth: Authenticator,
    summary: instances::domain::instance::InstanceSummary,
    token: instances::domain::token::Token,
}

impl TokenFixture {
    fn new() -> Self {
        use instances::domain::instance::InstanceSummary;
        use instances::domain::token::{InstanceId, Token};
        let auth = Authenticator::new(Duration::from_secs(3600));
        let principal = Principal { organization: "acme".into(), user: "ops@acme.io".into() };
        let id = InstanceId::new(4_503_599_627_370_497).unwrap();
        let token = Token::mint(id).unwrap();
        let header = format!("User {USER}, Organization {ORG}, Element {}", token.expose());
        auth.remember(&Credentials::parse(&header).unwrap(), principal);
        let summary = InstanceSummary::example(id, "acme", "ops@acme.io");
        TokenFixture { catalog: Catalog::builtin().unwrap(), auth, summary, token }
    }

    /// An event file with the caller's credentials and the token ("User <u>,
    /// Element <token>, Organization <o>": the parts in any order).
    fn event(&self, text: &str) -> String {
        text.replace("{{USER_SECRET}}", &format!("{USER}, Element {}", self.token.expose()))
            .replace("{{ORGANIZATION_SECRET}}", ORG)
            .replace("{{INSTANCE_ID}}", &self.summary.id.to_string())
    }

    /// The request's credentials, found in the cache.
    fn authenticate(&self, request: &lambda_http::Request) {
        let header = request.headers()["authorization"].to_str().unwrap();
        let credentials = Credentials::parse(header).unwrap();
        assert!(credentials.element.is_some());
        self.auth.cached(&credentials).unwrap();
    }
}

/// The proxy response a body of 200 becomes.
fn proxy_response(body: Vec<u8>) -> Vec<u8> {
    let mut proxy = ApiGatewayProxyResponse::default();
    proxy.status_code = 200;
    proxy.body = Some(EventBody::Text(String::from_utf8(body).unwrap()));
    serde_json::to_vec(&proxy).unwrap()
}

/// The read path without the store: the event parsed, the credentials (and
/// the Element token) parsed and found in the cache, the instance rendered in
/// the representation every read answers, the proxy response serialized.
fn read_without_io(c: &mut Criterion) {
    use instances::domain::representation::instance_view_json;
    let f = TokenFixture::new();
    let element = f.catalog.by_key("jira").unwrap();
    let event = f.event(include_str!("../events/get-instance.json"));
    c.bench_function("read_without_io", |b| {
        b.iter(|| {
            let request = lambda_http::request::from_str(black_box(&event)).unwrap();
            f.authenticate(&request);
            black_box(proxy_response(instance_view_json(black_box(&f.summary), element)))
        })
    });
}

/// A rename by token without the store: as the read, plus the body parsed
/// and checked (`name` made plain text, `tags`), and the answer rendered from
/// the state the one conditional write returns.
fn rename_without_io(c: &mut Criterion) {
    use instances::domain::representation::instance_view_json;
    use instances::domain::update::{Mode, Patch};
    let f = TokenFixture::new();
    let element = f.catalog.by_key("jira").unwrap();
    let mut event: serde_json::Value =
        serde_json::from_str(&f.event(include_str!("../events/patch-instance.json"))).unwrap();
    event["body"] = serde_json::json!(r#"{"name": "Support <b>desk</b>", "tags": ["support", "eu"]}"#);
    let event = event.to_string();
    c.bench_function("rename_without_io", |b| {
        b.iter(|| {
            let request = lambda_http::request::from_str(black_box(&event)).unwrap();
            f.authenticate(&request);
            let body: serde_json::Value = serde_json::from_slice(request.body().as_ref()).unwrap();
            let patch = Patch::names_only(&body, Mode::Merge).unwrap().unwrap();
            let mut next = f.summary.clone();
            next.name = patch.name.unwrap().as_str().to_owned();
            next.tags = patch.tags.unwrap().as_slice().to_vec();
            black_box(proxy_response(instance_view_json(black_box(&next), element)))
        })
    });
}

/// The hub's CPU: a CEQL `where` translated to JQL (parsed, written out), and
/// the null filter over a page of 50 issues as JIRA answers them (about 2 KB
/// each, a third of their members `null`).
fn hub_without_io(c: &mut Criterion) {
    let where_ = "status = 'To Do' AND (priority IN ('High', 'Highest') OR labels = 'customer') AND summary LIKE 'printer%' AND duedate IS NOT NULL";
    c.bench_function("ceql_to_jql", |b| {
        b.iter(|| black_box(instances::domain::ceql::parse(black_box(where_)).unwrap().to_jql()))
    });
    let issue = |i: usize| {
        serde_json::json!({
            "id": format!("{}", 10000 + i), "key": format!("DEMO-{i}"), "self": format!("https://x.atlassian.net/rest/api/2/issue/{}", 10000 + i),
            "fields": {
                "summary": "Printer on fire", "description": "It started with a smell".repeat(8),
                "status": {"name": "To Do", "id": "10000", "statusCategory": {"key": "new", "colorName": "blue-gray"}, "description": null, "iconUrl": null},
                "priority": {"name": "High", "id": "2", "iconUrl": null}, "issuetype": {"name": "Task", "id": "10001", "subtask": false, "avatarId": null},
                "assignee": null, "reporter": {"accountId": "5b10", "displayName": "Demo", "emailAddress": null, "timeZone": "Australia/Sydney"},
                "labels": ["customer"], "duedate": null, "resolution": null, "resolutiondate": null, "environment": null,
                "created": "2026-11-30T10:30:00.000+1100", "updated": "2026-12-01T09:00:00.000+1100",
                "customfield_10000": null, "customfield_10001": null, "customfield_10002": {"value": null, "id": "3"}
            }
        })
    };
    let page = serde_json::Value::Array((0..50).map(issue).collect());
    c.bench_function("null_filter_50_issues", |b| {
        b.iter_batched(
            || page.clone(),
            |mut p| {
                instances::domain::nulls::strip_nulls(&mut p);
                black_box(p)
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(200).measurement_time(Duration::from_secs(5));
    targets = create_without_io, read_without_io, rename_without_io, hub_without_io
}
criterion_main!(benches);
