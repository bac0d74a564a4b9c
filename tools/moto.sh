#!/usr/bin/env bash
# Usage: tools/moto.sh start DIR | stop DIR
# start: runs the pinned moto server (DynamoDB + KMS API) on a free port of
# MOTO_HOST (default 127.0.0.1; the SAM suite uses Docker's bridge address, which
# containers reach), waits until it answers, and writes DIR/moto.env (the AWS variables
# that point the SDK at it) and DIR/moto.pid. stop: ends it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?start|stop}; dir=${2:?state directory}
mkdir -p "$dir"
case "$cmd" in
start)
  bin=$("$root/tools/venv.sh" local)
  host=${MOTO_HOST:-127.0.0.1}
  port=$("$root/tools/free-port")
  # One request at a time: see tools/moto-serial.py.
  "$bin/python" "$root/tools/moto-serial.py" -H "$host" -p "$port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://$host:$port/moto-api/"; then
      cat >"$dir/moto.env" <<ENV
AWS_ENDPOINT_URL=http://$host:$port
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_EC2_METADATA_DISABLED=true
ENV
      echo "moto (DynamoDB/KMS API) on http://$host:$port" >&2
      exit 0
    fi
    kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "tools/moto.sh: moto did not start; its log:" >&2; cat "$dir/moto.log" >&2; exit 1 ;;
stop)
  [ -f "$dir/moto.pid" ] && kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
  rm -f "$dir/moto.pid" ;;
*) echo "usage: tools/moto.sh start|stop DIR" >&2; exit 2 ;;
esac
