#!/usr/bin/env python3
"""Runs every event in events/ through the real Lambda runtime loop.

`cargo lambda watch` serves the function (a debug build) behind its Lambda
Runtime API emulator; `cargo lambda invoke --data-file` sends each event, as
`sam local invoke` would. Credentials are made with `admin` against the
DynamoDB/KMS server named by AWS_ENDPOINT_URL, in a table and key of this run's
own, and filled into the events' placeholders. Each event's status (and error
code, and request id) is checked against events/expected.json.

Prints a line per event and closes with 'events: N passed, N failed'.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

from local_function import ROOT, served


def main():
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("run-events: AWS_ENDPOINT_URL is not set (make test starts the local server)")
    passed = failed = 0
    with served(sys.argv[1], "events") as fn:
        creds = fn.credentials
        expected = json.loads((ROOT / "events/expected.json").read_text())
        listed = {e["event"] for e in expected}
        on_disk = {p.name for p in (ROOT / "events").glob("*.json") if p.name != "expected.json"}
        if listed != on_disk:
            print(f"FAIL events/expected.json lists {sorted(listed ^ on_disk)} differently from events/")
            failed += 1
        ids = {}
        for case in expected:
            name = case["event"]
            text = (ROOT / "events" / name).read_text()
            text = text.replace("{{USER_SECRET}}", creds["userSecret"]).replace("{{ORGANIZATION_SECRET}}", creds["organizationSecret"])
            first_created = next((v[0] for v in ids.values() if v[0]), None)
            text = text.replace("{{INSTANCE_ID}}", str(first_created))
            data = fn.dir / name
            data.write_text(text)
            event = json.loads(text)
            out = None
            for attempt in range(3):
                # The first invoke waits for `cargo lambda watch` to build and start the function.
                r = subprocess.run([fn.cargo_lambda, "lambda", "invoke", "--invoke-address", "127.0.0.1",
                                    "--invoke-port", str(fn.port), "--data-file", str(data), "bootstrap"],
                                   capture_output=True, text=True, timeout=900)
                lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
                if r.returncode == 0 and lines:
                    out = json.loads(lines[-1])
                    break
                time.sleep(2)
            problems = []
            if out is None:
                problems.append(f"no response: {r.stderr.strip()[-500:]}")
            else:
                answer = json.loads(out.get("body") or "null")
                body = answer if isinstance(answer, dict) else {}
                if out.get("statusCode") != case["status"]:
                    problems.append(f"status {out.get('statusCode')} != {case['status']}: {str(body)[:300]}")
                if case["code"] and (body or {}).get("code") != case["code"]:
                    problems.append(f"code {(body or {}).get('code')} != {case['code']}")
                if case["status"] != 200 and (body or {}).get("requestId") != event["requestContext"]["requestId"]:
                    problems.append("the error does not carry the API Gateway request id")
                if case["status"] == 200 and "token" in body:
                    ids[name] = body.get("id"), body.get("token")
                    fn.secrets.add(body.get("token"))
                if name == "get-instance.json" and (body.get("id") != first_created or "token" in body):
                    problems.append(f"the read answered {str(answer)[:200]}, not instance {first_created} without its token")
                if name == "list-instances.json" and not (isinstance(answer, list) and answer):
                    problems.append(f"the list is {str(answer)[:200]}")
                if name == "patch-instance.json" and (body.get("name") != "Renamed" or (body.get("configuration") or {}).get("jira.password") != "********"):
                    problems.append(f"the patch answered {str(answer)[:200]}")
                if name in ("disable-instance.json", "enable-instance.json") and body.get("disabled") != (name == "disable-instance.json"):
                    problems.append(f"disabled is {body.get('disabled')} after {name}")
            if name == "idempotent-replay.json" and ids.get(name) != ids.get("idempotent-first.json"):
                problems.append("the replay did not answer the first response")
            if problems:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok   {name} -> {case['status']}")
        fn.secrets.add("jira-password")
    # cargo lambda watch sets AWS_LAMBDA_MAX_CONCURRENCY; the function notes it once at INFO instead of
    # the runtime's warning at every start.
    log = fn.log.read_text(errors="replace")
    if "concurrency-tokio feature is not enabled" in log:
        failed += 1
        print("FAIL the function's log warns that AWS_LAMBDA_MAX_CONCURRENCY is set without the feature")
    else:
        passed += 1
        print("ok   no warning about AWS_LAMBDA_MAX_CONCURRENCY at start")
    leaked, lines = fn.leaked()
    if leaked:
        failed += 1
        print(f"FAIL the function's log ({lines} lines) carries {len(leaked)} secret(s)")
    else:
        passed += 1
        print(f"ok   the function's log ({lines} lines) carries none of {len(fn.secrets)} secrets")
    if failed:
        print("--- cargo lambda watch log (tail) ---")
        print(fn.tail())
    print(f"events: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
