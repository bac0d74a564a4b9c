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
            let drafted = draft(&principal, &parsed, &data_key, &stamp).unwrap();
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(200).measurement_time(Duration::from_secs(5));
    targets = create_without_io
}
criterion_main!(benches);
