//! Shared by the integration tests: they talk to the DynamoDB/KMS API server
//! that `make test` starts (moto, through `AWS_ENDPOINT_URL`), each test with
//! a table and a KMS key of its own.
#![allow(dead_code)]

pub mod events;
pub mod proxy;
pub mod receiver;

pub mod jira;

pub mod standin;

use std::time::Duration;

use aws_config::SdkConfig;
use instances::admin::Admin;
use instances::app::App;
use instances::sdk::load_sdk_config;
use instances::settings::Settings;
use instances::store::Store;
use lambda_http::http::{self, HeaderValue};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the integration tests through `make test`, which starts the local DynamoDB/KMS server")
    })
}

pub async fn sdk_config() -> SdkConfig {
    endpoint();
    load_sdk_config().await
}

/// A DynamoDB client reaching the given endpoint (service configuration in
/// code wins over `AWS_ENDPOINT_URL`).
/// `sdk` waiting as long as the serial moto takes behind a concurrent
/// test's load (for a test's own set-up and reads, never the function's).
pub fn patient(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        )
        .build()
}

pub fn dynamodb_client(sdk: &SdkConfig, endpoint_url: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(sdk).endpoint_url(endpoint_url).build())
}

pub fn kms_client(sdk: &SdkConfig, endpoint_url: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(aws_sdk_kms::config::Builder::from(sdk).endpoint_url(endpoint_url).build())
}

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

pub struct TestEnv {
    pub settings: Settings,
    pub sdk: SdkConfig,
    pub admin: Admin,
}

pub struct Creds {
    pub organization: String,
    pub user: String,
    pub user_secret: String,
    pub organization_secret: String,
}

impl Creds {
    pub fn authorization(&self) -> String {
        format!("User {}, Organization {}", self.user_secret, self.organization_secret)
    }
}

impl TestEnv {
    /// A fresh table and KMS key, set up by `admin setup`'s own code.
    pub async fn new() -> Self {
        let sdk = sdk_config().await;
        let settings = Settings {
            table_name: unique("t"),
            kms_key_id: format!("alias/{}", unique("k")),
            auth_cache: Duration::ZERO,
            data_key_max_age: Duration::from_secs(900),
            request_deadline: Duration::from_millis(instances::settings::DEFAULT_REQUEST_DEADLINE_MS),
            // The seed's JIRA is not reachable from a test: tests/provider.rs
            // turns the check on against its stand-in.
            provider_check: false,
            provider_check_timeout: Duration::from_millis(instances::settings::DEFAULT_PROVIDER_CHECK_TIMEOUT_MS),
            provider_allowed_hosts: Default::default(),
            provider_test_ca_file: None,
        };
        // The test's own set-up and reads (not the function under test) wait
        // as long as the serial moto takes behind a concurrent test's load:
        // the function's 2 s attempt timeout is for what it does, not for this.
        let patient = patient(&sdk);
        let admin = Admin {
            store: Store::new(aws_sdk_dynamodb::Client::new(&patient), settings.table_name.clone()),
            kms: aws_sdk_kms::Client::new(&patient),
            settings: settings.clone(),
        };
        admin.setup().await.expect("admin setup");
        TestEnv { settings, sdk, admin }
    }

    pub fn app(&self) -> App {
        App::new(&self.sdk, self.settings.clone()).unwrap()
    }

    pub fn app_with(&self, settings: Settings) -> App {
        App::new(&self.sdk, settings).unwrap()
    }

    pub fn store(&self) -> &Store {
        &self.admin.store
    }

    pub async fn credentials(&self) -> Creds {
        let org = unique("org");
        let v = self.admin.create_credentials(&org, "ops@example.com").await.expect("create-credentials");
        Creds {
            organization: org,
            user: "ops@example.com".into(),
            user_secret: v["userSecret"].as_str().unwrap().into(),
            organization_secret: v["organizationSecret"].as_str().unwrap().into(),
        }
    }

    /// Every instance item of the table.
    pub async fn instance_items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let all = self.store().scan_raw().await.unwrap();
        all.into_iter().filter(|i| i.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|s| s == "INSTANCE")).collect()
    }
}

pub fn seed_body() -> Value {
    json!({
        "element": {"key": "jira"},
        "configuration": {
            "jira.username": "jira-user@example.com",
            "jira.password": "Sup3r-Secret-Jira-Password",
            "jira.api.url": "https://example.atlassian.net"
        },
        "tags": ["support"],
        "name": "Test"
    })
}

/// A request with a JSON body (`PATCH`, `PUT`, ...).
pub fn with_json(method: &str, path: &str, authorization: &str, body: &Value) -> Req {
    request(method, path)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
}

/// A secret entry's stored value, opened as the function opens it.
pub async fn stored_secret(env: &TestEnv, app: &App, id: u64, key: &str) -> Option<String> {
    let record = env.store().get_instance(instances::domain::token::InstanceId::new(id).unwrap()).await.unwrap()?;
    let (_, sealed) = record.secrets().iter().find(|(k, _)| k == key)?;
    let binding = instances::seal::aad(&record.summary.organization, record.summary.id, key);
    let plain = app.sealer.open(&record.sealed_data_key, &binding, sealed).await.unwrap();
    Some(String::from_utf8(plain.to_vec()).unwrap())
}

pub struct Req {
    builder: http::request::Builder,
    body: Body,
}

pub fn post(authorization: Option<&str>, body: &Value) -> Req {
    let mut b = http::Request::builder().method("POST").uri("/instances").header("content-type", "application/json");
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    Req { builder: b, body: Body::Text(body.to_string()) }
}

pub fn request(method: &str, path: &str) -> Req {
    Req { builder: http::Request::builder().method(method).uri(path), body: Body::Empty }
}

impl Req {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }
    pub fn uri(mut self, uri: &str) -> Self {
        self.builder = self.builder.uri(uri);
        self
    }
    pub fn without_content_type(mut self) -> Self {
        self.builder.headers_mut().unwrap().remove("content-type");
        self
    }
    pub fn content_type(mut self, value: &str) -> Self {
        self.builder.headers_mut().unwrap().insert("content-type", HeaderValue::from_str(value).unwrap());
        self
    }
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    pub fn build(self) -> Request {
        let mut context = lambda_runtime::Context::default();
        context.request_id = unique("req");
        self.builder.body(self.body).unwrap().with_lambda_context(context)
    }
    pub async fn send(self, app: &App) -> Answer {
        let request = self.build();
        let id = request.lambda_context_ref().unwrap().request_id.clone();
        Answer::new(instances::api::handle(app, request).await, id)
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    pub json: Value,
    pub request_id: String,
}

impl Answer {
    pub fn new(response: Response<Body>, request_id: String) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = match response.into_body() {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).unwrap(),
            _ => String::new(),
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, text, json, request_id }
    }

    /// Asserts the error shape and returns the code.
    pub fn error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["code"], code, "{}", self.text);
        assert_eq!(self.json["requestId"], self.request_id.as_str());
        assert!(self.json["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(self.headers["content-type"], "application/json");
        self
    }

    pub fn id(&self) -> u64 {
        self.json["id"].as_u64().unwrap_or_else(|| panic!("no id in {}", self.text))
    }

    /// The `Element` token a create answered.
    pub fn token(&self) -> String {
        self.json["token"].as_str().unwrap_or_else(|| panic!("no token in {}", self.text)).to_owned()
    }
}

/// A fresh organization with one instance of the seed body: its
/// `Authorization`, and the create's answer.
pub async fn one_instance(env: &TestEnv, app: &App) -> (String, Answer) {
    let auth = env.credentials().await.authorization();
    let created = post(Some(&auth), &seed_body()).send(app).await;
    assert_eq!(created.status, 200, "{}", created.text);
    (auth, created)
}

impl TestEnv {
    /// The app with DynamoDB and KMS reached through the given endpoints
    /// (a fault proxy, a closed port).
    pub async fn app_via(&self, dynamodb: &str, kms: &str) -> App {
        self.app_via_with(dynamodb, kms, self.settings.clone())
    }

    pub fn app_via_with(&self, dynamodb: &str, kms: &str, settings: Settings) -> App {
        App::with_clients(dynamodb_client(&self.sdk, dynamodb), kms_client(&self.sdk, kms), settings).unwrap()
    }
}

/// A loopback port nothing listens on.
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}
