#!/usr/bin/env python3
"""`make bench`: the figures the README quotes, measured on this machine.

1. Init duration, as Lambda's REPORT line counts it: from spawning the
   release bootstrap to its first GET .../runtime/invocation/next, under the
   Lambda Runtime API emulator below; median of RUNS cold starts, side by side
   (alternating) with a lambda_runtime hello world of the same release profile.
   Also the first create after each cold start (data key, connections).
2. Round trips per create, counted by a forwarder in front of the DynamoDB/KMS
   server (by X-Amz-Target), after one warm-up create.
3. CPU per create without I/O: the criterion benchmark benches/create_path.rs.
4. Peak memory (VmHWM) of the bootstrap after 1,000 creates.
5. Package size: the zipped bootstrap of `cargo lambda build --release --arm64
   --output-format zip`.
6. Round trips and warm latency of the reads, in the same warm environment:
   a token-addressed GET /instances/{id}, and a list page of 50.
7. What the JIRA credential check costs: creates against a local HTTPS
   stand-in for JIRA (a certificate made here), with the check on, over a
   kept-alive connection and over a new one each time (the stand-in closes
   it), beside creates with the check off. The local figures are the
   function's own cost; a real check adds the network to the JIRA site.
8. What a hub call costs: GET /incidents/DEMO-1 through the function (its
   DynamoDB and KMS requests counted, its JIRA requests counted by the
   stand-in) beside the same GET sent to the stand-in directly (a kept-alive
   TLS connection, basic auth), side by side; the overhead as a ratio and in
   ms.

Usage: lambda_bench.py BOOTSTRAP HELLO LOCAL_BIN_DIR   (AWS_ENDPOINT_URL: moto)
Writes target/bench/results.json and prints one table.
"""
import collections
import http.client
import http.server
import json
import os
import pathlib
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COLD_STARTS", "25"))
KEYED = 200    # warm creates with an Idempotency-Key (first: moto's transactions slow down as its table grows)
PLAIN = 800    # then warm creates without one; 1,000 in all before the memory reading
READS = 200   # then token-addressed reads of one instance
LISTS = 50    # and list pages (pageSize=50, over the 1,000 instances)
CHECKED = 100  # creates with the credential check, per connection mode
HUB = 200      # hub calls, and as many direct calls to the stand-in


def nodelay(sock):
    # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to small exchanges.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, TCP_NODELAY, no access log."""
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        nodelay(self.connection)

    def log_message(self, *args):
        pass


# ---- the Lambda Runtime API emulator -----------------------------------------

class Runtime:
    """Serves one function process: hands out queued events on /next, records
    the first poll and each response."""

    def __init__(self):
        self.events = queue.Queue()
        self.first_poll = None
        self.first_poll_event = threading.Event()
        self.responses = {}
        self.done = collections.defaultdict(threading.Event)
        runtime = self

        class Handler(QuietHandler):

            def reply(self, status, body=b"{}", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.endswith("/runtime/invocation/next"):
                    if runtime.first_poll is None:
                        runtime.first_poll = time.perf_counter()
                        runtime.first_poll_event.set()
                    request_id, body = runtime.events.get()
                    deadline = int((time.time() + 30) * 1000)
                    self.reply(200, body, [
                        ("Lambda-Runtime-Aws-Request-Id", request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:instances"),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                        ("Content-Type", "application/json"),
                    ])
                else:
                    self.reply(404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = self.path.split("/")
                if "invocation" in parts and parts[-1] in ("response", "error"):
                    request_id = parts[-2]
                    runtime.responses[request_id] = (parts[-1], body, time.perf_counter())
                    self.reply(202)
                    runtime.done[request_id].set()
                else:  # init/error
                    runtime.responses["init"] = ("error", body, time.perf_counter())
                    self.reply(202)
                    runtime.first_poll_event.set()

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, body, timeout=30):
        request_id = secrets.token_hex(8)
        start = time.perf_counter()
        self.events.put((request_id, body))
        if not self.done[request_id].wait(timeout):
            raise RuntimeError("the function did not answer")
        kind, response, end = self.responses.pop(request_id)
        if kind != "response":
            raise RuntimeError(f"invocation error: {response[:300]!r}")
        return json.loads(response), (end - start) * 1000

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def spawn(binary, runtime, env):
    full = dict(env)
    full.update({
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": "instances",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/instances",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    })
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not runtime.first_poll_event.wait(30) or runtime.first_poll is None:
        proc.kill()
        raise RuntimeError(f"{binary} did not poll: {runtime.responses.get('init')}")
    return proc, (runtime.first_poll - start) * 1000


def stop(proc):
    proc.kill()
    proc.wait()


# ---- a JIRA stand-in over HTTPS ---------------------------------------------

def make_certificates(directory):
    """A CA and a certificate for localhost signed by it (PEM files)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (directory / "leaf.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "ca.pem"


# An issue as JIRA answers one (about 2 KB, some members null).
ISSUE = json.dumps({
    "id": "10001", "key": "DEMO-1", "self": "https://localhost/rest/api/2/issue/10001",
    "fields": {"summary": "Printer on fire", "description": "It started with a smell. " * 20,
               "status": {"name": "To Do", "id": "10000", "statusCategory": {"key": "new"}, "description": None},
               "priority": {"name": "High", "id": "2"}, "issuetype": {"name": "Task", "id": "10001", "avatarId": None},
               "assignee": None, "reporter": {"accountId": "5b10", "displayName": "Demo", "emailAddress": None},
               "labels": ["customer"], "duedate": None, "resolution": None, "created": "2026-11-30T10:30:00.000+1100",
               "updated": "2026-12-01T09:00:00.000+1100", "customfield_10000": None}}).encode()


class JiraStandIn:
    """Answers GET /rest/api/2/issue/... with an issue, any other GET
    (/rest/api/2/myself) with an account; `close` makes every
    answer close its connection (a new TLS handshake per check)."""

    def __init__(self, directory):
        import ssl
        self.close = False
        self.hits = 0
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self):
                stand_in.hits += 1
                body = ISSUE if self.path.startswith("/rest/api/2/issue/") else b'{"accountId": "5b10ac8d82e05b22cc7d4ef5"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if stand_in.close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "leaf.pem", directory / "leaf.key")
        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# ---- the counting forwarder ---------------------------------------------------

class Forwarder:
    def __init__(self, upstream):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        host = urllib.parse.urlparse(upstream)
        fwd = self
        local = threading.local()

        class Handler(QuietHandler):

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "?")
                with fwd.lock:
                    fwd.counts[target] += 1
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(host.hostname, host.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("POST", self.path, body, headers)
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            counts = dict(self.counts)
            self.counts.clear()
        return counts


# ---- the measurements ---------------------------------------------------------

def vm_hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main():
    bootstrap, hello, local_bin = sys.argv[1:4]
    moto = os.environ["AWS_ENDPOINT_URL"]
    fwd = Forwarder(moto)
    env = dict(os.environ)
    env.update({"TABLE_NAME": "bench-" + secrets.token_hex(3), "KMS_KEY_ID": "alias/bench-" + secrets.token_hex(3), "RUST_LOG": "info",
                "PROVIDER_CHECK": "off"})  # example.atlassian.net is nobody's JIRA; section 7 measures the check
    admin = str(ROOT / "target/release/admin")
    subprocess.run([admin, "setup"], env=env, check=True, capture_output=True)
    creds = json.loads(subprocess.run([admin, "create-credentials", "--organization", "bench", "--user", "b@example.com"],
                                      env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    fenv = dict(env, AWS_ENDPOINT_URL=fwd.url)
    event = (ROOT / "events/create-rest-api.json").read_text()
    event = event.replace("{{USER_SECRET}}", creds["userSecret"]).replace("{{ORGANIZATION_SECRET}}", creds["organizationSecret"])
    create = event.encode()
    keyed = json.loads(event)

    def keyed_event():
        e = dict(keyed)
        e["headers"] = dict(e["headers"], **{"Idempotency-Key": secrets.token_hex(8)})
        e["multiValueHeaders"] = {k: [v] for k, v in e["headers"].items()}
        return json.dumps(e).encode()

    results = {}

    # 1. cold starts, side by side
    inits = {"bootstrap": [], "hello": []}
    first_creates = []
    for i in range(RUNS):
        for name, binary in (("bootstrap", bootstrap), ("hello", hello)) if i % 2 == 0 else (("hello", hello), ("bootstrap", bootstrap)):
            rt = Runtime()
            proc, init_ms = spawn(binary, rt, fenv)
            inits[name].append(init_ms)
            if name == "bootstrap":
                answer, ms = rt.invoke(create)
                assert answer["statusCode"] == 200, answer
                first_creates.append(ms)
            stop(proc)
            rt.close()
    fwd.take()
    med = {k: statistics.median(v) for k, v in inits.items()}
    results["init_ms"] = {"bootstrap": med["bootstrap"], "hello": med["hello"], "ratio": med["bootstrap"] / med["hello"],
                          "runs": RUNS, "bootstrap_all": inits["bootstrap"], "hello_all": inits["hello"]}
    results["first_create_ms"] = statistics.median(first_creates)

    # 2 and 4. one warm environment: round trips, warm latency, peak memory
    rt = Runtime()
    proc, _ = spawn(bootstrap, rt, fenv)
    answer, _ = rt.invoke(create)  # warm-up: data key, credential, connections
    assert answer["statusCode"] == 200, answer
    fwd.take()
    keyed_ms = []
    for _ in range(KEYED):
        answer, ms = rt.invoke(keyed_event())
        assert answer["statusCode"] == 200, answer
        keyed_ms.append(ms)
    keyed_counts = fwd.take()
    plain_ms = []
    for _ in range(PLAIN):
        answer, ms = rt.invoke(create)
        assert answer["statusCode"] == 200, answer
        plain_ms.append(ms)
    plain_counts = fwd.take()
    hwm = vm_hwm_kib(proc.pid)

    # 5. reads in the same warm environment: a token-addressed read of one
    # instance, and a list page.
    created = json.loads(answer["body"])
    auth = f"User {creds['userSecret']}, Organization {creds['organizationSecret']}, Element {created['token']}"

    def get_event(name, authorization):
        e = json.loads((ROOT / "events" / name).read_text().replace("{{INSTANCE_ID}}", str(created["id"])))
        e["headers"] = dict(e["headers"], Authorization=authorization)
        e["multiValueHeaders"] = {k: [v] for k, v in e["headers"].items()}
        return json.dumps(e).encode()

    # The list is not addressed by a token (with one, the token is resolved too: one GetItem more).
    plain_auth = f"User {creds['userSecret']}, Organization {creds['organizationSecret']}"
    # Updates by token: a rename (name and tags only: one conditional write)
    # and a configuration entry (read, merged and checked, then written).
    def patch_event(path, body):
        e = json.loads(get_event("patch-instance.json", auth))
        e["path"] = path.replace("{{INSTANCE_ID}}", str(created["id"]))
        e["pathParameters"] = {"proxy": e["path"].lstrip("/")}
        e["requestContext"]["path"] = "/prod" + e["path"]
        e["body"] = json.dumps(body)
        return json.dumps(e).encode()

    reads = {}
    for what, body, n in (("by_token", get_event("get-instance.json", auth), READS),
                          ("list_page", get_event("list-instances.json", plain_auth), LISTS),
                          ("rename", patch_event("/instances", {"name": "Renamed", "tags": ["bench"]}), READS),
                          ("configuration", patch_event("/instances", {"configuration": {"event.vendor.type": "polling"}}), READS)):
        fwd.take()
        ms = []
        for _ in range(n):
            got, t = rt.invoke(body)
            assert got["statusCode"] == 200, got
            ms.append(t)
        reads[what] = (fwd.take(), n, statistics.median(ms))
    stop(proc)
    rt.close()

    # 7. the credential check, against a local stand-in
    import tempfile
    certs = pathlib.Path(tempfile.mkdtemp(prefix="bench-jira-"))
    ca = make_certificates(certs)
    jira = JiraStandIn(certs)
    checked = dict(fenv, PROVIDER_CHECK="on", PROVIDER_ALLOWED_HOSTS="localhost", PROVIDER_TEST_CA_FILE=str(ca))
    body = json.loads(event)
    body_json = json.loads(body["body"])
    body_json["configuration"]["jira.api.url"] = f"https://localhost:{jira.port}"
    body["body"] = json.dumps(body_json)
    checked_create = json.dumps(body).encode()
    rt = Runtime()
    proc, _ = spawn(bootstrap, rt, checked)
    answer, first_checked_ms = rt.invoke(checked_create)
    assert answer["statusCode"] == 200 and jira.hits == 1, answer
    check_ms = {}
    for mode in ("kept_alive", "new_connection"):
        jira.close = mode == "new_connection"
        ms = []
        for _ in range(CHECKED):
            got, t = rt.invoke(checked_create)
            assert got["statusCode"] == 200, got
            ms.append(t)
        check_ms[mode] = statistics.median(ms)
    assert jira.hits == 1 + 2 * CHECKED, jira.hits

    # 8. a hub call, against the same stand-in, beside a direct call to it
    jira.close = False
    hub_instance = json.loads(got["body"])
    hub_event = json.loads((ROOT / "events/hub-get-incident.json").read_text()
                           .replace("{{USER_SECRET}}", creds["userSecret"])
                           .replace("{{ORGANIZATION_SECRET}}", creds["organizationSecret"])
                           .replace("{{HUB_TOKEN}}", hub_instance["token"]))
    hub_call = json.dumps(hub_event).encode()
    answer, _ = rt.invoke(hub_call)  # warm: the credential, the connection to the site
    assert answer["statusCode"] == 200, answer
    import base64
    import ssl
    context = ssl.create_default_context(cafile=str(ca))
    direct = http.client.HTTPSConnection("localhost", jira.port, context=context)
    basic = "Basic " + base64.b64encode(b"jira-user@example.com:jira-password").decode()
    fwd.take()
    hits_before = jira.hits
    hub_ms, direct_ms = [], []
    for _ in range(HUB):
        got, t = rt.invoke(hub_call)
        assert got["statusCode"] == 200, got
        hub_ms.append(t)
        t0 = time.perf_counter()
        direct.request("GET", "/rest/api/2/issue/DEMO-1", headers={"Authorization": basic, "Accept": "application/json"})
        direct.getresponse().read()
        direct_ms.append((time.perf_counter() - t0) * 1000)
    hub_counts = fwd.take()
    jira_per_call = (jira.hits - hits_before - HUB) / HUB
    stop(proc)
    rt.close()
    jira.server.shutdown()

    def per_create(counts, n):
        return {k.split(".")[-1]: v / n for k, v in sorted(counts.items())}

    results["round_trips_per_create"] = {"without_key": per_create(plain_counts, PLAIN), "with_key": per_create(keyed_counts, KEYED)}
    results["warm_create_ms"] = {"without_key": statistics.median(plain_ms), "with_key": statistics.median(keyed_ms)}
    results["vm_hwm_mib_after_1001_creates"] = hwm / 1024
    results["round_trips_per_read"] = {k: per_create(c, n) for k, (c, n, _) in reads.items()}
    results["warm_read_ms"] = {k: m for k, (_, _, m) in reads.items()}
    results["credential_check_ms"] = {"first_create": first_checked_ms, **check_ms,
                                      "unchecked": statistics.median(plain_ms), "creates": CHECKED}
    hub_med, direct_med = statistics.median(hub_ms), statistics.median(direct_ms)
    results["hub"] = {"calls": HUB, "round_trips_per_call": per_create(hub_counts, HUB), "jira_requests_per_call": jira_per_call,
                      "hub_ms": hub_med, "direct_ms": direct_med, "overhead_ms": hub_med - direct_med,
                      "ratio": hub_med / direct_med if direct_med else None}

    out = ROOT / "target/bench/results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing.update(results)
    out.write_text(json.dumps(existing, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "init_ms"}, indent=2))


if __name__ == "__main__":
    main()
