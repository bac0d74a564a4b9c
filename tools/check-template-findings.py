#!/usr/bin/env python3
"""What the linters do not see: the template transformed with SAM's own
translator (samtranslator, from the SAM CLI's virtualenv) and read against how
the services behave, so that a stack comes up on a first deploy in a fresh
account and its alarms can fire. One check per finding of issue 9 (and the
guided deploy's authentication question of issue 10).

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
packaged["Resources"]["CreateInstanceFunction"]["Properties"]["CodeUri"] = "s3://bucket/instances.zip"
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
role = next(v for k, v in by_type("AWS::IAM::Role").items() if k.startswith("CreateInstanceFunction"))
statements = [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


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
check("the role grants exactly the DynamoDB actions the function calls (Query on GSI1 only)",
      set(granted) == needed and all("index/GSI1" in str(r) for r in granted.get("dynamodb:Query", [None])),
      f"granted {sorted(granted)}, needed {sorted(needed)}")

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
function = next(v for v in by_type("AWS::Lambda::Function").values())["Properties"]
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
