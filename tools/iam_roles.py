"""A function's role in the template against the AWS calls its code makes.

moto enforces no IAM: a call the template does not allow passes every test
and fails only on AWS. So the calls are recorded where the code makes them
(tests/roles.rs: an interceptor of the SDK clients, the test's own table,
queues and key named as the template's logical resources, written to
target/aws-calls/<step>.json), and each is evaluated here against the
function's role as SAM's translator makes it, the way IAM would:

- each SDK operation is the IAM action that authorizes it (SQS's batches
  are their single action's; a DynamoDB transaction or batch is each part's
  action on each part's table);
- a request on a resource encrypted with one of the template's KMS keys is
  also what that service asks KMS on the caller's behalf, under
  kms:ViaService;
- Action and Resource match with IAM's wildcards (* and ?), Resource
  resolved from Fn::GetAtt, Fn::Sub, Ref and Fn::Join to an ARN of the
  logical resource (pseudo parameters: aws, us-east-1, 123456789012);
  Condition evaluated against the request's context (an operator or an
  intrinsic it cannot evaluate is a failure, never a pass);
- an explicit Deny wins over any Allow; no Allow is an implicit deny.

It fails on a call not allowed, on a grant (a statement's action on one of
its resources) that no call used, and on a missing recording. Standard
library only, except `transformed` (samtranslator, from the SAM CLI's
virtualenv, as check-template-findings.py uses it).
"""
import copy
import json
import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION, ACCOUNT = "us-east-1", "123456789012"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::URLSuffix": "amazonaws.com"}

# The IAM prefix of each service, by the name the SDK gives it (its
# operation Metadata's service).
PREFIX = {"DynamoDB": "dynamodb", "SQS": "sqs", "KMS": "kms"}

# SDK operations authorized by another operation's action. SQS: "You cannot
# set permissions explicitly for SendMessageBatch, DeleteMessageBatch, or
# ChangeMessageVisibilityBatch"; the single action's permission covers them
# (Amazon SQS Developer Guide, "Amazon SQS batch actions").
ACTION_OF = {
    ("SQS", "SendMessageBatch"): "sqs:SendMessage",
    ("SQS", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("SQS", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}

# The parts of a DynamoDB transaction or batch, each authorized on its own
# table: a transaction's Put, Update, Delete and Get by PutItem, UpdateItem,
# DeleteItem and GetItem, its ConditionCheck by ConditionCheckItem
# (DynamoDB Developer Guide, "Using IAM with DynamoDB transactions");
# TransactWriteItems and TransactGetItems are no IAM action of their own.
# A batch by its own action on each table it names.
PART_ACTION = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
    "BatchGetItem": "dynamodb:BatchGetItem",
    "BatchWriteItem": "dynamodb:BatchWriteItem",
}

# What a service asks KMS on the caller's behalf, with the caller's
# permissions, for a request on a resource encrypted with a customer managed
# key. SQS: a producer kms:GenerateDataKey and kms:Decrypt, a consumer
# kms:Decrypt (Amazon SQS Developer Guide, "Amazon SQS key management").
# DynamoDB: what its key policy must allow a caller through DynamoDB, as the
# key policy of DynamoDB's own AWS-managed key does (Encrypt, Decrypt,
# ReEncrypt*, GenerateDataKey*, CreateGrant, DescribeKey).
DYNAMODB_KEY_USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                    "kms:CreateGrant", "kms:DescribeKey"]
VIA_SERVICE = {
    "SQS": lambda action: {"sqs:SendMessage": ["kms:GenerateDataKey", "kms:Decrypt"],
                           "sqs:ReceiveMessage": ["kms:Decrypt"]}.get(action, []),
    "DynamoDB": lambda action: DYNAMODB_KEY_USE,
}


class Unresolvable(Exception):
    """A part of a statement this model cannot evaluate: a failure, never a pass."""


def as_list(v):
    return v if isinstance(v, list) else [v]


def calls_file(step):
    """Where tests/roles.rs writes the recording of `step`: $AWS_CALLS_DIR,
    else $CARGO_TARGET_DIR/aws-calls, else target/aws-calls (relative
    directories from the repository's root, where the tests run)."""
    if os.environ.get("AWS_CALLS_DIR"):
        base = pathlib.Path(os.environ["AWS_CALLS_DIR"])
    else:
        base = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or "target") / "aws-calls"
    return (base if base.is_absolute() else ROOT / base) / f"{step}.json"


def load_recording(path):
    """(recording, None), or (None, why there is none)."""
    path = pathlib.Path(path)
    if not path.exists():
        return None, (f"{path} is missing: the AWS calls recorded by tests/roles.rs (`cargo test --test roles` "
                      f"with the local moto running, as `make test` runs it before this suite)")
    try:
        recording = json.loads(path.read_text())
    except ValueError as e:
        return None, f"{path} is not JSON: {e}"
    if not isinstance(recording, dict) or not recording.get("calls"):
        return None, f"{path} records no call"
    return recording, None


def transformed(source):
    """The template (parsed) as `sam deploy` hands it over and SAM's
    translator makes it: its Resources."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    packaged = copy.deepcopy(source)
    for name, r in packaged["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = f"s3://bucket/{name}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(packaged, {}, NoManagedPolicies())["Resources"]


def role_statements(resources, function):
    """The inline statements of the role of `function` (a Lambda function of
    the transformed template)."""
    role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
    return [s for p in role["Properties"].get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


class Model:
    """The logical resources as ARNs and the values Ref gives."""

    def __init__(self, resources):
        self.resources = resources

    def _type(self, logical):
        if logical not in self.resources:
            raise Unresolvable(f"no resource {logical}")
        return self.resources[logical]["Type"]

    def arn(self, logical):
        kind = self._type(logical)
        arns = {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical}:*",
        }
        if kind not in arns:
            raise Unresolvable(f"the ARN of {logical} ({kind})")
        return arns[kind]

    def ref(self, logical):
        if logical in PSEUDO:
            return PSEUDO[logical]
        kind = self._type(logical)
        if kind in ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Lambda::Function"):
            return logical  # a name, a key id
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical}"
        if kind == "AWS::SNS::Topic":
            return self.arn(logical)
        raise Unresolvable(f"Ref of {logical} ({kind})")

    def resolve(self, node):
        """A template value as the string it is once deployed (in this model)."""
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if attribute != "Arn":
                    raise Unresolvable(f"Fn::GetAtt {logical}.{attribute}")
                return self.arn(logical)
            if fn == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

                def sub(m):
                    name = m.group(1)
                    if name in names:
                        return self.resolve(names[name])
                    if "." in name:
                        return self.resolve({"Fn::GetAtt": name.split(".", 1)})
                    return self.ref(name)

                return re.sub(r"\$\{([^}!]+)\}", sub, text)
            if fn == "Fn::Join":
                return arg[0].join(self.resolve(p) for p in arg[1])
        raise Unresolvable(f"the value {json.dumps(node)}")

    def resource_arn(self, name):
        """A recorded resource (`InstancesTable`, `InstancesTable/index/DUE`,
        `PollQueue`, `InstancesKey`) as its ARN."""
        logical, _, rest = name.partition("/")
        return self.arn(logical) + (f"/{rest}" if rest else "")

    def key_of(self, name):
        """The template's KMS key that encrypts a recorded resource, if any."""
        logical = name.partition("/")[0]
        props = self.resources.get(logical, {}).get("Properties", {})
        kind = self.resources.get(logical, {}).get("Type")
        key = props.get("SSESpecification", {}).get("KMSMasterKeyId") if kind == "AWS::DynamoDB::Table" \
            else props.get("KmsMasterKeyId") if kind == "AWS::SQS::Queue" else None
        if isinstance(key, dict):
            target = (key.get("Ref") or as_list(key.get("Fn::GetAtt", [""]))[0]).split(".")[0]
            if self.resources.get(target, {}).get("Type") == "AWS::KMS::Key":
                return target
        return None


def wildcard(pattern, value, ignore_case):
    """IAM's matching: * any run of characters, ? any one; nothing else special."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def condition_holds(model, condition, context):
    """Whether a statement's Condition holds for a request's context (its
    keys in lower case)."""
    for operator, entries in condition.items():
        op, if_exists = (operator[:-len("IfExists")], True) if operator.endswith("IfExists") else (operator, False)
        if ":" in op:
            raise Unresolvable(f"the condition operator {operator}")
        negated = "Not" in op
        base = op.replace("Not", "")
        for key, wanted in entries.items():
            wanted = [model.resolve(w) if not isinstance(w, bool) else str(w).lower() for w in as_list(wanted)]
            have = context.get(key.lower())
            if have is None:
                # A key the request does not carry: a negated operator (and
                # ...IfExists) holds, the others do not.
                if negated or if_exists:
                    continue
                return False
            if base in ("StringEquals", "ArnEquals"):
                hit = have in wanted
            elif base == "StringEqualsIgnoreCase":
                hit = have.lower() in [w.lower() for w in wanted]
            elif base in ("StringLike", "ArnLike"):
                hit = any(wildcard(w, have, False) for w in wanted)
            elif base == "Bool":
                hit = have.lower() in [w.lower() for w in wanted]
            else:
                raise Unresolvable(f"the condition operator {operator}")
            if hit == negated:
                return False
    return True


def statement_applies(model, s, action, arn, context):
    """Whether statement `s` speaks of this request: its action, resource
    and condition all match."""
    if "Action" in s:
        action_ok = any(wildcard(a, action, True) for a in as_list(s["Action"]))
    else:
        action_ok = not any(wildcard(a, action, True) for a in as_list(s["NotAction"]))
    if "Resource" in s:
        resource_ok = any(wildcard(model.resolve(r), arn, False) for r in as_list(s["Resource"]))
    else:
        resource_ok = not any(wildcard(model.resolve(r), arn, False) for r in as_list(s["NotResource"]))
    return action_ok and resource_ok and condition_holds(model, s.get("Condition", {}), context)


def requests(model, call):
    """The IAM requests one recorded call is: [(action, resource ARN,
    context, what)]."""
    service, operation = call.get("service"), call.get("operation")
    if service not in PREFIX:
        raise Unresolvable(f"a call of an unknown service: {json.dumps(call)}")
    base_context = {"kms:calleraccount": ACCOUNT, "aws:requestedregion": REGION}
    if "parts" in call:
        parts = []
        for p in call["parts"]:
            if p.get("operation") not in PART_ACTION:
                raise Unresolvable(f"the part {p.get('operation')} of {operation}")
            parts.append((PART_ACTION[p["operation"]], p.get("resource", "")))
        if not parts:
            raise Unresolvable(f"{operation} with no part: {json.dumps(call)}")
    else:
        parts = [(ACTION_OF.get((service, operation), f"{PREFIX[service]}:{operation}"), call.get("resource", ""))]
    out = []
    for action, resource in parts:
        if resource.startswith("unknown") or not resource:
            raise Unresolvable(f"{service} {operation} on a resource the recording could not name: {resource!r}")
        context = dict(base_context)
        for k, v in (call.get("encryptionContext") or {}).items():
            context[f"kms:encryptioncontext:{k}".lower()] = v
        what = f"{service} {operation} on {resource}"
        out.append((action, model.resource_arn(resource), context, what))
        key = model.key_of(resource)
        if key and service in VIA_SERVICE:
            via = {"kms:viaservice": f"{PREFIX[service]}.{REGION}.amazonaws.com", "kms:calleraccount": ACCOUNT}
            for kms_action in VIA_SERVICE[service](action):
                out.append((kms_action, model.arn(key), via, f"{what}: {service} uses {key} for it"))
    return out


def direct_actions(resources, recording):
    """The IAM actions the recorded calls ask for themselves (not those a
    service asks KMS for on their behalf)."""
    model, out = Model(resources), set()
    for call in recording.get("calls", []):
        try:
            out |= {action for action, _, context, _ in requests(model, call) if "kms:viaservice" not in context}
        except Unresolvable:
            pass  # check_function says why
    return sorted(out)


def grants(model, statements):
    """Every Allow statement's (statement, action pattern, resource ARN pattern)."""
    out = []
    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        if "NotAction" in s or "NotResource" in s:
            raise Unresolvable(f"{s.get('Sid', '?')}: an Allow with NotAction or NotResource grants more than any "
                               "recorded call can show it needs")
        for a in as_list(s["Action"]):
            for r in as_list(s["Resource"]):
                out.append((s, a, model.resolve(r)))
    return out


def check_function(resources, function, recording):
    """The problems of `function`'s role against `recording`: [] when every
    recorded call is allowed and every grant used."""
    model = Model(resources)
    problems = []
    if recording.get("function") != function:
        problems.append(f"the recording is of {recording.get('function')}, not of {function}")
    # The test's resources are the function's: the environment variable the
    # code reads each one from names that resource in the template.
    env = resources.get(function, {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
    for logical, variable in (recording.get("resources") or {}).items():
        value = env.get(variable)
        named = value.get("Ref") if isinstance(value, dict) and "Ref" in value else \
            as_list(value.get("Fn::GetAtt", [None]))[0] if isinstance(value, dict) else None
        if named != logical:
            problems.append(f"the test names its {variable} {logical}, but {function}'s {variable} is {value}")
    statements = role_statements(resources, function)
    try:
        allow_grants = grants(model, statements)
    except Unresolvable as e:
        return problems + [f"cannot evaluate {function}'s role: {e}"]
    used = set()
    for call in recording.get("calls", []):
        try:
            reqs = requests(model, call)
        except Unresolvable as e:
            problems.append(f"cannot evaluate the call: {e}")
            continue
        for action, arn, context, what in reqs:
            try:
                applying = [s for s in statements if statement_applies(model, s, action, arn, context)]
            except Unresolvable as e:
                problems.append(f"{action} on {arn} ({what}): cannot evaluate the role: {e}")
                continue
            denied = [s.get("Sid", "?") for s in applying if s.get("Effect") == "Deny"]
            allowed = [s for s in applying if s.get("Effect") == "Allow"]
            if denied:
                # Denied, it uses no grant: the Allow it would have used is no use.
                problems.append(f"{action} on {arn} ({what}) is denied by {', '.join(denied)}")
                continue
            if not allowed:
                problems.append(f"{action} on {arn} ({what}) is allowed by no statement")
            for i, (s, a, r) in enumerate(allow_grants):
                if s in allowed and wildcard(a, action, True) and wildcard(r, arn, False):
                    used.add(i)
    for i, (s, a, r) in enumerate(allow_grants):
        if i not in used:
            problems.append(f"{s.get('Sid', '?')} grants {a} on {r}, which no recorded call used")
    return problems


def summary(recording):
    """The recorded calls in one line: `Query InstancesTable/index/DUE x64, ...`."""
    out = []
    for c in recording.get("calls", []):
        on = c.get("resource") or "+".join(f"{p.get('operation')} {p.get('resource')}" for p in c.get("parts", []))
        n = c.get("count", 1)
        out.append(f"{c.get('operation')} {on}" + (f" x{n}" if n != 1 else ""))
    return ", ".join(out)


def without_action(resources, function, action):
    """A copy of the transformed template whose `function`'s role has no
    statement granting `action`."""
    out = copy.deepcopy(resources)
    role = out[out[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
    for p in role["Properties"].get("Policies", []):
        doc = p["PolicyDocument"]
        doc["Statement"] = [s for s in as_list(doc["Statement"])
                            if not any(a.lower() == action.lower() for a in as_list(s.get("Action", [])))]
    return out
