"""The function served locally for the tests, as `make run` serves it: a table
and KMS key of the run's own on the DynamoDB/KMS server named by
AWS_ENDPOINT_URL, fresh credentials from `admin`, and `cargo lambda watch`
(the real runtime loop) on a free port. On exit it stops the function and
checks that nothing it logged carries a secret it was given."""
import contextlib
import json
import os
import pathlib
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_standin(ca_file, host="127.0.0.1", san=None, flavor="cloud"):
    """The JIRA stand-in (tools/jira_standin.py) on `host`, its CA written to
    `ca_file`: (the process, its ready line: url, user, password)."""
    args = [str(ROOT / ".venv/local/bin/python"), str(ROOT / "tools/jira_standin.py"), "--host", host,
            "--port", "0", "--flavor", flavor, "--ca-file", str(ca_file)]
    if san:
        args += ["--san", san]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    try:
        return proc, json.loads(line)
    except ValueError:
        proc.kill()
        raise RuntimeError(f"the JIRA stand-in did not start: {line!r}")


class Function:
    def __init__(self, bin_dir, organization, jira=None):
        self.cargo_lambda = str(pathlib.Path(bin_dir) / "cargo-lambda")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="function-"))
        self.env = dict(os.environ)
        self.env["TABLE_NAME"] = "t-" + secrets.token_hex(4)
        self.env["KMS_KEY_ID"] = "alias/k-" + secrets.token_hex(4)
        # The suites' JIRA (example.atlassian.net) is not reachable from here:
        # the credential check is tested against a stand-in (tests/provider.rs).
        self.env["PROVIDER_CHECK"] = "off"
        # The hub's calls go to the JIRA stand-in, when one is given: its host
        # allowed, its CA trusted.
        self.jira = jira
        if jira:
            self.env["PROVIDER_ALLOWED_HOSTS"] = "localhost"
            self.env["PROVIDER_TEST_CA_FILE"] = jira["caFile"]
        self.admin = [str(ROOT / "target/debug/admin")]
        self.run_admin("setup")
        self.credentials = self.run_admin("create-credentials", "--organization", organization, "--user", "ops@example.com")
        self.authorization = self.credentials["authorization"]
        self.secrets = {self.credentials["userSecret"], self.credentials["organizationSecret"]}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "function.log"

    def run_admin(self, *args):
        out = subprocess.run(self.admin + list(args), env=self.env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start(self):
        keys = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_EC2_METADATA_DISABLED", "TABLE_NAME", "KMS_KEY_ID", "PROVIDER_CHECK",
                "PROVIDER_ALLOWED_HOSTS", "PROVIDER_TEST_CA_FILE"]
        env_file = self.dir / "function.env"
        env_file.write_text("".join(f"{k}={self.env[k]}\n" for k in keys if k in self.env))
        self.proc = subprocess.Popen(
            [self.cargo_lambda, "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
             "--env-file", str(env_file), "--disable-cors", "--ignore-changes", "--bin", "bootstrap"],
            cwd=ROOT, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait_until_serving(self, timeout=900):
        """The first request waits for `cargo lambda watch` to build and start the function."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                req = urllib.request.Request(self.url + "/nothing-here", method="GET")
                urllib.request.urlopen(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the function did not start")

    def leaked(self):
        """Every secret it was given that appears in what the function logged."""
        text = self.log.read_text(errors="replace")
        lines = len(text.splitlines())
        return [s for s in self.secrets if s and s in text], lines

    def tail(self, n=40):
        return "".join(self.log.read_text(errors="replace").splitlines(True)[-n:])


@contextlib.contextmanager
def served(bin_dir, organization, jira=None):
    f = Function(bin_dir, organization, jira)
    f.start()
    try:
        yield f
    finally:
        f.stop()


class ApiGatewayFront:
    """An HTTP front that does what API Gateway's REST API does with a request:
    turns it into a proxy event of the template's routes (`/instances`,
    `/{proxy+}` with its path parameter; a text body as text, other bytes
    base64-encoded as API Gateway does for binary media types, so any bytes
    survive; at most 10 MiB, as API Gateway takes; header bytes read as
    ISO-8859-1, as HTTP defines them), invokes the function through
    the Lambda Invoke API that `cargo lambda watch` serves, and turns the proxy
    response back into HTTP. (`cargo lambda watch`'s own HTTP front answers a
    non-UTF-8 body with a 500 of its own before the function sees it.)"""

    def __init__(self, function, listen_port=0):
        import base64
        import http.client
        import http.server
        import threading

        invoke_path = "/2015-03-31/functions/bootstrap/invocations"
        port = function.port
        # API Gateway's payload limit.
        MAX_BODY = 10 * 1024 * 1024

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body):
                out = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def read_body(self):
                """The body as API Gateway takes it: by Content-Length (digits
                only) or chunked, at most MAX_BODY; else None, answered."""
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = b""
                    while True:
                        size_line = self.rfile.readline(64).split(b";")[0].strip()
                        if not size_line or any(c not in b"0123456789abcdefABCDEF" for c in size_line):
                            self.reply(400, {"message": "Bad Request"})
                            return None
                        size = int(size_line, 16)
                        if len(body) + size > MAX_BODY:
                            self.reply(413, {"message": "Request Too Long"})
                            return None
                        if size == 0:
                            while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                                pass
                            return body
                        body += self.rfile.read(size)
                        self.rfile.readline(8)
                given = self.headers.get("Content-Length")
                if given is None:
                    return b""
                if not given.strip().isdigit():
                    self.reply(400, {"message": "Bad Request"})
                    return None
                length = int(given.strip())
                if length > MAX_BODY:
                    self.reply(413, {"message": "Request Too Long"})
                    return None
                return self.rfile.read(length) if length else b""

            def handle_any(self):
                try:
                    self.forward()
                except Exception:  # noqa: BLE001 - what API Gateway answers when the integration fails
                    try:
                        self.reply(502, {"message": "Internal server error"})
                    except OSError:
                        pass

            def forward(self):
                body = self.read_body()
                if body is None:
                    return
                path, _, query = self.path.partition("?")
                pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
                multi = {}
                for k, v in pairs:
                    multi.setdefault(k, []).append(v)
                headers = {k: v for k, v in self.headers.items()}
                # The template's routes: POST/ANY /instances, ANY /{proxy+}.
                if path == "/instances":
                    resource, parameters = "/instances", None
                else:
                    resource, parameters = "/{proxy+}", {"proxy": urllib.parse.unquote(path[1:])}
                try:
                    text, encoded = body.decode("utf-8"), False
                except UnicodeDecodeError:
                    # Bytes that are not text reach the function as a binary body.
                    text, encoded = base64.b64encode(body).decode(), True
                event = {
                    "resource": resource, "path": path, "httpMethod": self.command,
                    "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
                    # As API Gateway hands them over: the last value of each, and all of them.
                    "queryStringParameters": {k: vs[-1] for k, vs in multi.items()} or None,
                    "multiValueQueryStringParameters": multi or None,
                    "pathParameters": parameters, "stageVariables": None,
                    "requestContext": {"accountId": "123456789012", "apiId": "local", "resourceId": "r",
                                       "resourcePath": resource,
                                       "stage": "prod", "httpMethod": self.command, "path": "/prod" + path,
                                       "requestId": secrets.token_hex(16), "identity": {"sourceIp": "127.0.0.1"}},
                    "body": text if body else None,
                    "isBase64Encoded": encoded,
                }
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("POST", invoke_path, json.dumps(event), {"Content-Type": "application/json"})
                answer = conn.getresponse()
                raw = answer.read()
                try:
                    proxy = json.loads(raw)
                    status = int(proxy["statusCode"])
                except (ValueError, KeyError, TypeError):
                    self.reply(502, {"message": "Internal server error"})
                    return
                out = proxy.get("body") or ""
                out = base64.b64decode(out) if proxy.get("isBase64Encoded") else out.encode()
                self.send_response(status)
                merged = {k: [v] for k, v in (proxy.get("headers") or {}).items()}
                merged.update(proxy.get("multiValueHeaders") or {})
                for k, values in merged.items():
                    for v in values:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def __getattr__(self, name):
                # Every method, whatever its name, reaches the function (which answers 405).
                if name.startswith("do_"):
                    return self.handle_any
                raise AttributeError(name)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", listen_port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def fill_event(text, creds, ids, jira=None):
    """An event file with its placeholders filled: the credentials, the id
    of the first instance created so far (the reads of one instance), the
    JIRA stand-in's site and account, and the token of the hub's instance."""
    text = text.replace("{{USER_SECRET}}", creds["userSecret"]).replace("{{ORGANIZATION_SECRET}}", creds["organizationSecret"])
    if jira:
        for key, field in (("JIRA_URL", "url"), ("JIRA_USER", "user"), ("JIRA_PASSWORD", "password")):
            text = text.replace("{{" + key + "}}", jira[field])
    hub = ids.get("hub-create-instance.json")
    if hub:
        text = text.replace("{{HUB_TOKEN}}", hub[1])
    first_created = next((v[0] for v in ids.values() if v[0]), None)
    return text.replace("{{INSTANCE_ID}}", str(first_created)), first_created


def check_event_answer(name, case, out, ids, first_created, request_id=None):
    """What is wrong with the proxy answer `out` to the event `name`, against
    its row of events/expected.json (status, code, and what each kind of call
    must answer). Records the (id, token) of creates in `ids`."""
    problems = []
    answer = json.loads(out.get("body") or "null")
    body = answer if isinstance(answer, dict) else {}
    if out.get("statusCode") != case["status"]:
        problems.append(f"status {out.get('statusCode')} != {case['status']}: {str(answer)[:300]}")
    if case["code"] and body.get("code") != case["code"]:
        problems.append(f"code {body.get('code')} != {case['code']}")
    if request_id and case["status"] >= 400 and body.get("requestId") != request_id:
        problems.append("the error does not carry the API Gateway request id")
    if case["status"] == 200 and "token" in body:
        ids[name] = body.get("id"), body.get("token")
    if name == "get-instance.json" and (body.get("id") != first_created or "token" in body):
        problems.append(f"the read answered {str(answer)[:200]}, not instance {first_created} without its token")
    if name == "list-instances.json" and not (isinstance(answer, list) and answer):
        problems.append(f"the list is {str(answer)[:200]}")
    if name == "patch-instance.json" and (
            body.get("name") != "Renamed" or (body.get("configuration") or {}).get("jira.password") != "********"):
        problems.append(f"the patch answered {str(answer)[:200]}")
    if name in ("disable-instance.json", "enable-instance.json") and body.get("disabled") != (name == "disable-instance.json"):
        problems.append(f"disabled is {body.get('disabled')} after {name}")
    if name in ("hub-list-incidents.json", "hub-search-incidents.json", "hub-list-comments.json",
                "hub-list-transitions.json", "hub-priorities.json") and not (isinstance(answer, list) and answer):
        problems.append(f"the hub's list is {str(answer)[:200]}")
    if name in ("hub-get-incident.json", "hub-create-incident.json") and not (body.get("key", "").startswith("DEMO-")
                                                                             and "fields" in body):
        problems.append(f"the hub answered {str(answer)[:200]}, not an issue")
    if name == "hub-patch-incident.json" and (body.get("fields") or {}).get("summary") != "Patched by an event":
        problems.append(f"the patch answered {str(answer)[:200]}")
    if name.startswith("hub-") and case["status"] < 400 and name != "hub-create-instance.json" \
            and not out.get("headers", {}).get("elements-element-instance-id") \
            and not (out.get("multiValueHeaders") or {}).get("elements-element-instance-id"):
        problems.append("no Elements-Element-Instance-Id")
    if name == "idempotent-replay.json" and ids.get(name) != ids.get("idempotent-first.json"):
        problems.append("the replay did not answer the first response")
    return problems
