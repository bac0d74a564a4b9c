#!/usr/bin/env python3
"""A stand-in for an application's callback URL: an HTTPS receiver of event notifications.

The service POSTs signed JSON notifications to the callback URL an application registered; the
tests point that URL here and read back what arrived, byte for byte, and script how it is answered
(failures, redirects, dropped connections, slow answers). Usage: docs/callback-receiver.md.

  .venv/local/bin/python tools/callback_receiver.py [--host 127.0.0.1] [--port 0] [--ca-file PATH]
      [--san NAME]... [--verify-key KEY [--window-seconds 86400]] [--verbose]

At start it makes a CA and a server certificate (tools/jira_standin.py's make_certs: SAN localhost,
the listen IP and every --san), writes the CA's PEM to --ca-file, and prints one JSON line:
{"url": "https://127.0.0.1:PORT/callback", "base": "https://127.0.0.1:PORT", "caFile": PATH}.

Notifications: any request to a path outside /_receiver/ is recorded (seq, time, method, path,
query, headers, body, bodyBase64, status). A POST is answered with the next scripted answer, 200
{"ok":true} when none is queued; any other method is a 405; a body over 10 MiB is a 413.

Control API (loopback callers only):
  POST /_receiver/next      {"answers": [{"status": 503, "headers": {"Retry-After": "1"}, "body": ...},
                             {"drop": true}, {"delaySeconds": 12}]}  appends to the FIFO script
                            (a bare list or one answer object is accepted too); each POST consumes one
  GET  /_receiver/next      the answers still queued
  GET  /_receiver/requests  {"requests": [...]}, every notification recorded, in order
  POST /_receiver/reset     forgets the requests, the script and the eventIds seen (seq starts again
                            at 1); the verification setting stays
  POST /_receiver/verify    {"key": "...", "windowSeconds": 86400} checks every notification POSTed
                            from now on (a null key stops); GET answers the setting, never the key
A recorded "status" is what was answered: 0 for a dropped connection, null while a delayed answer
is still pending.

Verification (off unless --verify-key or /_receiver/verify gives a key): each notification POSTed
is checked by NotificationVerifier below, the routine an application can copy, and recorded with a
"verdict": "accepted", or what refused it ("bad-signature", "malformed", "stale", "replayed"). The
answer is still the script's: the verdict is recorded, never acted on.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jira_standin import TlsServer, make_certs  # noqa: E402

MAX_BODY = 10 << 20
MAX_DRAIN = 64 << 20   # a larger body is not read before its 413: the connection is closed
CONTROL = "/_receiver"
MAX_WINDOW = 10 * 366 * 24 * 3600


class TooLarge(Exception):
    pass


# --- The check an application makes (standard library only): copy down to "End of the check". -----
#
# The signature covers the body only; the Elements-Webhook-Id header is not signed, so anyone who
# captured one notification could send it again under a new id. Deduplicate on the signed
# message.eventId instead, and refuse a notification whose pollDate is older than a window longer
# than the service's last retry (about 8 hours after the poll), remembering eventIds that long.

class NotificationVerifier:
    """Checks one notification: `check(raw_body, headers)` answers (verdict, message).

    verdict is "accepted" (message: the parsed {"message": ...}, to act on now), or what refused
    it: "bad-signature" (the Elements-Webhook-Signature is absent or not HMAC-SHA256 of these exact
    bytes under the key), "malformed" (signed, but no eventId or no event with a pollDate),
    "stale" (its oldest pollDate is more than `window_seconds` old) or "replayed" (its eventId was
    accepted before: answer it 2xx and do nothing, since it is the service's own retry after an
    answer it did not get, or a replay). An accepted eventId is remembered until its pollDate
    leaves the window; a real receiver keeps it in its database, with what the notification did.
    """

    SIGNATURE_HEADER = "elements-webhook-signature"

    def __init__(self, key, window_seconds=24 * 3600):
        self.key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        self.window = dt.timedelta(seconds=window_seconds)
        self.seen = {}   # eventId -> its oldest pollDate
        self.lock = threading.Lock()

    def check(self, raw_body, headers, now=None):
        # 1. The signature, over the bytes received, before anything reads them.
        given = next((v for k, v in headers.items() if k.lower() == self.SIGNATURE_HEADER), None)
        expected = "sha256=" + base64.b64encode(hmac.new(self.key, raw_body, hashlib.sha256).digest()).decode()
        if given is None or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            return "bad-signature", None
        # 2. The signed eventId and pollDates (never the unsigned Elements-Webhook-Id header).
        try:
            body = json.loads(raw_body)
            message = body["message"]
            event_id = message["eventId"]
            polled = [_utc(e["pollDate"]) for e in message["events"]]
            if not (isinstance(event_id, str) and event_id and polled):
                raise ValueError("no eventId or no event")
        except (ValueError, TypeError, KeyError, AttributeError):
            return "malformed", None
        # 3. Too old to be one of the service's retries: a replay.
        now = now or dt.datetime.now(dt.timezone.utc)
        oldest = min(polled)
        if now - oldest > self.window:
            return "stale", None
        # 4. Seen before, within the window. What leaves the window is forgotten: it is stale now.
        with self.lock:
            self.seen = {k: t for k, t in self.seen.items() if now - t <= self.window}
            if event_id in self.seen:
                return "replayed", None
            self.seen[event_id] = oldest
        return "accepted", body

    def forget(self):
        with self.lock:
            self.seen = {}


def _utc(text):
    """An ISO 8601 time with its zone ("2026-12-01T11:03:30.120Z") as an aware datetime."""
    t = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if t.tzinfo is None:
        raise ValueError(f"{text} has no zone")
    return t

# --- End of the check. ---------------------------------------------------------------------------


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.verifier = None   # a NotificationVerifier while verifying
        self.reset()

    def reset(self):
        self.requests, self.script, self.seq = [], [], 0
        if self.verifier:
            self.verifier.forget()


def _answer_problem(a):
    if not isinstance(a, dict):
        return "each answer is an object"
    if "status" in a and not (isinstance(a["status"], int) and 200 <= a["status"] <= 599):
        return "status is an integer from 200 to 599"
    if "headers" in a and not (isinstance(a["headers"], dict)
                               and all(isinstance(v, (str, int)) for v in a["headers"].values())):
        return "headers is an object of strings"
    if "delaySeconds" in a and not (isinstance(a["delaySeconds"], (int, float)) and a["delaySeconds"] >= 0):
        return "delaySeconds is a number of seconds"
    if "drop" in a and not isinstance(a["drop"], bool):
        return "drop is true or false"
    return None


def _verify_problem(body):
    if not isinstance(body, dict) or set(body) - {"key", "windowSeconds"}:
        return 'the body is {"key": "...", "windowSeconds": N}'
    if body.get("key") is not None and not (isinstance(body["key"], str) and body["key"]):
        return "key is the signature key, a string (null stops verifying)"
    w = body.get("windowSeconds", 1)
    if isinstance(w, bool) or not (isinstance(w, (int, float)) and 0 < w <= MAX_WINDOW):
        return "windowSeconds is a number of seconds, at most 10 years"
    return None


def _verify_setting(st):
    v = st.verifier
    w = v.window.total_seconds() if v else None
    return {"verifying": v is not None, "windowSeconds": int(w) if w is not None and w == int(w) else w}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "callback-receiver"
    timeout = 120
    st: State = None      # set on the class by main()
    verbose = False

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("callback-receiver: " + (fmt % args) + "\n")

    def _read_body(self):
        """The body; TooLarge past MAX_BODY, once the rest is read and thrown away (up to MAX_DRAIN)."""
        data, over = bytearray(), False

        def take(chunk):
            nonlocal over
            if len(data) + len(chunk) > MAX_BODY:
                over = True
            if not over:
                data.extend(chunk)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            seen = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                seen += size
                if seen > MAX_DRAIN:
                    raise TooLarge()
                take(self.rfile.read(size))
                self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_DRAIN:
                raise TooLarge()
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    raise OSError("the body broke off")
                length -= len(chunk)
                take(chunk)
        if over:
            raise TooLarge()
        return bytes(data)

    def _send(self, status, body=None, headers=None):
        if body is None or isinstance(body, (dict, list, bool, int, float)):
            data = json.dumps({"ok": 200 <= status < 300} if body is None else body, separators=(",", ":")).encode()
            ctype = "application/json"
        else:
            data, ctype = str(body).encode("utf-8"), "text/plain;charset=UTF-8"
        bodiless = status in (204, 304)
        self.send_response(status)
        names = {k.lower() for k in (headers or {})}
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if not bodiless:
            if "content-type" not in names:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and not bodiless:
            self.wfile.write(data)
        return status

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        control = url.path == CONTROL or url.path.startswith(CONTROL + "/")
        try:
            raw = self._read_body()
        except TooLarge:
            self.close_connection = True
            if control:
                return self._send(413, {"error": "the body is over 10 MiB"})
            return self._record(url, b"", lambda entry: self._send(413, {"error": "the body is over 10 MiB"}))
        except (ValueError, OSError):
            self.close_connection = True
            return None
        if control:
            return self._control(url.path[len(CONTROL):].rstrip("/") or "/", raw)
        if self.command != "POST":
            return self._record(url, raw, lambda entry: self._send(405, {"error": "notifications are POSTed"},
                                                                   {"Allow": "POST"}))
        return self._record(url, raw, self._notify, verify=True)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _record(self, url, raw, answer, verify=False):
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        now = dt.datetime.now(dt.timezone.utc)
        with self.st.lock:
            self.st.seq += 1
            entry = {"seq": self.st.seq, "time": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                     "method": self.command, "path": url.path, "query": url.query, "headers": headers,
                     "body": raw.decode("utf-8", errors="replace"), "bodyBase64": base64.b64encode(raw).decode(),
                     "status": None}
            if verify and self.st.verifier:   # in seq order: of two copies, the first recorded is accepted
                entry["verdict"] = self.st.verifier.check(raw, headers, now)[0]
            self.st.requests.append(entry)
        entry["status"] = answer(entry)

    def _notify(self, entry):
        with self.st.lock:
            script = self.st.script.pop(0) if self.st.script else {}
        if script.get("delaySeconds"):
            time.sleep(float(script["delaySeconds"]))
        if script.get("drop"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return 0
        return self._send(int(script.get("status", 200)), script.get("body"), script.get("headers"))

    def _control(self, route, raw):
        try:
            if not ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback:
                return self._send(403, {"error": "the control API answers loopback callers only"})
        except ValueError:
            return self._send(403, {"error": "the control API answers loopback callers only"})
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._send(400, {"error": "the body is not JSON"})
        st, method = self.st, self.command
        status, out = 404, {"error": f"no control route {method} {route}"}
        with st.lock:   # answered outside the lock: a slow reader holds up no notification
            if route == "/next" and method == "POST":
                answers = body.get("answers") if isinstance(body, dict) and "answers" in body else body
                answers = answers if isinstance(answers, list) else [answers]
                problems = [(p, a) for a in answers for p in [_answer_problem(a)] if p]
                if problems:
                    status, out = 400, {"error": problems[0][0], "answer": problems[0][1]}
                else:
                    st.script.extend(dict(a) for a in answers)
                    status, out = 200, {"queued": len(answers), "pending": len(st.script)}
            elif route == "/next" and method == "GET":
                status, out = 200, {"answers": list(st.script)}
            elif route == "/requests" and method == "GET":
                status, out = 200, {"requests": json.loads(json.dumps(st.requests))}
            elif route == "/reset" and method == "POST":
                st.reset()
                status, out = 200, {"reset": True}
            elif route == "/verify" and method == "POST":
                problem = _verify_problem(body)
                if problem:
                    status, out = 400, {"error": problem}
                else:
                    key = body.get("key")
                    st.verifier = NotificationVerifier(key, body.get("windowSeconds", 24 * 3600)) if key else None
                    status, out = 200, _verify_setting(st)
            elif route == "/verify" and method == "GET":
                status, out = 200, _verify_setting(st)
        return self._send(status, out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A stand-in callback URL: records notifications, scripted answers.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ca-file", default=None, help="where to write the CA's PEM (default: a temporary file)")
    ap.add_argument("--san", action="append", default=[], help="an extra DNS name or IP for the certificate")
    ap.add_argument("--verify-key", default=None,
                    help="check each notification's signature, eventId and pollDate under this signature key "
                         "and record the verdict (default: not checked)")
    ap.add_argument("--window-seconds", type=float, default=24 * 3600,
                    help="with --verify-key: a pollDate older than this is stale (default 86400)")
    ap.add_argument("--verbose", action="store_true", help="log each request on stderr")
    cfg = ap.parse_args(argv)
    if not 0 < cfg.window_seconds <= MAX_WINDOW:
        ap.error("--window-seconds is a number of seconds, at most 10 years")

    workdir = tempfile.mkdtemp(prefix="callback-receiver-")
    ca_file = os.path.abspath(cfg.ca_file or os.path.join(workdir, "ca.pem"))
    cert, key = make_certs(cfg.host, cfg.san, workdir, ca_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    Handler.st, Handler.verbose = State(), cfg.verbose
    if cfg.verify_key:
        Handler.st.verifier = NotificationVerifier(cfg.verify_key, cfg.window_seconds)
    server = TlsServer((cfg.host, cfg.port), Handler, ctx)
    port = server.server_address[1]
    host = {"0.0.0.0": "127.0.0.1", "::": "localhost"}.get(cfg.host, f"[{cfg.host}]" if ":" in cfg.host else cfg.host)
    base = f"https://{host}:{port}"

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"url": base + "/callback", "base": base, "caFile": ca_file}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
