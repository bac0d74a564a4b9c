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
   SAM's API Gateway emulation.

It brings up what it needs (tools/sam-local.sh: the engine, the base image),
starts a DynamoDB/KMS server (moto) on Docker's bridge address, which the
function's container reaches, and stops all it started. Prints a line per
check and closes with 'sam: N passed, N failed'.

Usage: run-sam.py LOCAL_BIN_DIR SAM_BIN_DIR
"""
import json
import os
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from local_function import check_event_answer, fill_event, start_standin  # noqa: E402
AL2023_GLIBC = (2, 34)
FUNCTION = "CreateInstanceFunction"


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


def last_json_line(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"statusCode"' in line:
            return json.loads(line)
    return None


def main():
    local_bin, sam_bin = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    suite = Suite()
    state = pathlib.Path(tempfile.mkdtemp(prefix="sam-suite-"))
    helper = str(ROOT / "tools/sam-local.sh")
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", PATH=f"{local_bin}:{os.environ['PATH']}")
    moto_started = api = jira_proc = None
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

        started = time.time()
        r = run([helper, "build"], env=env)
        build_s = time.time() - started
        built = ROOT / "target/sam-build"
        if not suite.check(f"sam build ({build_s:.0f} s)", r.returncode == 0 and (built / FUNCTION / "bootstrap").exists(),
                           (r.stdout + r.stderr)[-2000:]):
            return suite
        versions = glibc_versions(built / FUNCTION / "bootstrap")
        newest = versions[-1] if versions else (0,)
        suite.check(f"bootstrap needs glibc <= 2.34 (newest symbol: {'.'.join(map(str, newest))})",
                    bool(versions) and newest <= AL2023_GLIBC, f"needs {versions}")

        admin = [str(ROOT / "target/debug/admin")]
        for args in (["setup"], ["create-credentials", "--organization", "sam-suite", "--user", "ops@example.com"]):
            r = run(admin + args, env=env, check=True)
        creds = json.loads(r.stdout.strip().splitlines()[-1])
        env_file = state / "env.json"
        # The stand-in's CA inside the function's container (the code's
        # directory is mounted at /var/task).
        (built / FUNCTION / "jira-ca.pem").write_bytes((state / "jira-ca.pem").read_bytes())
        env_file.write_text(json.dumps({FUNCTION: {"TABLE_NAME": env["TABLE_NAME"], "KMS_KEY_ID": env["KMS_KEY_ID"],
                                                   "PROVIDER_TEST_CA_FILE": "/var/task/jira-ca.pem"}}))
        # The creates' JIRA (example.atlassian.net) is not reachable from here:
        # the check is off (tests/provider.rs and tests/hub.rs have it on);
        # the hub reaches the stand-in, allowed by its address.
        overrides = (f"Architecture=x86_64 LocalEndpoint={env['AWS_ENDPOINT_URL']} ProviderCheck=off "
                     f"ProviderAllowedHosts={bridge}")
        common = ["-t", str(built / "template.yaml"), "--env-vars", str(env_file),
                  "--parameter-overrides", overrides, "--skip-pull-image"]

        # Every event file through `sam local invoke`.
        expected = json.loads((ROOT / "events/expected.json").read_text())
        on_disk = {p.name for p in (ROOT / "events").glob("*.json") if p.name != "expected.json"}
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
            r = run([str(sam_bin / "sam"), "local", "invoke", FUNCTION, "-e", str(data)] + common, env=env, timeout=300)
            out = last_json_line(r.stdout)
            # SAM's emulator may start the function before its Runtime API
            # (the RIE, 127.0.0.1:9001 in the container) listens: the runtime
            # cannot connect and exits before any event reaches it. That is
            # the emulator's race, not an answer of the function: invoked
            # once more, and said.
            if out is None and "127.0.0.1:9001" in r.stderr and "Connection refused" in r.stderr:
                print(f"     {name}: SAM's Runtime API was not listening yet; invoked again", flush=True)
                r = run([str(sam_bin / "sam"), "local", "invoke", FUNCTION, "-e", str(data)] + common, env=env, timeout=300)
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
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(api.pid, signal.SIGKILL)
        if moto_started:
            run([str(ROOT / "tools/moto.sh"), "stop", str(state)])
        if jira_proc is not None:
            jira_proc.terminate()
        run([helper, "engine-down", str(state)])
    return suite


if __name__ == "__main__":
    result = main()
    print(f"sam: {result.passed} passed, {result.failed} failed")
    sys.exit(1 if result.failed else 0)
