#!/usr/bin/env bash
# What a newcomer trips over, kept from coming back: a second `make run` (or
# one on a busy port) stops before touching the running one's state, and
# `make load` with nothing serving says what to start instead of a traceback.
# Runs before any build (the guards come first). Closes with
# 'guards: N passed, N failed'.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/verdict.sh
state=.run/make-run
if [ -f "$state/run.pid" ] && kill -0 "$(cat "$state/run.pid")" 2>/dev/null; then
  echo "FAIL a make run of this checkout is serving (pid $(cat "$state/run.pid")): stop it to run these checks"
  echo "guards: 0 passed, 1 failed"; exit 1
fi
# A stopped make run's files are kept aside and put back.
aside=$(mktemp -d)
[ -e "$state" ] && mv "$state" "$aside/make-run"
restore() {
  [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null
  rm -rf "$state"
  [ -e "$aside/make-run" ] && mv "$aside/make-run" "$state"
  rm -rf "$aside"
}
trap restore EXIT
port=$(tools/free-port)

# A running make run (its pid alive) and its files.
mkdir -p "$state"
sleep 300 & holder=$!
echo "$holder" >"$state/run.pid"; echo "$port" >"$state/port"; echo '{"authorization": "kept"}' >"$state/credentials.json"
out=$(PORT=$port tools/run.sh 2>&1); rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "another make run is serving" <<<"$out" && [ -f "$state/credentials.json" ] &&
  grep -q kept "$state/credentials.json" && [ "$(cat "$state/run.pid")" = "$holder" ] && ok=0
verdict $ok "a second make run refuses and leaves the running one's files alone" "rc=$rc: $out"
kill "$holder" 2>/dev/null; holder=""
rm -rf "$state"

# A busy port: refused before anything is touched.
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(300)' "$port" &
listener=$!
for _ in $(seq 1 50); do python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$port" 2>/dev/null && break; sleep 0.1; done
out=$(PORT=$port tools/run.sh 2>&1); rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "port $port is in use" <<<"$out" && [ ! -e "$state" ] && ok=0
verdict $ok "make run on a busy port says so and creates nothing" "rc=$rc: $out"
kill "$listener" 2>/dev/null; listener=""

# A real JIRA named without its account: said before anything is built or started.
out=$(PORT=$port JIRA_URL=https://example.atlassian.net tools/run.sh 2>&1); rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "JIRA_URL needs JIRA_USER and JIRA_PASSWORD" <<<"$out" && [ ! -e "$state" ] && ok=0
verdict $ok "make run with JIRA_URL but no account says what it needs and starts nothing" "rc=$rc: $out"

# make load with no make run.
out=$(PORT=$port make --no-print-directory load 2>&1); rc=$?
ok=1; [ $rc -ne 0 ] && grep -q "start \`make run\` first (PORT=$port)" <<<"$out" && ! grep -q Traceback <<<"$out" && ok=0
verdict $ok "make load with nothing serving says what to start" "rc=$rc: $out"

echo "guards: $passed passed, $failed failed"
[ $failed -eq 0 ]
