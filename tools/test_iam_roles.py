#!/usr/bin/env python3
"""The roles checker (tools/iam_roles.py, run by check-template-findings.py)
against faults it must find: a copy of template.yaml without the tick's
UpdateItem statement, a missing recording, a grant no call uses, a grant on
the wrong resource, a Deny, the KMS use a service makes on the caller's
behalf; and the SDK operations as the IAM actions that authorize them.
Needs samtranslator (the SAM CLI's virtualenv: tools/venv.sh sam). Run:
`.venv/sam/bin/python tools/test_iam_roles.py`.
"""
import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import iam_roles  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

ROOT = iam_roles.ROOT
TICK = "EventsTickFunction"
# What tests/roles.rs records of the tick (a poll due, a notification overdue).
RECORDING = {
    "function": TICK,
    "resources": {"InstancesTable": "TABLE_NAME", "InstancesKey": "KMS_KEY_ID", "PollQueue": "POLL_QUEUE_URL",
                  "DeliveryQueue": "DELIVERY_QUEUE_URL"},
    "calls": [
        {"service": "DynamoDB", "operation": "Query", "resource": "InstancesTable/index/DUE", "count": 64},
        {"service": "DynamoDB", "operation": "UpdateItem", "resource": "InstancesTable", "count": 1},
        {"service": "SQS", "operation": "SendMessageBatch", "resource": "PollQueue", "count": 1},
        {"service": "SQS", "operation": "SendMessageBatch", "resource": "DeliveryQueue", "count": 1},
    ],
}
TABLE_ARN = f"arn:aws:dynamodb:{iam_roles.REGION}:{iam_roles.ACCOUNT}:table/InstancesTable"


def tick_statements(resources):
    role = resources[resources[TICK]["Properties"]["Role"]["Fn::GetAtt"][0]]
    return role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def by_sid(resources, sid):
    return next(s for s in tick_statements(resources) if s.get("Sid") == sid)


def without_updateitem(source):
    """A copy of the parsed template.yaml, the tick's UpdateItem statement removed."""
    out = copy.deepcopy(source)
    for policy in out["Resources"][TICK]["Properties"]["Policies"]:
        policy["Statement"] = [s for s in policy["Statement"] if "dynamodb:UpdateItem" not in s["Action"]]
    return out


class RolesChecker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.source = yaml_parse((ROOT / "template.yaml").read_text())
        cls.resources = iam_roles.transformed(cls.source)

    def problems(self, resources=None, recording=None):
        return iam_roles.check_function(resources or self.resources, TICK, recording or RECORDING)

    def changed(self):
        return copy.deepcopy(self.resources)

    # -- the template as it is, and without its UpdateItem statement.

    def test_the_template_allows_the_recorded_tick_and_grants_nothing_more(self):
        self.assertEqual(self.problems(), [])

    def test_without_the_updateitem_statement_the_recorded_updateitem_is_refused(self):
        source = without_updateitem(self.source)
        self.assertNotIn("PostponeOverdueNotifications", json.dumps(source["Resources"][TICK]))
        problems = self.problems(iam_roles.transformed(source))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn(f"dynamodb:UpdateItem on {TABLE_ARN} (DynamoDB UpdateItem on InstancesTable) "
                      "is allowed by no statement", problems[0])

    def run_findings(self, source, recording):
        """check-template-findings.py on a copy of the template (JSON), with
        `recording` (None: none) as the tick's: (exit code, output)."""
        with tempfile.TemporaryDirectory() as tmp:
            template = pathlib.Path(tmp) / "template.json"
            template.write_text(json.dumps(source))
            calls = pathlib.Path(tmp) / "aws-calls"
            calls.mkdir()
            if recording is not None:
                (calls / "tick.json").write_text(json.dumps(recording))
            done = subprocess.run([sys.executable, str(ROOT / "tools/check-template-findings.py"), str(template)],
                                  env={**os.environ, "AWS_CALLS_DIR": str(calls)}, capture_output=True, text=True)
            return done.returncode, done.stdout + done.stderr

    def test_the_whole_findings_check_fails_on_a_copy_without_the_updateitem_statement(self):
        code, out = self.run_findings(self.source, RECORDING)
        self.assertEqual(code, 0, out)
        code, out = self.run_findings(without_updateitem(self.source), RECORDING)
        self.assertEqual(code, 1, out)
        failed = [line for line in out.splitlines() if line.startswith("FAIL")]
        self.assertEqual(len(failed), 1, out)
        self.assertIn("EventsTickFunction's role against the AWS calls the tick makes", failed[0])
        self.assertIn("dynamodb:UpdateItem", failed[0])
        self.assertIn("allowed by no statement", failed[0])

    def test_the_whole_findings_check_fails_without_a_recording(self):
        code, out = self.run_findings(self.source, None)
        self.assertEqual(code, 1, out)
        failed = [line for line in out.splitlines() if line.startswith("FAIL")]
        self.assertEqual(len(failed), 1, out)
        self.assertIn("tick.json is missing", failed[0])
        self.assertIn("cargo test --test roles", failed[0])

    def test_a_recording_that_is_not_json_or_records_nothing_is_no_recording(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "tick.json"
            path.write_text("{")
            self.assertIn("is not JSON", iam_roles.load_recording(path)[1])
            path.write_text(json.dumps({"function": TICK, "calls": []}))
            self.assertIn("records no call", iam_roles.load_recording(path)[1])

    # -- grants no call uses, on the wrong resource, denied.

    def test_an_action_no_call_uses_is_an_unused_grant(self):
        r = self.changed()
        by_sid(r, "PostponeOverdueNotifications")["Action"].append("dynamodb:GetItem")
        self.assertEqual(self.problems(r), [
            f"PostponeOverdueNotifications grants dynamodb:GetItem on {TABLE_ARN}, which no recorded call used"])

    def test_a_resource_no_call_uses_is_an_unused_grant(self):
        r = self.changed()
        by_sid(r, "SendPolls")["Resource"] = [{"Fn::GetAtt": ["PollQueue", "Arn"]},
                                             {"Fn::GetAtt": ["PollDeadLetterQueue", "Arn"]}]
        problems = self.problems(r)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("SendPolls grants sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:PollDeadLetterQueue",
                      problems[0])

    def test_a_grant_on_the_index_does_not_allow_the_table(self):
        r = self.changed()
        by_sid(r, "PostponeOverdueNotifications")["Resource"] = {"Fn::Sub": "${InstancesTable.Arn}/index/DUE"}
        problems = self.problems(r)
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("dynamodb:UpdateItem on " + TABLE_ARN + " (DynamoDB UpdateItem on InstancesTable) is allowed "
                      "by no statement", problems[0])
        self.assertIn("which no recorded call used", problems[1])

    def test_a_deny_wins_over_the_allow(self):
        r = self.changed()
        tick_statements(r).append({"Sid": "NoDeliveries", "Effect": "Deny", "Action": "sqs:*",
                                   "Resource": {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}})
        problems = self.problems(r)
        self.assertEqual(len(problems), 2, problems)
        self.assertIn("sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:DeliveryQueue (SQS SendMessageBatch on "
                      "DeliveryQueue) is denied by NoDeliveries", problems[0])
        # The Allow it overrode is used by no call that went through.
        self.assertIn("SendDeliveriesAgain grants sqs:SendMessage", problems[1])

    def test_wildcards_match_as_iam_matches_them(self):
        r = self.changed()
        by_sid(r, "SendPolls")["Action"] = ["sqs:Send*"]
        by_sid(r, "QueryTheDueIndex")["Action"] = ["DynamoDB:Qu?ry"]
        by_sid(r, "QueryTheDueIndex")["Resource"] = {"Fn::Sub": "${InstancesTable.Arn}/index/*"}
        self.assertEqual(self.problems(r), [])
        by_sid(r, "SendPolls")["Action"] = ["sqs:SendMessageBatch"]
        self.assertIn("sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:PollQueue (SQS SendMessageBatch on "
                      "PollQueue) is allowed by no statement", self.problems(r)[0])

    # -- what SQS and DynamoDB ask KMS for on the caller's behalf.

    def test_a_queue_under_the_stacks_key_needs_the_key_through_sqs(self):
        r = self.changed()
        statements = tick_statements(r)
        statements.remove(by_sid(r, "QueueEncryptionThroughSqs"))
        problems = self.problems(r)
        self.assertTrue(problems)
        self.assertTrue(all("SQS uses InstancesKey for it" in p for p in problems), problems)
        self.assertTrue(any(p.startswith("kms:GenerateDataKey on arn:aws:kms:us-east-1:123456789012:key/InstancesKey")
                            for p in problems), problems)

    def test_the_key_through_another_service_is_not_the_key_through_sqs(self):
        r = self.changed()
        by_sid(r, "QueueEncryptionThroughSqs")["Condition"]["StringEquals"]["kms:ViaService"] = {
            "Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}
        problems = self.problems(r)
        self.assertTrue(any("allowed by no statement" in p and "SQS uses InstancesKey" in p for p in problems))
        self.assertTrue(any(p.startswith("QueueEncryptionThroughSqs grants") for p in problems))

    def test_a_condition_it_cannot_evaluate_is_a_failure(self):
        r = self.changed()
        by_sid(r, "QueueEncryptionThroughSqs")["Condition"]["ForAnyValue:StringEquals"] = {"kms:ViaService": "x"}
        self.assertTrue(any("cannot evaluate" in p and "ForAnyValue:StringEquals" in p for p in self.problems(r)))
        r = self.changed()
        by_sid(r, "SendPolls")["Resource"] = {"Fn::If": ["HasLocalEndpoint", "*", "*"]}
        self.assertTrue(any(p.startswith("cannot evaluate") for p in self.problems(r)), self.problems(r))

    # -- the recording itself.

    def test_the_recordings_resources_are_the_ones_the_functions_environment_names(self):
        recording = copy.deepcopy(RECORDING)
        recording["resources"]["PollQueue"] = "DELIVERY_QUEUE_URL"
        self.assertEqual(self.problems(recording=recording), [
            "the test names its DELIVERY_QUEUE_URL PollQueue, but EventsTickFunction's DELIVERY_QUEUE_URL is "
            "{'Ref': 'DeliveryQueue'}"])
        recording = copy.deepcopy(RECORDING)
        recording["function"] = "EventsPollFunction"
        self.assertIn("the recording is of EventsPollFunction, not of EventsTickFunction", self.problems(
            recording=recording))

    def test_a_call_on_a_resource_the_test_could_not_name_is_a_failure(self):
        recording = copy.deepcopy(RECORDING)
        recording["calls"].append({"service": "SQS", "operation": "SendMessage", "resource": "unknown queue None"})
        self.assertTrue(any("could not name" in p for p in self.problems(recording=recording)))

    def test_sdk_operations_are_the_iam_actions_that_authorize_them(self):
        model = iam_roles.Model(self.resources)

        def actions(call):
            return [(a, arn.rsplit(":", 1)[-1]) for a, arn, context, _ in iam_roles.requests(model, call)
                    if "kms:viaservice" not in context]

        self.assertEqual(actions({"service": "SQS", "operation": "SendMessageBatch", "resource": "PollQueue"}),
                         [("sqs:SendMessage", "PollQueue")])
        self.assertEqual(actions({"service": "SQS", "operation": "DeleteMessageBatch", "resource": "PollQueue"}),
                         [("sqs:DeleteMessage", "PollQueue")])
        self.assertEqual(actions({"service": "SQS", "operation": "ReceiveMessage", "resource": "DeliveryQueue"}),
                         [("sqs:ReceiveMessage", "DeliveryQueue")])
        self.assertEqual(actions({"service": "DynamoDB", "operation": "TransactWriteItems", "parts": [
            {"operation": "Put", "resource": "InstancesTable"}, {"operation": "Update", "resource": "InstancesTable"},
            {"operation": "Delete", "resource": "InstancesTable"},
            {"operation": "ConditionCheck", "resource": "InstancesTable"}]}),
            [("dynamodb:PutItem", "table/InstancesTable"), ("dynamodb:UpdateItem", "table/InstancesTable"),
             ("dynamodb:DeleteItem", "table/InstancesTable"), ("dynamodb:ConditionCheckItem", "table/InstancesTable")])
        self.assertEqual(actions({"service": "DynamoDB", "operation": "TransactGetItems",
                                  "parts": [{"operation": "Get", "resource": "InstancesTable"}]}),
                         [("dynamodb:GetItem", "table/InstancesTable")])
        self.assertEqual(actions({"service": "DynamoDB", "operation": "BatchGetItem",
                                  "parts": [{"operation": "BatchGetItem", "resource": "InstancesTable"}]}),
                         [("dynamodb:BatchGetItem", "table/InstancesTable")])
        self.assertEqual(actions({"service": "DynamoDB", "operation": "Query", "resource": "InstancesTable/index/GSI1"}),
                         [("dynamodb:Query", "table/InstancesTable/index/GSI1")])
        self.assertEqual(actions({"service": "KMS", "operation": "Decrypt", "resource": "InstancesKey"}),
                         [("kms:Decrypt", "key/InstancesKey")])
        for bad in ({"service": "DynamoDB", "operation": "TransactWriteItems", "parts": []},
                    {"service": "DynamoDB", "operation": "TransactWriteItems",
                     "parts": [{"operation": "Frobnicate", "resource": "InstancesTable"}]},
                    {"service": "S3", "operation": "GetObject", "resource": "x"}):
            with self.assertRaises(iam_roles.Unresolvable):
                iam_roles.requests(model, bad)

    def test_a_kms_call_carries_its_encryption_context_for_the_conditions(self):
        model = iam_roles.Model(self.resources)
        stmt = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Fn::GetAtt": ["InstancesKey", "Arn"]},
                "Condition": {"StringEquals": {"kms:EncryptionContext:service": "instances"}}}
        for context, holds in (({"service": "instances"}, True), ({"service": "other"}, False), (None, False)):
            call = {"service": "KMS", "operation": "Decrypt", "resource": "InstancesKey"}
            if context:
                call["encryptionContext"] = context
            (action, arn, ctx, _), = iam_roles.requests(model, call)
            self.assertEqual(iam_roles.statement_applies(model, stmt, action, arn, ctx), holds, context)
        # A negated operator holds on a key the request does not carry.
        negated = dict(stmt, Condition={"StringNotEquals": {"kms:EncryptionContext:service": "instances"}})
        self.assertTrue(iam_roles.statement_applies(model, negated, "kms:Decrypt", model.arn("InstancesKey"), {}))

    def test_calls_file_follows_the_target_directory(self):
        saved = {k: os.environ.pop(k, None) for k in ("AWS_CALLS_DIR", "CARGO_TARGET_DIR")}
        try:
            self.assertEqual(iam_roles.calls_file("tick"), ROOT / "target/aws-calls/tick.json")
            os.environ["CARGO_TARGET_DIR"] = "/elsewhere/target"
            self.assertEqual(iam_roles.calls_file("tick"), pathlib.Path("/elsewhere/target/aws-calls/tick.json"))
            os.environ["AWS_CALLS_DIR"] = "fixtures"
            self.assertEqual(iam_roles.calls_file("tick"), ROOT / "fixtures/tick.json")
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None)
                if v is not None:
                    os.environ[k] = v


if __name__ == "__main__":
    unittest.main(verbosity=2)
