#!/usr/bin/env python3
"""The function run the way its users run it, under AWS SAM CLI's own local
emulation on a Docker engine:

1. `sam build` from template.yaml (the rust-cargolambda build method, x86_64);
2. the built `bootstrap` needs no glibc symbol newer than Amazon Linux 2023's
   (2.34): the local base image is Debian's (2.36), so a pass here must not be
   a pass only here;
3. every file in events/ through `sam local invoke`, each answer checked
   against events/expected.json;
4. `sam local start-api`, and creates and the error rows over HTTP through
   SAM's API Gateway emulation;
5. the event functions (one `events` binary, built once): an instance with
   events on, created through start-api against a JIRA stand-in of its own,
   made due, then the tick, the poll and the delivery each through `sam
   local invoke` with events/events-*.json carrying the messages the local
   SQS queues (made as the template makes them) really hold, the
   notification checked at an HTTPS callback receiver (signature, webhook
   id), nothing notified twice, and the events API over start-api.

It brings up what it needs (tools/sam-local.sh: the engine, the base image),
starts a DynamoDB/KMS/SQS server (moto) on Docker's bridge address, which the
functions' containers reach, the JIRA stand-ins and the callback receiver
there too, and stops all it started. Prints a line per
check and closes with 'sam: N passed, N failed'.

Usage: run-sam.py LOCAL_BIN_DIR SAM_BIN_DIR
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from local_function import check_event_answer, fill_event, start_standin  # noqa: E402
AL2023_GLIBC = (2, 34)
FUNCTION = "CreateInstanceFunction"
EVENT_FUNCTIONS = ("EventsTickFunction", "EventsPollFunction", "EventsDeliverFunction")
# The template's queues, made on the local server with the template's own
# attributes (dead-letter queues first: the others name them).
QUEUES = ("PollDeadLetterQueue", "DeliveryDeadLetterQueue", "PollQueue", "DeliveryQueue")


class Suite:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}", flush=True)
        return ok


def run(args, **kw):
    return subprocess.run(args, cwd=ROOT, text=True, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def glibc_versions(binary):
    out = run(["objdump", "-T", str(binary)], check=True).stdout
    return sorted({tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", out)})


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, ...) read as {tag: value}."""


def _cfn_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def read_template(path):
    return yaml.load(pathlib.Path(path).read_text(), Loader=CfnLoader)


def make_queues(sqs, template, prefix, endpoint, key_id):
    """The template's queues on the local server, with its attributes (the
    dead-letter target and the key resolved): {logical id: (url, arn)}. A
    URL that names another host than the endpoint (the one the containers
    reach) is given the endpoint's."""
    made = {}
    for logical in QUEUES:
        props = template["Resources"][logical]["Properties"]
        attributes = {}
        for name, value in props.items():
            if name == "RedrivePolicy":
                target = value["deadLetterTargetArn"]["GetAtt"].split(".")[0]   # !GetAtt Queue.Arn
                value = json.dumps({"deadLetterTargetArn": made[target][1], "maxReceiveCount": value["maxReceiveCount"]})
            elif name == "KmsMasterKeyId":
                value = key_id
            elif isinstance(value, bool):
                value = "true" if value else "false"
            attributes[name] = str(value)
        name = f"{prefix}-{logical}" + (".fifo" if props.get("FifoQueue") else "")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        parts, want = urllib.parse.urlsplit(url), urllib.parse.urlsplit(endpoint)
        if parts.netloc != want.netloc:
            url = urllib.parse.urlunsplit((want.scheme, want.netloc, parts.path, "", ""))
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made[logical] = (url, arn, attributes)
    return made


def start_receiver(ca_file, host, san):
    """The callback receiver (tools/callback_receiver.py) on `host`, its
    certificate naming `san`: (the process, its ready line: url, base, caFile)."""
    proc = subprocess.Popen([str(ROOT / ".venv/local/bin/python"), str(ROOT / "tools/callback_receiver.py"),
                             "--host", host, "--port", "0", "--san", san, "--ca-file", str(ca_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    try:
        return proc, json.loads(line)
    except ValueError:
        proc.kill()
        raise RuntimeError(f"the callback receiver did not start: {line!r}")


def https(base, method, path, ca_file, body=None, headers=None, from_loopback=False):
    """One HTTPS request to a stand-in on the bridge address: (status, JSON).
    `from_loopback`: sent from 127.0.0.1 (the control APIs answer loopback
    callers only; Linux routes a local destination through lo, so the
    server on the bridge address sees 127.0.0.1)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                       context=ssl.create_default_context(cafile=str(ca_file)),
                                       source_address=("127.0.0.1", 0) if from_loopback else None)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=dict({"Content-Type": "application/json"} if data else {},
                                                            **(headers or {})))
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw or b"null")
    finally:
        conn.close()


def sqs_event(sample, message, queue_arn):
    """The sample event file's batch with the record of `message` (as
    ReceiveMessage answered it) in place of its sample record."""
    record = dict(sample["Records"][0])
    record.update({"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                   "body": message["Body"], "md5OfBody": message["MD5OfBody"],
                   "attributes": dict(message.get("Attributes", {})), "eventSourceARN": queue_arn})
    return {"Records": [record]}


def last_answer(text):
    """The last line of `sam local invoke`'s output that is a JSON object: the function's answer."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def last_json_line(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"statusCode"' in line:
            return json.loads(line)
    return None


def event_functions(suite, state, sam_invoke, send, auth, sqs, ddb, queues, table, jira, receiver, jira_ca, receiver_ca):
    """The event functions under `sam local invoke`: an instance with events
    on, made due; the tick, the poll and the delivery, each with the event
    file of events/ carrying the message the local queue holds; the
    notification as the callback receiver got it; nothing notified twice."""
    samples = {name: json.loads((ROOT / "events" / f"{name}.json").read_text())
               for name in ("events-tick", "events-poll", "events-deliver")}
    poll_url, poll_arn = queues["PollQueue"][:2]
    delivery_url, delivery_arn = queues["DeliveryQueue"][:2]
    signature_key = "sam-suite-signature-" + secrets.token_hex(8)
    times = []

    def invoke(function, name, payload, secrets_=()):
        data = state / name
        data.write_text(json.dumps(payload))
        t0 = time.time()
        r, out = sam_invoke(function, data)
        times.append(time.time() - t0)
        leaked = [s for s in secrets_ if s and s in r.stdout + r.stderr]
        return out, r, leaked

    def receive(url):
        return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   WaitTimeSeconds=0).get("Messages", [])

    def item(pk, sk):
        return ddb.get_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True).get("Item")

    def notifications(iid):
        return ddb.query(TableName=table, KeyConditionExpression="PK = :pk", ConsistentRead=True,
                         ExpressionAttributeValues={":pk": {"S": f"EVENTS#{iid}"}})["Items"]

    def posts():
        status, answer = https(receiver["base"], "GET", "/_receiver/requests", receiver_ca, from_loopback=True)
        return [q for q in (answer or {}).get("requests", []) if q.get("method") == "POST"] if status == 200 else None

    def short(out, r):
        return f"{out}; {(r.stdout + r.stderr)[-1200:]}"

    # 1. Nothing is due yet: the tick sends nothing.
    out, r, _ = invoke("EventsTickFunction", "events-tick.json", samples["events-tick"])
    suite.check(f"sam local invoke EventsTickFunction events-tick.json, nothing due -> {{\"sent\": 0}} ({times[-1]:.1f} s)",
                out == {"sent": 0} and not receive(poll_url), short(out, r))

    # 2. An instance with events on, through start-api, on the events' JIRA stand-in.
    config = {"jira.username": jira["user"], "jira.password": jira["password"], "jira.api.url": jira["url"],
              "event.notification.enabled": "true", "event.vendor.type": "polling",
              "event.notification.callback.url": receiver["url"],
              "event.notification.signature.key": signature_key, "event.poller.refresh_interval": "1"}
    status, _, created = send("POST", "/instances", {"element": {"key": "jira"}, "name": "Events via SAM",
                                                     "configuration": config}, auth)
    iid = (created or {}).get("id") if isinstance(created, dict) else None
    stored = item(f"INSTANCE#{iid}", "INSTANCE") or {}
    created_ms = int(stored.get("pollCursor", {}).get("N", "0"))
    due_ms = int(stored.get("pollDue", {}).get("N", "0"))
    if not suite.check("start-api creates an instance with events on: its polls start (pollShard, pollDue a minute "
                       "after pollCursor, the creation)",
                       status == 200 and iid and stored.get("pollShard", {}).get("S", "").startswith("DUE#")
                       and due_ms - created_ms == 60_000,
                       f"{status} {str(created)[:300]}; item {sorted(stored)}"):
        return
    secret_values = (jira["password"], signature_key)

    # 3. Not due for a minute: the tick leaves it.
    out, r, leaked = invoke("EventsTickFunction", "events-tick.json", samples["events-tick"], secret_values)
    suite.check(f"the tick before the instance is due -> {{\"sent\": 0}} ({times[-1]:.1f} s)",
                out == {"sent": 0} and not receive(poll_url) and not leaked, short(out, r))

    # 4. A change in JIRA after the creation (an issue created), and the
    #    instance made due now (the test's setup: its minute not waited).
    status, issue = https(jira["url"], "POST", "/rest/api/2/issue", jira_ca, headers={
        "Authorization": "Basic " + base64.b64encode(f"{jira['user']}:{jira['password']}".encode()).decode()},
        body={"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": "Changed for the SAM suite"}})
    issue_id = str((issue or {}).get("id", ""))
    if not suite.check("the events' JIRA stand-in has a new issue", status == 201 and issue_id, f"{status} {issue}"):
        return
    due = int(time.time() * 1000) - 1000
    ddb.update_item(TableName=table, Key={"PK": {"S": f"INSTANCE#{iid}"}, "SK": {"S": "INSTANCE"}},
                    UpdateExpression="SET pollDue = :due", ExpressionAttributeValues={":due": {"N": str(due)}})

    # 5. The tick: one poll message, grouped by the instance, deduplicated on it and its due time.
    out, r, leaked = invoke("EventsTickFunction", "events-tick.json", samples["events-tick"], secret_values)
    got = receive(poll_url)
    body = json.loads(got[0]["Body"]) if len(got) == 1 else {}
    attributes = got[0].get("Attributes", {}) if len(got) == 1 else {}
    suite.check(f"the tick with the instance due -> {{\"sent\": 1}} and its poll message on the FIFO queue ({times[-1]:.1f} s)",
                out == {"sent": 1} and body == {"instance": iid, "due": due}
                and attributes.get("MessageGroupId") == str(iid)
                and attributes.get("MessageDeduplicationId") == f"{iid}-{due}" and not leaked,
                f"{out}; {len(got)} messages {got[:1]}; {(r.stdout + r.stderr)[-800:]}")
    if len(got) != 1:
        return
    poll_event = sqs_event(samples["events-poll"], got[0], poll_arn)

    # 6. The poll: the change recorded as one notification with the cursor's
    #    move, one delivery message, the next poll an interval away.
    before_poll = int(time.time() * 1000)
    out, r, leaked = invoke("EventsPollFunction", "events-poll.json", poll_event, secret_values)
    sqs.delete_message(QueueUrl=poll_url, ReceiptHandle=got[0]["ReceiptHandle"])   # as Lambda does on success
    logged = notifications(iid)
    after = item(f"INSTANCE#{iid}", "INSTANCE") or {}
    deliveries = receive(delivery_url)
    delivery = json.loads(deliveries[0]["Body"]) if len(deliveries) == 1 else {}
    note = logged[0] if len(logged) == 1 else {}
    events_logged = [e["M"] for e in note.get("events", {}).get("L", [])]
    problems = []
    if out != {"batchItemFailures": []}:
        problems.append(f"answered {out}")
    if len(logged) != 1 or note.get("status", {}).get("S") != "NEW":
        problems.append(f"{len(logged)} notifications logged: {str(logged)[:300]}")
    elif [(e["objectId"]["S"], e["eventType"]["S"], e["objectType"]["S"]) for e in events_logged] != \
            [(issue_id, "CREATED", "incidents")]:
        problems.append(f"events {events_logged}")
    if delivery != {"instance": iid, "notification": note.get("SK", {}).get("S")}:
        problems.append(f"delivery messages {deliveries}")
    next_due = int(after.get("pollDue", {}).get("N", "0"))
    if not before_poll + 60_000 - 5_000 <= next_due <= int(time.time() * 1000) + 60_000:
        problems.append(f"the next poll at {next_due}, not an interval (1 minute) after the poll")
    if int(after.get("pollCursor", {}).get("N", "0")) <= created_ms:
        problems.append("the cursor did not move")
    if leaked:
        problems.append("the function's log carries a secret")
    suite.check(f"sam local invoke EventsPollFunction events-poll.json -> no failures; the new issue one CREATED event "
                f"of one notification, its delivery message sent, the next poll a minute on ({times[-1]:.1f} s)",
                not problems, "; ".join(problems) + f"; {(r.stdout + r.stderr)[-800:]}")
    if len(deliveries) != 1 or not note:
        return
    deliver_event = sqs_event(samples["events-deliver"], deliveries[0], delivery_arn)

    # 7. The delivery: one signed POST to the receiver.
    out, r, leaked = invoke("EventsDeliverFunction", "events-deliver.json", deliver_event, secret_values)
    sqs.delete_message(QueueUrl=delivery_url, ReceiptHandle=deliveries[0]["ReceiptHandle"])
    got_posts = posts() or []
    problems = []
    if out != {"batchItemFailures": []}:
        problems.append(f"answered {out}")
    if len(got_posts) != 1:
        problems.append(f"{len(got_posts)} POSTs at the receiver")
    else:
        post = got_posts[0]
        headers = {k.lower(): v for k, v in post["headers"].items()}
        raw = base64.b64decode(post["bodyBase64"])
        want = "sha256=" + base64.b64encode(hmac.new(signature_key.encode(), raw, hashlib.sha256).digest()).decode()
        message = (json.loads(raw) or {}).get("message", {})
        if headers.get("elements-webhook-id") != note["notificationId"]["S"]:
            problems.append(f"Elements-Webhook-Id {headers.get('elements-webhook-id')} != {note['notificationId']['S']}")
        if not hmac.compare_digest(headers.get("elements-webhook-signature", ""), want):
            problems.append(f"Elements-Webhook-Signature {headers.get('elements-webhook-signature')} does not verify")
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"Content-Type {headers.get('content-type')}")
        if raw.decode() != note["body"]["S"]:
            problems.append("the body is not the one logged")
        if str(message.get("instanceId")) != str(iid) or message.get("elementKey") != "jira" or \
                [(e.get("objectId"), e.get("eventType"), e.get("hubKey")) for e in message.get("events", [])] \
                != [(issue_id, "CREATED", "helpdesk")]:
            problems.append(f"the notification {str(message)[:400]}")
    after = (notifications(iid) or [{}])[0]
    if after.get("status", {}).get("S") != "NOTIFIED" or after.get("attempts", {}).get("N") != "1":
        problems.append(f"logged {after.get('status')} after {after.get('attempts')} attempts")
    if leaked:
        problems.append("the function's log carries a secret")
    suite.check(f"sam local invoke EventsDeliverFunction events-deliver.json -> no failures; one POST at the callback, "
                f"its Elements-Webhook-Id logged, its sha256 signature verifying, NOTIFIED after 1 attempt "
                f"({times[-1]:.1f} s)", not problems, "; ".join(problems) + f"; {(r.stdout + r.stderr)[-800:]}")

    # 8. Nothing twice: the same poll message again hands its notification
    #    over again (its answer might have been lost), and that delivery
    #    message is not delivered again.
    out, r, _ = invoke("EventsPollFunction", "events-poll.json", poll_event)
    again = receive(delivery_url)
    suite.check(f"the same poll message again -> no failures, no new notification, its delivery handed over again "
                f"({times[-1]:.1f} s)",
                out == {"batchItemFailures": []} and len(notifications(iid)) == 1 and len(again) == 1
                and json.loads(again[0]["Body"]) == delivery, f"{out}; {len(again)} delivery messages; {short(out, r)}")
    if again:
        out, r, _ = invoke("EventsDeliverFunction", "events-deliver.json",
                           sqs_event(samples["events-deliver"], again[0], delivery_arn))
        sqs.delete_message(QueueUrl=delivery_url, ReceiptHandle=again[0]["ReceiptHandle"])
        count = len(posts() or [])
        suite.check(f"that delivery message again -> no failures, still one POST at the callback ({times[-1]:.1f} s)",
                    out == {"batchItemFailures": []} and count == 1 and not receive(delivery_url),
                    f"{out}; {count} POSTs; {short(out, r)}")

    # 9. The events API over start-api reads the log.
    status, _, listed = send("GET", f"/instances/{iid}/events", None, auth)
    first = listed[0] if isinstance(listed, list) and listed else {}
    suite.check("start-api GET /instances/{id}/events -> the event, NOTIFIED after 1 attempt",
                status == 200 and isinstance(listed, list) and len(listed) == 1 and first.get("objectId") == issue_id
                and first.get("status") == "NOTIFIED" and first.get("attempts") == 1
                and first.get("eventType") == "CREATED", f"{status} {str(listed)[:400]}")
    print(f"     sam local invoke of the event functions: median {sorted(times)[len(times) // 2]:.1f} s", flush=True)


def main():
    local_bin, sam_bin = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    suite = Suite()
    state = pathlib.Path(tempfile.mkdtemp(prefix="sam-suite-"))
    helper = str(ROOT / "tools/sam-local.sh")
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", PATH=f"{local_bin}:{os.environ['PATH']}")
    moto_started = api = jira_proc = events_jira_proc = receiver_proc = None
    try:
        for step in ("engine-up", "image"):
            r = run([helper, step, str(state)])
            if not suite.check(f"docker {step}", r.returncode == 0, r.stderr[-1500:]):
                return suite
        bridge = run([helper, "bridge"]).stdout.strip()
        r = run([str(ROOT / "tools/moto.sh"), "start", str(state)], env=dict(env, MOTO_HOST=bridge))
        if not suite.check(f"moto on the bridge address {bridge}", r.returncode == 0, r.stderr[-800:]):
            return suite
        moto_started = True
        for line in (state / "moto.env").read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        env["TABLE_NAME"], env["KMS_KEY_ID"] = "sam-" + secrets.token_hex(4), "alias/sam-" + secrets.token_hex(4)
        # The hub's calls go to a JIRA stand-in on the bridge address too, its
        # certificate naming that address.
        jira_proc, jira = start_standin(state / "jira-ca.pem", host=bridge, san=bridge)
        # The events' own JIRA (its issues only the seeded ones, changed long
        # ago) and the callbacks' receiver, on the bridge address as well.
        events_jira_proc, events_jira = start_standin(state / "events-jira-ca.pem", host=bridge, san=bridge)
        receiver_proc, receiver = start_receiver(state / "receiver-ca.pem", host=bridge, san=bridge)

        started = time.time()
        r = run([helper, "build"], env=env)
        build_s = time.time() - started
        built = ROOT / "target/sam-build"
        if not suite.check(f"sam build ({build_s:.0f} s)", r.returncode == 0 and (built / FUNCTION / "bootstrap").exists(),
                           (r.stdout + r.stderr)[-2000:]):
            return suite
        # Where each function's code is (the event functions share one build:
        # their CodeUri in the built template is one directory).
        built_template = read_template(built / "template.yaml")
        code = {f: built / built_template["Resources"][f]["Properties"]["CodeUri"] for f in (FUNCTION,) + EVENT_FUNCTIONS}
        events_dirs = {code[f] for f in EVENT_FUNCTIONS}
        suite.check(f"the event functions are built once, apart from the API's ({', '.join(sorted(d.name for d in events_dirs))})",
                    len(events_dirs) == 1 and code[FUNCTION] not in events_dirs
                    and all((d / "bootstrap").exists() for d in events_dirs)
                    and "Building codeuri" in r.stdout + r.stderr
                    and (r.stdout + r.stderr).count("functions: EventsTickFunction, EventsPollFunction, EventsDeliverFunction") == 1,
                    f"{code}; {(r.stdout + r.stderr)[-800:]}")
        events_dir = next(iter(events_dirs))
        for label, binary in (("bootstrap", code[FUNCTION] / "bootstrap"), ("events", events_dir / "bootstrap")):
            versions = glibc_versions(binary) if binary.exists() else []
            newest = versions[-1] if versions else (0,)
            suite.check(f"{label} needs glibc <= 2.34 (newest symbol: {'.'.join(map(str, newest))})",
                        bool(versions) and newest <= AL2023_GLIBC, f"needs {versions}")

        admin = [str(ROOT / "target/debug/admin")]
        for args in (["setup"], ["create-credentials", "--organization", "sam-suite", "--user", "ops@example.com"]):
            r = run(admin + args, env=env, check=True)
        creds = json.loads(r.stdout.strip().splitlines()[-1])
        env_file = state / "env.json"
        # The stand-in's CA inside the function's container (the code's
        # directory is mounted at /var/task); the event functions' trust both
        # the events' stand-in and the callback receiver (one file serves both).
        (code[FUNCTION] / "jira-ca.pem").write_bytes((state / "jira-ca.pem").read_bytes())
        (events_dir / "test-ca.pem").write_bytes((state / "events-jira-ca.pem").read_bytes()
                                                 + (state / "receiver-ca.pem").read_bytes())
        # The template's queues on moto, as the template makes them.
        aws = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        sqs, ddb = boto3.client("sqs", **aws), boto3.client("dynamodb", **aws)
        queues = make_queues(sqs, read_template(ROOT / "template.yaml"), env["TABLE_NAME"], env["AWS_ENDPOINT_URL"],
                             env["KMS_KEY_ID"])
        problems = []
        for logical, (url, _, wanted) in queues.items():
            got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            problems += [f"{logical} {k}={got.get(k)!r} != {v!r}" for k, v in wanted.items()
                         if k != "KmsMasterKeyId" and (json.loads(got.get(k, "null")) if k == "RedrivePolicy" else got.get(k))
                         != (json.loads(v) if k == "RedrivePolicy" else v)]
            if not url.startswith(env["AWS_ENDPOINT_URL"] + "/"):
                problems.append(f"{logical}'s URL {url} is not on {env['AWS_ENDPOINT_URL']}")
        suite.check("the template's four queues on the local server, with its attributes (FIFO polls, dead letters, "
                    "visibility timeouts)", not problems, "; ".join(problems))
        poll_url, delivery_url = queues["PollQueue"][0], queues["DeliveryQueue"][0]
        events_env = {"TABLE_NAME": env["TABLE_NAME"], "KMS_KEY_ID": env["KMS_KEY_ID"],
                      "POLL_QUEUE_URL": poll_url, "DELIVERY_QUEUE_URL": delivery_url}
        env_file.write_text(json.dumps({
            FUNCTION: {"TABLE_NAME": env["TABLE_NAME"], "KMS_KEY_ID": env["KMS_KEY_ID"],
                       "PROVIDER_TEST_CA_FILE": "/var/task/jira-ca.pem"},
            "EventsTickFunction": events_env,
            "EventsPollFunction": dict(events_env, PROVIDER_TEST_CA_FILE="/var/task/test-ca.pem"),
            "EventsDeliverFunction": dict(events_env, PROVIDER_TEST_CA_FILE="/var/task/test-ca.pem"),
        }))
        # The creates' JIRA (example.atlassian.net) is not reachable from here:
        # the check is off (tests/provider.rs and tests/hub.rs have it on);
        # the hub and the poll reach the stand-ins, the deliverer the
        # receiver, allowed by their address.
        overrides = (f"Architecture=x86_64 LocalEndpoint={env['AWS_ENDPOINT_URL']} ProviderCheck=off "
                     f"ProviderAllowedHosts={bridge} CallbackAllowedHosts={bridge}")
        common = ["-t", str(built / "template.yaml"), "--env-vars", str(env_file),
                  "--parameter-overrides", overrides, "--skip-pull-image"]

        def sam_invoke(function, data):
            """`sam local invoke` of one event file: the run, and the function's answer (None without one)."""
            r = run([str(sam_bin / "sam"), "local", "invoke", function, "-e", str(data)] + common, env=env, timeout=300)
            out = last_answer(r.stdout)
            # SAM's emulator may start the function before its Runtime API
            # (the RIE, 127.0.0.1:9001 in the container) listens: the runtime
            # cannot connect and exits before any event reaches it. That is
            # the emulator's race, not an answer of the function: invoked
            # once more, and said.
            if out is None and "127.0.0.1:9001" in r.stderr and "Connection refused" in r.stderr:
                print(f"     {data.name}: SAM's Runtime API was not listening yet; invoked again", flush=True)
                r = run([str(sam_bin / "sam"), "local", "invoke", function, "-e", str(data)] + common, env=env, timeout=300)
                out = last_answer(r.stdout)
            return r, out

        # Every event file of the API through `sam local invoke` (the event
        # functions' events-*.json are run below, with real messages).
        expected = json.loads((ROOT / "events/expected.json").read_text())
        on_disk = {p.name for p in (ROOT / "events").glob("*.json")
                   if p.name != "expected.json" and not p.name.startswith("events-")}
        suite.check("events/expected.json lists every event file", {e["event"] for e in expected} == on_disk,
                    sorted({e["event"] for e in expected} ^ on_disk))
        ids, times = {}, []
        for case in expected:
            name = case["event"]
            text = (ROOT / "events" / name).read_text()
            text, first_created = fill_event(text, creds, ids, jira)
            data = state / name
            data.write_text(text)
            t0 = time.time()
            r, _ = sam_invoke(FUNCTION, data)
            out = last_json_line(r.stdout)
            times.append(time.time() - t0)
            if out is None:
                problems = [f"no answer (exit {r.returncode}): {(r.stdout + r.stderr)[-800:]}"]
            else:
                problems = check_event_answer(name, case, out, ids, first_created)
                for secret in (creds["userSecret"], creds["organizationSecret"], "jira-password", jira["password"]):
                    if secret in r.stderr:
                        problems.append("the function's log carries a secret")
            suite.check(f"sam local invoke {name} -> {case['status']} ({times[-1]:.1f} s)", not problems,
                        "; ".join(problems))
        if times:
            print(f"     sam local invoke: first {times[0]:.1f} s, median of the rest "
                  f"{sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else 0:.1f} s", flush=True)

        # `sam local start-api`: the calls over HTTP through SAM's API Gateway emulation.
        port = free_port()
        api_log = open(state / "start-api.log", "w")
        api = subprocess.Popen([str(sam_bin / "sam"), "local", "start-api", "-p", str(port),
                                "--warm-containers", "EAGER"] + common,
                               cwd=ROOT, env=env, stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        ready = False
        for _ in range(240):
            try:
                urllib.request.urlopen(base + "/instances", timeout=5)
            except urllib.error.HTTPError:
                ready = True
                break
            except OSError:
                time.sleep(0.5)
        if not suite.check("sam local start-api listens", ready, (state / "start-api.log").read_text()[-1500:]):
            return suite

        def send(method, path, body=None, headers=None):
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as e:
                text = e.read()
                headers = {k.lower(): v for k, v in e.headers.items()}
                try:
                    return e.code, headers, json.loads(text or b"null")
                except ValueError:
                    return e.code, headers, {"raw": text.decode(errors="replace")}

        auth = {"Authorization": creds["authorization"], "Content-Type": "application/json"}
        seed = {"element": {"key": "jira"}, "name": "Via start-api", "tags": ["support"],
                "configuration": {"jira.username": "u@example.com", "jira.password": "jira-password",
                                  "jira.api.url": "https://example.atlassian.net"}}
        missing = dict(seed, configuration={"jira.api.url": "https://example.atlassian.net"})
        rows = [
            ("create", "POST", "/instances", seed, auth, 200, None),
            ("create, one trailing slash", "POST", "/instances/", seed, auth, 200, None),
            ("no credentials", "POST", "/instances", seed, {"Content-Type": "application/json"}, 401, "unauthorized"),
            ("malformed JSON", "POST", "/instances", b'{"element": ', auth, 400, "malformed_json"),
            ("missing configuration", "POST", "/instances", missing, auth, 400, "missing_configuration"),
            ("unknown element", "POST", "/instances", dict(seed, element={"key": "jirra"}), auth, 400, "unknown_element"),
            ("no route", "POST", "/anything-else", seed, auth, 404, "not_found"),
            ("another method", "POST", "/instances/1/configuration", seed, auth, 405, "method_not_allowed"),
            ("list", "GET", "/instances?pageSize=10&tags[]=support", None, auth, 200, None),
            ("search that matches nothing", "GET", "/instances?searchText=nothing-like-it", None, auth, 404, "not_found"),
            ("discovery", "GET", "/elements/jira", None, auth, 200, None),
            ("too large", "POST", "/instances", dict(seed, padding="x" * (64 * 1024)), auth, 413, "payload_too_large"),
            ("not JSON", "POST", "/instances", seed, dict(auth, **{"Content-Type": "text/plain"}), 415,
             "unsupported_media_type"),
        ]
        key = {"Idempotency-Key": "start-api-" + secrets.token_hex(4)}
        rows += [
            ("idempotent first", "POST", "/instances", seed, dict(auth, **key), 200, None),
            ("idempotent replay", "POST", "/instances", seed, dict(auth, **key), 200, None),
            ("idempotency key reused", "POST", "/instances", dict(seed, name="Other"), dict(auth, **key), 422,
             "idempotency_key_reused"),
        ]
        answers = {}
        latencies = []
        for name, method, path, body, headers, status, code in rows:
            t0 = time.time()
            got, got_headers, answer = send(method, path, body, headers)
            latencies.append(time.time() - t0)
            answers[name] = answer
            problems = []
            if got != status:
                problems.append(f"status {got} != {status}: {str(answer)[:300]}")
            if code and (answer if isinstance(answer, dict) else {}).get("code") != code:
                problems.append(f"code {answer} != {code}")
            if status == 405 and got_headers.get("allow") != "GET":
                problems.append(f"Allow {got_headers.get('allow')!r}")
            suite.check(f"start-api {name}: {method} {path} -> {status}", not problems, "; ".join(problems))
        first, replay = answers.get("idempotent first") or {}, answers.get("idempotent replay") or {}
        one = send("GET", f"/instances/{first.get('id')}", None, auth)
        suite.check("start-api GET /instances/{id} answers the created instance, without its token",
                    one[0] == 200 and (one[2] or {}).get("id") == first.get("id") and "token" not in (one[2] or {}),
                    f"{one[0]} {str(one[2])[:200]}")
        # Every other call of the instance resource, through API Gateway's emulation.
        iid = first.get("id")
        by_token = dict(auth, Authorization=f"{auth['Authorization']}, Element {first.get('token')}")
        calls = [
            ("PUT", f"/instances/{iid}", dict(seed, name="Put", configuration=dict(seed["configuration"], **{"jira.password": "********"})), auth, 200),
            ("PATCH", f"/instances/{iid}", {"tags": ["patched"]}, auth, 200),
            ("GET", f"/instances/{iid}/configuration", None, auth, 200),
            ("PATCH", f"/instances/{iid}/configuration/102", {"propertyValue": "polling"}, auth, 200),
            ("GET", "/instances/configuration/102", None, by_token, 200),
            ("DELETE", f"/instances/{iid}/enabled", None, auth, 200),
            ("GET", f"/instances/{iid}", None, by_token, 403),
            ("PUT", "/instances/enabled", None, by_token, 200),
            ("GET", f"/elements/jira/instances/{iid}", None, by_token, 200),
            ("DELETE", "/instances", None, by_token, 200),
            ("GET", f"/instances/{iid}", None, auth, 404),
        ]
        for method, path, body, headers, status in calls:
            got, _, answer = send(method, path, body, headers)
            suite.check(f"start-api {method} {path} -> {status}", got == status, f"{got}: {str(answer)[:300]}")
        # The hub through API Gateway's emulation: an instance on the stand-in, its token.
        on_jira = dict(seed, name="Hub via start-api",
                       configuration={"jira.username": jira["user"], "jira.password": jira["password"], "jira.api.url": jira["url"]})
        hub_instance = send("POST", "/instances", on_jira, auth)[2] or {}
        hub_auth = dict(auth, Authorization=f"{auth['Authorization']}, Element {hub_instance.get('token')}")
        hub_calls = [
            ("GET", "/hubs/helpdesk/incidents?pageSize=2", None, 200),
            ("GET", "/incidents?where=status%20%3D%20%27To%20Do%27", None, 200),
            ("GET", "/incidents/DEMO-1", None, 200),
            ("POST", "/hubs/helpdesk/incidents", {"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": "Via start-api"}}, 200),
            ("PATCH", "/incidents/DEMO-2", {"fields": {"summary": "Patched via start-api"}}, 200),
            ("POST", "/incidents/DEMO-1/comments", {"body": "Via start-api"}, 201),
            ("GET", "/incidents/DEMO-1/comments", None, 200),
            ("GET", "/incidents/DEMO-1/transitions", None, 200),
            ("GET", "/priorities", None, 200),
            ("GET", "/statuses", None, 200),
            ("GET", "/incident-types", None, 200),
            ("GET", "/projects/DEMO", None, 200),
            ("GET", "/hubs/helpdesk/proxy/rest/api/2/myself", None, 200),
            ("DELETE", "/incidents/DEMO-4", None, 200),
            ("GET", "/incidents/DEMO-999", None, 404),
            ("GET", "/incidents?where=status%20%3D%20%27unclosed", None, 400),
        ]
        for method, path, body, status in hub_calls:
            got, got_headers, answer = send(method, path, body, hub_auth)
            suite.check(f"start-api hub {method} {path} -> {status}",
                        got == status and got_headers.get("elements-element-instance-id") == str(hub_instance.get("id")),
                        f"{got} {got_headers.get('elements-element-instance-id')}: {str(answer)[:300]}")
        suite.check("start-api replay answers the first response",
                    first.get("id") is not None and (first.get("id"), first.get("token")) == (replay.get("id"), replay.get("token")),
                    f"{first.get('id')} vs {replay.get('id')}")
        print(f"     start-api (warm containers): median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms a request",
              flush=True)
        event_functions(suite, state, sam_invoke, send, auth, sqs, ddb, queues, env["TABLE_NAME"], events_jira, receiver,
                        state / "events-jira-ca.pem", state / "receiver-ca.pem")
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
        if moto_started:
            run([str(ROOT / "tools/moto.sh"), "stop", str(state)])
        for proc in (jira_proc, events_jira_proc, receiver_proc):
            if proc is not None:
                proc.terminate()
        run([helper, "engine-down", str(state)])
    return suite


if __name__ == "__main__":
    result = main()
    print(f"sam: {result.passed} passed, {result.failed} failed")
    sys.exit(1 if result.failed else 0)
