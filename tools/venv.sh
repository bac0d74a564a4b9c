#!/usr/bin/env bash
# Usage: tools/venv.sh NAME  -> creates .venv/NAME from tools/requirements-NAME.txt
# (pinned), once per change of that file. Prints the venv's bin directory.
set -euo pipefail
name=$1
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/tools/requirements-$name.txt"
venv="$root/.venv/$name"
[ -f "$req" ] || { echo "tools/venv.sh: no $req" >&2; exit 2; }
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing $name tools into .venv/$name (pinned in tools/requirements-$name.txt)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 \
    || { echo "tools/venv.sh: installing $req failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "$venv/bin"
