#!/usr/bin/env python3
"""A local JIRA stand-in (Jira Cloud or Jira Server / Data Center), REST API v2, over HTTPS.

Written from Atlassian's documentation, NOT from this project's Rust code: its purpose is to
catch the code's misreadings of JIRA. Usage and the control API: docs/jira-standin.md.

  .venv/local/bin/python tools/jira_standin.py [--flavor cloud|server] [--host 127.0.0.1]
      [--port 0] [--user demo@example.com] [--password demo-api-token] [--ca-file PATH]
      [--san NAME]... [--state-file PATH] [--time-zone Australia/Sydney] [--max-failed-logins 3]

Prints one JSON line when ready: {"url", "caFile", "user", "password", "flavor"}.

Which documentation each behaviour follows
------------------------------------------
Shapes, parameters and status codes: Atlassian's OpenAPI description of the Jira Cloud platform
REST API (swagger.v3.json, version 1001.0.0-SNAPSHOT; the v2 operations are the same with plain
strings instead of Atlassian Document Format), as rendered at
https://developer.atlassian.com/cloud/jira/platform/rest/v2/ :
  - GET /myself (User: accountId, accountType, emailAddress, displayName, timeZone, active...):
    https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-myself/
    Server/DC (name, key, emailAddress, displayName, timeZone):
    https://developer.atlassian.com/server/jira/platform/rest/v10004/api-group-myself
  - Enhanced search GET/POST /search/jql (jql, nextPageToken, maxResults default 50, fields
    default "id", expand, reconcileIssues; answer {issues, nextPageToken, isLast}, no startAt, no
    total, nextPageToken absent on the last page; a bounded JQL is required; at most 5000 ids):
    https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-search/
    https://developer.atlassian.com/changelog/#CHANGE-2046 (the old /search removed, 410)
    https://docs.adaptavist.com/sr4jc/latest/release-notes/breaking-changes/atlassian-rest-api-search-endpoints-deprecation
    (ids only by default, 20 comments at most per issue, unbounded JQL is a 400)
    https://community.developer.atlassian.com/t/rfc-61-evolving-search-capabilities-addressing-scalability-with-a-new-enhanced-search-api/83027
    (eventual consistency). The texts of the 410 and of the unbounded-JQL 400, as JIRA answers
    them: https://github.com/adyscorpius/logseq-jira/issues/34 ,
    https://github.com/raycast/extensions/issues/21425
  - Server/DC GET/POST /search (jql, startAt, maxResults, fields default *navigable; answer
    {expand, startAt, maxResults, total, issues}; "by default, only navigable (*navigable) fields are
    returned in this search resource... the default there [get issue] all fields (*all)"):
    https://docs.atlassian.com/jira/REST/5.0-rc1/jira-rest-plugin.wadl ,
    https://support.atlassian.com/jira/kb/how-to-use-the-maxresults-api-parameter-for-jira-issue-search-rest-api
  - POST /issue (201 {id, key, self}; 400 ErrorCollection {errorMessages, errors}), GET (fields,
    default *all; expand), PUT (204; 200 with returnIssue on Cloud), DELETE (204), 404 when absent:
    https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/
  - comments (GET {startAt, maxResults (default 100), total, comments}, POST 201, PUT 200, DELETE
    204): https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-comments/
  - transitions (GET {transitions}, POST {"transition": {"id"}} 204, 400 otherwise):
    https://developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issues/#api-rest-api-2-issue-issueidorkey-transitions-get
  - /priority, /priority/{id}: .../rest/v2/api-group-issue-priorities/ ; /status,
    /status/{idOrName}: .../rest/v2/api-group-workflow-statuses/ ; /issuetype, /issuetype/{id}:
    .../rest/v2/api-group-issue-types/ ; /project, /project/{projectIdOrKey}: .../rest/v2/api-group-projects/
  - ErrorCollection {errorMessages, errors}: the OpenAPI schema ErrorCollection.
Authentication:
  - basic auth, email + API token on Cloud, user name + password on Server/DC:
    https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/
    https://developer.atlassian.com/server/jira/platform/basic-authentication/
  - X-Seraph-LoginReason (AUTHENTICATED_FAILED; AUTHENTICATION_DENIED once CAPTCHA is required,
    with X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE; login-url=..., status 403, an HTML
    body): https://developer.atlassian.com/server/jira/platform/basic-authentication/ (CAPTCHA),
    https://confluence.atlassian.com/jakb/connector-captcha_challenge-error-on-jira-align-connector-1318881453.html
    (a real 403's headers), https://support.atlassian.com/jira/kb/user-receives-repeated-captcha-prompts-on-login-to-jira-data-center/
    (3 failures by default; the count is reset by an administrator or a browser login)
Content types: a body that is not application/json is a 415; a form, multipart or text/plain body
without X-Atlassian-Token: no-check is "XSRF check failed" (403):
https://support.atlassian.com/atlassian-cloud/kb/xsrf-check-failed-when-calling-cloud-apis ,
https://github.com/MrRefactoring/jira.js/issues/144 (415 for a form body).
Rate limits (canned answers, see the control API): 429 with Retry-After (seconds),
X-RateLimit-Reset (yyyy-MM-ddTHH:mmZ), X-RateLimit-Limit, X-RateLimit-Remaining, RateLimit-Reason;
503 with Retry-After: https://developer.atlassian.com/cloud/jira/platform/rate-limiting/
JQL: tools/jira_standin_jql.py (its docstring names its sources).
Not found in the documentation, chosen here (docs/jira-standin.md lists them): the texts of the
404s of priority/status/issuetype/comment, of an invalid nextPageToken, of the 429's body; the
default order of a JQL without ORDER BY (created DESC).
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import html
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
import zoneinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jira_standin_jql as jql  # noqa: E402

UTC = dt.timezone.utc
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_404 = "Issue does not exist or you do not have permission to see it."
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/{v}/search/jql API. "
           "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
NAVIGABLE_EXCLUDED = {"comment", "attachment", "worklog", "timetracking"}
FIELD_NAMES = {
    "summary": "Summary", "description": "Description", "environment": "Environment",
    "issuetype": "Issue Type", "project": "Project", "priority": "Priority", "status": "Status",
    "statuscategorychangedate": "Status Category Changed", "created": "Created", "updated": "Updated",
    "lastViewed": "Last Viewed", "reporter": "Reporter", "creator": "Creator", "assignee": "Assignee",
    "labels": "Labels", "resolution": "Resolution", "resolutiondate": "Resolved", "duedate": "Due date",
    "components": "Components", "fixVersions": "Fix versions", "versions": "Affects versions",
    "issuelinks": "Linked Issues", "subtasks": "Sub-tasks", "watches": "Watchers", "votes": "Votes",
    "progress": "Progress", "aggregateprogress": "Σ Progress", "comment": "Comment",
    "attachment": "Attachment", "worklog": "Log Work", "timetracking": "Time tracking",
}
SETTABLE = {"summary", "description", "environment", "issuetype", "project", "priority", "labels",
            "assignee", "reporter", "duedate"}


def now_utc(offset: float = 0.0) -> dt.datetime:
    t = dt.datetime.now(UTC) + dt.timedelta(seconds=offset)
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)   # JIRA keeps milliseconds


class ApiError(Exception):
    def __init__(self, status, messages=None, errors=None, extra=None, headers=None):
        super().__init__(status)
        self.status, self.headers = status, headers or {}
        self.body = {"errorMessages": list(messages or []), "errors": dict(errors or {})}
        if extra:
            self.body.update(extra)


# ============================================================================ the data

class Store:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.tz = zoneinfo.ZoneInfo(cfg.time_zone)
        self.failed_logins = 0
        self.max_failed = cfg.max_failed_logins
        self.search_lag = 0.0
        self.clock_offset = 0.0
        self.base = ""
        self.user_name = cfg.user
        email = cfg.user if "@" in cfg.user else cfg.user + "@example.com"
        self.me = {"accountId": hashlib.sha1(cfg.user.encode()).hexdigest()[:24], "name": cfg.user,
                   "key": "JIRAUSER10000", "emailAddress": email, "displayName": "Demo User"}
        self.reseed()

    # ----- catalog (static)
    def now(self):
        return now_utc(self.clock_offset)

    def reseed(self):
        with self.lock:
            self.projects = [{"id": "10000", "key": "DEMO", "name": "Demo project"}]
            self.categories = {"new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
                               "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow",
                                                 "name": "In Progress"},
                               "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"}}
            self.statuses = [
                {"id": "10000", "name": "To Do", "description": "Work that has not been started.",
                 "icon": "open.png", "category": "new"},
                {"id": "3", "name": "In Progress", "description": "The issue is currently being worked on.",
                 "icon": "inprogress.png", "category": "indeterminate"},
                {"id": "10001", "name": "Done", "description": "Work that is finished.",
                 "icon": "closed.png", "category": "done"}]
            self.priorities = [
                {"id": "1", "name": "Highest", "description": "This problem will block progress.",
                 "statusColor": "#d04437", "rank": 5},
                {"id": "2", "name": "High", "description": "Serious problem that could block progress.",
                 "statusColor": "#f15c75", "rank": 4},
                {"id": "3", "name": "Medium", "description": "Has the potential to affect progress.",
                 "statusColor": "#f79232", "rank": 3},
                {"id": "4", "name": "Low", "description": "Minor problem or easily worked around.",
                 "statusColor": "#707070", "rank": 2},
                {"id": "5", "name": "Lowest", "description": "Trivial problem with little or no impact on progress.",
                 "statusColor": "#999999", "rank": 1}]
            self.issuetypes = [
                {"id": "10001", "name": "Task", "description": "A small, distinct piece of work.", "avatarId": 10318},
                {"id": "10002", "name": "Story", "description": "Functionality or a feature expressed as a user goal.",
                 "avatarId": 10315},
                {"id": "10003", "name": "Bug", "description": "A problem or error.", "avatarId": 10303}]
            self.resolutions = [{"id": "10000", "name": "Done", "description": "Work has been completed on this issue."},
                                {"id": "10001", "name": "Won't Do", "description": "This issue won't be actioned."}]
            # Global transitions, one per target status (JIRA Cloud's default simplified workflow).
            self.transitions = [{"id": "11", "name": "To Do", "to": "10000"},
                                {"id": "21", "name": "In Progress", "to": "3"},
                                {"id": "31", "name": "Done", "to": "10001"}]
            self.issues = {}
            self.next_issue_id, self.next_number, self.next_comment_id = 10001, 1, 10100
            if self.cfg.state_file and os.path.exists(self.cfg.state_file) and not getattr(self, "_loaded", False):
                self._loaded = True
                try:
                    self._load(self.cfg.state_file)
                    return
                except (OSError, ValueError, KeyError) as e:
                    print(f"jira-standin: state file not loaded ({e}); seeding", file=sys.stderr)
                    self.issues = {}
            self._seed()

    def _seed(self):
        t0 = self.now().replace(microsecond=0)
        d, h = dt.timedelta(days=1), dt.timedelta(hours=1)
        seeds = [
            ("10003", "Login page shows a blank screen on Safari",
             "Steps:\n1. Open the login page in Safari 17.\n2. The page stays blank.", "2", "10001",
             t0 - 12 * d, t0 - 10 * d, ["frontend"],
             [("Reproduced on Safari 17.2, not on Chrome.", t0 - 11 * d),
              ("Fixed by the CSP change; please verify.", t0 - 10 * d)]),
            ("10001", "Update the onboarding checklist",
             "The checklist still mentions the old VPN.", "3", "3", t0 - 6 * d, t0 - 2 * d, ["docs"],
             [("Draft is in the shared folder.", t0 - 2 * d)]),
            ("10002", "As a user I can export my data as CSV", None, "4", "10000",
             t0 - 3 * d, t0 - 3 * d, [], []),
            ("10003", 'Search with "quoted" terms breaks the results page',
             'Searching for "a b" (with the quotes) answers a 500.', "1", "10000",
             t0 - 1 * d, t0 - 2 * h, ["search", "backend"],
             [("Looks like the escaping of \\ and \" in the query builder.", t0 - 2 * h)]),
        ]
        for itype, summary, desc, prio, status, created, updated, labels, comments in seeds:
            iss = self._new_issue(self.projects[0], itype, summary, desc, prio, labels, created)
            iss["status"] = status
            iss["statuscategorychangedate"] = updated if status != "10000" else created
            if status == "10001":
                iss["resolution"], iss["resolutiondate"] = "10000", updated
            for body, when in comments:
                self._new_comment(iss, body, when)
            iss["updated"] = updated
            iss["changed_mono"] = 0.0   # indexed long ago (see searchLagSeconds)

    def _new_issue(self, project, itype, summary, desc, prio, labels, created):
        iid = self.next_issue_id
        self.next_issue_id += 1
        num = self.next_number
        self.next_number += 1
        iss = {"id": str(iid), "key": f"{project['key']}-{num}", "project": project["id"],
               "issuetype": itype, "summary": summary, "description": desc, "environment": None,
               "priority": prio, "status": "10000", "resolution": None, "resolutiondate": None,
               "labels": list(labels), "assignee": None, "reporter": "me", "creator": "me", "duedate": None,
               "created": created, "updated": created, "statuscategorychangedate": created,
               "comments": [], "changed_mono": time.monotonic()}
        self.issues[iss["id"]] = iss
        return iss

    def _new_comment(self, iss, body, when, visibility=None):
        c = {"id": str(self.next_comment_id), "body": body, "created": when, "updated": when,
             "author": "me", "visibility": visibility}
        self.next_comment_id += 1
        iss["comments"].append(c)
        return c

    def touch(self, iss):
        iss["updated"] = self.now()
        iss["changed_mono"] = time.monotonic()

    # ----- persistence
    def save(self):
        if not self.cfg.state_file:
            return
        with self.lock:
            data = {"next": [self.next_issue_id, self.next_number, self.next_comment_id], "issues": []}
            for iss in self.issues.values():
                d = {k: v for k, v in iss.items() if k != "changed_mono"}
                d = json.loads(json.dumps(d, default=lambda o: o.isoformat()))
                data["issues"].append(d)
            tmp = self.cfg.state_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.cfg.state_file)

    def _load(self, path):
        with open(path) as f:
            data = json.load(f)
        self.next_issue_id, self.next_number, self.next_comment_id = data["next"]

        def dtv(v):
            return dt.datetime.fromisoformat(v) if isinstance(v, str) else v
        for d in data["issues"]:
            for k in ("created", "updated", "resolutiondate", "statuscategorychangedate"):
                d[k] = dtv(d.get(k))
            for c in d["comments"]:
                c["created"], c["updated"] = dtv(c["created"]), dtv(c["updated"])
            d["changed_mono"] = 0.0
            self.issues[d["id"]] = d

    # ----- look-ups
    def find_issue(self, id_or_key):
        t = urllib.parse.unquote(id_or_key)
        if t in self.issues:
            return self.issues[t]
        for iss in self.issues.values():
            if iss["key"].lower() == t.lower():
                return iss
        raise ApiError(404, [ISSUE_404])

    @staticmethod
    def _find(items, ref, keys=("id", "name")):
        if not isinstance(ref, dict):
            return None
        for k in keys:
            if k in ref and ref[k] is not None:
                for it in items:
                    if str(it.get(k, "")).lower() == str(ref[k]).lower():
                        return it
                return None
        return None

    def status(self, sid):
        return next(s for s in self.statuses if s["id"] == sid)

    def priority(self, pid):
        return next((p for p in self.priorities if p["id"] == pid), None)


# ============================================================================ JSON shapes

class Render:
    def __init__(self, store: Store, flavor: str):
        self.s, self.flavor = store, flavor

    @property
    def base(self):
        return self.s.base

    def ts(self, t):
        if t is None:
            return None
        loc = t.astimezone(self.s.tz)
        return loc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{loc.microsecond // 1000:03d}" + loc.strftime("%z")

    def avatars(self, kind, ident):
        return {f"{n}x{n}": f"{self.base}/secure/{kind}?size={n}&id={ident}" for n in (48, 24, 16, 32)}

    def user(self, who="me", full=False):
        if who is None:
            return None
        me = self.s.me
        if self.flavor == "cloud":
            u = {"self": f"{self.base}/rest/api/2/user?accountId={me['accountId']}", "accountId": me["accountId"],
                 "emailAddress": me["emailAddress"], "avatarUrls": self.avatars("useravatar", me["accountId"]),
                 "displayName": me["displayName"], "active": True, "timeZone": self.s.cfg.time_zone,
                 "accountType": "atlassian"}
        else:
            u = {"self": f"{self.base}/rest/api/2/user?username={urllib.parse.quote(me['name'])}",
                 "name": me["name"], "key": me["key"], "emailAddress": me["emailAddress"],
                 "avatarUrls": self.avatars("useravatar", me["key"]), "displayName": me["displayName"],
                 "active": True, "timeZone": self.s.cfg.time_zone}
        if full:
            u.update({"locale": "en_US", "groups": {"size": 1, "items": []},
                      "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"})
            if self.flavor == "server":
                u["deleted"] = False
        return u

    def category(self, key):
        c = dict(self.s.categories[key])
        return {"self": f"{self.base}/rest/api/2/statuscategory/{c['id']}", **c}

    def status(self, s):
        return {"self": f"{self.base}/rest/api/2/status/{s['id']}", "description": s["description"],
                "iconUrl": f"{self.base}/images/icons/statuses/{s['icon']}", "name": s["name"], "id": s["id"],
                "statusCategory": self.category(s["category"])}

    def priority(self, p):
        if p is None:
            return None
        return {"self": f"{self.base}/rest/api/2/priority/{p['id']}", "statusColor": p["statusColor"],
                "description": p["description"],
                "iconUrl": f"{self.base}/images/icons/priorities/{p['name'].lower()}.svg",
                "name": p["name"], "id": p["id"]}

    def issuetype(self, t):
        return {"self": f"{self.base}/rest/api/2/issuetype/{t['id']}", "id": t["id"],
                "description": t["description"],
                "iconUrl": f"{self.base}/secure/viewavatar?size=xsmall&avatarId={t['avatarId']}&avatarType=issuetype",
                "name": t["name"], "subtask": False, "avatarId": t["avatarId"], "hierarchyLevel": 0}

    def resolution(self, rid):
        if rid is None:
            return None
        r = next(r for r in self.s.resolutions if r["id"] == rid)
        return {"self": f"{self.base}/rest/api/2/resolution/{r['id']}", **r}

    def project(self, p, detail=False):
        out = {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
               "self": f"{self.base}/rest/api/2/project/{p['id']}", "id": p["id"], "key": p["key"],
               "name": p["name"], "avatarUrls": self.avatars("projectavatar", p["id"]),
               "projectTypeKey": "software"}
        if self.flavor == "cloud":
            out.update({"simplified": False, "style": "classic", "isPrivate": False, "properties": {}})
        else:
            out["archived"] = False
        if detail:
            out.update({"description": "A project seeded by the JIRA stand-in.", "lead": self.user(),
                        "components": [], "issueTypes": [self.issuetype(t) for t in self.s.issuetypes],
                        "assigneeType": "UNASSIGNED", "versions": [], "roles": {}})
        return out

    def comment(self, iss, c):
        out = {"self": f"{self.base}/rest/api/2/issue/{iss['id']}/comment/{c['id']}", "id": c["id"],
               "author": self.user(c["author"]), "body": c["body"], "updateAuthor": self.user(c["author"]),
               "created": self.ts(c["created"]), "updated": self.ts(c["updated"])}
        if c.get("visibility"):
            out["visibility"] = c["visibility"]
        if self.flavor == "cloud":
            out["jsdPublic"] = True
        return out

    def transition(self, t):
        return {"id": t["id"], "name": t["name"], "to": self.status(self.s.status(t["to"])),
                "hasScreen": False, "isGlobal": True, "isInitial": False, "isAvailable": True,
                "isConditional": False, "isLooped": False}

    def fields(self, iss, max_comments=None):
        s = self.s
        p = next(p for p in s.projects if p["id"] == iss["project"])
        st = s.status(iss["status"])
        it = next(t for t in s.issuetypes if t["id"] == iss["issuetype"])
        comments = iss["comments"] if max_comments is None else iss["comments"][:max_comments]
        issue_self = f"{self.base}/rest/api/2/issue/{iss['key']}"
        return {
            "statuscategorychangedate": self.ts(iss["statuscategorychangedate"]),
            "issuetype": self.issuetype(it), "project": self.project(p),
            "fixVersions": [], "resolution": self.resolution(iss["resolution"]),
            "resolutiondate": self.ts(iss["resolutiondate"]), "lastViewed": None,
            "watches": {"self": f"{issue_self}/watchers", "watchCount": 1, "isWatching": True},
            "created": self.ts(iss["created"]), "priority": self.priority(s.priority(iss["priority"])),
            "labels": list(iss["labels"]), "versions": [], "issuelinks": [],
            "assignee": self.user(iss["assignee"]), "updated": self.ts(iss["updated"]),
            "status": self.status(st), "components": [], "description": iss["description"],
            "summary": iss["summary"], "creator": self.user(iss["creator"]),
            "subtasks": [], "reporter": self.user(iss["reporter"]), "environment": iss["environment"],
            "duedate": iss["duedate"], "votes": {"self": f"{issue_self}/votes", "votes": 0, "hasVoted": False},
            "progress": {"progress": 0, "total": 0}, "aggregateprogress": {"progress": 0, "total": 0},
            "timetracking": {}, "attachment": [],
            "worklog": {"startAt": 0, "maxResults": 20, "total": 0, "worklogs": []},
            "comment": {"comments": [self.comment(iss, c) for c in comments],
                        "self": f"{self.base}/rest/api/2/issue/{iss['id']}/comment",
                        "maxResults": len(comments), "total": len(iss["comments"]), "startAt": 0},
        }

    def issue(self, iss, wanted, expand=(), max_comments=None):
        """wanted: a set of field names, or None for a bare {"id"} (enhanced search without fields)."""
        if wanted is None:
            return {"id": iss["id"]}
        allf = self.fields(iss, max_comments)
        out = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
               "id": iss["id"], "self": f"{self.base}/rest/api/2/issue/{iss['id']}", "key": iss["key"],
               "fields": {k: v for k, v in allf.items() if k in wanted}}
        if "transitions" in expand:
            out["transitions"] = [self.transition(t) for t in self.s.transitions if t["to"] != iss["status"]]
        if "names" in expand:
            out["names"] = {k: FIELD_NAMES.get(k, k) for k in out["fields"]}
        if "renderedFields" in expand:
            out["renderedFields"] = {k: (f"<p>{html.escape(v)}</p>" if isinstance(v, str) and
                                         k in ("description", "environment") else v)
                                     for k, v in out["fields"].items()}
        return out


def wanted_fields(specs, default):
    """JIRA's `fields` parameter: *all, *navigable, id, names, -name exclusions (comma lists, repeated).

    default: "id" (enhanced search: None means a bare {"id"}), "*navigable" or "*all"."""
    items = [x.strip() for spec in specs for x in (spec if isinstance(spec, list) else str(spec).split(","))
             if isinstance(x, str) and x.strip()]
    allf = set(FIELD_NAMES)
    nav = allf - NAVIGABLE_EXCLUDED

    def dflt():
        return None if default == "id" else set(allf if default == "*all" else nav)
    if not items:
        return dflt()
    include = [x for x in items if not x.startswith("-")]
    exclude = {x[1:] for x in items if x.startswith("-")}
    if not include:   # "-description": the navigable (default) fields but description
        base = dflt()
        return (set(nav) if base is None else base) - exclude
    base = set()
    for x in include:
        if x == "*all":
            base |= allf
        elif x == "*navigable":
            base |= nav
        elif x in allf:
            base.add(x)
    if not base and default == "id" and all(x == "id" for x in include):
        return None
    return base - exclude


# ============================================================================ the API

class Api:
    def __init__(self, store: Store, flavor: str):
        self.s, self.flavor = store, flavor
        self.r = Render(store, flavor)

    # ----- JQL
    def _env(self):
        s = self.s
        catalog = {
            "project": [{"id": p["id"], "key": p["key"], "name": p["name"]} for p in s.projects],
            "status": [{"id": x["id"], "name": x["name"]} for x in s.statuses],
            "statusCategory": [{"id": str(c["id"]), "key": c["key"], "name": c["name"]} for c in s.categories.values()],
            "priority": [{"id": p["id"], "name": p["name"], "rank": p["rank"]} for p in s.priorities],
            "issuetype": [{"id": t["id"], "name": t["name"]} for t in s.issuetypes],
            "resolution": [{"id": r["id"], "name": r["name"]} for r in s.resolutions],
        }

        def exists(text):
            t = text.strip()
            return any(i["id"] == t or i["key"].lower() == t.lower() for i in s.issues.values())
        def key_of(text):
            t = text.strip()
            return next((i["key"] for i in s.issues.values() if i["id"] == t or i["key"].lower() == t.lower()), None)
        return jql.Env(tz=s.tz, now=s.now(), catalog=catalog, issue_exists=exists,
                       current_user={"id": "me"}, issue_key_of=key_of)

    def _view(self, iss):
        s = self.s
        me = s.me
        uview = {"id": "me", "accountId": me["accountId"], "name": me["name"], "key": me["key"],
                 "email": me["emailAddress"], "displayName": me["displayName"]}
        p = next(p for p in s.projects if p["id"] == iss["project"])
        st = s.status(iss["status"])
        cat = s.categories[st["category"]]
        pr = s.priority(iss["priority"])
        it = next(t for t in s.issuetypes if t["id"] == iss["issuetype"])
        res = next((r for r in s.resolutions if r["id"] == iss["resolution"]), None)
        return {"_issue": iss, "id": int(iss["id"]), "key": iss["key"],
                "project": {"id": p["id"], "key": p["key"], "name": p["name"]},
                "status": {"id": st["id"], "name": st["name"]},
                "statusCategory": {"id": str(cat["id"]), "key": cat["key"], "name": cat["name"]},
                "priority": {"id": pr["id"], "name": pr["name"], "rank": pr["rank"]} if pr else None,
                "issuetype": {"id": it["id"], "name": it["name"]},
                "resolution": {"id": res["id"], "name": res["name"]} if res else None,
                "summary": iss["summary"], "description": iss["description"], "environment": iss["environment"],
                "comments": [c["body"] for c in iss["comments"]], "labels": iss["labels"],
                "created": iss["created"], "updated": iss["updated"], "resolved": iss["resolutiondate"],
                "assignee": uview if iss["assignee"] else None, "reporter": uview if iss["reporter"] else None,
                "creator": uview if iss["creator"] else None}

    def run_jql(self, text, require_bounded, reconcile=()):
        try:
            q = jql.parse(text or "")
        except jql.JqlError as e:
            raise ApiError(400, e.messages)
        if require_bounded and q.where is None:
            raise ApiError(400, [UNBOUNDED])
        env = self._env()
        try:
            jql.validate(q, env)
        except jql.JqlError as e:
            if self.flavor == "cloud":
                raise ApiError(400, e.messages, extra={"warningMessages": []})
            raise ApiError(400, e.messages)
        if self.flavor == "cloud" and len(q.order) > 7:
            raise ApiError(400, ["The ORDER BY clause can contain a maximum of 7 fields."])
        lag = self.s.search_lag
        cutoff = time.monotonic() - lag
        views = []
        for iss in self.s.issues.values():
            if lag > 0 and iss["changed_mono"] > cutoff and int(iss["id"]) not in reconcile:
                continue   # not yet indexed: JIRA Cloud's search is eventually consistent
            v = self._view(iss)
            if jql.matches(q.where, v, env):
                views.append(v)
        views.sort(key=lambda v: v["id"], reverse=True)
        order = [(f, a, p) for f, a, p in q.order] or [("created", False, 0)]
        views = jql.apply_order(views, order, env)
        return q, [v["_issue"] for v in views]

    # ----- search
    def _int(self, value, name, default):
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, [f"The value '{value}' is invalid for the '{name}' parameter."])

    def _search_args(self, method, query, body):
        if method == "POST":
            if not isinstance(body, dict):
                raise ApiError(400, ["The request body must be a JSON object."])
            a = dict(body)
            fields = a.get("fields") or []
            if isinstance(fields, str):
                fields = [fields]
            a["fields"] = fields
            exp = a.get("expand") or ""
            a["expand"] = exp if isinstance(exp, str) else ",".join(exp)
            return a
        return {"jql": (query.get("jql") or [""])[0], "nextPageToken": (query.get("nextPageToken") or [None])[0],
                "maxResults": (query.get("maxResults") or [None])[0],
                "startAt": (query.get("startAt") or [None])[0], "fields": query.get("fields") or [],
                "expand": ",".join(query.get("expand") or []),
                "reconcileIssues": [x for v in query.get("reconcileIssues") or [] for x in v.split(",") if x]}

    def search_jql(self, method, query, body):
        a = self._search_args(method, query, body)
        text = a.get("jql") or ""
        try:
            reconcile = {int(x) for x in (a.get("reconcileIssues") or [])}
        except (TypeError, ValueError):
            raise ApiError(400, ["reconcileIssues must be a list of issue ids."])
        if len(reconcile) > 50:
            raise ApiError(400, ["reconcileIssues accepts at most 50 issue ids."])
        wanted = wanted_fields(a.get("fields") or [], "id")
        max_results = self._int(a.get("maxResults"), "maxResults", 50)
        if max_results < 0:
            raise ApiError(400, [f"The value '{max_results}' is invalid for the 'maxResults' parameter."])
        cap = 5000 if wanted is None else 100
        max_results = min(max_results, cap)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        offset = 0
        token = a.get("nextPageToken")
        if token:
            try:
                t = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                if t["q"] != digest:
                    raise ValueError
                offset = int(t["o"])
            except (ValueError, KeyError, TypeError, json.JSONDecodeError):
                raise ApiError(400, ["The provided next page token is invalid or expired."])
        _q, issues = self.run_jql(text, True, reconcile)
        page = issues[offset:offset + max_results]
        expand = {x.strip() for x in (a.get("expand") or "").split(",") if x.strip()}
        out = {"issues": [self.r.issue(i, wanted, expand, max_comments=20) for i in page]}
        if offset + len(page) < len(issues) and max_results > 0:
            out["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + len(page), "q": digest}).encode()).decode().rstrip("=")
            out["isLast"] = False
        else:
            out["isLast"] = True
        if "names" in expand and wanted:
            out["names"] = {k: FIELD_NAMES.get(k, k) for k in wanted}
        return 200, out

    def search_server(self, method, query, body):
        a = self._search_args(method, query, body)
        start = self._int(a.get("startAt"), "startAt", 0)
        max_results = self._int(a.get("maxResults"), "maxResults", 50)
        if start < 0:
            start = 0
        max_results = max(0, min(max_results, 1000))
        wanted = wanted_fields(a.get("fields") or [], "*navigable")
        _q, issues = self.run_jql(a.get("jql") or "", False)
        expand = {x.strip() for x in (a.get("expand") or "").split(",") if x.strip()}
        page = issues[start:start + max_results]
        out = {"expand": "names,schema", "startAt": start, "maxResults": max_results, "total": len(issues),
               "issues": [self.r.issue(i, wanted or set(), expand) for i in page]}
        if "names" in expand:
            out["names"] = {k: FIELD_NAMES.get(k, k) for k in (wanted or ())}
        return 200, out

    # ----- issue writes
    def _ref(self, items, value, field, keys=("id", "name")):
        if value is None:
            return None
        if isinstance(value, str):
            value = {"name": value} if "name" in keys else {"id": value}
        it = Store._find(items, value, keys)
        if it is None:
            return False
        return it

    def _user_ref(self, value):
        """The only account the stand-in knows is the caller's."""
        if value is None:
            return None
        if not isinstance(value, dict):
            return False
        me = self.s.me
        for k, mine in (("accountId", me["accountId"]), ("id", me["accountId"]), ("name", me["name"]),
                        ("key", me["key"])):
            if k in value:
                return "me" if str(value[k]) == mine else False
        return False

    def _apply_fields(self, iss, fields, errors, creating):
        changed = False
        for name, value in fields.items():
            if name not in SETTABLE or (name == "project" and not creating):
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            if name == "summary":
                if not isinstance(value, str):
                    errors[name] = "Operation value must be a string"
                elif not value.strip():
                    errors[name] = "You must specify a summary of the issue."
                elif len(value) > 255:
                    errors[name] = "Summary must be less than 255 characters."
                elif iss is not None and iss["summary"] != value:
                    iss["summary"], changed = value, True
            elif name in ("description", "environment"):
                if value is not None and not isinstance(value, str):
                    errors[name] = "Operation value must be a string"
                elif iss is not None and iss[name] != value:
                    iss[name], changed = value, True
            elif name == "priority":
                p = self._ref(self.s.priorities, value, name)
                if not p:
                    errors[name] = "The priority selected is invalid."
                elif iss is not None and iss["priority"] != p["id"]:
                    iss["priority"], changed = p["id"], True
            elif name == "issuetype":
                t = self._ref(self.s.issuetypes, value, name)
                if not t:
                    errors[name] = "Specify an issue type" if value is None else "The issue type selected is invalid."
                elif iss is not None and iss["issuetype"] != t["id"]:
                    iss["issuetype"], changed = t["id"], True
            elif name == "labels":
                if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                    errors[name] = "Operation value must be an array of strings"
                elif any(re.search(r"\s", x) for x in value):
                    bad = next(x for x in value if re.search(r"\s", x))
                    errors[name] = f"The label '{bad}' contains spaces which is invalid."
                elif iss is not None and iss["labels"] != value:
                    iss["labels"], changed = list(value), True
            elif name in ("assignee", "reporter"):
                u = self._user_ref(value)
                if u is False:
                    errors[name] = f"Specify a valid value for {name}"
                elif iss is not None and iss[name] != u:
                    iss[name], changed = u, True
            elif name == "duedate":
                if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
                    errors[name] = "Error parsing date string: " + str(value)
                elif iss is not None and iss["duedate"] != value:
                    iss["duedate"], changed = value, True
        return changed

    def _apply_update(self, iss, update, errors):
        changed = False
        if not isinstance(update, dict):
            errors["update"] = "The 'update' member must be an object."
            return False
        for name, ops in update.items():
            if not isinstance(ops, list):
                errors[name] = "Operations must be an array."
                continue
            for op in ops:
                if not isinstance(op, dict) or len(op) != 1:
                    errors[name] = "Each operation must name one of set, add, remove, edit."
                    continue
                verb, arg = next(iter(op.items()))
                if name == "comment" and verb == "add":
                    body = (arg or {}).get("body") if isinstance(arg, dict) else None
                    if not isinstance(body, str) or not body.strip():
                        errors["comment"] = "Comment body can not be empty!"
                    elif iss is not None:
                        self.s._new_comment(iss, body, self.s.now(), arg.get("visibility"))
                        changed = True
                elif name == "labels" and verb in ("add", "remove"):
                    if not isinstance(arg, str) or re.search(r"\s", arg):
                        errors["labels"] = f"The label '{arg}' contains spaces which is invalid."
                    elif iss is not None:
                        if verb == "add" and arg not in iss["labels"]:
                            iss["labels"].append(arg)
                            changed = True
                        elif verb == "remove" and arg in iss["labels"]:
                            iss["labels"].remove(arg)
                            changed = True
                elif verb == "set":
                    changed = self._apply_fields(iss, {name: arg}, errors, False) or changed
                else:
                    errors[name] = (f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                                    "or unknown.") if name not in SETTABLE else f"Operation '{verb}' is not supported."
        return changed

    def create_issue(self, body):
        if not isinstance(body, dict):
            raise ApiError(400, ["The request body must be a JSON object with 'fields'."])
        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise ApiError(400, ["'fields' must be an object."])
        errors = {}
        proj = Store._find(self.s.projects, fields.get("project"), ("id", "key"))
        if proj is None:
            errors["project"] = "Specify a valid project ID or key"
        self._apply_fields(None, {k: v for k, v in fields.items() if k != "project"}, errors, True)
        if fields.get("issuetype") is None:
            errors["issuetype"] = "Specify an issue type"
        if fields.get("summary") is None:
            errors["summary"] = "You must specify a summary of the issue."
        if body.get("update") is not None:
            self._apply_update(None, body["update"], errors)
        if errors:
            raise ApiError(400, [], errors)
        itype = self._ref(self.s.issuetypes, fields["issuetype"], "issuetype")
        prio = self._ref(self.s.priorities, fields.get("priority"), "priority") or self.s.priorities[2]
        iss = self.s._new_issue(proj, itype["id"], fields["summary"], fields.get("description"), prio["id"],
                                fields.get("labels") or [], self.s.now())
        for k in ("environment", "duedate"):
            if k in fields:
                iss[k] = fields[k]
        for k in ("assignee", "reporter"):
            if k in fields:
                iss[k] = self._user_ref(fields[k])
        if body.get("update"):
            self._apply_update(iss, body["update"], {})
        self.s.save()
        return 201, {"id": iss["id"], "key": iss["key"], "self": f"{self.s.base}/rest/api/2/issue/{iss['id']}"}

    def edit_issue(self, iss, body, query):
        if not isinstance(body, dict):
            raise ApiError(400, ["The request body must be a JSON object."])
        errors = {}
        trial = copy.deepcopy({k: v for k, v in iss.items()})
        changed = False
        if body.get("fields") is not None:
            if not isinstance(body["fields"], dict):
                raise ApiError(400, ["'fields' must be an object."])
            changed = self._apply_fields(trial, body["fields"], errors, False)
        if body.get("update") is not None:
            changed = self._apply_update(trial, body["update"], errors) or changed
        if errors:
            raise ApiError(400, [], errors)
        if changed:
            iss.update(trial)
            self.s.touch(iss)
            self.s.save()
        if self.flavor == "cloud" and (query.get("returnIssue") or [""])[0] == "true":
            return 200, self.r.issue(iss, set(FIELD_NAMES))
        return 204, None

    def transition(self, iss, body):
        if not isinstance(body, dict) or not isinstance(body.get("transition"), dict) \
                or body["transition"].get("id") in (None, ""):
            raise ApiError(400, ["Missing 'transition' identifier"])
        tid = str(body["transition"]["id"])
        t = next((t for t in self.s.transitions if t["id"] == tid and t["to"] != iss["status"]), None)
        if t is None:
            raise ApiError(400, [f"Transition id '{tid}' is not valid for this issue."])
        errors = {}
        trial = copy.deepcopy(iss)
        fields = body.get("fields") or {}
        res = None
        if isinstance(fields, dict) and "resolution" in fields:
            res = self._ref(self.s.resolutions, fields["resolution"], "resolution")
            if not res:
                errors["resolution"] = "The resolution selected is invalid."
            fields = {k: v for k, v in fields.items() if k != "resolution"}
        if fields:
            self._apply_fields(trial, fields, errors, False)
        if body.get("update"):
            self._apply_update(trial, body["update"], errors)
        if errors:
            raise ApiError(400, [], errors)
        old_cat = self.s.status(iss["status"])["category"]
        iss.update(trial)
        iss["status"] = t["to"]
        now = self.s.now()
        if self.s.status(t["to"])["category"] == "done":
            iss["resolution"] = (res or self.s.resolutions[0])["id"]
            iss["resolutiondate"] = now
        else:
            iss["resolution"], iss["resolutiondate"] = None, None
        if self.s.status(t["to"])["category"] != old_cat:
            iss["statuscategorychangedate"] = now
        self.s.touch(iss)
        self.s.save()
        return 204, None

    # ----- comments
    def comments(self, method, iss, cid, query, body):
        s, r = self.s, self.r
        if cid is None:
            if method == "GET":
                start = max(0, self._int((query.get("startAt") or [None])[0], "startAt", 0))
                maxr = max(0, self._int((query.get("maxResults") or [None])[0], "maxResults", 100))
                order = (query.get("orderBy") or [""])[0]
                if order not in ("", "created", "+created", "-created"):
                    raise ApiError(400, [f"Invalid orderBy value '{order}'. Valid values: created, +created, -created."])
                cs = sorted(iss["comments"], key=lambda c: (c["created"], int(c["id"])),
                            reverse=order == "-created")
                page = cs[start:start + maxr]
                return 200, {"startAt": start, "maxResults": maxr, "total": len(cs),
                             "comments": [r.comment(iss, c) for c in page]}
            if method == "POST":
                b = body.get("body") if isinstance(body, dict) else None
                if not isinstance(b, str) or not b.strip():
                    raise ApiError(400, [], {"comment": "Comment body can not be empty!"})
                c = s._new_comment(iss, b, s.now(), body.get("visibility"))
                s.touch(iss)
                s.save()
                return 201, r.comment(iss, c)
            raise ApiError(405, [])
        c = next((c for c in iss["comments"] if c["id"] == cid), None)
        if c is None:
            raise ApiError(404, [f"Can not find a comment for the id: {cid}."])
        if method == "GET":
            return 200, r.comment(iss, c)
        if method == "PUT":
            b = body.get("body") if isinstance(body, dict) else None
            if not isinstance(b, str) or not b.strip():
                raise ApiError(400, [], {"comment": "Comment body can not be empty!"})
            c["body"], c["updated"] = b, s.now()
            if isinstance(body, dict) and "visibility" in body:
                c["visibility"] = body["visibility"]
            s.touch(iss)
            s.save()
            return 200, r.comment(iss, c)
        if method == "DELETE":
            iss["comments"].remove(c)
            s.touch(iss)
            s.save()
            return 204, None
        raise ApiError(405, [])

    # ----- router
    def handle(self, method, path, query, body):
        """path: the part after /rest/api/2 (or /latest). Returns (status, json-or-None)."""
        s, r = self.s, self.r
        parts = [p for p in path.split("/") if p != ""]
        first = parts[0] if parts else ""
        n = len(parts)

        def only(*methods):
            if method not in methods:
                raise ApiError(405, [])

        if first == "myself" and n == 1:
            only("GET")
            return 200, r.user("me", full=True)
        if first == "serverInfo" and n == 1:
            only("GET")
            info = {"baseUrl": s.base, "version": "1001.0.0-SNAPSHOT" if self.flavor == "cloud" else "9.12.0",
                    "versionNumbers": [1001, 0, 0] if self.flavor == "cloud" else [9, 12, 0],
                    "deploymentType": "Cloud" if self.flavor == "cloud" else "Server",
                    "buildNumber": 100000, "serverTitle": "JIRA stand-in"}
            return 200, info
        if first == "search":
            if n == 2 and parts[1] == "jql":
                if self.flavor != "cloud":
                    raise NotFound()
                only("GET", "POST")
                return self.search_jql(method, query, body)
            if n == 1:
                only("GET", "POST")
                if self.flavor == "cloud":
                    raise ApiError(410, [REMOVED.format(v=self.version)])
                return self.search_server(method, query, body)
            raise NotFound()
        if first == "issue":
            if n == 1:
                only("POST")
                return self.create_issue(body)
            iss = s.find_issue(parts[1])
            if n == 2:
                if method == "GET":
                    wanted = wanted_fields(query.get("fields") or [], "*all")
                    expand = {x.strip() for v in query.get("expand") or [] for x in v.split(",")}
                    return 200, r.issue(iss, wanted or set(), expand)
                if method == "PUT":
                    return self.edit_issue(iss, body, query)
                if method == "DELETE":
                    del s.issues[iss["id"]]
                    s.save()
                    return 204, None
                raise ApiError(405, [])
            if parts[2] == "comment" and n in (3, 4):
                return self.comments(method, iss, parts[3] if n == 4 else None, query, body)
            if parts[2] == "transitions" and n == 3:
                if method == "GET":
                    want = (query.get("transitionId") or [None])[0]
                    ts = [r.transition(t) for t in s.transitions
                          if t["to"] != iss["status"] and (want is None or t["id"] == want)]
                    return 200, {"expand": "transitions", "transitions": ts}
                only("POST")
                return self.transition(iss, body)
            raise NotFound()
        catalogs = {
            "priority": (s.priorities, r.priority, lambda x, k: x["id"] == k,
                         "Could not find priority with id '{}'."),
            "status": (s.statuses, r.status, lambda x, k: x["id"] == k or x["name"].lower() == k.lower(),
                       "The status with id '{}' does not exist."),
            "issuetype": (s.issuetypes, r.issuetype, lambda x, k: x["id"] == k,
                          "The issue type with id '{}' does not exist."),
            "project": (s.projects, lambda p: r.project(p), lambda x, k: x["id"] == k or x["key"] == k,
                        "No project could be found with key '{}'."),
            "resolution": (s.resolutions, lambda x: r.resolution(x["id"]), lambda x, k: x["id"] == k,
                           "The resolution with id '{}' does not exist."),
        }
        if first in catalogs and n in (1, 2):
            only("GET")
            items, render, match, msg = catalogs[first]
            if n == 1:
                return 200, [render(x) for x in items]
            key = urllib.parse.unquote(parts[1])
            x = next((x for x in items if match(x, key)), None)
            if x is None:
                raise ApiError(404, [msg.format(key)])
            if first == "project":
                return 200, r.project(x, detail=True)
            return 200, render(x)
        raise NotFound()


class NotFound(Exception):
    pass


# ============================================================================ HTTP

PRESETS = {
    "rate-limited": lambda e: {"status": 429, "headers": {
        "Retry-After": str(e.get("retryAfter", 5)), "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": (dt.datetime.now(UTC) + dt.timedelta(seconds=int(e.get("retryAfter", 5))))
        .strftime("%Y-%m-%dT%H:%MZ"), "RateLimit-Reason": "jira-burst-based"},
        "body": {"errorMessages": ["Rate limit exceeded."], "errors": {}}},
    "unavailable": lambda e: {"status": 503, "headers": {"Retry-After": str(e.get("retryAfter", 5))},
                              "body": {"errorMessages": ["Service unavailable."], "errors": {}}},
    "unauthorized": lambda e: {"status": 401, "headers": {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
                               "body": {"errorMessages": [NOT_AUTHENTICATED], "errors": {}}},
    "captcha": lambda e: {"captcha": True},
    "server-error": lambda e: {"status": 500, "body": {"errorMessages": ["Internal server error"], "errors": {}}},
    "not-json": lambda e: {"status": 200, "contentType": "text/html;charset=UTF-8",
                           "body": "<html><body>Jira is down for maintenance</body></html>"},
    "slow": lambda e: {"delay": float(e.get("delay", 5)), "passThrough": True},
    "drop": lambda e: {"drop": True},
}


class State:
    """Everything the handler threads share."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.initial_zone = cfg.time_zone
        self.store = Store(cfg)
        self.api = Api(self.store, cfg.flavor)
        self.api.version = "2"
        self.canned = []
        self.requests = []
        self.seq = 0
        self.lock = threading.RLock()

    def reset(self):
        with self.lock, self.store.lock:
            self.canned.clear()
            self.requests.clear()
            self.store.failed_logins = 0
            self.store.max_failed = self.cfg.max_failed_logins
            self.store.search_lag = 0.0
            self.store.clock_offset = 0.0
            self.cfg.time_zone = self.initial_zone
            self.store.tz = zoneinfo.ZoneInfo(self.initial_zone)
            self.store._loaded = True
            self.store.reseed()
            self.store.save()


def _json(obj):
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JIRA-standin"

    def version_string(self):
        return self.server_version
    timeout = 120
    st: State = None  # set on the class by main()

    def date_time_string(self, timestamp=None):
        # The Date header on JIRA's own clock (its offset included), as a
        # JIRA whose clock is that far off says it.
        if timestamp is None and self.st is not None:
            timestamp = self.st.store.now().timestamp()
        return super().date_time_string(timestamp)

    def log_message(self, fmt, *args):
        if self.st.cfg.verbose:
            sys.stderr.write("jira-standin: " + (fmt % args) + "\n")

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body=None, headers=None, content_type="application/json;charset=UTF-8"):
        if isinstance(body, (dict, list)):
            data = _json(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = body or b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if status != 204 and status >= 200:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        self.send_header("X-AREQUESTID", f"{int(time.time()) % 100000}x{threading.get_ident() % 100000}x1")
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(data)
        return status

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _dispatch(self):
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if path.startswith("/_standin/") or path == "/_standin":
            return self._control(path, query, raw)
        if not path.startswith("/rest/"):
            return self._send(404, "<html><body>Oops, you've found a dead link.</body></html>",
                              content_type="text/html;charset=UTF-8")
        self._rest(path, url, query, raw)

    # ----- /rest
    def _auth(self):
        """(user, valid): valid is None without credentials."""
        hdr = self.headers.get("Authorization")
        if not hdr:
            return None, None
        scheme, _, cred = hdr.partition(" ")
        if scheme.lower() != "basic":
            return None, False
        try:
            user, _, pw = base64.b64decode(cred.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, False
        return user, (user == self.st.cfg.user and pw == self.st.cfg.password)

    def _rest(self, path, url, query, raw):
        st = self.st
        user, valid = self._auth()
        body = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = raw.decode("utf-8", "replace")
        headers = {k: (True if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        with st.lock:
            st.seq += 1
            entry = {"seq": st.seq, "time": dt.datetime.now(UTC).isoformat(timespec="milliseconds"),
                     "method": self.command, "path": path, "query": query, "headers": headers,
                     "authUser": user, "authValid": valid, "body": body, "status": None, "canned": False}
            st.requests.append(entry)
            del st.requests[:-2000]
            canned = None
            for i, c in enumerate(st.canned):
                m = c.get("match") or {}
                if m.get("method") and m["method"].upper() != self.command:
                    continue
                if m.get("path") and not path.startswith(m["path"]):
                    continue
                canned = c
                c["times"] = int(c.get("times", 1)) - 1
                if c["times"] <= 0:
                    st.canned.pop(i)
                break
        if canned is not None:
            entry["canned"] = True
            if canned.get("delay"):
                time.sleep(float(canned["delay"]))
            if canned.get("drop"):
                entry["status"] = 0
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if canned.get("captcha"):
                entry["status"] = self._captcha()
                return
            if not canned.get("passThrough") and canned.get("status"):
                b = canned.get("body")
                ct = canned.get("contentType") or ("application/json;charset=UTF-8" if isinstance(b, (dict, list))
                                                   else "text/plain;charset=UTF-8")
                entry["status"] = self._send(int(canned["status"]), b, canned.get("headers"), ct)
                return
        entry["status"] = self._rest_real(path, query, body, raw, user, valid)

    def _captcha(self):
        login = f"{self.st.store.base}/login.jsp"
        return self._send(403, "<html><body>CAPTCHA required: log in at " + html.escape(login) +
                          "</body></html>",
                          {"X-Seraph-LoginReason": "AUTHENTICATION_DENIED",
                           "X-Authentication-Denied-Reason": f"CAPTCHA_CHALLENGE; login-url={login}"},
                          "text/html;charset=UTF-8")

    def _rest_real(self, path, query, body, raw, user, valid):
        st, store = self.st, self.st.store
        m = re.match(r"^/rest/api/(2|latest)(/.*)?$", path)
        anonymous_ok = m is not None and (m.group(2) or "").rstrip("/") == "/serverInfo"
        with store.lock:
            if valid is None and not anonymous_ok:
                return self._send(401, {"errorMessages": [NOT_AUTHENTICATED], "errors": {}})
            if user == st.cfg.user and store.failed_logins >= store.max_failed:
                return self._captcha()
            if valid is False:
                if user == st.cfg.user:
                    store.failed_logins += 1
                return self._send(401, {"errorMessages": [NOT_AUTHENTICATED], "errors": {}},
                                  {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})
            if valid:
                store.failed_logins = 0
        ok_headers = {"X-Seraph-LoginReason": "OK"} if valid else {}
        if valid:
            if st.cfg.flavor == "cloud":
                ok_headers["X-AACCOUNTID"] = store.me["accountId"]
            else:
                ok_headers["X-AUSERNAME"] = store.me["name"]
        if m is None:
            return self._send(404, {"message": f"null for uri: {store.base}{path}", "status-code": 404})
        if raw and self.command in ("POST", "PUT"):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            token = (self.headers.get("X-Atlassian-Token") or "").lower()
            if ctype in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain") \
                    and token not in ("no-check", "nocheck"):
                return self._send(403, "XSRF check failed", ok_headers, "text/plain;charset=UTF-8")
            if ctype != "application/json" and not ctype.endswith("+json"):
                return self._send(415, b"", ok_headers)
        if raw and isinstance(body, str) and self.command in ("POST", "PUT"):
            return self._send(400, {"errorMessages": ["Unexpected character in the request body: it is not JSON."],
                                    "errors": {}}, ok_headers)
        try:
            with store.lock:
                st.api.version = m.group(1)
                status, out = st.api.handle(self.command, m.group(2) or "", query, body)
        except ApiError as e:
            if e.status == 405:
                return self._send(405, b"", {**ok_headers, "Allow": "GET, POST, PUT, DELETE"})
            return self._send(e.status, e.body, {**ok_headers, **e.headers})
        except NotFound:
            return self._send(404, {"message": f"null for uri: {store.base}{path}", "status-code": 404}, ok_headers)
        return self._send(status, out, ok_headers)

    # ----- /_standin (control API; loopback callers only, no auth)
    def _control(self, path, query, raw):
        st = self.st
        try:
            if not ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback:
                return self._send(403, {"error": "the control API answers loopback callers only"})
        except ValueError:
            return self._send(403, {"error": "the control API answers loopback callers only"})
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._send(400, {"error": "the body is not JSON"})
        route, method = path[len("/_standin"):].rstrip("/") or "/", self.command
        store = st.store
        with st.lock:
            if route == "/requests" and method == "GET":
                since = int((query.get("since") or ["0"])[0] or 0)
                prefix = (query.get("path") or [""])[0]
                return self._send(200, [e for e in st.requests if e["seq"] > since and e["path"].startswith(prefix)])
            if route == "/requests" and method == "DELETE":
                st.requests.clear()
                return self._send(204)
            if route == "/next" and method == "POST":
                items = body if isinstance(body, list) else [body]
                expanded = []
                for it in items:
                    if not isinstance(it, dict):
                        return self._send(400, {"error": "each canned answer is an object"})
                    it = dict(it)
                    if it.get("preset"):
                        make = PRESETS.get(it["preset"])
                        if make is None:
                            return self._send(400, {"error": f"unknown preset {it['preset']}",
                                                    "presets": sorted(PRESETS)})
                        it = {**make(it), **{k: v for k, v in it.items() if k not in ("preset", "retryAfter")}}
                    if it.get("delay") and not it.get("status") and not it.get("drop") and not it.get("captcha"):
                        it["passThrough"] = True
                    if not (it.get("status") or it.get("passThrough") or it.get("drop") or it.get("captcha")):
                        return self._send(400, {"error": "a canned answer needs status, delay, drop or preset"})
                    it.setdefault("times", 1)
                    expanded.append(it)
                st.canned.extend(expanded)
                return self._send(200, {"queued": len(expanded), "pending": len(st.canned)})
            if route == "/next" and method == "GET":
                return self._send(200, st.canned)
            if route == "/next" and method == "DELETE":
                st.canned.clear()
                return self._send(204)
            if route == "/reset" and method == "POST":
                st.reset()
                return self._send(200, {"reset": True})
            if route in ("/captcha/solve", "/logins/reset") and method == "POST":
                store.failed_logins = 0
                return self._send(200, {"failedLogins": 0, "locked": False})
            if route == "/state" and method == "GET":
                return self._send(200, {"flavor": st.cfg.flavor, "url": store.base,
                                        "failedLogins": store.failed_logins,
                                        "locked": store.failed_logins >= store.max_failed,
                                        "maxFailedLogins": store.max_failed, "searchLagSeconds": store.search_lag,
                                        "clockOffsetSeconds": store.clock_offset, "timeZone": st.cfg.time_zone,
                                        "now": st.api.r.ts(store.now()),
                                        "issues": sorted((i["key"] for i in store.issues.values()),
                                                         key=lambda k: int(k.split("-")[1])),
                                        "pendingCanned": len(st.canned), "requestsSeen": st.seq})
            if route == "/config" and method == "POST" and isinstance(body, dict):
                if "maxFailedLogins" in body:
                    store.max_failed = int(body["maxFailedLogins"])
                if "searchLagSeconds" in body:
                    store.search_lag = float(body["searchLagSeconds"])
                if "failedLogins" in body:
                    store.failed_logins = int(body["failedLogins"])
                if "timeZone" in body:
                    # The account's profile changed: /myself, the dates written and JQL's dates follow.
                    try:
                        store.tz = zoneinfo.ZoneInfo(str(body["timeZone"]))
                    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                        return self._send(400, {"error": f"unknown time zone {body['timeZone']}"})
                    st.cfg.time_zone = str(body["timeZone"])
                return self._send(200, {"maxFailedLogins": store.max_failed, "searchLagSeconds": store.search_lag,
                                        "failedLogins": store.failed_logins, "timeZone": st.cfg.time_zone})
            if route == "/clock" and method == "POST" and isinstance(body, dict):
                if "offsetSeconds" in body:
                    store.clock_offset = float(body["offsetSeconds"])
                if "advanceSeconds" in body:
                    store.clock_offset += float(body["advanceSeconds"])
                return self._send(200, {"clockOffsetSeconds": store.clock_offset, "now": st.api.r.ts(store.now())})
            if route == "/issues" and method == "POST" and isinstance(body, dict):
                return self._send(*self._make_issue(body))
            if route == "/issues" and method == "POST" and isinstance(body, list):
                # Many at once (a bulk change): each as one would be made, in order.
                made = []
                for one in body:
                    if not isinstance(one, dict):
                        return self._send(400, {"error": "each issue is an object"})
                    status, out = self._make_issue(one)
                    if status != 201:
                        return self._send(status, out)
                    made.append(out)
                return self._send(201, made)
        return self._send(404, {"error": f"no control route {method} {route}"})

    def _make_issue(self, body):
        """Creates an issue as POST /issue would, with optional created/updated instants (ISO 8601)."""
        store, api = self.st.store, self.st.api
        b = dict(body)
        times = {k: b.pop(k) for k in ("created", "updated") if k in b}
        try:
            with store.lock:
                status, out = api.create_issue(b if "fields" in b else {"fields": {
                    "project": {"key": "DEMO"}, "issuetype": {"name": "Task"}, **b}})
                iss = store.issues[out["id"]]
                for k, v in times.items():
                    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                    if t.tzinfo is None:
                        t = t.replace(tzinfo=store.tz)
                    iss[k] = t.astimezone(UTC)
                if "created" in times:
                    iss["statuscategorychangedate"] = iss["created"]
                    if "updated" not in times:
                        iss["updated"] = iss["created"]
                store.save()
        except ApiError as e:
            return e.status, e.body
        except ValueError as e:
            return 400, {"error": str(e)}
        return 201, out


# ============================================================================ TLS and start

def make_certs(listen_ip, extra_sans, workdir, ca_file):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "JIRA stand-in test CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jira-standin")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    names, seen = [], set()
    for n in ["localhost", listen_ip, *extra_sans]:
        if not n or n in seen or n in ("0.0.0.0", "::"):
            continue
        seen.add(n)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            names.append(x509.DNSName(n))
    if listen_ip in ("0.0.0.0", "::"):
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = os.path.join(workdir, "server.pem"), os.path.join(workdir, "server.key")
    with open(cert_path, "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.makedirs(os.path.dirname(os.path.abspath(ca_file)), exist_ok=True)
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx):
        self.ctx = ctx
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(120)
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            try:
                request.close()
            except OSError:
                pass
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="A local JIRA stand-in (REST API v2) over HTTPS.")
    ap.add_argument("--flavor", choices=("cloud", "server"), default="cloud")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", default="demo@example.com")
    ap.add_argument("--password", default="demo-api-token")
    ap.add_argument("--ca-file", default=None, help="where to write the CA's PEM (default: a temporary file)")
    ap.add_argument("--san", action="append", default=[], help="an extra DNS name or IP for the certificate")
    ap.add_argument("--state-file", default=None, help="keep the issues in this JSON file across restarts")
    ap.add_argument("--time-zone", default="Australia/Sydney", help="the account's time zone (JQL dates)")
    ap.add_argument("--max-failed-logins", type=int, default=3)
    ap.add_argument("--verbose", action="store_true")
    cfg = ap.parse_args(argv)
    try:
        zoneinfo.ZoneInfo(cfg.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        ap.error(f"unknown time zone {cfg.time_zone}")

    workdir = tempfile.mkdtemp(prefix="jira-standin-")
    ca_file = os.path.abspath(cfg.ca_file or os.path.join(workdir, "ca.pem"))
    cert, key = make_certs(cfg.host, cfg.san, workdir, ca_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)

    st = State(cfg)
    Handler.st = st
    server = TlsServer((cfg.host, cfg.port), Handler, ctx)
    port = server.server_address[1]
    try:
        loopback = cfg.host in ("0.0.0.0", "::") or ipaddress.ip_address(cfg.host).is_loopback
    except ValueError:
        loopback = cfg.host == "localhost"
    host = "localhost" if loopback else (f"[{cfg.host}]" if ":" in cfg.host else cfg.host)
    st.store.base = f"https://{host}:{port}"

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"url": st.store.base, "caFile": ca_file, "user": cfg.user, "password": cfg.password,
                      "flavor": cfg.flavor}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
