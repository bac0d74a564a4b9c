#!/usr/bin/env python3
"""Load: N creates from C concurrent clients against the function served
through the real runtime loop; every create answered 200, all distinct, all
stored (read back from the table), nothing secret in the function's log.
Prints the figures and closes with 'load: N passed, N failed'.

  load.py BIN_DIR [--creates 2000] [--clients 32]      serve it here (make test)
  load.py --url http://127.0.0.1:9000 --run-dir .run/make-run   against `make run`
Run with the Python of .venv/local (it has boto3, for reading the table)."""
import argparse
import http.client
import json
import os
import pathlib
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_function import served  # noqa: E402

BODY = {
    "element": {"key": "jira"},
    "configuration": {"jira.username": "load@example.com", "jira.password": "load-test-password",
                      "jira.api.url": "https://example.atlassian.net"},
    "tags": ["load"],
}


def drive(url, authorization, creates, clients):
    target = urllib.parse.urlparse(url)
    results, lock = [], threading.Lock()
    counter = iter(range(creates))

    def client():
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            body = json.dumps(dict(BODY, name=f"load {n}"))
            start = time.perf_counter()
            try:
                conn.request("POST", "/instances", body, {"Authorization": authorization, "Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                status = r.status
            except OSError as e:
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                status, data = 0, str(e).encode()
            ms = (time.perf_counter() - start) * 1000
            with lock:
                results.append((n, status, data, ms))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - start


def stored_ids(table, endpoint):
    import boto3
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    ids, kwargs = set(), {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            if item["SK"]["S"] == "INSTANCE":
                ids.add(int(item["id"]["N"]))
        if "LastEvaluatedKey" not in page:
            return ids
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def check(results, seconds, ids_in_table, creates):
    passed = failed = 0

    def verdict(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        passed, failed = passed + ok, failed + (not ok)

    statuses = {}
    for _, status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    verdict(len(results) == creates and statuses.get(200) == creates, f"all {creates} answered 200: {statuses}")
    ids = [json.loads(d)["id"] for _, s, d, _ in results if s == 200]
    verdict(len(set(ids)) == len(ids), f"{len(set(ids))} distinct ids")
    missing = set(ids) - ids_in_table
    verdict(not missing, f"every answered instance is in the table ({len(ids_in_table)} there, {len(missing)} missing)")
    ms = sorted(m for _, _, _, m in results)
    if ms:
        q = statistics.quantiles(ms, n=100)
        print(f"figures: {len(results)} creates in {seconds:.1f} s = {len(results) / seconds:.0f}/s; "
              f"latency p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms")
    return passed, failed, [json.loads(d)["token"] for _, s, d, _ in results if s == 200]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin_dir", nargs="?")
    p.add_argument("--url")
    p.add_argument("--run-dir")
    p.add_argument("--creates", type=int, default=2000)
    p.add_argument("--clients", type=int, default=32)
    a = p.parse_args()
    if a.url:
        run = pathlib.Path(a.run_dir or ".run/make-run")
        port = urllib.parse.urlparse(a.url).port
        hint = f"start `make run` first (PORT={port}), or run make load with the PORT that make run serves on"
        if not (run / "credentials.json").exists() or not (run / "run.pid").exists():
            sys.exit(f"make load: no make run is serving from this checkout; {hint}")
        if (run / "port").exists() and (run / "port").read_text().strip() != str(port):
            sys.exit(f"make load: make run serves on port {(run / 'port').read_text().strip()}, not {port}; "
                     f"use PORT={(run / 'port').read_text().strip()} make load")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/")
        except OSError:
            sys.exit(f"make load: nothing answers on {a.url}; {hint}")
        creds = json.loads((run / "credentials.json").read_text().splitlines()[-1])
        # make run checks the credentials with its JIRA: the load's creates name it.
        tour = run / "tour.env"
        if tour.exists():
            import shlex
            values = {k: shlex.split(v)[0] if v else "" for k, v in
                      (l.split("=", 1) for l in tour.read_text().splitlines() if "=" in l)}
            BODY["configuration"].update({"jira.api.url": values["TOUR_JIRA_URL"],
                                          "jira.username": values["TOUR_JIRA_USER"],
                                          "jira.password": values["TOUR_JIRA_PASSWORD"]})
        env = dict(l.split("=", 1) for l in (run / "function.env").read_text().splitlines() if "=" in l)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        results, seconds = drive(a.url, creds["authorization"], a.creates, a.clients)
        passed, failed, _ = check(results, seconds, stored_ids(env.get("TABLE_NAME", "instances"), env.get("AWS_ENDPOINT_URL")), a.creates)
    else:
        with served(a.bin_dir, "load") as fn:
            fn.wait_until_serving()
            results, seconds = drive(fn.url, fn.authorization, a.creates, a.clients)
            passed, failed, tokens = check(results, seconds, stored_ids(fn.env["TABLE_NAME"], fn.env["AWS_ENDPOINT_URL"]), a.creates)
            fn.secrets.update(tokens)
            fn.secrets.add(BODY["configuration"]["jira.password"])
        leaked, lines = fn.leaked()
        print(("ok   " if not leaked else "FAIL ") + f"the function's log ({lines} lines) carries none of {len(fn.secrets)} secrets")
        passed, failed = passed + (not leaked), failed + bool(leaked)
    print(f"load: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
