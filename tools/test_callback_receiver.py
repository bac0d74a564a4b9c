#!/usr/bin/env python3
"""Self-test of the callback receiver (tools/callback_receiver.py), over HTTPS.

  .venv/local/bin/python tools/test_callback_receiver.py

Starts the receiver on a free port, trusts only the CA it wrote, and checks what it records and
how its script answers. One line per check (`ok   NAME` or `FAIL NAME: why`), then
`callback-receiver: N passed, N failed`; exits 1 on any failure.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import select
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "callback_receiver.py")


class Receiver:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="callback-receiver-test-")
        self.err = open(os.path.join(self.tmp, "stderr.log"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, RECEIVER, "--host", "127.0.0.1", "--port", "0",
             "--ca-file", os.path.join(self.tmp, "ca.pem")],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.cleanup()
            raise RuntimeError("the receiver did not start")
        self.info = json.loads(line)
        self.ctx = ssl.create_default_context(cafile=self.info["caFile"])

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, method, url, raw=None, headers=None, timeout=20):
        """(status, headers, body bytes); no redirect is followed."""
        req = urllib.request.Request(url, data=raw, method=method, headers=headers or {})
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx), NoRedirect)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def control(self, method, route, body=None):
        raw = json.dumps(body).encode() if body is not None else None
        st, _, out = self.call(method, self.info["base"] + "/_receiver" + route, raw,
                               {"Content-Type": "application/json"})
        return st, json.loads(out)

    def requests(self):
        return self.control("GET", "/requests")[1]["requests"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def check_default(r):
    r.control("POST", "/reset")
    body = '{"event":"instance.created","n":1,"text":"caf\u00e9 \\u00e9"}  \n'.encode("utf-8")
    st, h, out = r.call("POST", r.info["url"] + "?a=1&b=two", body,
                        {"Content-Type": "application/json", "X-Signature": "v1=abc", "X-Custom-Thing": "x"})
    assert (st, out) == (200, b'{"ok":true}'), (st, out)
    assert h.get("Content-Type") == "application/json", h.get("Content-Type")
    reqs = r.requests()
    assert len(reqs) == 1, reqs
    e = reqs[0]
    assert (e["seq"], e["method"], e["path"], e["query"], e["status"]) == (1, "POST", "/callback", "a=1&b=two", 200), e
    assert e["body"].encode("utf-8") == body and base64.b64decode(e["bodyBase64"]) == body, e
    assert e["headers"]["x-signature"] == "v1=abc" and e["headers"]["x-custom-thing"] == "x", e["headers"]
    assert e["headers"]["content-type"] == "application/json", e["headers"]
    assert e["headers"]["content-length"] == str(len(body)), e["headers"]
    assert "host" in e["headers"] and all(k == k.lower() for k in e["headers"]), e["headers"]
    assert e["time"].endswith("Z") and len(e["time"]) == 24, e["time"]


def check_script_500_then_200(r):
    r.control("POST", "/reset")
    st, out = r.control("POST", "/next", {"answers": [{"status": 500}]})
    assert (st, out) == (200, {"queued": 1, "pending": 1}), (st, out)
    assert r.call("POST", r.info["url"], b"{}")[0] == 500
    assert r.call("POST", r.info["url"], b"{}")[0] == 200
    assert [e["status"] for e in r.requests()] == [500, 200], r.requests()


def check_retry_after(r):
    r.control("POST", "/reset")
    r.control("POST", "/next", {"answers": [{"status": 503, "headers": {"Retry-After": "1"}}]})
    st, h, _ = r.call("POST", r.info["url"], b"{}")
    assert (st, h.get("Retry-After")) == (503, "1"), (st, dict(h))


def check_redirect(r):
    r.control("POST", "/reset")
    r.control("POST", "/next", {"answers": [{"status": 302, "headers": {"Location": "https://elsewhere.example/"}}]})
    st, h, _ = r.call("POST", r.info["url"], b"{}")
    assert (st, h.get("Location")) == (302, "https://elsewhere.example/"), (st, dict(h))
    assert [e["status"] for e in r.requests()] == [302], r.requests()


def check_drop(r):
    r.control("POST", "/reset")
    r.control("POST", "/next", {"answers": [{"drop": True}]})
    try:
        st = r.call("POST", r.info["url"], b"{}")[0]
        raise AssertionError(f"answered {st}")
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError, urllib.error.URLError):
        pass
    assert [e["status"] for e in r.requests()] == [0], r.requests()
    assert r.call("POST", r.info["url"], b"{}")[0] == 200


def check_delay(r):
    r.control("POST", "/reset")
    r.control("POST", "/next", {"answers": [{"delaySeconds": 1.5}]})
    t = time.monotonic()
    st = r.call("POST", r.info["url"], b"{}")[0]
    took = time.monotonic() - t
    assert st == 200 and took >= 1.4, (st, took)
    r.control("POST", "/next", [{"delaySeconds": 3}])
    try:
        r.call("POST", r.info["url"], b"{}", timeout=0.5)
        raise AssertionError("answered before the client's timeout")
    except (TimeoutError, urllib.error.URLError):
        pass
    assert [e["status"] for e in r.requests()] == [200, None], r.requests()


def check_reset(r):
    r.control("POST", "/next", {"answers": [{"status": 500}, {"status": 500}]})
    r.call("POST", r.info["url"], b"{}")
    st, out = r.control("POST", "/reset")
    assert (st, out) == (200, {"reset": True}), (st, out)
    assert r.requests() == [] and r.control("GET", "/next")[1] == {"answers": []}
    assert r.call("POST", r.info["url"], b"{}")[0] == 200
    assert [e["seq"] for e in r.requests()] == [1], r.requests()


def check_405(r):
    r.control("POST", "/reset")
    st, h, _ = r.call("GET", r.info["url"])
    assert (st, h.get("Allow")) == (405, "POST"), (st, dict(h))
    assert r.call("PUT", r.info["base"] + "/other", b"x")[0] == 405
    assert [(e["method"], e["path"], e["status"]) for e in r.requests()] == \
        [("GET", "/callback", 405), ("PUT", "/other", 405)], r.requests()


def check_too_large(r):
    r.control("POST", "/reset")
    st = r.call("POST", r.info["url"], b"x" * ((10 << 20) + 1))[0]
    assert st == 413, st
    assert r.call("POST", r.info["url"], b"x" * (10 << 20))[0] == 200
    assert [e["status"] for e in r.requests()] == [413, 200], [e["status"] for e in r.requests()]


def check_bad_script(r):
    st, out = r.control("POST", "/next", {"answers": [{"status": "500"}]})
    assert st == 400 and "status" in out["error"], (st, out)
    assert r.control("GET", "/nothing")[0] == 404


CHECKS = [("default 200, recorded", check_default), ("scripted 500 then 200", check_script_500_then_200),
          ("503 with Retry-After", check_retry_after), ("302 with Location", check_redirect),
          ("drop closes the connection", check_drop), ("delay, and a client timeout", check_delay),
          ("reset", check_reset), ("405 for other methods, recorded", check_405),
          ("413 past 10 MiB", check_too_large), ("a bad script is a 400", check_bad_script)]


def main():
    passed = failed = 0
    try:
        r = Receiver()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL start: {e}")
        print("callback-receiver: 0 passed, 1 failed")
        return 1
    try:
        info = r.info
        ok = info["url"] == info["base"] + "/callback" and info["base"].startswith("https://127.0.0.1:") \
            and os.path.isfile(info["caFile"])
        print("ok   ready line" if ok else f"FAIL ready line: {info}")
        passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
        for name, check in CHECKS:
            try:
                check(r)
                print(f"ok   {name}")
                passed += 1
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {name}: {type(e).__name__}: {e}"[:2000])
                failed += 1
    finally:
        r.cleanup()
    print(f"callback-receiver: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
