//! The callback receiver of `tools/callback_receiver.py`: the stand-in for
//! an application's callback URL that event deliveries are POSTed to,
//! started for a test on a free port of loopback, with its CA made at start;
//! stopped when dropped. It records every notification (headers and exact
//! body) and answers from a script (`next`); its control API
//! (`/_receiver/...`) is reached through the service's own outbound client,
//! trusting that CA (docs/callback-receiver.md).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use instances::outbound::address::AllowList;
use instances::outbound::resolve::SystemLookup;
use instances::outbound::{self, ClientSettings, Limits};
use serde_json::Value;

pub struct CallbackReceiver {
    child: Child,
    /// `https://127.0.0.1:PORT/callback`: a callback URL to register.
    pub url: String,
    /// `https://127.0.0.1:PORT`: any other path under it is a callback URL too.
    pub base: String,
    /// The PEM of the CA its certificate is signed by.
    pub ca_file: PathBuf,
    client: outbound::Client,
    dir: PathBuf,
}

impl CallbackReceiver {
    pub fn start() -> Self {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/local/bin/python");
        assert!(
            std::path::Path::new(python).exists(),
            "the callback receiver needs {python}: run tools/venv.sh local (make test does)"
        );
        let dir = std::env::temp_dir().join(format!("receiver-{}", super::unique("r")));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        let stderr = File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/callback_receiver.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--ca-file"])
            .arg(&ca_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("the callback receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("its first line");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("the callback receiver said {line:?}: {e}; its stderr: {log}")
        });
        let settings = ClientSettings {
            allow: AllowList::parse("127.0.0.1,localhost"),
            extra_roots_pem: Some(std::fs::read(&ca_file).unwrap()),
        };
        let client = outbound::Client::new(&settings, Arc::new(SystemLookup), Duration::from_secs(5)).unwrap();
        CallbackReceiver {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
            base: ready["base"].as_str().unwrap().to_owned(),
            ca_file,
            client,
            dir,
        }
    }

    /// The CA's PEM, for the client under test to trust.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_file).unwrap()
    }

    async fn control(&self, method: hyper::Method, path: &str, body: Option<Value>) -> Value {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
        let request = outbound::Request {
            method,
            url: url::Url::parse(&format!("{}/_receiver{path}", self.base)).unwrap(),
            headers,
            body: body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        };
        let limits = Limits { timeout: Duration::from_secs(10), max_answer_bytes: 64 << 20 };
        let answer = self.client.send(request, limits).await.expect("the receiver's control API answers");
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        assert!(answer.status.is_success(), "the receiver's {path} answered {}: {value}", answer.status);
        value
    }

    /// Appends answers to the script, one per notification, in order:
    /// `json!({"answers": [{"status": 500}, {"drop": true}]})` (a bare array
    /// or one answer object is taken too). Each is `status` (default 200),
    /// `headers`, `body`, `drop` (close the connection unanswered),
    /// `delaySeconds` (sleep, then answer). An empty script answers 200.
    pub async fn next(&self, answers: Value) {
        self.control(hyper::Method::POST, "/next", Some(answers)).await;
    }

    /// Every request seen on a callback path, in order: `seq`, `time`,
    /// `method`, `path`, `query`, `headers` (lowercase names), `body` (UTF-8
    /// text as received), `bodyBase64`, `status` (0: dropped; null: a delayed
    /// answer not sent yet).
    pub async fn requests(&self) -> Vec<Value> {
        let v = self.control(hyper::Method::GET, "/requests", None).await;
        v.get("requests").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    /// Forgets the requests and the script.
    pub async fn reset(&self) {
        self.control(hyper::Method::POST, "/reset", None).await;
    }
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
