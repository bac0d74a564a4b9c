#!/usr/bin/env python3
"""Self-test of the JIRA stand-in (tools/jira_standin.py), both flavors, over HTTPS.

  .venv/local/bin/python tools/test_jira_standin.py [-v]

Starts the stand-in as Jira Cloud and as Jira Server on free ports, trusts only the CA it wrote,
and checks the behaviours Atlassian documents (see the stand-in's docstring for the sources).
Ends with the line `jira-standin: N passed, N failed`.
"""
from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "jira_standin.py")
NOT_AUTH = "You are not authenticated. Authentication required to perform this operation."
TZ = "Australia/Sydney"


class StandIn:
    def __init__(self, flavor, *extra):
        self.flavor = flavor
        self.tmp = tempfile.mkdtemp(prefix=f"jira-standin-test-{flavor}-")
        self.ca = os.path.join(self.tmp, "ca.pem")
        self.err = open(os.path.join(self.tmp, "stderr.log"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, STANDIN, "--flavor", flavor, "--port", "0", "--ca-file", self.ca,
             "--time-zone", TZ, *extra],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        if not ready:
            self.stop()
            raise RuntimeError("the stand-in did not start")
        self.info = json.loads(self.proc.stdout.readline())
        self.url = self.info["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.ctx = ssl.create_default_context(cafile=self.info["caFile"])
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.err.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, method, path, body=None, auth=True, headers=None, raw=None, base=None, timeout=30):
        """(status, headers, parsed body or text or None)."""
        url = (base or self.url) + path
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None and not any(k.lower() == "content-type" for k in (headers or {})):
            req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if auth is True:
            auth = (self.info["user"], self.info["password"])
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                status, hdrs, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, payload = e.code, e.headers, e.read()
        text = payload.decode("utf-8") if payload else ""
        ctype = hdrs.get("Content-Type") or ""
        parsed = json.loads(text) if text and ctype.startswith("application/json") else (text or None)
        return status, hdrs, parsed

    def api(self, method, path, body=None, **kw):
        return self.call(method, "/rest/api/2" + path, body, **kw)

    def control(self, method, path, body=None):
        return self.call(method, "/_standin" + path, body, auth=None)

    def keys(self, jql_text, **extra):
        """Issue keys a JQL finds, in order, walking every page."""
        if self.flavor == "cloud":
            keys, token = [], None
            while True:
                body = {"jql": jql_text, "fields": ["summary"], "maxResults": 2, **extra}
                if token:
                    body["nextPageToken"] = token
                st, _, out = self.api("POST", "/search/jql", body)
                if st != 200:
                    return st, out
                keys += [i["key"] for i in out["issues"]]
                token = out.get("nextPageToken")
                if out["isLast"]:
                    return 200, keys
        q = urllib.parse.urlencode({"jql": jql_text, "fields": "summary", "maxResults": 1000})
        st, _, out = self.api("GET", "/search?" + q)
        return (st, out) if st != 200 else (200, [i["key"] for i in out["issues"]])


CLOUD: StandIn = None
SERVER: StandIn = None


class Base:
    """Checks every flavor shares; subclasses set `si`."""
    si: StandIn

    def setUp(self):
        st, _, _ = self.si.control("POST", "/reset")
        self.assertEqual(st, 200)

    def new_issue(self, summary="Created by the self-test", **fields):
        body = {"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, "summary": summary, **fields}}
        st, _, out = self.si.api("POST", "/issue", body)
        self.assertEqual(st, 201, out)
        return out

    def jql_ok(self, text, expected):
        st, keys = self.si.keys(text)
        self.assertEqual(st, 200, keys)
        self.assertEqual(keys, expected, text)

    def jql_400(self, text, fragment):
        st, out = self.si.keys(text)
        self.assertEqual(st, 400, out)
        self.assertIsInstance(out["errorMessages"], list)
        self.assertTrue(any(fragment in m for m in out["errorMessages"]), (text, out))
        return out

    # ----- TLS
    def test_tls_trusts_only_the_generated_ca(self):
        for host in ("localhost", "127.0.0.1"):
            st, _, out = self.si.api("GET", "/serverInfo", base=f"https://{host}:{self.si.port}")
            self.assertEqual(st, 200)
        with self.assertRaises((ssl.SSLError, urllib.error.URLError)):
            urllib.request.urlopen(self.si.url + "/rest/api/2/serverInfo", timeout=10,
                                   context=ssl.create_default_context())

    def test_extra_san_in_certificate(self):
        conn = socket.create_connection(("127.0.0.1", self.si.port), timeout=10)
        with self.si.ctx.wrap_socket(conn, server_hostname="localhost") as tls:
            cert = tls.getpeercert()
        sans = {v for _, v in cert["subjectAltName"]}
        self.assertIn("localhost", sans)
        self.assertIn("127.0.0.1", sans)

    # ----- authentication
    def test_missing_credentials_401(self):
        st, h, out = self.si.api("GET", "/myself", auth=None)
        self.assertEqual(st, 401)
        self.assertEqual(out, {"errorMessages": [NOT_AUTH], "errors": {}})
        self.assertNotEqual(h.get("X-Seraph-LoginReason"), "OK")

    def test_wrong_password_then_captcha(self):
        user = self.si.info["user"]
        for _ in range(3):
            st, h, out = self.si.api("GET", "/myself", auth=(user, "wrong"))
            self.assertEqual(st, 401)
            self.assertEqual(h.get("X-Seraph-LoginReason"), "AUTHENTICATED_FAILED")
            self.assertEqual(out, {"errorMessages": [NOT_AUTH], "errors": {}})
        st, h, _ = self.si.api("GET", "/myself")   # the right password, but the account is locked
        self.assertEqual(st, 403)
        self.assertEqual(h.get("X-Seraph-LoginReason"), "AUTHENTICATION_DENIED")
        self.assertTrue(h.get("X-Authentication-Denied-Reason", "").startswith("CAPTCHA_CHALLENGE; login-url="))
        self.assertTrue(h.get("Content-Type", "").startswith("text/html"))
        st, _, s = self.si.control("GET", "/state")
        self.assertTrue(s["locked"])
        self.assertEqual(self.si.control("POST", "/captcha/solve")[0], 200)
        st, h, _ = self.si.api("GET", "/myself")
        self.assertEqual(st, 200)
        self.assertEqual(h.get("X-Seraph-LoginReason"), "OK")

    def test_a_good_login_resets_the_count(self):
        user = self.si.info["user"]
        for _ in range(2):
            self.assertEqual(self.si.api("GET", "/myself", auth=(user, "wrong"))[0], 401)
        self.assertEqual(self.si.api("GET", "/myself")[0], 200)
        for _ in range(2):
            self.assertEqual(self.si.api("GET", "/myself", auth=(user, "wrong"))[0], 401)
        self.assertEqual(self.si.api("GET", "/myself")[0], 200)

    def test_bearer_is_refused(self):
        st, _, out = self.si.api("GET", "/myself", auth=None, headers={"Authorization": "Bearer abc"})
        self.assertEqual(st, 401)
        self.assertEqual(out["errorMessages"], [NOT_AUTH])

    # ----- catalog
    def test_priorities(self):
        st, _, out = self.si.api("GET", "/priority")
        self.assertEqual(st, 200)
        self.assertEqual([p["name"] for p in out], ["Highest", "High", "Medium", "Low", "Lowest"])
        for p in out:
            self.assertTrue({"self", "id", "name", "iconUrl", "statusColor", "description"} <= set(p))
        st, _, one = self.si.api("GET", "/priority/" + out[2]["id"])
        self.assertEqual((st, one["name"]), (200, "Medium"))
        st, _, err = self.si.api("GET", "/priority/999")
        self.assertEqual(st, 404)
        self.assertIsInstance(err["errorMessages"], list)

    def test_statuses(self):
        st, _, out = self.si.api("GET", "/status")
        self.assertEqual(st, 200)
        self.assertEqual([s["name"] for s in out], ["To Do", "In Progress", "Done"])
        self.assertEqual([s["statusCategory"]["key"] for s in out], ["new", "indeterminate", "done"])
        st, _, one = self.si.api("GET", "/status/In%20Progress")
        self.assertEqual((st, one["id"]), (200, out[1]["id"]))
        st, _, one = self.si.api("GET", "/status/" + out[2]["id"])
        self.assertEqual((st, one["name"]), (200, "Done"))
        self.assertEqual(self.si.api("GET", "/status/Nope")[0], 404)

    def test_issuetypes(self):
        st, _, out = self.si.api("GET", "/issuetype")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(t["name"] for t in out), ["Bug", "Story", "Task"])
        bug = next(t for t in out if t["name"] == "Bug")
        st, _, one = self.si.api("GET", "/issuetype/" + bug["id"])
        self.assertEqual((st, one["name"], one["subtask"]), (200, "Bug", False))
        self.assertEqual(self.si.api("GET", "/issuetype/1")[0], 404)

    def test_projects(self):
        st, _, out = self.si.api("GET", "/project")
        self.assertEqual(st, 200)
        self.assertEqual([(p["key"], p["name"]) for p in out], [("DEMO", "Demo project")])
        for ref in ("DEMO", out[0]["id"]):
            st, _, one = self.si.api("GET", "/project/" + ref)
            self.assertEqual((st, one["key"]), (200, "DEMO"))
            self.assertEqual(sorted(t["name"] for t in one["issueTypes"]), ["Bug", "Story", "Task"])
        st, _, err = self.si.api("GET", "/project/NOPE")
        self.assertEqual(st, 404)
        self.assertEqual(err["errorMessages"], ["No project could be found with key 'NOPE'."])

    # ----- issues
    def test_issue_create_get_edit_delete(self):
        created = self.new_issue("A new issue", description="Some words", priority={"name": "High"},
                                 labels=["x1"])
        self.assertEqual(set(created), {"id", "key", "self"})
        self.assertTrue(created["key"].startswith("DEMO-"))
        self.assertTrue(created["self"].endswith("/rest/api/2/issue/" + created["id"]))
        for ref in (created["id"], created["key"], created["key"].lower()):
            st, _, iss = self.si.api("GET", "/issue/" + ref)
            self.assertEqual(st, 200)
            self.assertEqual(iss["key"], created["key"])
        f = iss["fields"]
        self.assertEqual((f["summary"], f["description"], f["priority"]["name"], f["labels"]),
                         ("A new issue", "Some words", "High", ["x1"]))
        self.assertEqual(f["status"]["name"], "To Do")
        self.assertEqual(f["created"], f["updated"])
        self.assertRegex(f["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
        self.assertIn("comment", f)                       # GET issue: *all by default
        st, _, part = self.si.api("GET", f"/issue/{created['key']}?fields=summary,status")
        self.assertEqual(set(part["fields"]), {"summary", "status"})
        time.sleep(0.01)
        st, _, out = self.si.api("PUT", "/issue/" + created["key"],
                                 {"fields": {"summary": "Renamed"}, "update": {"labels": [{"add": "y2"}]}})
        self.assertEqual((st, out), (204, None))
        st, _, iss = self.si.api("GET", "/issue/" + created["id"])
        self.assertEqual(iss["fields"]["summary"], "Renamed")
        self.assertEqual(iss["fields"]["labels"], ["x1", "y2"])
        self.assertGreater(iss["fields"]["updated"], iss["fields"]["created"])
        self.assertEqual(self.si.api("DELETE", "/issue/" + created["key"])[:2][0], 204)
        st, _, err = self.si.api("GET", "/issue/" + created["id"])
        self.assertEqual(st, 404)
        self.assertEqual(err, {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                               "errors": {}})
        for m in ("PUT", "DELETE"):
            self.assertEqual(self.si.api(m, "/issue/DEMO-999", {"fields": {}} if m == "PUT" else None)[0], 404)

    def test_issue_create_refusals(self):
        st, _, out = self.si.api("POST", "/issue", {"fields": {"project": {"key": "DEMO"},
                                                               "issuetype": {"name": "Bug"}}})
        self.assertEqual(st, 400)
        self.assertEqual(out["errors"], {"summary": "You must specify a summary of the issue."})
        self.assertEqual(out["errorMessages"], [])
        st, _, out = self.si.api("POST", "/issue", {"fields": {"summary": "x", "issuetype": {"name": "Bug"}}})
        self.assertEqual((st, list(out["errors"])), (400, ["project"]))
        st, _, out = self.si.api("POST", "/issue", {"fields": {"summary": "x", "project": {"key": "DEMO"},
                                                               "issuetype": {"name": "Epic"}}})
        self.assertEqual((st, list(out["errors"])), (400, ["issuetype"]))
        st, _, out = self.si.api("POST", "/issue", {"fields": {"summary": "x", "project": {"key": "DEMO"},
                                                               "issuetype": {"id": "10001"}, "colour": "red"}})
        self.assertEqual(st, 400)
        self.assertIn("cannot be set", out["errors"]["colour"])
        st, _, out = self.si.api("POST", "/issue", {"fields": {"summary": "x" * 256, "project": {"key": "DEMO"},
                                                               "issuetype": {"id": "10001"}}})
        self.assertEqual((st, list(out["errors"])), (400, ["summary"]))
        st, _, out = self.si.api("POST", "/issue", raw=b"{not json")
        self.assertEqual(st, 400)
        self.assertIsInstance(out["errorMessages"], list)

    def test_content_type_is_checked(self):
        body = json.dumps({"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Task"},
                                      "summary": "typed"}}).encode()
        st, _, out = self.si.api("POST", "/issue", raw=body, headers={"Content-Type": "text/plain"})
        self.assertEqual((st, out), (403, "XSRF check failed"))
        st, _, out = self.si.api("POST", "/issue", raw=body, headers={"Content-Type": "application/xml"})
        self.assertEqual(st, 415)
        st, _, out = self.si.api("POST", "/issue", raw=body,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(st, 201)

    def test_edit_refuses_status(self):
        st, _, out = self.si.api("PUT", "/issue/DEMO-3", {"fields": {"status": {"name": "Done"}}})
        self.assertEqual(st, 400)
        self.assertIn("status", out["errors"])
        st, _, iss = self.si.api("GET", "/issue/DEMO-3?fields=status,updated,created")
        self.assertEqual(iss["fields"]["status"]["name"], "To Do")

    def test_comments(self):
        st, _, out = self.si.api("GET", "/issue/DEMO-1/comment")
        self.assertEqual(st, 200)
        self.assertEqual(set(out), {"startAt", "maxResults", "total", "comments"})
        self.assertEqual((out["startAt"], out["total"], len(out["comments"])), (0, 2, 2))
        c = out["comments"][0]
        self.assertTrue({"self", "id", "author", "body", "updateAuthor", "created", "updated"} <= set(c))
        st, _, page = self.si.api("GET", "/issue/DEMO-1/comment?startAt=1&maxResults=1")
        self.assertEqual((page["startAt"], page["maxResults"], page["total"], len(page["comments"])), (1, 1, 2, 1))
        st, _, before = self.si.api("GET", "/issue/DEMO-3?fields=updated")
        time.sleep(0.01)
        st, _, new = self.si.api("POST", "/issue/DEMO-3/comment", {"body": "First!"})
        self.assertEqual((st, new["body"]), (201, "First!"))
        st, _, after = self.si.api("GET", "/issue/DEMO-3?fields=updated")
        self.assertGreater(after["fields"]["updated"], before["fields"]["updated"])
        st, _, one = self.si.api("GET", f"/issue/DEMO-3/comment/{new['id']}")
        self.assertEqual((st, one["id"]), (200, new["id"]))
        st, _, upd = self.si.api("PUT", f"/issue/DEMO-3/comment/{new['id']}", {"body": "Edited"})
        self.assertEqual((st, upd["body"]), (200, "Edited"))
        st, _, out = self.si.api("POST", "/issue/DEMO-3/comment", {"body": ""})
        self.assertEqual(st, 400)
        self.assertIn("comment", out["errors"])
        self.assertEqual(self.si.api("DELETE", f"/issue/DEMO-3/comment/{new['id']}")[0], 204)
        self.assertEqual(self.si.api("GET", f"/issue/DEMO-3/comment/{new['id']}")[0], 404)
        self.assertEqual(self.si.api("GET", "/issue/DEMO-999/comment")[0], 404)

    def test_transitions(self):
        st, _, out = self.si.api("GET", "/issue/DEMO-3/transitions")
        self.assertEqual(st, 200)
        names = [t["name"] for t in out["transitions"]]
        self.assertEqual(sorted(names), ["Done", "In Progress"])          # not to the current status
        for t in out["transitions"]:
            self.assertTrue({"id", "name", "to"} <= set(t))
            self.assertIn("statusCategory", t["to"])
        start = next(t for t in out["transitions"] if t["name"] == "In Progress")
        st, _, body = self.si.api("POST", "/issue/DEMO-3/transitions", {"transition": {"id": start["id"]}})
        self.assertEqual((st, body), (204, None))
        st, _, iss = self.si.api("GET", "/issue/DEMO-3?fields=status,resolution")
        self.assertEqual(iss["fields"]["status"]["name"], "In Progress")
        st, _, err = self.si.api("POST", "/issue/DEMO-3/transitions", {"transition": {"id": start["id"]}})
        self.assertEqual(st, 400)
        st, _, err = self.si.api("POST", "/issue/DEMO-3/transitions", {"transition": {"id": "999"}})
        self.assertEqual(st, 400)
        self.assertEqual(err["errorMessages"], ["Transition id '999' is not valid for this issue."])
        self.assertEqual(self.si.api("POST", "/issue/DEMO-3/transitions", {})[0], 400)
        done = next(t for t in out["transitions"] if t["name"] == "Done")
        self.assertEqual(self.si.api("POST", "/issue/DEMO-3/transitions",
                                     {"transition": {"id": done["id"]},
                                      "update": {"comment": [{"add": {"body": "Closing"}}]}})[0], 204)
        st, _, iss = self.si.api("GET", "/issue/DEMO-3?fields=status,resolution,resolutiondate,comment")
        self.assertEqual(iss["fields"]["status"]["name"], "Done")
        self.assertEqual(iss["fields"]["resolution"]["name"], "Done")
        self.assertIsNotNone(iss["fields"]["resolutiondate"])
        self.assertEqual(iss["fields"]["comment"]["comments"][-1]["body"], "Closing")

    # ----- JQL
    def test_jql_basics(self):
        self.jql_ok("project = DEMO ORDER BY key ASC", ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"])
        self.jql_ok("project = 'Demo project' ORDER BY key DESC", ["DEMO-4", "DEMO-3", "DEMO-2", "DEMO-1"])
        self.jql_ok("project = DEMO ORDER BY created DESC", ["DEMO-4", "DEMO-3", "DEMO-2", "DEMO-1"])
        self.jql_ok("project = DEMO ORDER BY updated ASC", ["DEMO-1", "DEMO-3", "DEMO-2", "DEMO-4"])
        self.jql_ok("key = DEMO-2", ["DEMO-2"])
        self.jql_ok("issuekey in (DEMO-1, demo-3) ORDER BY key", ["DEMO-1", "DEMO-3"])
        self.jql_ok("id = 10002", ["DEMO-2"])
        self.jql_ok("key > DEMO-2 ORDER BY key", ["DEMO-3", "DEMO-4"])
        self.jql_ok('status = "In Progress"', ["DEMO-2"])
        self.jql_ok("status != Done ORDER BY key ASC", ["DEMO-2", "DEMO-3", "DEMO-4"])
        self.jql_ok("statusCategory = done", ["DEMO-1"])
        self.jql_ok("priority in (Highest, High) ORDER BY key ASC", ["DEMO-1", "DEMO-4"])
        self.jql_ok("priority not in (Highest, High) ORDER BY key ASC", ["DEMO-2", "DEMO-3"])
        self.jql_ok("priority >= High ORDER BY priority DESC", ["DEMO-4", "DEMO-1"])
        self.jql_ok("issuetype = Bug ORDER BY key", ["DEMO-1", "DEMO-4"])
        self.jql_ok("type = Story", ["DEMO-3"])
        self.jql_ok("labels = docs", ["DEMO-2"])

    def test_jql_logic_and_empty(self):
        self.jql_ok("description IS EMPTY", ["DEMO-3"])
        self.jql_ok("project = DEMO AND description IS NOT EMPTY ORDER BY key", ["DEMO-1", "DEMO-2", "DEMO-4"])
        self.jql_ok("resolution IS NULL ORDER BY key", ["DEMO-2", "DEMO-3", "DEMO-4"])
        self.jql_ok("resolution = EMPTY ORDER BY key", ["DEMO-2", "DEMO-3", "DEMO-4"])
        self.jql_ok("labels IS EMPTY", ["DEMO-3"])
        self.jql_ok("NOT status = Done AND labels = docs", ["DEMO-2"])
        self.jql_ok("project = DEMO AND NOT (status = Done OR priority = Highest) ORDER BY key", ["DEMO-2", "DEMO-3"])
        self.jql_ok("(priority = Low OR priority = Highest) and project = DEMO order by priority desc",
                    ["DEMO-4", "DEMO-3"])
        self.jql_ok("assignee IS EMPTY AND reporter = currentUser() AND key = DEMO-1", ["DEMO-1"])

    def test_jql_text(self):
        self.jql_ok('summary ~ "checklist"', ["DEMO-2"])
        self.jql_ok('summary ~ "check*"', ["DEMO-2"])
        self.jql_ok('summary ~ "CHECKLIST onboarding"', ["DEMO-2"])
        self.jql_ok('summary ~ "checklis"', [])
        self.jql_ok('summary !~ "checklist" AND project = DEMO ORDER BY key', ["DEMO-1", "DEMO-3", "DEMO-4"])
        self.jql_ok('text ~ "safari" ', ["DEMO-1"])
        self.jql_ok('text ~ "escaping"', ["DEMO-4"])            # found in a comment
        self.jql_ok('comment ~ "verify"', ["DEMO-1"])

    def test_jql_quoted_strings_and_escapes(self):
        made = self.new_issue('He said "hi" \\ then left')
        self.jql_ok('summary ~ "said \\"hi\\""', [made["key"]])
        self.jql_ok("summary ~ 'said \\'hi\\''", [made["key"]])     # single quotes, escaped inside
        out = self.jql_400('project = "DE\\\\MO"', "does not exist for the field 'project'")
        self.assertIn("The value 'DE\\MO' does not exist for the field 'project'.", out["errorMessages"])
        self.jql_ok('status = "To Do" AND summary ~ "\\u0068i"', [made["key"]])

    def test_jql_dates_in_the_account_time_zone(self):
        tz = zoneinfo.ZoneInfo(TZ)
        st, _, iss = self.si.api("GET", "/issue/DEMO-4?fields=updated")
        upd = dt.datetime.strptime(iss["fields"]["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
        local = upd.astimezone(tz)
        minute = local.strftime("%Y/%m/%d %H:%M")
        next_minute = (local + dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
        self.jql_ok(f'key = DEMO-4 AND updated >= "{minute}"', ["DEMO-4"])
        self.jql_ok(f'key = DEMO-4 AND updated < "{next_minute}"', ["DEMO-4"])
        self.jql_ok(f'key = DEMO-4 AND updated >= "{next_minute}"', [])
        utc_next = (upd.astimezone(dt.timezone.utc) + dt.timedelta(minutes=1)).strftime("%Y/%m/%d %H:%M")
        self.jql_ok(f'key = DEMO-4 AND updated < "{utc_next}"', [])   # read as Sydney time, not UTC
        self.jql_ok('project = DEMO AND updated >= "-3h"', ["DEMO-4"])
        self.jql_ok('project = DEMO AND created >= -4d ORDER BY created ASC', ["DEMO-3", "DEMO-4"])
        self.jql_ok('project = DEMO AND created > startOfDay("-400d") AND updated <= now() ORDER BY key',
                    ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"])
        self.jql_ok('created < "2001/01/01"', [])
        self.jql_ok('project = DEMO AND resolved IS NOT EMPTY', ["DEMO-1"])
        out = self.jql_400('updated >= "2024/13/45 10:00"', "Date value '2024/13/45 10:00' for field 'updated' is invalid")
        self.assertIn("'yyyy/MM/dd HH:mm'", out["errorMessages"][0])

    def test_jql_refusals(self):
        for text, fragment in [
            ("project = ", "Error in the JQL Query: Expecting either a value, list or function before the end"),
            ("project = DEMO AND (status = Done", "Error in the JQL Query: Expecting ')' before the end of the query."),
            ('summary ~ "unfinished', "Error in the JQL Query: The quoted string 'unfinished' has not been completed."),
            ("project & DEMO", "Error in the JQL Query: Expecting operator but got '&'."),
            ("project = DEMO foo", "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'foo'."),
            ("status = end", "Error in the JQL Query: 'end' is a reserved JQL word."),
            ("summary ~ a@b", "Error in the JQL Query: The character '@' is a reserved JQL character."),
            ("project in DEMO", "Error in the JQL Query"),
            ("project = DEMO ORDER created", "Error in the JQL Query: Expecting 'BY'"),
            ("nope = 1", "Field 'nope' does not exist or you do not have permission to view it."),
            ("status = Nope", "The value 'Nope' does not exist for the field 'status'."),
            ("key = DEMO-999", "An issue with key 'DEMO-999' does not exist for field 'key'."),
            ("summary = x", "The operator '=' is not supported by the 'summary' field."),
            ("project = DEMO ORDER BY rank", "Not able to sort using field 'rank'."),
        ]:
            self.jql_400(text, fragment)
        out = self.jql_400("project = DEMO AND foo bar", "Expecting operator but got 'bar'.")
        self.assertTrue(out["errorMessages"][0].endswith("(line 1, character 24)"), out)


class CloudTest(Base, unittest.TestCase):
    @property
    def si(self):
        return CLOUD

    def test_myself_names_an_account_id(self):
        st, _, me = self.si.api("GET", "/myself")
        self.assertEqual(st, 200)
        self.assertTrue({"accountId", "accountType", "emailAddress", "displayName", "timeZone", "active"} <= set(me))
        self.assertNotIn("name", me)
        self.assertNotIn("key", me)
        self.assertEqual((me["emailAddress"], me["timeZone"]), ("demo@example.com", TZ))

    def test_issue_users_have_account_ids(self):
        st, _, iss = self.si.api("GET", "/issue/DEMO-1?fields=reporter,comment")
        self.assertIn("accountId", iss["fields"]["reporter"])
        self.assertNotIn("name", iss["fields"]["reporter"])
        self.assertIn("accountId", iss["fields"]["comment"]["comments"][0]["author"])

    def test_old_search_is_gone(self):
        for method, path, body in [("GET", "/rest/api/2/search?jql=project%3DDEMO", None),
                                   ("POST", "/rest/api/2/search", {"jql": "project = DEMO"}),
                                   ("GET", "/rest/api/latest/search?jql=project%3DDEMO", None)]:
            st, _, out = self.si.call(method, path, body)
            self.assertEqual(st, 410, path)
            self.assertTrue(out["errorMessages"][0].startswith("The requested API has been removed. Please migrate "
                                                               "to the /rest/api/"), out)
            self.assertIn("https://developer.atlassian.com/changelog/#CHANGE-2046", out["errorMessages"][0])

    def test_enhanced_search_bare_ids_and_pages(self):
        q = urllib.parse.urlencode({"jql": "project = DEMO ORDER BY key ASC", "maxResults": 3})
        st, _, out = self.si.api("GET", "/search/jql?" + q)
        self.assertEqual(st, 200)
        self.assertEqual(set(out), {"issues", "nextPageToken", "isLast"})
        self.assertEqual(out["issues"], [{"id": "10001"}, {"id": "10002"}, {"id": "10003"}])
        self.assertIs(out["isLast"], False)
        q2 = urllib.parse.urlencode({"jql": "project = DEMO ORDER BY key ASC", "maxResults": 3,
                                     "nextPageToken": out["nextPageToken"]})
        st, _, last = self.si.api("GET", "/search/jql?" + q2)
        self.assertEqual(last["issues"], [{"id": "10004"}])
        self.assertIs(last["isLast"], True)
        self.assertNotIn("nextPageToken", last)
        for absent in ("startAt", "total", "maxResults"):
            self.assertNotIn(absent, out)

    def test_enhanced_search_post_with_fields(self):
        st, _, out = self.si.api("POST", "/search/jql", {"jql": "project = DEMO ORDER BY key ASC",
                                                         "fields": ["summary", "status"], "maxResults": 50})
        self.assertEqual(st, 200)
        self.assertEqual([i["key"] for i in out["issues"]], ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"])
        self.assertEqual(set(out["issues"][0]["fields"]), {"summary", "status"})
        self.assertIs(out["isLast"], True)
        st, _, nav = self.si.api("POST", "/search/jql", {"jql": "key = DEMO-1", "fields": ["*navigable"]})
        self.assertIn("summary", nav["issues"][0]["fields"])
        self.assertNotIn("comment", nav["issues"][0]["fields"])
        st, _, allf = self.si.api("GET", "/search/jql?jql=key%3DDEMO-1&fields=*all")
        self.assertEqual(allf["issues"][0]["fields"]["comment"]["total"], 2)
        st, _, minus = self.si.api("GET", "/search/jql?jql=key%3DDEMO-1&fields=-description")
        self.assertNotIn("description", minus["issues"][0]["fields"])
        self.assertIn("summary", minus["issues"][0]["fields"])
        st, _, tr = self.si.api("GET", "/search/jql?jql=key%3DDEMO-3&fields=summary&expand=transitions,names")
        self.assertIn("transitions", tr["issues"][0])
        self.assertEqual(tr["names"], {"summary": "Summary"})

    def test_enhanced_search_walks_every_page(self):
        for i in range(5):
            self.new_issue(f"Paged {i}")
        st, keys = self.si.keys("project = DEMO ORDER BY created ASC, key ASC")
        self.assertEqual(st, 200)
        self.assertEqual(len(keys), 9)
        self.assertEqual(len(set(keys)), 9)

    def test_enhanced_search_refusals(self):
        for jql_text in ("", "ORDER BY created DESC", "order by key"):
            st, _, out = self.si.api("POST", "/search/jql", {"jql": jql_text})
            self.assertEqual(st, 400, jql_text)
            self.assertEqual(out["errorMessages"],
                             ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."])
        st, _, out = self.si.api("GET", "/search/jql")
        self.assertEqual(st, 400)
        st, _, out = self.si.api("GET", "/search/jql?jql=project%3DDEMO&nextPageToken=garbage")
        self.assertEqual(st, 400)
        st, _, page = self.si.api("GET", "/search/jql?jql=project%3DDEMO&maxResults=1")
        other = urllib.parse.urlencode({"jql": "project = DEMO AND status = Done", "nextPageToken": page["nextPageToken"]})
        self.assertEqual(self.si.api("GET", "/search/jql?" + other)[0], 400)
        st, _, out = self.si.api("GET", "/search/jql?jql=project%3DDEMO&maxResults=abc")
        self.assertEqual(st, 400)

    def test_enhanced_search_is_eventually_consistent(self):
        self.si.control("POST", "/config", {"searchLagSeconds": 60})
        made = self.new_issue("Not indexed yet")
        self.jql_ok(f"key = {made['key']}", [])
        self.assertEqual(self.si.api("GET", "/issue/" + made["key"])[0], 200)
        st, _, out = self.si.api("POST", "/search/jql", {"jql": "project = DEMO", "fields": ["summary"],
                                                         "reconcileIssues": [int(made["id"])]})
        self.assertIn(made["key"], [i["key"] for i in out["issues"]])

    def test_edit_with_return_issue(self):
        st, _, out = self.si.api("PUT", "/issue/DEMO-2?returnIssue=true", {"fields": {"summary": "Changed"}})
        self.assertEqual(st, 200)
        self.assertEqual(out["fields"]["summary"], "Changed")

    def test_enhanced_search_limits_comments(self):
        for i in range(23):
            self.assertEqual(self.si.api("POST", "/issue/DEMO-3/comment", {"body": f"c{i}"})[0], 201)
        st, _, out = self.si.api("POST", "/search/jql", {"jql": "key = DEMO-3", "fields": ["comment"]})
        c = out["issues"][0]["fields"]["comment"]
        self.assertEqual((len(c["comments"]), c["total"]), (20, 23))


class ServerTest(Base, unittest.TestCase):
    @property
    def si(self):
        return SERVER

    def test_myself_names_a_user_name(self):
        st, _, me = self.si.api("GET", "/myself")
        self.assertEqual(st, 200)
        self.assertTrue({"name", "key", "emailAddress", "displayName", "timeZone"} <= set(me))
        self.assertNotIn("accountId", me)
        self.assertEqual(me["name"], self.si.info["user"])

    def test_issue_users_have_names(self):
        st, _, iss = self.si.api("GET", "/issue/DEMO-1?fields=reporter")
        self.assertIn("name", iss["fields"]["reporter"])
        self.assertNotIn("accountId", iss["fields"]["reporter"])

    def test_search_with_start_at_and_total(self):
        q = urllib.parse.urlencode({"jql": "project = DEMO ORDER BY key ASC", "startAt": 1, "maxResults": 2})
        st, _, out = self.si.api("GET", "/search?" + q)
        self.assertEqual(st, 200)
        self.assertEqual((out["startAt"], out["maxResults"], out["total"]), (1, 2, 4))
        self.assertEqual([i["key"] for i in out["issues"]], ["DEMO-2", "DEMO-3"])
        f = out["issues"][0]["fields"]
        self.assertIn("summary", f)                  # *navigable by default
        self.assertNotIn("comment", f)
        st, _, post = self.si.api("POST", "/search", {"jql": "project = DEMO", "startAt": 0, "maxResults": 1,
                                                      "fields": ["summary"]})
        self.assertEqual((st, post["total"], len(post["issues"])), (200, 4, 1))
        self.assertEqual(set(post["issues"][0]["fields"]), {"summary"})
        st, _, everything = self.si.api("GET", "/search")      # no JQL: every issue (not refused on Server)
        self.assertEqual((st, everything["total"]), (200, 4))

    def test_search_parse_error_body(self):
        st, _, out = self.si.api("GET", "/search?jql=" + urllib.parse.quote("project = "))
        self.assertEqual(st, 400)
        self.assertEqual(set(out), {"errorMessages", "errors"})

    def test_no_enhanced_search(self):
        self.assertEqual(self.si.api("GET", "/search/jql?jql=project%3DDEMO")[0], 404)
        self.assertEqual(self.si.api("POST", "/search/jql", {"jql": "project = DEMO"})[0], 404)


class ControlTest(unittest.TestCase):
    si = property(lambda self: CLOUD)

    def setUp(self):
        self.assertEqual(self.si.control("POST", "/reset")[0], 200)

    def test_canned_429_then_normal(self):
        st, _, out = self.si.control("POST", "/next", {"preset": "rate-limited", "retryAfter": 7})
        self.assertEqual((st, out["queued"]), (200, 1))
        st, h, body = self.si.api("GET", "/myself")
        self.assertEqual(st, 429)
        self.assertEqual(h.get("Retry-After"), "7")
        self.assertRegex(h.get("X-RateLimit-Reset", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
        self.assertEqual(h.get("X-RateLimit-Remaining"), "0")
        self.assertEqual(self.si.api("GET", "/myself")[0], 200)

    def test_canned_list_with_match_and_times(self):
        self.si.control("POST", "/next", [
            {"status": 503, "headers": {"Retry-After": "2"}, "body": {"errorMessages": ["busy"]},
             "match": {"path": "/rest/api/2/priority"}, "times": 2},
            {"status": 401, "headers": {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
             "body": {"errorMessages": [NOT_AUTH], "errors": {}}, "match": {"method": "POST"}}])
        self.assertEqual(self.si.api("GET", "/myself")[0], 200)                 # matches neither
        st, h, out = self.si.api("GET", "/priority")
        self.assertEqual((st, h.get("Retry-After"), out), (503, "2", {"errorMessages": ["busy"]}))
        self.assertEqual(self.si.api("GET", "/priority/1")[0], 503)
        self.assertEqual(self.si.api("GET", "/priority")[0], 200)
        st, h, _ = self.si.api("POST", "/search/jql", {"jql": "project = DEMO"})
        self.assertEqual((st, h.get("X-Seraph-LoginReason")), (401, "AUTHENTICATED_FAILED"))
        st, _, pending = self.si.control("GET", "/next")
        self.assertEqual(pending, [])

    def test_slow_answer(self):
        self.si.control("POST", "/next", {"delay": 0.6})
        t0 = time.monotonic()
        st, _, me = self.si.api("GET", "/myself")
        self.assertEqual(st, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.55)
        self.si.control("POST", "/next", {"preset": "slow", "delay": 3})
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.si.api("GET", "/myself", timeout=0.5)

    def test_drop_and_not_json(self):
        self.si.control("POST", "/next", [{"preset": "drop"}, {"preset": "not-json"}, {"preset": "captcha"}])
        with self.assertRaises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
            self.si.api("GET", "/myself")
        st, h, out = self.si.api("GET", "/myself")
        self.assertEqual(st, 200)
        self.assertTrue(h.get("Content-Type").startswith("text/html"))
        st, h, _ = self.si.api("GET", "/myself")
        self.assertEqual((st, h.get("X-Seraph-LoginReason")), (403, "AUTHENTICATION_DENIED"))

    def test_requests_log_hides_the_password(self):
        self.si.control("DELETE", "/requests")
        self.si.api("POST", "/issue/DEMO-1/comment?expand=renderedBody", {"body": "logged"})
        self.si.api("GET", "/myself", auth=("demo@example.com", "wrong-secret"))
        st, _, log = self.si.control("GET", "/requests")
        self.assertEqual(st, 200)
        self.assertEqual(len(log), 2)
        first = log[0]
        self.assertEqual((first["method"], first["path"], first["query"]),
                         ("POST", "/rest/api/2/issue/DEMO-1/comment", {"expand": ["renderedBody"]}))
        self.assertEqual(first["body"], {"body": "logged"})
        self.assertEqual((first["authUser"], first["authValid"], first["status"]), ("demo@example.com", True, 201))
        auth_hdr = next(v for k, v in first["headers"].items() if k.lower() == "authorization")
        self.assertIs(auth_hdr, True)
        self.assertEqual((log[1]["authValid"], log[1]["status"]), (False, 401))
        dump = json.dumps(log)
        self.assertNotIn("demo-api-token", dump)
        self.assertNotIn("wrong-secret", dump)
        self.assertNotIn(base64.b64encode(b"demo@example.com:demo-api-token").decode(), dump)
        st, _, since = self.si.control("GET", f"/requests?since={first['seq']}")
        self.assertEqual(len(since), 1)

    def test_reset_reseeds(self):
        made = CloudTest.new_issue(self, "to be forgotten")
        self.si.control("POST", "/reset")
        self.assertEqual(self.si.api("GET", "/issue/" + made["id"])[0], 404)
        st, _, state = self.si.control("GET", "/state")
        self.assertEqual(state["issues"], ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"])

    def test_clock_and_backdated_issues(self):
        st, _, out = self.si.control("POST", "/issues", {"summary": "Old one", "created": "2020-01-02T03:04:05Z"})
        self.assertEqual(st, 201)
        st, _, iss = self.si.api("GET", f"/issue/{out['key']}?fields=created,updated")
        self.assertTrue(iss["fields"]["created"].startswith("2020-01-02T14:04:05.000+1100"))
        st, keys = self.si.keys('created < "2020/01/03"')
        self.assertEqual(keys, [out["key"]])
        self.si.control("POST", "/clock", {"advanceSeconds": 86400})
        made = CloudTest.new_issue(self, "Tomorrow")
        st, keys = self.si.keys('created > "-1h"')          # "now" is a day after the real now
        self.assertEqual(keys, [made["key"]])

    def test_key_and_id_comparisons_are_within_the_named_issues_project_and_need_it_to_exist(self):
        st, _, two = self.si.api("GET", "/issue/DEMO-2?fields=summary")
        st, keys = self.si.keys('project = DEMO AND key > "DEMO-2" ORDER BY key ASC')
        self.assertEqual(keys[:2], ["DEMO-3", "DEMO-4"])
        self.assertTrue(all(int(k.split("-")[1]) > 2 for k in keys), keys)
        st, by_id = self.si.keys(f'project = DEMO AND id > {two["id"]} ORDER BY key ASC')
        self.assertEqual(by_id, keys, "an id compares as its issue's key, not as a number")
        for missing in ('key > "DEMO-999"', "id > 99999", 'key <= "NOPE-1"'):
            st, _, out = self.si.api("POST", "/search/jql", {"jql": f"project = DEMO AND {missing}", "fields": ["summary"]})
            self.assertEqual(st, 400, missing)
            self.assertIn("does not exist", " ".join(out["errorMessages"]), out)

    def test_the_date_header_is_on_the_standins_clock_and_the_profiles_zone_can_change(self):
        import email.utils
        self.si.control("POST", "/clock", {"offsetSeconds": 3600})
        try:
            st, headers, _ = self.si.api("GET", "/myself")
            said = email.utils.parsedate_to_datetime(headers["Date"])
            ahead = (said - dt.datetime.now(dt.timezone.utc)).total_seconds()
            self.assertLess(abs(ahead - 3600), 5, headers["Date"])
        finally:
            self.si.control("POST", "/clock", {"offsetSeconds": 0})
        st, _, out = self.si.control("POST", "/config", {"timeZone": "Nowhere/Atlantis"})
        self.assertEqual(st, 400)
        st, _, out = self.si.control("POST", "/config", {"timeZone": "UTC"})
        try:
            self.assertEqual((st, out["timeZone"]), (200, "UTC"))
            self.assertEqual(self.si.api("GET", "/myself")[2]["timeZone"], "UTC")
            made = CloudTest.new_issue(self, "In UTC")
            st, _, iss = self.si.api("GET", f"/issue/{made['key']}?fields=updated")
            self.assertTrue(iss["fields"]["updated"].endswith("+0000"), iss["fields"]["updated"])
            # JQL's absolute dates are read in the new zone too.
            upd = dt.datetime.strptime(iss["fields"]["updated"][:16], "%Y-%m-%dT%H:%M")
            st, keys = self.si.keys(f'updated >= "{upd.strftime("%Y/%m/%d %H:%M")}" AND key = {made["key"]}')
            self.assertEqual(keys, [made["key"]])
        finally:
            self.si.control("POST", "/reset")
        self.assertEqual(self.si.api("GET", "/myself")[2]["timeZone"], "Australia/Sydney")

    def test_control_is_not_rest(self):
        st, _, out = self.si.control("GET", "/nope")
        self.assertEqual(st, 404)
        st, _, out = self.si.control("POST", "/next", {"nothing": True})
        self.assertEqual(st, 400)

    def test_state_file_survives_restart(self):
        tmp = tempfile.mkdtemp()
        state = os.path.join(tmp, "state.json")
        si = StandIn("server", "--state-file", state)
        try:
            body = {"fields": {"project": {"key": "DEMO"}, "issuetype": {"name": "Bug"}, "summary": "kept"}}
            st, _, made = si.api("POST", "/issue", body)
            self.assertEqual(st, 201)
            si.api("POST", f"/issue/{made['key']}/comment", {"body": "kept too"})
            si.stop()
            si2 = StandIn("server", "--state-file", state)
            try:
                st, _, iss = si2.api("GET", f"/issue/{made['key']}?fields=summary,comment")
                self.assertEqual((st, iss["fields"]["summary"]), (200, "kept"))
                self.assertEqual(iss["fields"]["comment"]["comments"][0]["body"], "kept too")
                self.assertEqual(si2.api("POST", "/issue", body)[2]["key"], "DEMO-6")
            finally:
                si2.cleanup()
        finally:
            si.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


class Result(unittest.TextTestResult):
    pass


def main():
    global CLOUD, SERVER
    verbosity = 2 if "-v" in sys.argv else 1
    CLOUD = StandIn("cloud", "--san", "jira.test", "--san", "127.0.0.2")
    SERVER = StandIn("server", "--user", "demo", "--password", "demo-password")
    try:
        suite = unittest.TestSuite()
        loader = unittest.TestLoader()
        for cls in (CloudTest, ServerTest, ControlTest):
            suite.addTests(loader.loadTestsFromTestCase(cls))
        result = unittest.TextTestRunner(stream=sys.stdout, verbosity=verbosity, resultclass=Result).run(suite)
    finally:
        CLOUD.cleanup()
        SERVER.cleanup()
    failed = len(result.failures) + len(result.errors) + len(getattr(result, "unexpectedSuccesses", []))
    passed = result.testsRun - failed - len(result.skipped)
    print(f"jira-standin: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
