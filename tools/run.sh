#!/usr/bin/env bash
# `make run`: serves the function locally through the real Lambda runtime
# loop (cargo lambda watch, on a free port of its own) behind an HTTP front on
# 127.0.0.1:$PORT (default 9000) that hands requests over as API Gateway's
# REST API does (tools/api-front.py).
# Uses the DynamoDB/KMS endpoint named by AWS_ENDPOINT_URL (or
# AWS_ENDPOINT_URL_DYNAMODB / _KMS) when one is set; otherwise starts its own
# local server (moto). Runs the events too: the local driver of the event
# functions (target/debug/events drive: the tick every minute, both queues)
# and an HTTPS callback receiver to point callbacks at
# (tools/callback_receiver.py). Creates the table and key where missing, makes fresh
# credentials, checks itself, prints a curl that answers 200, and stops
# everything it started on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${PORT:-9000}
die() { echo "make run: $*" >&2; exit 1; }
for tool in cargo python3 curl; do command -v "$tool" >/dev/null || die "$tool is required and missing"; done

state="$root/.run/make-run"
# A failed start leaves a running one alone: nothing is touched before these checks.
if [ -f "$state/run.pid" ] && kill -0 "$(cat "$state/run.pid")" 2>/dev/null; then
  die "another make run is serving from this checkout (pid $(cat "$state/run.pid"), port $(cat "$state/port" 2>/dev/null || echo '?')); stop it (Ctrl-C) first"
fi
if ! python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
  die "port $port is in use; pick another with PORT=... make run"
fi

if [ -n "${JIRA_URL:-}" ] && { [ -z "${JIRA_USER:-}" ] || [ -z "${JIRA_PASSWORD:-}" ]; }; then
  die "JIRA_URL needs JIRA_USER and JIRA_PASSWORD (on Jira Cloud, an e-mail address and an API token)"
fi

local_bin=$(tools/venv.sh local) || die "installing the local tools failed"
echo "building (debug) ..." >&2
cargo build --locked --bin admin --bin bootstrap --bin events || die "the build failed"

rm -rf "$state"; mkdir -p "$state"
echo $$ >"$state/run.pid"
echo "$port" >"$state/port"
watch_pid=""; front_pid=""; jira_pid=""; receiver_pid=""; driver_pid=""
stop() {
  # A second signal (a group's TERM reaches make and this script alike) must
  # not cut the cleanup short.
  trap '' INT TERM; trap - EXIT
  [ -n "$front_pid" ] && kill -TERM "$front_pid" 2>/dev/null || true
  [ -n "$jira_pid" ] && kill -TERM "$jira_pid" 2>/dev/null || true
  [ -n "$receiver_pid" ] && kill -TERM "$receiver_pid" 2>/dev/null || true
  [ -n "$driver_pid" ] && kill -TERM "$driver_pid" 2>/dev/null || true
  [ -n "$watch_pid" ] && kill -TERM -- "-$watch_pid" 2>/dev/null || true
  tools/moto.sh stop "$state"
  rm -f "$state/run.pid"
  echo "stopped." >&2
}
trap stop EXIT
trap 'exit 130' INT TERM

if [ -z "${AWS_ENDPOINT_URL:-}${AWS_ENDPOINT_URL_DYNAMODB:-}${AWS_ENDPOINT_URL_KMS:-}" ]; then
  tools/moto.sh start "$state" || die "the local DynamoDB/KMS server did not start"
  set -a; . "$state/moto.env"; set +a
else
  echo "using the AWS endpoint(s) already set: ${AWS_ENDPOINT_URL:-}${AWS_ENDPOINT_URL_DYNAMODB:+ dynamodb=$AWS_ENDPOINT_URL_DYNAMODB}${AWS_ENDPOINT_URL_KMS:+ kms=$AWS_ENDPOINT_URL_KMS}" >&2
  export AWS_REGION=${AWS_REGION:-us-east-1} AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true}
fi
export TABLE_NAME=${TABLE_NAME:-instances} KMS_KEY_ID=${KMS_KEY_ID:-alias/instances}

# A JIRA to try against: the one JIRA_URL names (with JIRA_USER and
# JIRA_PASSWORD), else a local stand-in (tools/jira_standin.py: HTTPS on
# loopback, a demo project and issues, a demo account), its CA trusted and its
# host allowed beside what the caller's environment already says.
if [ -n "${JIRA_URL:-}" ]; then
  jira_url=$JIRA_URL jira_user=$JIRA_USER jira_password=$JIRA_PASSWORD jira_what="the JIRA at $JIRA_URL"
else
  "$local_bin/python" tools/jira_standin.py --host 127.0.0.1 --port 0 --flavor "${JIRA_FLAVOR:-cloud}" \
    --ca-file "$state/jira-ca.pem" >"$state/jira.json" 2>"$state/jira.log" &
  jira_pid=$!
  for _ in $(seq 1 100); do [ -s "$state/jira.json" ] && break; kill -0 "$jira_pid" 2>/dev/null || break; sleep 0.1; done
  [ -s "$state/jira.json" ] || die "the local JIRA stand-in did not start: $(tail -5 "$state/jira.log")"
  read -r jira_url jira_user jira_password < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["url"], j["user"], j["password"])' "$state/jira.json")
  jira_what="a local JIRA stand-in (${JIRA_FLAVOR:-cloud}) at $jira_url: project DEMO, account $jira_user / $jira_password"
  cat ${PROVIDER_TEST_CA_FILE:+"$PROVIDER_TEST_CA_FILE"} "$state/jira-ca.pem" >"$state/trusted-ca.pem"
  export PROVIDER_TEST_CA_FILE="$state/trusted-ca.pem"
  export PROVIDER_ALLOWED_HOSTS="${PROVIDER_ALLOWED_HOSTS:+$PROVIDER_ALLOWED_HOSTS,}localhost"
fi
export PROVIDER_CHECK=${PROVIDER_CHECK:-on}

# A callback to point events at: an HTTPS receiver on loopback that records
# what it is sent (its CA trusted, its address allowed for callbacks).
"$local_bin/python" tools/callback_receiver.py --host 127.0.0.1 --port 0 --ca-file "$state/callback-ca.pem" \
  >"$state/callback.json" 2>"$state/callback.log" &
receiver_pid=$!
for _ in $(seq 1 100); do [ -s "$state/callback.json" ] && break; kill -0 "$receiver_pid" 2>/dev/null || break; sleep 0.1; done
[ -s "$state/callback.json" ] || die "the local callback receiver did not start: $(tail -5 "$state/callback.log")"
read -r callback_url callback_base < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["url"], j["base"])' "$state/callback.json")
cat ${PROVIDER_TEST_CA_FILE:+"$PROVIDER_TEST_CA_FILE"} "$state/callback-ca.pem" >"$state/trusted-ca-2.pem"
mv "$state/trusted-ca-2.pem" "$state/trusted-ca.pem"
export PROVIDER_TEST_CA_FILE="$state/trusted-ca.pem"
export CALLBACK_ALLOWED_HOSTS="${CALLBACK_ALLOWED_HOSTS:+$CALLBACK_ALLOWED_HOSTS,}127.0.0.1"

target/debug/admin setup >"$state/setup.json" || die "admin setup failed"
org="local-$(date +%s)"
target/debug/admin create-credentials --organization "$org" --user "dev@example.com" >"$state/credentials.json" \
  || die "admin create-credentials failed"
authorization=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["authorization"])' "$state/credentials.json")

env | grep -E '^(AWS_[A-Z_]+|TABLE_NAME|KMS_KEY_ID|RUST_LOG|PROVIDER_[A-Z_]+|CALLBACK_[A-Z_]+|EVENTS_[A-Z_]+|POLL_QUEUE_URL|DELIVERY_QUEUE_URL)=' >"$state/function.env"
# For another shell: `. .run/make-run/env` aims admin (and the AWS CLI, ...) at
# this server and table instead of whatever AWS account the shell would reach.
while IFS='=' read -r name value; do printf 'export %s=%q\n' "$name" "$value"; done <"$state/function.env" >"$state/env"
invoke_port=$(tools/free-port)
echo "$invoke_port" >"$state/invoke-port"
setsid "$local_bin/cargo-lambda" lambda watch --invoke-address 127.0.0.1 --invoke-port "$invoke_port" \
  --env-file "$state/function.env" --disable-cors --ignore-changes --bin bootstrap &
watch_pid=$!
# The event functions' local driver: the schedule's tick every minute and
# both queues (created on the local server where none are named), through
# the same handlers the functions run.
(set -a; . "$state/function.env"; exec target/debug/events drive) >"$state/events.log" 2>&1 &
driver_pid=$!
# The front API Gateway is: cargo lambda's own answers a header value or body
# that is not UTF-8 with a 500 of its own, before the function runs.
"$local_bin/python" tools/api-front.py "$port" "$invoke_port" &
front_pid=$!

# The password through the environment, not a command line (`ps` shows those).
body=$(J_URL=$jira_url J_USER=$jira_user J_PASSWORD=$jira_password python3 -c 'import json,os; print(json.dumps({"element": {"key": "jira"}, "configuration": {"jira.username": os.environ["J_USER"], "jira.password": os.environ["J_PASSWORD"], "jira.api.url": os.environ["J_URL"]}, "tags": ["support"], "name": "Test"}))')
# What the tour in the README reads (TOUR_ names: not the JIRA_ that make run reads),
# readable by this user only (it holds the JIRA password).
umask 077
{
  printf 'AUTH=%q\nURL=%q\n' "$authorization" "http://127.0.0.1:$port"
  printf 'TOUR_JIRA_URL=%q\nTOUR_JIRA_USER=%q\nTOUR_JIRA_PASSWORD=%q\n' "$jira_url" "$jira_user" "$jira_password"
  printf 'CALLBACK_URL=%q\nCALLBACK_SEEN=%q\nCALLBACK_CA=%q\n' "$callback_url" "$callback_base/_receiver/requests" "$state/callback-ca.pem"
} >"$state/tour.env"
ok=""
for _ in $(seq 1 300); do
  kill -0 "$watch_pid" 2>/dev/null || die "cargo lambda watch stopped (see above)"
  kill -0 "$front_pid" 2>/dev/null || die "the HTTP front stopped (is port $port free? set PORT=...)"
  kill -0 "$driver_pid" 2>/dev/null || die "the events' local driver stopped: $(tail -5 "$state/events.log")"
  status=$(curl -s -o "$state/check.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/instances" \
    -H "Authorization: $authorization" -H 'Content-Type: application/json' -d "$body" || true)
  if [ "$status" = "200" ]; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || die "the function did not answer 200 (last status: ${status:-none}: $(cat "$state/check.json" 2>/dev/null))"

cat <<MSG

The function is served on http://127.0.0.1:$port (table $TABLE_NAME, key $KMS_KEY_ID, endpoint ${AWS_ENDPOINT_URL:-${AWS_ENDPOINT_URL_DYNAMODB:-}}).
Organization $org, user dev@example.com; the secrets are in .run/make-run/credentials.json.
JIRA: $jira_what; the credential check is $PROVIDER_CHECK.
Events: polled every minute by the local driver (log: .run/make-run/events.log); a callback receiver
at $callback_url records what it is sent: curl -s --cacert .run/make-run/callback-ca.pem $callback_base/_receiver/requests
The tour's variables (AUTH, URL, TOUR_JIRA_*, CALLBACK_*): . .run/make-run/tour.env
Create an instance:

curl -i -X POST http://127.0.0.1:$port/instances \\
  -H 'Authorization: $authorization' \\
  -H 'Content-Type: application/json' \\
  -d '$body'

Operator commands from another shell, aimed at this local server (not your AWS account):
  . .run/make-run/env && target/debug/admin --help
Ctrl-C stops everything.
MSG
wait "$watch_pid"
