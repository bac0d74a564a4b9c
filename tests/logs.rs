//! What the service logs: one JSON object per line with level, message and
//! requestId, and never a secret (user, organization, token, secret
//! configuration values), whatever the request.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::proxy::{Mode, Proxy};
use common::*;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_are_json_with_the_request_id_and_carry_no_secret() {
    let captured = Captured::default();
    let sink = captured.clone();
    instances::logging::init_with(move || sink.clone());

    let env = TestEnv::new().await;
    let creds = env.credentials().await;
    let proxy = Proxy::start(&endpoint()).await;
    let app = env.app_via(&proxy.url, &endpoint()).await;
    let auth = creds.authorization();
    let mut body = seed_body();
    body["configuration"]["event.notification.signature.key"] = json!("Signature-Key-For-Log-Test");
    let mut secrets = vec![
        creds.user_secret.clone(),
        creds.organization_secret.clone(),
        "Sup3r-Secret-Jira-Password".to_owned(),
        "Signature-Key-For-Log-Test".to_owned(),
    ];
    let mut answers = Vec::new();
    let ok = post(Some(&auth), &body).header("idempotency-key", "log-1").send(&app).await;
    secrets.push(ok.json["token"].as_str().unwrap().to_owned());
    answers.push(ok);
    answers.push(post(Some(&auth), &body).header("idempotency-key", "log-1").send(&app).await);
    let mut typo = body.clone();
    let pw = typo["configuration"].as_object_mut().unwrap().remove("jira.password").unwrap();
    typo["configuration"]["jira.pasword"] = pw;
    answers.push(post(Some(&auth), &typo).send(&app).await);
    answers.push(post(Some(&format!("User {}, Organization wrong", creds.user_secret)), &body).send(&app).await);
    answers.push(post(Some(&format!("User {0}, User {0}", creds.user_secret)), &body).send(&app).await);
    answers.push(
        post(Some(&auth), &json!(null))
            .body(lambda_http::Body::Text(format!("{{\"x\": \"{}", creds.user_secret)))
            .send(&app)
            .await,
    );
    proxy.set(Mode::Throttle);
    let mut fresh = body.clone();
    fresh["name"] = json!("during the fault");
    answers.push(post(Some(&auth), &fresh).send(&env.app_via(&proxy.url, &endpoint()).await).await);
    proxy.set(Mode::Forward);
    let mut missing_table = env.settings.clone();
    missing_table.table_name = unique("no-such-table");
    answers.push(post(Some(&auth), &fresh).send(&env.app_with(missing_table)).await);
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 400, 401, 401, 400, 503, 500]);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    for line in &lines {
        assert!(line["level"].is_string() && line["message"].is_string(), "{line}");
        assert!(line["requestId"].as_str().is_some_and(|r| !r.is_empty()), "every line names its request: {line}");
    }
    for a in &answers {
        let completed: Vec<&Value> = lines
            .iter()
            .filter(|l| l["requestId"] == a.request_id.as_str() && l["message"] == "request completed")
            .collect();
        assert_eq!(completed.len(), 1, "one completion line for {}", a.request_id);
        assert_eq!(completed[0]["status"], a.status);
        if a.status == 200 {
            assert_eq!(completed[0]["organization"], creds.organization.as_str());
            assert_eq!(completed[0]["instanceId"], a.id());
            assert!(completed[0].get("code").is_none(), "a success carries no code: {}", completed[0]);
        } else {
            assert_eq!(completed[0]["code"], a.json["code"]);
        }
        if a.status == 401 {
            let reason = completed[0]["reason"].as_str().unwrap_or_default();
            assert!(!reason.is_empty(), "a 401's reason is logged for the operator: {}", completed[0]);
            assert!(!a.text.contains(reason), "and never answered");
        }
    }
    assert!(lines
        .iter()
        .any(|l| l["level"] == "WARN" && l["detail"].as_str().is_some_and(|d| d.contains("Throttling"))));
    let reasons: Vec<&str> = lines.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["unknown organization secret", "malformed Authorization header"],
        "the 401s' reasons, in order"
    );
    let internal = answers.last().unwrap();
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"
            && l["requestId"] == internal.request_id.as_str()
            && l["detail"].as_str().is_some_and(|d| d.contains("ResourceNotFound"))),
        "a 500's detail is logged at ERROR with its request id"
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret was logged");
    }
}
