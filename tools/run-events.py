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
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("run-events: AWS_ENDPOINT_URL is not set (make test starts the local server)")
    bin_dir = pathlib.Path(sys.argv[1])
    cargo_lambda = str(bin_dir / "cargo-lambda")
    run = tempfile.mkdtemp(prefix="events-")
    env = dict(os.environ)
    env["TABLE_NAME"] = "events-" + secrets.token_hex(4)
    env["KMS_KEY_ID"] = "alias/events-" + secrets.token_hex(4)
    admin = [str(ROOT / "target/debug/admin")]
    setup = subprocess.run(admin + ["setup"], env=env, capture_output=True, text=True, check=True)
    print("setup:", setup.stdout.strip().splitlines()[-1])
    creds = json.loads(subprocess.run(
        admin + ["create-credentials", "--organization", "events", "--user", "events@example.com"],
        env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])

    env_file = pathlib.Path(run) / "function.env"
    keys = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_EC2_METADATA_DISABLED", "TABLE_NAME", "KMS_KEY_ID"]
    env_file.write_text("".join(f"{k}={env[k]}\n" for k in keys if k in env))
    port = free_port()
    watch_log = open(pathlib.Path(run) / "watch.log", "w")
    watch = subprocess.Popen(
        [cargo_lambda, "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--env-file", str(env_file), "--disable-cors", "--ignore-changes", "--bin", "bootstrap"],
        cwd=ROOT, stdout=watch_log, stderr=subprocess.STDOUT, start_new_session=True)
    passed = failed = 0
    try:
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
            data = pathlib.Path(run) / name
            data.write_text(text)
            event = json.loads(text)
            out = None
            for attempt in range(3):
                # The first invoke waits for `cargo lambda watch` to build and start the function.
                r = subprocess.run([cargo_lambda, "lambda", "invoke", "--invoke-address", "127.0.0.1",
                                    "--invoke-port", str(port), "--data-file", str(data), "bootstrap"],
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
                body = json.loads(out.get("body") or "null")
                if out.get("statusCode") != case["status"]:
                    problems.append(f"status {out.get('statusCode')} != {case['status']}: {str(body)[:300]}")
                if case["code"] and (body or {}).get("code") != case["code"]:
                    problems.append(f"code {(body or {}).get('code')} != {case['code']}")
                if case["status"] != 200 and (body or {}).get("requestId") != event["requestContext"]["requestId"]:
                    problems.append("the error does not carry the API Gateway request id")
                if case["status"] == 200:
                    ids[name] = body.get("id"), body.get("token")
            if name == "idempotent-replay.json" and ids.get(name) != ids.get("idempotent-first.json"):
                problems.append("the replay did not answer the first response")
            if problems:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(problems))
            else:
                passed += 1
                print(f"ok   {name} -> {case['status']}")
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
        if failed:
            print("--- cargo lambda watch log (tail) ---")
            print("".join(open(pathlib.Path(run) / "watch.log").readlines()[-40:]))
    print(f"events: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
