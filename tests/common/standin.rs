//! The JIRA stand-in of `tools/jira_standin.py` (written from Atlassian's
//! documentation, not from this code), started for a test on a free port of
//! loopback, with its CA made at start; stopped when dropped. Its control
//! API (`/_standin/...`) is reached through the service's own outbound
//! client, trusting that CA.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use instances::outbound::address::AllowList;
use instances::outbound::resolve::SystemLookup;
use instances::outbound::{self, ClientSettings, Limits};
use serde_json::Value;

pub struct JiraStandIn {
    child: Child,
    pub url: String,
    pub user: String,
    pub password: String,
    pub ca_file: std::path::PathBuf,
    client: outbound::Client,
    _dir: std::path::PathBuf,
}

impl JiraStandIn {
    pub fn start(flavor: &str) -> Self {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/local/bin/python");
        assert!(
            std::path::Path::new(python).exists(),
            "the JIRA stand-in needs {python}: run tools/venv.sh local (make test does)"
        );
        let dir = std::env::temp_dir().join(format!("standin-{}", super::unique("j")));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        let mut child = Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/jira_standin.py"))
            .args(["--flavor", flavor, "--host", "127.0.0.1", "--port", "0", "--ca-file"])
            .arg(&ca_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the JIRA stand-in starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("its first line");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("the stand-in said {line:?}: {e}"));
        let settings = ClientSettings {
            allow: AllowList::parse("localhost"),
            extra_roots_pem: Some(std::fs::read(&ca_file).unwrap()),
        };
        let client = outbound::Client::new(&settings, Arc::new(SystemLookup), Duration::from_secs(5)).unwrap();
        JiraStandIn {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
            user: ready["user"].as_str().unwrap().to_owned(),
            password: ready["password"].as_str().unwrap().to_owned(),
            ca_file,
            client,
            _dir: dir,
        }
    }

    async fn control(&self, method: hyper::Method, path: &str, body: Option<Value>) -> Value {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
        let request = outbound::Request {
            method,
            url: url::Url::parse(&format!("{}/_standin{path}", self.url)).unwrap(),
            headers,
            body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        };
        let limits = Limits { timeout: Duration::from_secs(10), max_answer_bytes: 16 << 20 };
        let answer = self.client.send(request, limits).await.expect("the stand-in's control API answers");
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
    }

    /// Queues canned answers (`{"preset": "rate-limited"}`, ...).
    pub async fn next(&self, answers: Value) {
        self.control(hyper::Method::POST, "/next", Some(answers)).await;
    }

    /// The `/rest` requests seen so far.
    pub async fn requests(&self) -> Vec<Value> {
        let v = self.control(hyper::Method::GET, "/requests", None).await;
        v.get("requests").and_then(Value::as_array).cloned().or_else(|| v.as_array().cloned()).unwrap_or_default()
    }

    /// Creates an issue as `POST /issue` would (`/_standin/issues`; fields
    /// at the top level, optional `created`/`updated`): the issue.
    pub async fn create_issue(&self, fields: Value) -> Value {
        self.control(hyper::Method::POST, "/issues", Some(fields)).await
    }

    /// Many issues at once (`/_standin/issues` with a list): the issues.
    pub async fn create_issues(&self, issues: Vec<Value>) -> Vec<Value> {
        let made = self.control(hyper::Method::POST, "/issues", Some(Value::Array(issues))).await;
        made.as_array().cloned().expect("the stand-in made the issues")
    }

    /// `/_standin/config` (`searchLagSeconds`, ...).
    pub async fn config(&self, config: Value) {
        self.control(hyper::Method::POST, "/config", Some(config)).await;
    }

    /// Moves the stand-in's clock on by `by` (its issues' dates and its
    /// `Date` header follow).
    pub async fn advance(&self, by: std::time::Duration) {
        self.control(hyper::Method::POST, "/clock", Some(serde_json::json!({"advanceSeconds": by.as_secs_f64()})))
            .await;
    }

    pub async fn forget_requests(&self) {
        self.control(hyper::Method::DELETE, "/requests", None).await;
    }
}

impl Drop for JiraStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
