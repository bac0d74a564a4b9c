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
import tempfile
import time

from local_function import ROOT, check_event_answer, fill_event, served, start_standin


def main():
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("run-events: AWS_ENDPOINT_URL is not set (make test starts the local server)")
    passed = failed = 0
    # The hub's events go to a JIRA stand-in of their own.
    jira_proc, jira = start_standin(pathlib.Path(tempfile.mkdtemp(prefix="events-jira-")) / "ca.pem")
    jira["caFile"] = str(pathlib.Path(jira["caFile"]))
    with served(sys.argv[1], "events", jira) as fn:
        creds = fn.credentials
        expected = json.loads((ROOT / "events/expected.json").read_text())
        listed = {e["event"] for e in expected}
        # events-*.json are the event functions' (the schedule's input, SQS
        # batches): the sam suite runs them through `sam local invoke` with
        # the instance, the queues and the callback they need.
        on_disk = {p.name for p in (ROOT / "events").glob("*.json")
                   if p.name != "expected.json" and not p.name.startswith("events-")}
        if listed != on_disk:
            print(f"FAIL events/expected.json lists {sorted(listed ^ on_disk)} differently from events/")
            failed += 1
        ids = {}
        for case in expected:
            name = case["event"]
            text = (ROOT / "events" / name).read_text()
            text, first_created = fill_event(text, creds, ids, jira)
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
            if out is None:
                problems = [f"no response: {r.stderr.strip()[-500:]}"]
            else:
                problems = check_event_answer(name, case, out, ids, first_created, event["requestContext"]["requestId"])
                if name in ids:
                    fn.secrets.add(ids[name][1])
            if problems:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok   {name} -> {case['status']}")
        fn.secrets.update({"jira-password", jira["password"]})
    jira_proc.terminate()
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
