#!/usr/bin/env python3
"""Writes events/*.json (API Gateway events for `cargo lambda invoke` and
`sam local invoke`) and events/expected.json (the status each one gets, in the
order they are run). The Authorization headers carry the placeholders
{{USER_SECRET}} and {{ORGANIZATION_SECRET}}, and the reads of one instance
{{INSTANCE_ID}}: tools/run-events.py and tools/run-sam.py fill them with
credentials they create and the id the first create answered; `make
sam-invoke EVENT=...` does the same for one event.

Also the event functions' events (events/events-*.json, not in
expected.json: they are not API calls): the schedule's input of the tick, and
an SQS batch of one message each for the poll and the deliverer, as Lambda's
event source mapping hands them over. tools/run-sam.py sends them through
`sam local invoke` with the record of a message it received from the local
queue (its id, receipt, body, attributes) in place of the sample's."""
import base64
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "events"
AUTH = "User {{USER_SECRET}}, Organization {{ORGANIZATION_SECRET}}"
SEED = {
    "element": {"key": "jira"},
    "configuration": {
        "jira.username": "jira-user@example.com",
        "jira.password": "jira-password",
        "jira.api.url": "https://example.atlassian.net",
    },
    "tags": ["support"],
    "name": "Test",
}


def rest(name, method="POST", path="/instances", headers=None, body=None, b64=False, base_path="", query=None):
    """A REST API (v1) event. `base_path` is a custom domain's mapping: API
    Gateway leaves it in `path` and `requestContext.path`; `resource` and
    `resourcePath` are the route that matched."""
    headers = {"Content-Type": "application/json", "Authorization": AUTH} if headers is None else headers
    resource = "/instances" if path == "/instances" else "/{proxy+}"
    return {
        "resource": resource,
        "path": base_path + path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None if resource == "/instances" else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "resourceId": "r3s0urc3",
            "resourcePath": resource,
            "httpMethod": method,
            "path": (base_path or "/prod") + path,
            "stage": "prod",
            "protocol": "HTTP/1.1",
            "requestId": f"evt-{name}",
            "requestTimeEpoch": 1764097445000,
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
        },
        "body": body,
        "isBase64Encoded": b64,
    }


def http_api(name, body):
    return {
        "version": "2.0",
        "routeKey": "POST /instances",
        "rawPath": "/instances",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": AUTH},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "h1t2p3a4p5",
            "domainName": "h1t2p3a4p5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "h1t2p3a4p5",
            "http": {"method": "POST", "path": "/instances", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "requestId": f"evt-{name}",
            "routeKey": "POST /instances",
            "stage": "$default",
            "time": "25/Nov/2026:19:04:05 +0000",
            "timeEpoch": 1764097445000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def j(v):
    return json.dumps(v)


missing = dict(SEED, configuration={"jira.api.url": "https://example.atlassian.net"})
unknown_element = dict(SEED, element={"key": "jirra"})
other_body = dict(SEED, name="Another instance")
big = j(dict(SEED, name="Big", padding="x" * (64 * 1024)))
# What a client sends back after a read: the secret as the mask (unchanged).
put_body = dict(SEED, name="Put", configuration=dict(SEED["configuration"], **{"jira.password": "********"}))

events = [
    ("create-rest-api", rest("create-rest-api", body=j(SEED)), 200, None),
    ("create-rest-api-base-path", rest("create-rest-api-base-path", body=j(SEED), base_path="/v1"), 200, None),
    ("create-http-api", http_api("create-http-api", j(SEED)), 200, None),
    ("create-base64-body", rest("create-base64-body", body=base64.b64encode(j(SEED).encode()).decode(), b64=True), 200, None),
    ("idempotent-first", rest("idempotent-first", headers={"Content-Type": "application/json", "Authorization": AUTH, "Idempotency-Key": "events-key-1"}, body=j(SEED)), 200, None),
    ("idempotent-replay", rest("idempotent-replay", headers={"Content-Type": "application/json", "Authorization": AUTH, "Idempotency-Key": "events-key-1"}, body=j(SEED)), 200, None),
    ("get-instance", rest("get-instance", method="GET", path="/instances/{{INSTANCE_ID}}", headers={"Authorization": AUTH}), 200, None),
    ("list-instances", rest("list-instances", method="GET", headers={"Authorization": AUTH}, query={"pageSize": "50"}), 200, None),
    ("patch-instance", rest("patch-instance", method="PATCH", path="/instances/{{INSTANCE_ID}}", body=j({"name": "Renamed", "configuration": {"jira.password": "********", "event.vendor.type": "polling"}})), 200, None),
    ("put-instance", rest("put-instance", method="PUT", path="/instances/{{INSTANCE_ID}}", body=j(put_body)), 200, None),
    ("get-configuration", rest("get-configuration", method="GET", path="/instances/{{INSTANCE_ID}}/configuration", headers={"Authorization": AUTH}), 200, None),
    ("patch-configuration-entry", rest("patch-configuration-entry", method="PATCH", path="/instances/{{INSTANCE_ID}}/configuration/102", body=j({"propertyValue": "webhook"})), 200, None),
    ("get-configuration-entry", rest("get-configuration-entry", method="GET", path="/instances/{{INSTANCE_ID}}/configuration/102", headers={"Authorization": AUTH}), 200, None),
    ("disable-instance", rest("disable-instance", method="DELETE", path="/instances/{{INSTANCE_ID}}/enabled", headers={"Authorization": AUTH}), 200, None),
    ("enable-instance", rest("enable-instance", method="PUT", path="/instances/{{INSTANCE_ID}}/enabled", headers={"Authorization": AUTH}), 200, None),
    ("delete-instance", rest("delete-instance", method="DELETE", path="/instances/{{INSTANCE_ID}}", headers={"Authorization": AUTH}), 200, None),
    ("error-404-deleted-instance", rest("error-404-deleted-instance", method="GET", path="/instances/{{INSTANCE_ID}}", headers={"Authorization": AUTH}), 404, "not_found"),
    ("error-404-search-matches-nothing", rest("error-404-search-matches-nothing", method="GET", headers={"Authorization": AUTH}, query={"searchText": "nothing-is-called-this"}), 404, "not_found"),
    ("error-400-malformed-json", rest("error-400-malformed-json", body='{"element": '), 400, "malformed_json"),
    ("error-400-missing-configuration", rest("error-400-missing-configuration", body=j(missing)), 400, "missing_configuration"),
    ("error-400-unknown-element", rest("error-400-unknown-element", body=j(unknown_element)), 400, "unknown_element"),
    ("error-401-no-authorization", rest("error-401-no-authorization", headers={"Content-Type": "application/json"}, body=j(SEED)), 401, "unauthorized"),
    ("error-401-wrong-secrets", rest("error-401-wrong-secrets", headers={"Content-Type": "application/json", "Authorization": "User not-a-user, Organization not-an-org"}, body=j(SEED)), 401, "unauthorized"),
    ("error-404-no-route", rest("error-404-no-route", path="/anything-else", body=j(SEED)), 404, "not_found"),
    ("error-405-post-configuration", rest("error-405-post-configuration", path="/instances/{{INSTANCE_ID}}/configuration", body=j(SEED)), 405, "method_not_allowed"),
    ("error-413-too-large", rest("error-413-too-large", body=big), 413, "payload_too_large"),
    ("error-415-text-plain", rest("error-415-text-plain", headers={"Content-Type": "text/plain", "Authorization": AUTH}, body=j(SEED)), 415, "unsupported_media_type"),
    ("error-422-idempotency-key-reused", rest("error-422-idempotency-key-reused", headers={"Content-Type": "application/json", "Authorization": AUTH, "Idempotency-Key": "events-key-1"}, body=j(other_body)), 422, "idempotency_key_reused"),
]

# The hub: an instance on the JIRA stand-in the runners start ({{JIRA_URL}},
# {{JIRA_USER}}, {{JIRA_PASSWORD}}), then calls through its token ({{HUB_TOKEN}}).
HUB_AUTH = AUTH + ", Element {{HUB_TOKEN}}"
hub_instance = dict(SEED, name="Hub", configuration={
    "jira.username": "{{JIRA_USER}}", "jira.password": "{{JIRA_PASSWORD}}", "jira.api.url": "{{JIRA_URL}}"})


def hub(name, method, path, body=None, query=None, auth=HUB_AUTH):
    headers = {"Authorization": auth}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return rest(name, method=method, path=path, headers=headers, body=None if body is None else j(body), query=query)


new_incident = {"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": "From an event"}}
events += [
    ("hub-create-instance", rest("hub-create-instance", body=j(hub_instance)), 200, None),
    ("hub-list-incidents", hub("hub-list-incidents", "GET", "/hubs/helpdesk/incidents", query={"pageSize": "2"}), 200, None),
    ("hub-search-incidents", hub("hub-search-incidents", "GET", "/incidents", query={"where": "status = 'To Do'"}), 200, None),
    ("hub-get-incident", hub("hub-get-incident", "GET", "/hubs/helpdesk/incidents/DEMO-1"), 200, None),
    ("hub-create-incident", hub("hub-create-incident", "POST", "/hubs/helpdesk/incidents", body=new_incident), 200, None),
    ("hub-patch-incident", hub("hub-patch-incident", "PATCH", "/incidents/DEMO-2", body={"fields": {"summary": "Patched by an event"}}), 200, None),
    ("hub-add-comment", hub("hub-add-comment", "POST", "/incidents/DEMO-1/comments", body={"body": "From an event"}), 201, None),
    ("hub-list-comments", hub("hub-list-comments", "GET", "/incidents/DEMO-1/comments"), 200, None),
    ("hub-list-transitions", hub("hub-list-transitions", "GET", "/incidents/DEMO-1/transitions"), 200, None),
    ("hub-priorities", hub("hub-priorities", "GET", "/priorities"), 200, None),
    ("hub-statuses", hub("hub-statuses", "GET", "/statuses"), 200, None),
    ("hub-incident-types", hub("hub-incident-types", "GET", "/incident-types"), 200, None),
    ("hub-projects", hub("hub-projects", "GET", "/projects/DEMO"), 200, None),
    ("hub-proxy-myself", hub("hub-proxy-myself", "GET", "/hubs/helpdesk/proxy/rest/api/2/myself"), 200, None),
    ("hub-delete-incident", hub("hub-delete-incident", "DELETE", "/incidents/DEMO-3"), 200, None),
    ("error-400-hub-invalid-query", hub("error-400-hub-invalid-query", "GET", "/incidents", query={"where": "status = 'unclosed"}), 400, "invalid_query"),
    ("error-404-hub-no-incident", hub("error-404-hub-no-incident", "GET", "/incidents/DEMO-999"), 404, "provider_error"),
    ("error-401-hub-no-token", hub("error-401-hub-no-token", "GET", "/incidents", auth=AUTH), 401, "unauthorized"),
]

ROOT.mkdir(exist_ok=True)
manifest = []
for name, event, status, code in events:
    (ROOT / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
    manifest.append({"event": f"{name}.json", "status": status, "code": code})
(ROOT / "expected.json").write_text(json.dumps(manifest, indent=2) + "\n")


# The event functions (src/bin/events.rs). The tick's input is the
# schedule's Input (template.yaml: "{}"); the poll's and the delivery's are
# SQS batches, one record each, as Lambda's event source mapping sends them.
def sqs_record(queue, body, n, fifo):
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1764097445000",
        "SenderId": "AROAEXAMPLEEXAMPLE:events",
        "ApproximateFirstReceiveTimestamp": "1764097445012",
    }
    if fifo:
        instance = json.loads(body)["instance"]
        attributes.update({"MessageGroupId": str(instance), "SequenceNumber": "18849496460467696128",
                           "MessageDeduplicationId": f"{instance}-{json.loads(body)['due']}"})
    return {
        "messageId": f"059f36b4-87a3-44ab-83d2-66197{n:07d}",
        "receiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a-sample-{n}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }


# A poll message: the instance and the due time (epoch ms) it was sent for;
# a delivery message: the instance and the notification's sort key
# (N#<poll ms, 13 digits>#<seq, 3 digits>).
function_events = {
    "events-tick": {},
    "events-poll": {"Records": [sqs_record("instances-PollQueue-EXAMPLE.fifo",
                                           j({"instance": 4242424242, "due": 1764097440000}), 1, True)]},
    "events-deliver": {"Records": [sqs_record("instances-DeliveryQueue-EXAMPLE",
                                              j({"instance": 4242424242, "notification": "N#1764097445000#000"}), 2, False)]},
}
for name, event in function_events.items():
    (ROOT / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
print(f"wrote {len(events)} events and {len(function_events)} of the event functions")
