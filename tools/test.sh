#!/usr/bin/env bash
# `make test`: every test. Installs the pinned tools it needs (and, for the SAM
# suite, Debian's Docker engine and a locally built base image), starts its own
# DynamoDB/KMS API server (moto) on a free port and stops it, runs every suite
# even after a failure, and closes with one 'N passed, N failed' line.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() { echo "make test: $*" >&2; exit 1; }
for tool in cargo python3 curl; do
  command -v "$tool" >/dev/null || die "$tool is required and missing"
done
python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 needs its venv and ensurepip modules (Debian: apt-get install python3-venv)"

# A clean slate: nothing of the caller's AWS setup leaks into the tests.
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_KMS AWS_PROFILE AWS_SESSION_TOKEN TABLE_NAME KMS_KEY_ID

echo "== tools (pinned, in .venv/)"
pids=()
for v in local sam checkov schemathesis; do tools/venv.sh "$v" >/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "installing the test tools failed (see above)"; done
local_bin=$(tools/venv.sh local)

echo "== build"
cargo build --locked --all-targets || die "the build failed"

state=$(mktemp -d)
cleanup() { tools/moto.sh stop "$state"; rm -rf "$state"; }
trap cleanup EXIT
tools/moto.sh start "$state" || die "the local DynamoDB/KMS server did not start"
set -a; . "$state/moto.env"; set +a

passed=0; failed=0; broken=()
# The closing lines counted: cargo's "test result: ..." and each suite's "<name>: N passed, N failed".
closing_line='^(test result: .*|[a-z-]+: [0-9]+ passed, [0-9]+ failed)$'
count() { # adds the 'N passed, N failed' figures of a suite's output
  local log=$1 p f
  local closing
  closing=$(grep -E "$closing_line" "$log" || true)
  p=$(echo "$closing" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  f=$(echo "$closing" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}
suite() { # name, command...: runs it, counts it, remembers a failure
  local name=$1; shift
  echo "== $name"
  local log="$state/$name.log"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count "$log"
  if [ "$rc" -ne 0 ]; then
    broken+=("$name")
    # A suite that failed without saying how many: count it as one failure.
    grep -E "$closing_line" "$log" | grep -Eq '[1-9][0-9]* failed' || failed=$((failed + 1))
  fi
}

lint() { # each check runs whatever the others gave; the README and docs/ against the code last
  local ok=0 bad=0
  if cargo fmt --all -- --check; then echo "ok   cargo fmt"; ok=$((ok + 1)); else echo "FAIL cargo fmt"; bad=$((bad + 1)); fi
  if cargo clippy --locked --all-targets --quiet -- -D warnings; then
    echo "ok   cargo clippy"; ok=$((ok + 1))
  else
    echo "FAIL cargo clippy"; bad=$((bad + 1))
  fi
  if python3 tools/check-docs.py; then echo "ok   docs"; ok=$((ok + 1)); else echo "FAIL docs"; bad=$((bad + 1)); fi
  echo "lint: $ok passed, $bad failed"
  [ "$bad" -eq 0 ]
}

suite lint lint
suite guards tools/check-guards.sh
# The JIRA stand-in against what Atlassian documents (docs/jira-standin.md).
suite jira-standin "$local_bin/python" tools/test_jira_standin.py
suite callback-receiver "$local_bin/python" tools/test_callback_receiver.py
suite cargo-test cargo test --locked --no-fail-fast
# make run end to end, on this suite's DynamoDB/KMS server (it honours AWS_ENDPOINT_URL).
suite make-run tools/check-make-run.sh
suite events python3 tools/run-events.py "$local_bin"
suite openapi "$local_bin/python" tools/check-openapi.py "$local_bin"
suite schemathesis "$local_bin/python" tools/run-schemathesis.py "$local_bin" "$(tools/venv.sh schemathesis)" --max-examples 50 --seed 20261125
suite load "$local_bin/python" tools/load.py "$local_bin" --creates 2000 --clients 32
suite template tools/check-template.sh
# SAM CLI's own emulation: sam build, every event through sam local invoke,
# sam local start-api (installs and starts a Docker engine and builds SAM's
# base image where they are missing; stops what it started).
suite sam "$local_bin/python" tools/run-sam.py "$local_bin" "$(tools/venv.sh sam)"

echo
if [ ${#broken[@]} -gt 0 ]; then
  echo "make test: FAILED suites: ${broken[*]}"
fi
echo "total: $passed passed, $failed failed"
[ ${#broken[@]} -eq 0 ] && [ "$failed" -eq 0 ]
