#!/usr/bin/env python3
"""Self-test of the callback receiver (tools/callback_receiver.py), over HTTPS.

  .venv/local/bin/python tools/test_callback_receiver.py

Starts the receiver on a free port, trusts only the CA it wrote, and checks what it records and
how its script answers. One line per check (`ok   NAME` or `FAIL NAME: why`), then
`callback-receiver: N passed, N failed`; exits 1 on any failure.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
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
sys.path.insert(0, HERE)
from callback_receiver import NotificationVerifier  # noqa: E402

KEY = "receiver-test-signing-key"


class Receiver:
    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="callback-receiver-test-")
        self.err = open(os.path.join(self.tmp, "stderr.log"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, RECEIVER, "--host", "127.0.0.1", "--port", "0",
             "--ca-file", os.path.join(self.tmp, "ca.pem"), *args],
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
    assert "verdict" not in e, e   # not verifying unless asked


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


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def notification(event_id, poll_ago=dt.timedelta(minutes=1), now=None):
    """A notification in the service's shape, its pollDate `poll_ago` before now: the exact body."""
    polled = (now or dt.datetime.now(dt.timezone.utc)) - poll_ago
    return json.dumps({"message": {
        "eventId": event_id, "instanceId": 8153727351846, "elementKey": "jira",
        "events": [{"objectType": "incidents", "objectId": "10004", "eventType": "UPDATED",
                    "date": iso(polled - dt.timedelta(seconds=40)), "pollDate": iso(polled),
                    "elementKey": "jira", "hubKey": "helpdesk"}],
        "raw": {"incidents": [{"id": "10004", "key": "DEMO-5", "fields": {"summary": "caf\u00e9"}}]}}},
        separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed(body, webhook_id, key=KEY):
    """The headers the service sends with `body`: its id, and the signature of the exact bytes."""
    mac = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "Elements-Webhook-Id": webhook_id,
            "Elements-Webhook-Signature": "sha256=" + base64.b64encode(mac).decode()}


def verdicts(r):
    return [(e["status"], e.get("verdict")) for e in r.requests()]


def check_verify_genuine(r):
    st, out = r.control("POST", "/verify", {"key": KEY})
    assert (st, out) == (200, {"verifying": True, "windowSeconds": 86400}), (st, out)
    assert r.control("GET", "/verify") == (200, {"verifying": True, "windowSeconds": 86400})
    r.control("POST", "/reset")
    body = notification("5c0f0e9e0d6f4a7e9b2d3c4b5a697887")
    assert r.call("POST", r.info["url"], body, signed(body, "5c0f0e9e0d6f4a7e9b2d3c4b5a697887"))[0] == 200
    assert verdicts(r) == [(200, "accepted")], r.requests()


def check_verify_replay(r):
    r.control("POST", "/verify", {"key": KEY})
    r.control("POST", "/reset")
    body = notification("n-replay")
    r.call("POST", r.info["url"], body, signed(body, "n-replay"))
    # The service's own retry (same id, same bytes), then a captured copy under a fresh id: the
    # signature still verifies (it covers the body only), the signed eventId is seen.
    r.call("POST", r.info["url"], body, signed(body, "n-replay"))
    r.call("POST", r.info["url"], body, signed(body, "a-brand-new-id"))
    assert verdicts(r) == [(200, "accepted"), (200, "replayed"), (200, "replayed")], r.requests()
    # Another notification is accepted; a reset forgets what was seen, not the setting.
    other = notification("n-other")
    r.call("POST", r.info["url"], other, signed(other, "n-other"))
    r.control("POST", "/reset")
    r.call("POST", r.info["url"], body, signed(body, "n-replay"))
    assert verdicts(r) == [(200, "accepted")], r.requests()


def check_verify_tampered(r):
    r.control("POST", "/verify", {"key": KEY})
    r.control("POST", "/reset")
    body = notification("n-tampered")
    headers = signed(body, "n-tampered")
    tampered = body.replace(b'"UPDATED"', b'"DELETED"')
    assert tampered != body
    r.call("POST", r.info["url"], tampered, headers)
    r.call("POST", r.info["url"], body, signed(body, "n-tampered", key="another-key"))
    r.call("POST", r.info["url"], body, {"Elements-Webhook-Id": "n-tampered"})   # unsigned
    r.call("POST", r.info["url"], body + b" ", headers)
    # None of them counted as seen: the genuine one still goes through.
    r.call("POST", r.info["url"], body, headers)
    assert verdicts(r) == [(200, "bad-signature")] * 4 + [(200, "accepted")], r.requests()


def check_verify_stale(r):
    r.control("POST", "/verify", {"key": KEY})
    r.control("POST", "/reset")
    old = notification("n-old", poll_ago=dt.timedelta(hours=25))
    r.call("POST", r.info["url"], old, signed(old, "n-old"))
    late = notification("n-late", poll_ago=dt.timedelta(hours=9))   # past the last retry, inside 24 h
    r.call("POST", r.info["url"], late, signed(late, "n-late"))
    assert verdicts(r) == [(200, "stale"), (200, "accepted")], r.requests()
    # A window of one minute: a poll two minutes ago is stale.
    assert r.control("POST", "/verify", {"key": KEY, "windowSeconds": 60}) == \
        (200, {"verifying": True, "windowSeconds": 60})
    two = notification("n-two-minutes", poll_ago=dt.timedelta(minutes=2))
    r.call("POST", r.info["url"], two, signed(two, "n-two-minutes"))
    assert verdicts(r)[-1] == (200, "stale"), r.requests()


def check_verify_setting(r):
    for bad in [{"key": 7}, {"key": ""}, {"key": KEY, "windowSeconds": 0}, {"key": KEY, "windowSeconds": True},
                {"key": KEY, "window": 60}, ["k"]]:
        st, out = r.control("POST", "/verify", bad)
        assert st == 400 and out.get("error"), (bad, st, out)
    # A script still decides the answer: the verdict is recorded, not acted on.
    r.control("POST", "/verify", {"key": KEY})
    r.control("POST", "/reset")
    r.control("POST", "/next", {"answers": [{"status": 503}]})
    r.call("POST", r.info["url"], b"{}", {"Elements-Webhook-Id": "x"})
    r.call("GET", r.info["url"])   # not a notification: no verdict
    assert verdicts(r) == [(503, "bad-signature"), (405, None)], r.requests()
    # Off again: nothing checked.
    assert r.control("POST", "/verify", {"key": None}) == (200, {"verifying": False, "windowSeconds": None})
    r.control("POST", "/reset")
    r.call("POST", r.info["url"], b"{}")
    assert "verdict" not in r.requests()[0], r.requests()


def check_verify_command_line(_r):
    r = Receiver("--verify-key", KEY, "--window-seconds", "3600")
    try:
        assert r.control("GET", "/verify") == (200, {"verifying": True, "windowSeconds": 3600})
        fresh, old = notification("n-cli"), notification("n-cli-old", poll_ago=dt.timedelta(hours=2))
        for body, wid in [(fresh, "n-cli"), (fresh, "n-cli-again"), (old, "n-cli-old")]:
            r.call("POST", r.info["url"], body, signed(body, wid))
        assert verdicts(r) == [(200, "accepted"), (200, "replayed"), (200, "stale")], r.requests()
    finally:
        r.cleanup()


def check_verifier_routine(_r):
    """NotificationVerifier alone, on a clock of its own."""
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    v = NotificationVerifier(KEY)   # default window: 24 h
    body = notification("n1", poll_ago=dt.timedelta(hours=1), now=now)
    h = signed(body, "n1")
    verdict, message = v.check(body, h, now)
    assert verdict == "accepted" and message["message"]["eventId"] == "n1", (verdict, message)
    assert v.check(body, signed(body, "other-id"), now) == ("replayed", None)
    lower = {k.lower(): x for k, x in h.items()}   # header names in any case
    assert v.check(body, lower, now + dt.timedelta(hours=22)) == ("replayed", None)
    # Once its pollDate leaves the window it is forgotten, and refused as stale instead.
    later = now + dt.timedelta(hours=23, seconds=1)
    assert v.check(body, h, later) == ("stale", None)
    fresh = notification("n2", now=later)
    assert v.check(fresh, signed(fresh, "n2"), later)[0] == "accepted"
    assert set(v.seen) == {"n2"}, v.seen
    assert v.check(body[:-1], h, now) == ("bad-signature", None)
    assert v.check(body, {"Elements-Webhook-Signature": h["Elements-Webhook-Signature"][:-2] + "\u00e9="},
                   now) == ("bad-signature", None)
    for bad in [b"[]", b'{"message": {"eventId": "x", "events": []}}',
                b'{"message": {"eventId": "x", "events": [{"pollDate": "2026-12-01T11:00:00"}]}}',
                b'{"message": {"eventId": 7, "events": [{"pollDate": "2026-12-01T11:00:00Z"}]}}', b"\xff"]:
        assert v.check(bad, signed(bad, "x"), now) == ("malformed", None), bad
    v2 = NotificationVerifier(KEY.encode(), window_seconds=60)
    assert v2.check(body, h, now)[0] == "stale"
    assert v2.check(body, h, now - dt.timedelta(minutes=59, seconds=30))[0] == "accepted"


CHECKS = [("default 200, recorded", check_default), ("scripted 500 then 200", check_script_500_then_200),
          ("503 with Retry-After", check_retry_after), ("302 with Location", check_redirect),
          ("drop closes the connection", check_drop), ("delay, and a client timeout", check_delay),
          ("reset", check_reset), ("405 for other methods, recorded", check_405),
          ("413 past 10 MiB", check_too_large), ("a bad script is a 400", check_bad_script),
          ("verify: a genuine notification is accepted", check_verify_genuine),
          ("verify: the same body under a new Elements-Webhook-Id is a replay", check_verify_replay),
          ("verify: a tampered body fails the signature", check_verify_tampered),
          ("verify: an old pollDate is stale", check_verify_stale),
          ("verify: its setting, off again, the script still answers", check_verify_setting),
          ("verify: --verify-key and --window-seconds", check_verify_command_line),
          ("verify: NotificationVerifier on its own clock", check_verifier_routine)]


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
