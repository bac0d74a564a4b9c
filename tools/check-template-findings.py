#!/usr/bin/env python3
"""What the linters do not see: the template transformed with SAM's own
translator (samtranslator, from the SAM CLI's virtualenv) and read against how
the services behave, so that a stack comes up on a first deploy in a fresh
account and its alarms can fire. One check per finding of issue 9 (and the
guided deploy's authentication question of issue 10), and the event
functions' of issue 20: each role only its own actions on its own resources,
the queues' dead letters and timeouts, partial batch responses, the schedule;
and (issue 24) the tick's role against the AWS calls its code makes, as
tests/roles.rs records them (tools/iam_roles.py).

Prints a line per check and closes with 'template-findings: N passed, N failed'.
"""
import copy
import json
import os
import pathlib
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent


class NoManagedPolicies:
    """The template names no managed policy by name; nothing to look up."""

    def load(self):
        return {}


passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def refs(node):
    """Every logical id a node refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= refs(v)
    return found


def depends_on(resources, start, target, seen=None):
    """Whether `start` reaches `target` through references or DependsOn."""
    seen = seen or set()
    if start in seen or start not in resources:
        return False
    seen.add(start)
    r = resources[start]
    nxt = refs(r.get("Properties", {})) | set(
        [r["DependsOn"]] if isinstance(r.get("DependsOn"), str) else r.get("DependsOn", []))
    return target in nxt or any(depends_on(resources, n, target, seen) for n in nxt)


# The translator wants a region for its pseudo parameters (no call is made).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
TEMPLATE = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
source = yaml_parse(TEMPLATE.read_text())
packaged = copy.deepcopy(source)
# As `sam deploy` hands it over: the code uploaded to S3.
for name, r in packaged["Resources"].items():
    if r["Type"] == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = f"s3://bucket/{name}.zip"
out = transform(packaged, {}, NoManagedPolicies())
resources = out["Resources"]
by_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}
params = source["Parameters"]

# 1. The 5xx alarm names the API SAM creates.
apis = by_type("AWS::ApiGateway::RestApi")
alarm = resources["Api5xxAlarm"]["Properties"]
dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
names = [a["Properties"].get("Name") for a in apis.values()]
check("the 5xx alarm's ApiName is the name of the REST API SAM creates",
      len(apis) == 1 and names[0] is not None and dims.get("ApiName") == names[0],
      f"alarm {dims.get('ApiName')} vs API {names}")

# 2. The function may use the table's key through DynamoDB (DynamoDB uses a
#    table's customer key on behalf of its caller, under its own encryption
#    context, so a condition on ours would refuse every read and write).
table_key = refs(resources["InstancesTable"]["Properties"]["SSESpecification"].get("KMSMasterKeyId", {}))


def role_statements(function):
    """The inline statements of the role SAM made for `function`."""
    role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


statements = role_statements("CreateInstanceFunction")


def allows_via_dynamodb(s):
    actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
    cond = s.get("Condition", {}).get("StringEquals", {})
    return (s["Effect"] == "Allow" and table_key <= refs(s["Resource"]) and "kms:Decrypt" in actions
            and any(a in actions for a in ("kms:GenerateDataKey*", "kms:GenerateDataKey"))
            and "dynamodb." in str(cond.get("kms:ViaService", "")) and "kms:EncryptionContext:service" not in cond)


check("the function's role may use the table's KMS key through DynamoDB",
      bool(table_key) and any(allows_via_dynamodb(s) for s in statements),
      "no statement lets DynamoDB use the table's key on the function's behalf")

# The role grants exactly the DynamoDB actions the function calls, on what it
# calls them on: PutItem (alone and as the parts of the create's
# TransactWriteItems), GetItem, BatchGetItem, UpdateItem on the table; Query on GSI1.
# (Table creation, scans and migrations are admin's, not the function's.)
granted = {}
for st in statements:
    for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]]):
        if a.startswith("dynamodb:"):
            granted.setdefault(a, []).append(st["Resource"])
needed = {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:Query"}
# Query: lists on GSI1, and the events API's one partition (EVENTS#<id>) of the table.
queried = sorted(json.dumps(r, sort_keys=True) for r in granted.get("dynamodb:Query", []))
check("the role grants exactly the DynamoDB actions the function calls (Query on GSI1 and the table's event log)",
      set(granted) == needed and queried == sorted(json.dumps(r, sort_keys=True) for r in (
          {"Fn::Sub": "${InstancesTable.Arn}/index/GSI1"}, {"Fn::GetAtt": ["InstancesTable", "Arn"]})),
      f"granted {sorted(granted)}, needed {sorted(needed)}; Query on {queried}")

# The organization's index projects what the code reads from it (a list
# answers from the index alone), no more: no sealed value, no token digest.
code = (ROOT / "src/store/instances.rs").read_text()
block = re.search(r"pub const INDEX_PROJECTION: &\[&str\] = &\[(.*?)\];", code, re.S)
projected = re.findall(r'"([^"]+)"', block.group(1)) if block else []
gsi = next(g for g in source["Resources"]["InstancesTable"]["Properties"]["GlobalSecondaryIndexes"]
           if g["IndexName"] == "GSI1")["Projection"]
check("GSI1 projects exactly the attributes the code's INDEX_PROJECTION names",
      gsi.get("ProjectionType") == "INCLUDE" and sorted(gsi.get("NonKeyAttributes", [])) == sorted(projected)
      and not {"secrets", "tokenDigest", "sealedDataKey"} & set(projected),
      f"template {gsi.get('NonKeyAttributes')} vs code {projected}")

# 3. Access logs do not need an account setting that a fresh account lacks.
stage = next(iter(by_type("AWS::ApiGateway::Stage").values()))["Properties"]
setting = stage.get("AccessLogSetting")
logging_param = params.get("AccessLogging", {})
conditional = isinstance(setting, dict) and "Fn::If" in setting
check("access logging is a parameter that can be off",
      conditional and "off" in logging_param.get("AllowedValues", []), f"AccessLogSetting {setting}")
check("when the stack sets the account's API Gateway CloudWatch role, the stage waits for it",
      "ApiGatewayAccount" in resources
      and resources["ApiGatewayAccount"]["Properties"].get("CloudWatchRoleArn") is not None
      and logging_param.get("Default") == "create-account-role"
      and any(depends_on(resources, k, "ApiGatewayAccount") for k in by_type("AWS::ApiGateway::Stage")),
      "the stage does not depend on the account setting it needs")

# 4. Retained log groups carry no fixed name (a stack deleted and created again
#    would find them "already exists").
fixed = [k for k, v in by_type("AWS::Logs::LogGroup").items()
         if v.get("DeletionPolicy") == "Retain" and "LogGroupName" in v.get("Properties", {})]
check("no retained log group has a fixed name", not fixed, f"{fixed}")

# 5. Reserved concurrency: none by default (a new account's quota is 10, all unreserved).
function = resources["CreateInstanceFunction"]["Properties"]
reserved = function.get("ReservedConcurrentExecutions")
check("reserved concurrency is a parameter that reserves none by default",
      params.get("ReservedConcurrency", {}).get("Default") in (0, "0")
      and isinstance(reserved, dict) and "Fn::If" in reserved, f"{reserved}")

# 6. The request deadline fits inside the function's timeout, which fits in API Gateway's 29 s.
settings = (ROOT / "src/settings.rs").read_text()
default_ms = int(re.search(r"DEFAULT_REQUEST_DEADLINE_MS: u64 = (\d+)", settings).group(1))
env_vars = function.get("Environment", {}).get("Variables", {})
deadline_ms = int(env_vars.get("REQUEST_DEADLINE_MS", default_ms))
timeout = int(function.get("Timeout", 3))
check(f"request deadline {deadline_ms} ms + 2 s <= function timeout {timeout} s <= 28 s",
      deadline_ms == default_ms and deadline_ms + 2000 <= timeout * 1000 <= 28000,
      f"deadline {deadline_ms} ms (code default {default_ms}), timeout {timeout} s")

# The credential check is on unless a deployment says otherwise, and fits in
# the request's deadline.
check_param = params.get("ProviderCheck", {})
check_timeout = int(env_vars.get("PROVIDER_CHECK_TIMEOUT_MS", "0"))
check("the JIRA credential check is on by default, off by parameter, inside the deadline",
      check_param.get("Default") == "on" and "off" in check_param.get("AllowedValues", [])
      and env_vars.get("PROVIDER_CHECK") == {"Ref": "ProviderCheck"} and 0 < check_timeout < deadline_ms
      and env_vars.get("PROVIDER_TEST_CA_FILE", {"Fn::If": ["HasLocalEndpoint", "", {"Ref": "AWS::NoValue"}]})
      == {"Fn::If": ["HasLocalEndpoint", "", {"Ref": "AWS::NoValue"}]},
      f"{check_param} PROVIDER_CHECK={env_vars.get('PROVIDER_CHECK')} timeout {check_timeout}")

# Deploy default arm64; local runs choose x86_64 through the parameter.
arch = params.get("Architecture", {})
check("arm64 by default, x86_64 by parameter",
      arch.get("Default") == "arm64" and "x86_64" in arch.get("AllowedValues", []) and
      function.get("Architectures") == [{"Ref": "Architecture"}], f"{arch} {function.get('Architectures')}")

# The endpoint variable sam local needs is declared, and absent in the cloud.
endpoint = env_vars.get("AWS_ENDPOINT_URL")
check("AWS_ENDPOINT_URL is declared for sam local and absent by default",
      isinstance(endpoint, dict) and "Fn::If" in endpoint and params.get("LocalEndpoint", {}).get("Default") == "",
      f"{endpoint}")

# Names CloudFormation makes: a FunctionName built from the stack name passes
# Lambda's 64 characters once the stack's name (up to 128) passes ~48.
functions = by_type("AWS::Lambda::Function")
named = [k for k, v in functions.items() if "FunctionName" in v.get("Properties", {})]
check("no function carries a fixed name (CloudFormation names it within Lambda's 64 characters)",
      bool(functions) and not named, f"functions {sorted(functions)}, named {named}")

# A service principal in the key policy acts only for this account (the
# confused-deputy guard): aws:SourceAccount, and aws:SourceArn or the
# service's own encryption-context binding (CloudWatch Logs').
key_policy = source["Resources"]["InstancesKey"]["Properties"]["KeyPolicy"]["Statement"]
unbound = []
for st in key_policy:
    if "Service" not in st.get("Principal", {}):
        continue
    cond = st.get("Condition", {})
    values = {k: v for op in cond.values() for k, v in op.items()}
    # Each bound to this account: the values name AWS::AccountId, not "*".
    names_account = lambda k: k in values and "AWS::AccountId" in json.dumps(values[k])
    bound = (names_account("aws:SourceAccount") and names_account("aws:SourceArn")) \
        or names_account("kms:EncryptionContext:aws:logs:arn")
    if not bound:
        unbound.append(st.get("Sid"))
check("every service principal of the key policy is bound to this account", not unbound, f"unbound: {unbound}")

# ---- Events (issue 20): three functions of one binary, two queues, a schedule.
EVENT_FUNCTIONS = {"EventsTickFunction": "tick", "EventsPollFunction": "poll", "EventsDeliverFunction": "deliver"}
TABLE = {"Fn::GetAtt": ["InstancesTable", "Arn"]}
KEY = {"Fn::GetAtt": ["InstancesKey", "Arn"]}
queue_arn = lambda q: {"Fn::GetAtt": [q, "Arn"]}
canon = lambda v: json.dumps(v, sort_keys=True)


def as_list(v):
    return v if isinstance(v, list) else [v]


def grants(stmts, prefix):
    """{(action, resource)} of the Allow statements whose actions start with `prefix`."""
    return {(a, canon(r)) for s in stmts if s["Effect"] == "Allow"
            for a in as_list(s["Action"]) if a.startswith(prefix) for r in as_list(s["Resource"])}


def pairs(actions, resource):
    return {(a, canon(resource)) for a in actions}


missing_fns = [f for f in EVENT_FUNCTIONS if f not in resources]
check("the three event functions exist", not missing_fns, f"missing {missing_fns}")
if missing_fns:
    print(f"template-findings: {passed} passed, {failed} failed")
    sys.exit(1)
fn_props = {f: resources[f]["Properties"] for f in EVENT_FUNCTIONS}
src_fns = {f: source["Resources"][f] for f in EVENT_FUNCTIONS}

# One binary built once: SAM shares a build between functions of the same
# CodeUri, runtime, architecture and Metadata.
# (SAM compares the whole Metadata, checkov's skips included.)
shapes = {canon([r["Properties"].get(k) for k in ("CodeUri", "Handler", "Runtime", "Architectures")] + [r["Metadata"]])
          for r in src_fns.values()}
check("the event functions share one build (the same CodeUri, Handler and whole Metadata; Binary events)",
      len(shapes) == 1 and all(r["Metadata"].get("BuildProperties") == {"Binary": "events"} for r in src_fns.values()),
      f"{shapes}")

# Each function's step, and what every one of them reads.
problems = []
for f, step in EVENT_FUNCTIONS.items():
    env = fn_props[f].get("Environment", {}).get("Variables", {})
    want = {"EVENTS_STEP": step, "TABLE_NAME": {"Ref": "InstancesTable"}, "KMS_KEY_ID": KEY,
            "POLL_QUEUE_URL": {"Ref": "PollQueue"}, "DELIVERY_QUEUE_URL": {"Ref": "DeliveryQueue"},
            "AWS_ENDPOINT_URL": {"Fn::If": ["HasLocalEndpoint", {"Ref": "LocalEndpoint"}, {"Ref": "AWS::NoValue"}]}}
    problems += [f"{f} {k}={env.get(k)}" for k, v in want.items() if env.get(k) != v]
    if "PROVIDER_TEST_CA_FILE" in env and env["PROVIDER_TEST_CA_FILE"] != {
            "Fn::If": ["HasLocalEndpoint", "", {"Ref": "AWS::NoValue"}]}:
        problems.append(f"{f} PROVIDER_TEST_CA_FILE outside sam local")
    if fn_props[f].get("KmsKeyArn") != KEY or fn_props[f].get("Architectures") != function.get("Architectures") \
            or fn_props[f].get("TracingConfig") != function.get("TracingConfig"):
        problems.append(f"{f}: key, architecture or tracing not as the API function's")
    logs = fn_props[f].get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
    if resources.get(logs, {}).get("Type") != "AWS::Logs::LogGroup" or \
            not resources[logs]["Properties"].get("RetentionInDays") or not resources[logs]["Properties"].get("KmsKeyId"):
        problems.append(f"{f}: no own log group with retention and the key ({logs})")
poll_env = fn_props["EventsPollFunction"]["Environment"]["Variables"]
deliver_env = fn_props["EventsDeliverFunction"]["Environment"]["Variables"]
if poll_env.get("PROVIDER_CHECK") != {"Ref": "ProviderCheck"} or \
        poll_env.get("PROVIDER_ALLOWED_HOSTS") != {"Ref": "ProviderAllowedHosts"}:
    problems.append("the poll does not take ProviderCheck and ProviderAllowedHosts")
if deliver_env.get("CALLBACK_ALLOWED_HOSTS") != {"Ref": "CallbackAllowedHosts"} or \
        params.get("CallbackAllowedHosts", {}).get("Default") != "":
    problems.append("CALLBACK_ALLOWED_HOSTS is not the parameter CallbackAllowedHosts (default empty)")
check("each event function runs its step with the table, key, queues and its own log group "
      "(test CA and endpoint only for sam local)", not problems, "; ".join(problems))

# Least privilege: each role exactly its actions on its resources. The tick's
# from the calls its code makes (below); the poll's and the deliverer's as listed here.
tick, poll, deliver = (role_statements(f) for f in EVENT_FUNCTIONS)
ESM = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
expect = {
    "EventsPollFunction": (poll,
                           pairs(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], TABLE),
                           pairs(ESM, queue_arn("PollQueue")) | pairs(["sqs:SendMessage"], queue_arn("DeliveryQueue"))),
    "EventsDeliverFunction": (deliver,
                              pairs(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], TABLE),
                              pairs(ESM + ("sqs:SendMessage",), queue_arn("DeliveryQueue"))),
}
for f, (stmts, dynamo, sqs) in expect.items():
    got_d, got_q = grants(stmts, "dynamodb:"), grants(stmts, "sqs:")
    check(f"{f}'s role: exactly its DynamoDB and SQS actions, on its index, table and queues",
          got_d == dynamo and got_q == sqs,
          f"DynamoDB extra {sorted(got_d - dynamo)} missing {sorted(dynamo - got_d)}; "
          f"SQS extra {sorted(got_q - sqs)} missing {sorted(sqs - got_q)}")
    others = {a for s in stmts for a in as_list(s["Action"]) if not a.startswith(("dynamodb:", "sqs:", "kms:"))}
    check(f"{f}'s role: nothing but DynamoDB, SQS and KMS inline", not others, f"{sorted(others)}")

# The tick's role against what its code calls (issue 24: a hand-written list
# here had only its Query and its poll messages, moto enforces no IAM, and
# on AWS its UpdateItem of an overdue notification and the delivery sent
# again were refused): the AWS calls tests/roles.rs recorded as the tick made
# them (a poll due, a notification overdue), each allowed by the role as IAM
# evaluates it, each of the role's grants used by one. No recording is a failure.
sys.path.insert(0, str(ROOT / "tools"))
import iam_roles  # noqa: E402

tick_calls = iam_roles.calls_file("tick")
recording, missing = iam_roles.load_recording(tick_calls)
if recording is None:
    check("EventsTickFunction's role against the AWS calls the tick makes", False, missing)
else:
    problems = iam_roles.check_function(resources, "EventsTickFunction", recording)
    check(f"EventsTickFunction's role against the AWS calls the tick makes ({iam_roles.summary(recording)}): "
          "each allowed, each grant used", not problems, "; ".join(problems))
    # A check that cannot fail fails itself: the role without the statements
    # of any one action the tick needs refuses its calls.
    needed = iam_roles.direct_actions(resources, recording)
    unseen = [a for a in needed if not any(
        a in p and "allowed by no statement" in p
        for p in iam_roles.check_function(iam_roles.without_action(resources, "EventsTickFunction", a),
                                          "EventsTickFunction", recording))]
    check(f"the tick's check finds a missing grant: its role without {', '.join(needed)} (each in turn) "
          "refuses the recorded calls", bool(needed) and not unseen, f"not found missing: {unseen}")


def kms_ok(stmts, secrets):
    """The key only through DynamoDB, through SQS, or (`secrets`) kms:Decrypt
    under the service's encryption context; nothing else of KMS."""
    problems = []
    for s in stmts:
        actions = [a for a in as_list(s["Action"]) if a.startswith("kms:")]
        if not actions:
            continue
        cond = s.get("Condition", {}).get("StringEquals", {})
        via = str(cond.get("kms:ViaService", ""))
        if s["Resource"] != KEY:
            problems.append(f"{s.get('Sid')} on {s['Resource']}")
        elif "dynamodb." in via or "sqs." in via:
            if "kms:CallerAccount" not in cond:
                problems.append(f"{s.get('Sid')} not bound to the account")
            if "sqs." in via and set(actions) != {"kms:GenerateDataKey", "kms:Decrypt"}:
                problems.append(f"{s.get('Sid')}: {actions} through SQS")
        elif secrets and actions == ["kms:Decrypt"] and cond == {"kms:EncryptionContext:service": "instances"}:
            continue
        else:
            problems.append(f"{s.get('Sid')}: {actions} {cond}")
    vias = {str(s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", ""))[:40] for s in stmts}
    if not any("dynamodb." in v for v in vias) or not any("sqs." in v for v in vias):
        problems.append("the key is not usable through both DynamoDB (the table) and SQS (the queues)")
    opened = any(as_list(s["Action"]) == ["kms:Decrypt"] and "kms:EncryptionContext:service" in str(s.get("Condition"))
                 for s in stmts)
    if secrets != opened:
        problems.append("opens sealed secrets" if opened else "cannot open the sealed secrets it needs")
    return problems


for f, stmts, secrets in (("EventsTickFunction", tick, False), ("EventsPollFunction", poll, True),
                          ("EventsDeliverFunction", deliver, True)):
    p = kms_ok(stmts, secrets)
    check(f"{f}'s role: the key through DynamoDB and SQS only{', and Decrypt of secrets (never GenerateDataKey)' if secrets else ''}",
          not p, "; ".join(p))

# No wildcard in any inline statement's resource, of any role the stack makes
# (the key policy's "*" is the key itself; managed policies are AWS's).
wild = []
for k, r in by_type("AWS::IAM::Role").items():
    for pol in r["Properties"].get("Policies", []):
        for s in pol["PolicyDocument"]["Statement"]:
            if any("*" in canon(x) for x in as_list(s["Resource"])):
                wild.append(f"{k}/{s.get('Sid', '?')}")
check("no inline IAM statement has a wildcard resource", not wild, f"{wild}")
managed = {k: r["Properties"].get("ManagedPolicyArns", []) for k, r in by_type("AWS::IAM::Role").items()
           if k.startswith("Events")}
sqs_wide = [k for k, v in managed.items() if any("SQSQueueExecutionRole" in str(a) for a in v)]
check("no event role carries AWSLambdaSQSQueueExecutionRole (every queue of the account, Resource *)",
      not sqs_wide, f"{sqs_wide}")

# The queues: the poll queue FIFO without content deduplication, each with a
# dead-letter queue of its kind after 5 receives, 14 days' retention there,
# encrypted with the stack's key, a visibility timeout 6 times its consumer's timeout.
queues = by_type("AWS::SQS::Queue")
problems = []
for q, dlq, consumer, fifo in (("PollQueue", "PollDeadLetterQueue", "EventsPollFunction", True),
                               ("DeliveryQueue", "DeliveryDeadLetterQueue", "EventsDeliverFunction", False)):
    qp, dp = queues.get(q, {}).get("Properties", {}), queues.get(dlq, {}).get("Properties", {})
    redrive = qp.get("RedrivePolicy", {})
    if redrive.get("deadLetterTargetArn") != queue_arn(dlq) or int(redrive.get("maxReceiveCount", 0)) != 5:
        problems.append(f"{q} redrive {redrive}")
    if int(dp.get("MessageRetentionPeriod", 0)) != 14 * 86400:
        problems.append(f"{dlq} keeps {dp.get('MessageRetentionPeriod')} s")
    if bool(qp.get("FifoQueue")) != fifo or bool(dp.get("FifoQueue")) != fifo:
        problems.append(f"{q}/{dlq} FIFO {qp.get('FifoQueue')}/{dp.get('FifoQueue')}, want {fifo}")
    if fifo and qp.get("ContentBasedDeduplication") is not False:
        problems.append(f"{q} ContentBasedDeduplication {qp.get('ContentBasedDeduplication')}")
    for name, props in ((q, qp), (dlq, dp)):
        if props.get("KmsMasterKeyId") != {"Ref": "InstancesKey"}:
            problems.append(f"{name} not encrypted with the stack's key")
        if "QueueName" in props:
            problems.append(f"{name} has a fixed name")
    timeout = int(fn_props[consumer].get("Timeout", 3))
    if int(qp.get("VisibilityTimeout", 30)) < 6 * timeout:
        problems.append(f"{q} visibility {qp.get('VisibilityTimeout')} s < 6 x {consumer}'s {timeout} s")
check("both queues: a dead-letter queue of their kind (5 receives, 14 days), the stack's key, "
      "visibility 6 x the consumer's timeout; polls FIFO without content deduplication", not problems, "; ".join(problems))
alarmed = {canon(d["Value"]) for a in by_type("AWS::CloudWatch::Alarm").values()
           for d in a["Properties"].get("Dimensions", []) if d["Name"] == "QueueName"}
check("each dead-letter queue has an alarm on its messages",
      all(canon({"Fn::GetAtt": [d, "QueueName"]}) in alarmed for d in ("PollDeadLetterQueue", "DeliveryDeadLetterQueue")),
      f"{alarmed}")

# The event sources: one mapping a queue, to its function, ten a batch, partial batch responses.
mappings = by_type("AWS::Lambda::EventSourceMapping")
problems = []
for q, fn in (("PollQueue", "EventsPollFunction"), ("DeliveryQueue", "EventsDeliverFunction")):
    ms = [m["Properties"] for m in mappings.values() if m["Properties"].get("EventSourceArn") == queue_arn(q)]
    if len(ms) != 1:
        problems.append(f"{len(ms)} mappings of {q}")
        continue
    m = ms[0]
    if m.get("FunctionName") != {"Ref": fn}:
        problems.append(f"{q} feeds {m.get('FunctionName')}")
    if m.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append(f"{q}: FunctionResponseTypes {m.get('FunctionResponseTypes')}")
    if int(m.get("BatchSize", 10)) != 10:
        problems.append(f"{q}: BatchSize {m.get('BatchSize')}")
check("each queue feeds its function, ten a batch, with ReportBatchItemFailures", not problems and len(mappings) == 2,
      "; ".join(problems) or f"{len(mappings)} mappings")

# The schedule: every minute, on time, the tick, no fixed name, no retry;
# the scheduler's role may invoke the tick and nothing else.
schedules = by_type("AWS::Scheduler::Schedule")
sched = next(iter(schedules.values()), {}).get("Properties", {})
target = sched.get("Target", {})
sched_role = resources.get(target.get("RoleArn", {}).get("Fn::GetAtt", [""])[0], {})
sched_stmts = [s for p in sched_role.get("Properties", {}).get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
check("one schedule: rate(1 minute), FlexibleTimeWindow OFF, the tick as target, no fixed name, no retry",
      len(schedules) == 1 and sched.get("ScheduleExpression") == "rate(1 minute)"
      and sched.get("FlexibleTimeWindow") == {"Mode": "OFF"}
      and target.get("Arn") == {"Fn::GetAtt": ["EventsTickFunction", "Arn"]} and "Name" not in sched
      and target.get("RetryPolicy", {}).get("MaximumRetryAttempts") == 0,
      f"{len(schedules)} schedules: {sched}")
trust = sched_role.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement", [])
check("the schedule's role invokes the tick only, assumed by EventBridge Scheduler for this account only",
      grants(sched_stmts, "") == {("lambda:InvokeFunction", canon({"Fn::GetAtt": ["EventsTickFunction", "Arn"]}))}
      and len(trust) == 1 and trust[0].get("Principal") == {"Service": "scheduler.amazonaws.com"}
      and trust[0].get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"},
      f"{grants(sched_stmts, '')}; trust {trust}")

# Timeouts against the code's own budgets.
poll_rs = (ROOT / "src/events/poll.rs").read_text()
deliver_rs = (ROOT / "src/events/deliver.rs").read_text()
budget = int(re.search(r"pub const BUDGET: Duration = Duration::from_secs\((\d+)\)", poll_rs).group(1))
callback = int(re.search(r"pub const TIMEOUT: Duration = Duration::from_secs\((\d+)\)", deliver_rs).group(1))
lease_ms = int(re.search(r"pub const LEASE_MS: i64 = ([\d_]+);", deliver_rs).group(1).replace("_", ""))
t_tick, t_poll, t_deliver = (int(fn_props[f].get("Timeout", 3)) for f in EVENT_FUNCTIONS)
delivery_visibility = int(queues["DeliveryQueue"]["Properties"].get("VisibilityTimeout", 30))
driver_rs = (ROOT / "src/events/driver.rs").read_text()
at_once = int(re.search(r"pub const POLLS_AT_ONCE: usize = (\d+);", driver_rs).group(1))
poll_batch = max(int(m["Properties"].get("BatchSize", 10)) for m in resources.values()
                 if m.get("Type") == "AWS::Lambda::EventSourceMapping"
                 and "PollQueue" in json.dumps(m["Properties"].get("EventSourceArn")))
rounds = -(-poll_batch // at_once)
check(f"poll timeout {t_poll} s > a batch's {rounds} rounds of its JIRA budget {budget} s ({poll_batch} polls, "
      f"{at_once} at once); deliver timeout {t_deliver} s > the callback's "
      f"{callback} s, its lease {lease_ms // 1000} s < the visibility {delivery_visibility} s; tick {t_tick} s <= 60 s",
      t_poll > rounds * budget and t_deliver > callback and lease_ms // 1000 < delivery_visibility and t_tick <= 60,
      f"tick {t_tick}, poll {t_poll}, deliver {t_deliver}")

# The due index as the code creates it locally (src/store/setup.rs) and queries it.
table_props = source["Resources"]["InstancesTable"]["Properties"]
due = next((g for g in table_props["GlobalSecondaryIndexes"] if g["IndexName"] == "DUE"), None)
attrs = {a["AttributeName"]: a["AttributeType"] for a in table_props["AttributeDefinitions"]}
store_mod = (ROOT / "src/store/mod.rs").read_text()
setup_rs = (ROOT / "src/store/setup.rs").read_text()
check("the index DUE: pollShard (S) HASH, pollDue (N) RANGE, keys only, as src/store names and creates it",
      due is not None and due["KeySchema"] == [{"AttributeName": "pollShard", "KeyType": "HASH"},
                                               {"AttributeName": "pollDue", "KeyType": "RANGE"}]
      and due["Projection"] == {"ProjectionType": "KEYS_ONLY"} and attrs.get("pollShard") == "S"
      and attrs.get("pollDue") == "N" and 'pub const DUE_INDEX: &str = "DUE";' in store_mod
      and 'key_el("pollShard", KeyType::Hash)' in setup_rs and 'key_el("pollDue", KeyType::Range)' in setup_rs
      and "ProjectionType::KeysOnly" in setup_rs,
      f"{due} {attrs}")

# `sam deploy --guided` asks "has no authentication. Is this okay? [y/N]" for an
# Api event without Auth (on the event or its API): the function authenticates
# every request itself, and the template says so.
# SAM CLI's own check, the one `sam deploy --guided` runs.
from samcli.commands.deploy.auth_utils import auth_per_resource  # noqa: E402
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider  # noqa: E402

stacks, _ = SamLocalStackProvider.get_stacks(str(TEMPLATE))
unauth = sorted({name for name, ok in auth_per_resource(stacks) if not ok})
check("every Api event states its authentication (sam deploy --guided does not stop to ask)", not unauth, f"{unauth}")

print(f"template-findings: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
