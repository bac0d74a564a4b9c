#!/usr/bin/env bash
# `make fuzz-api`: schemathesis against the function with many examples and a
# random seed (printed, to replay a finding), on a local DynamoDB/KMS server of its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
local_bin=$(tools/venv.sh local)
st_bin=$(tools/venv.sh schemathesis)
cargo build --locked --bin admin --bin bootstrap
state=$(mktemp -d)
trap 'tools/moto.sh stop "$state"; rm -rf "$state"' EXIT
tools/moto.sh start "$state"
set -a; . "$state/moto.env"; set +a
"$local_bin/python" tools/run-schemathesis.py "$local_bin" "$st_bin" --max-examples "${1:-2000}"
