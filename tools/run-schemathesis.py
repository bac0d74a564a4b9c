#!/usr/bin/env python3
"""schemathesis (pinned, .venv/schemathesis) against the function served
through the real runtime loop, with docs/openapi.yaml: generated requests,
valid and not, each answered with a documented status and a body matching the
description, never a 5xx. Then the function's log is scanned for secrets.

  run-schemathesis.py LOCAL_BIN_DIR SCHEMATHESIS_BIN_DIR [--max-examples N] [--seed S]

Every check runs except positive_data_acceptance: the description cannot say
which configuration entries each element requires (that is the catalog's
business), so a body valid by the schema may rightly be refused with 400.
Requests go through local_function.ApiGatewayFront, which hands them to the
function as API Gateway's REST API does (`cargo lambda watch`'s own HTTP front
answers a non-UTF-8 body with a 500 of its own).
Closes with 'schemathesis: N passed, N failed'."""
import argparse
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_function import ROOT, ApiGatewayFront, served  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("local_bin")
    p.add_argument("schemathesis_bin")
    p.add_argument("--max-examples", type=int, default=25)
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    with served(a.local_bin, "schemathesis") as fn:
        fn.wait_until_serving()
        front = ApiGatewayFront(fn)
        cmd = [str(pathlib.Path(a.schemathesis_bin) / "schemathesis"), "run", str(ROOT / "docs/openapi.yaml"),
               "--url", front.url, "--header", f"Authorization: {fn.authorization}",
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--max-examples", str(a.max_examples), "--workers", "1",
               "--request-timeout", "30", "--suppress-health-check", "too_slow,filter_too_much",
               "--output-sanitize", "true"]
        if a.seed is not None:
            cmd += ["--seed", str(a.seed), "--generation-deterministic"]
        run = subprocess.run(cmd, cwd=ROOT, env=dict(fn.env, SCHEMATHESIS_HOOKS=""))
        front.close()
    leaked, lines = fn.leaked()
    log_ok = not leaked
    print(("ok   " if log_ok else "FAIL ") + f"the function's log ({lines} lines) carries none of the {len(fn.secrets)} secrets")
    ok = run.returncode == 0
    print(("ok   " if ok else "FAIL ") + f"schemathesis exited {run.returncode}")
    passed = int(ok) + int(log_ok)
    print(f"schemathesis: {passed} passed, {2 - passed} failed")
    sys.exit(0 if passed == 2 else 1)


if __name__ == "__main__":
    main()
