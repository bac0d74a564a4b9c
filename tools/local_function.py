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
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Function:
    def __init__(self, bin_dir, organization):
        self.cargo_lambda = str(pathlib.Path(bin_dir) / "cargo-lambda")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="function-"))
        self.env = dict(os.environ)
        self.env["TABLE_NAME"] = "t-" + secrets.token_hex(4)
        self.env["KMS_KEY_ID"] = "alias/k-" + secrets.token_hex(4)
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
                "AWS_EC2_METADATA_DISABLED", "TABLE_NAME", "KMS_KEY_ID"]
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
def served(bin_dir, organization):
    f = Function(bin_dir, organization)
    f.start()
    try:
        yield f
    finally:
        f.stop()
