#!/usr/bin/env bash
# `make run` as a newcomer runs it, end to end, after the build: it starts
# (here on the suite's DynamoDB/KMS server, as it honours AWS_ENDPOINT_URL),
# the curl it prints answers 200, requests API Gateway would hand over are
# answered by the function in the API's shape (a header value or a body that
# is not UTF-8 is a 400, not the local front's own 500), and Ctrl-C stops
# everything it started (TERM here: a background job of a script ignores
# SIGINT, as bash starts it). Closes with 'make-run: N passed, N failed'.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/verdict.sh
port=$(tools/free-port)
log=$(mktemp)
PORT=$port setsid make --no-print-directory run >"$log" 2>&1 &
runner=$!
stop_run() { kill -TERM -- "-$runner" 2>/dev/null; for _ in $(seq 1 100); do kill -0 "$runner" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL -- "-$runner" 2>/dev/null; }
trap 'stop_run; cp "$log" /tmp/last-make-run.log; rm -f "$log"' EXIT
for _ in $(seq 1 900); do
  grep -q "Ctrl-C stops everything" "$log" && break
  kill -0 "$runner" 2>/dev/null || break
  sleep 1
done
started=1; grep -q "Ctrl-C stops everything" "$log" && started=0
verdict $started "make run starts and says how to stop it" "$(tail -20 "$log")"
if [ $started -ne 0 ]; then echo "make-run: $passed passed, $((failed)) failed"; exit 1; fi

# The printed curl, as printed.
printed=$(sed -n '/^curl -i -X POST/,/^  -d /p' "$log")
out=$(bash -c "$printed -s" 2>&1); status=$(head -1 <<<"$out" | awk '{print $2}')
ok=1; [ "$status" = 200 ] && grep -q '"token"' <<<"$out" && grep -q '"valid":true' <<<"$out" && ok=0
verdict $ok "the curl make run prints answers 200 with a token, valid: JIRA (the local stand-in) accepted it" "$out"

answer=$(mktemp)
auth=$(python3 -c 'import json; print(json.loads(open(".run/make-run/credentials.json").read().splitlines()[-1])["authorization"])')
ask() { curl -s -o "$answer" -w '%{http_code}' -X POST "http://127.0.0.1:$port/instances" -H "Authorization: $auth" -H 'Content-Type: application/json' "$@"; }
shape() { python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); sys.exit(0 if b.get("code")==sys.argv[2] and b.get("requestId") and b.get("message") else 1)' "$answer" "$1"; }
status=$(ask -H $'Idempotency-Key: \xff\xfe' -d '{}')
ok=1; [ "$status" = 400 ] && shape invalid_idempotency_key && ok=0
verdict $ok "a header value that is not UTF-8 is the function's 400, in the API's shape" "$status $(cat "$answer")"
status=$(ask --data-binary $'\xff\xfe{')
ok=1; [ "$status" = 400 ] && shape malformed_json && ok=0
verdict $ok "a body that is not UTF-8 is the function's 400 malformed_json" "$status $(cat "$answer")"
# The local JIRA is asked, and refuses a wrong password as JIRA does.
. .run/make-run/tour.env
wrong=$(python3 -c 'import json,sys; print(json.dumps({"element": {"key": "jira"}, "name": "Wrong", "configuration": {"jira.username": sys.argv[2], "jira.password": "not-the-password", "jira.api.url": sys.argv[1]}}))' "$TOUR_JIRA_URL" "$TOUR_JIRA_USER")
status=$(ask -d "$wrong")
ok=1; [ "$status" = 400 ] && shape invalid_credentials && grep -q "not authenticated" "$answer" && ok=0
verdict $ok "a wrong JIRA password is refused by the local JIRA: 400 invalid_credentials with its words" "$status $(cat "$answer")"
ok=1; [[ "$TOUR_JIRA_URL" == https://localhost:* ]] && grep -q "project DEMO" "$log" && ok=0
verdict $ok "make run names the local JIRA it started and its demo account" "$TOUR_JIRA_URL"

# The README's tour, as written, against this make run (URL points at its port).
tour=$(python3 - <<'PY'
import re
text = open("README.md").read()
part = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
print("\n".join(re.findall(r"```sh\n(.*?)```", part, re.S)))
PY
)
out=$(bash -euo pipefail -c "$tour" 2>&1); rc=$?
tour_started=$(date +%s)
ok=1; [ $rc -eq 0 ] && grep -q '"valid":true' <<<"$out" && grep -q 'Tour, renamed' <<<"$out" \
  && grep -q 'missing_configuration' <<<"$out" && grep -q '"jira.password":"\*\*\*\*\*\*\*\*"' <<<"$out" \
  && grep -q '"key":"DEMO-' <<<"$out" && ok=0
verdict $ok "the README's tour runs as written: created valid, read back masked, renamed by token, JIRA's incidents through the hub, one wrong" "rc=$rc: $out"

# The tour turned events on and changed DEMO-1: the local driver polls it
# (the tick every minute, a one-minute interval) and delivers it to the
# receiver, signed; the event log says so.
seen=""
for _ in $(seq 1 200); do
  seen=$(curl -s --cacert "$CALLBACK_CA" "$CALLBACK_SEEN" || true)
  grep -q '"elements-webhook-signature": *"sha256=' <<<"$seen" && break
  sleep 1
done
id=$(grep -o '"id":[0-9]*' <<<"$out" | head -1 | cut -d: -f2)
logged=$(curl -s "http://127.0.0.1:$port/instances/$id/events" -H "Authorization: $AUTH")
ok=1; grep -q '"elements-webhook-signature": *"sha256=' <<<"$seen" && grep -q '"status":"NOTIFIED"' <<<"$logged" && ok=0
verdict $ok "events under make run: the tour's change reaches the callback signed, in $(( $(date +%s) - tour_started )) s, and the log says NOTIFIED" "$seen / $logged / $(tail -5 .run/make-run/events.log)"

# What a hostile client can send the front: it answers as API Gateway does.
status=$(curl -s -o "$answer" -w '%{http_code}' -X POST "http://127.0.0.1:$port/instances" -H "Authorization: $auth" \
  -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' -d '{"name": "chunked"}')
ok=1; [ "$status" = 400 ] && shape invalid_request && ok=0
verdict $ok "a chunked body reaches the function" "$status $(cat "$answer")"
raw=$(printf 'POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n' | timeout 10 python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(sys.stdin.buffer.read()); print(s.recv(200).decode(errors="replace").splitlines()[0])' "$port" 2>&1)
ok=1; grep -q " 400 " <<<"$raw" && ok=0
verdict $ok "a Content-Length that is not a number is a 400 from the front, not a hang" "$raw"
status=$(curl -s -o "$answer" -w '%{http_code}' -X POST "http://127.0.0.1:$port/instances" -H 'Content-Length: 99999999999' --data-binary 'x' 2>/dev/null)
ok=1; [ "$status" = 413 ] && ok=0
verdict $ok "a body announced past 10 MiB is 413 before it is read" "$status"
rm -f "$answer"

stop_run
sleep 1
invoke_port=$(cat .run/make-run/invoke-port 2>/dev/null || echo none)
left=$(python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); print("free")' "$port" 2>/dev/null)
ok=1; [ "$left" = free ] && grep -q "^stopped." "$log" && ! pgrep -f -- "--invoke-port $invoke_port " >/dev/null \
  && ! pgrep -f "jira_standin.py .*$(dirname "$(readlink -f .run/make-run/jira-ca.pem)")" >/dev/null \
  && ! pgrep -f "callback_receiver.py .*$(dirname "$(readlink -f .run/make-run/callback-ca.pem)")" >/dev/null \
  && ! pgrep -f "target/debug/events drive" >/dev/null && ok=0
verdict $ok "Ctrl-C stops the front, the runtime loop and what make run started" "$(tail -3 "$log")"
echo "make-run: $passed passed, $failed failed"
[ $failed -eq 0 ]
