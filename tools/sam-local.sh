#!/usr/bin/env bash
# AWS SAM CLI's own local emulation, as a user runs it, on a machine that has
# a Docker client but maybe no engine and no registry.
#
#   tools/sam-local.sh engine-up STATE   a Docker engine: Debian's docker.io, installed and
#                                        started if `docker info` fails (STATE/dockerd.pid)
#   tools/sam-local.sh engine-down STATE stops the engine if engine-up started it
#   tools/sam-local.sh image STATE       the base image SAM asks for, built locally (see below)
#   tools/sam-local.sh build             sam build (x86_64) into target/sam-build
#   tools/sam-local.sh bridge            the address containers reach the host on
#   tools/sam-local.sh invoke EVENT      make sam-invoke: credentials made, EVENT's placeholders
#                                        filled, `sam local invoke`, the answer printed
#   tools/sam-local.sh api               make sam-api: `sam local start-api` on $SAM_PORT (3000)
#                                        against a local DynamoDB/KMS server, with a working curl
#
# The base image: no registry is reachable here, so
# public.ecr.aws/lambda/provided:al2023-x86_64 is a Debian bookworm root file
# system (debootstrap, minbase) imported under that tag; SAM layers its Runtime
# Interface Emulator on it and runs with --skip-pull-image. Debian's glibc is
# 2.36, AL2023's 2.34: the SAM suite checks that the built bootstrap needs no
# symbol newer than 2.34.
#
# Local runs use x86_64 (the machines' architecture; template parameter
# Architecture), deployments arm64.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64
die() { echo "tools/sam-local.sh: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root (apt-get, dockerd); run as root or install and start Docker yourself"; }

apt_install() { # package...: from Debian's archive, refreshing the lists once if needed
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } ||
    die "apt-get install $* failed"
}

engine_up() {
  local state=$1
  mkdir -p "$state"
  docker info >/dev/null 2>&1 && return 0
  command -v docker >/dev/null || { need_root "installing Docker"; apt_install docker.io; }
  if ! command -v dockerd >/dev/null; then
    need_root "installing the Docker engine"
    echo "installing Debian's docker.io (the engine)" >&2
    apt_install docker.io
  fi
  need_root "starting dockerd"
  dockerd >"$state/dockerd.log" 2>&1 &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { echo "started dockerd (pid $(cat "$state/dockerd.pid"))" >&2; return 0; }
    kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || break
    sleep 0.5
  done
  cat "$state/dockerd.log" >&2
  die "dockerd did not start (its log is above)"
}

engine_down() {
  local state=$1
  [ -f "$state/dockerd.pid" ] || return 0
  local pid
  pid=$(cat "$state/dockerd.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$state/dockerd.pid"
}

image() {
  local state=$1
  docker image inspect "$IMAGE" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || { need_root "installing debootstrap"; apt_install debootstrap; }
  local rootfs="$state/rootfs"
  echo "building $IMAGE from a Debian bookworm root file system (about 2 min, once per machine)" >&2
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" http://deb.debian.org/debian \
    >"$state/debootstrap.log" 2>&1 || { tail -20 "$state/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$rootfs"/var/cache/apt/archives/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
  tar -C "$rootfs" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$rootfs"
}

bridge() {
  docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null | grep . || echo 172.17.0.1
}

sam_bin() { "$root/tools/venv.sh" sam; }

build() {
  local local_bin
  local_bin=$("$root/tools/venv.sh" local)
  # cargo-lambda (and its zig) from the project's venv; the build cache kept in target/.
  PATH="$local_bin:$PATH" SAM_CLI_TELEMETRY=0 CARGO_TARGET_DIR="$root/target/sam" \
    "$(sam_bin)/sam" build --beta-features --parameter-overrides Architecture=x86_64 \
    --build-dir "$root/target/sam-build" >&2
}

# What `make sam-invoke` and `make sam-api` share: an engine, the image, a
# local DynamoDB/KMS server the containers reach (unless AWS_ENDPOINT_URL is
# set to one), a table and key, fresh credentials, the build.
prepare() {
  state=$root/.run/$1
  mkdir -p "$state"
  engine_up "$state"
  image "$state"
  if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    MOTO_HOST=$(bridge) "$root/tools/moto.sh" start "$state"
    set -a; . "$state/moto.env"; set +a
    trap 'tools/moto.sh stop "$state"; engine_down "$state"' EXIT
  else
    trap 'engine_down "$state"' EXIT
    export AWS_REGION=${AWS_REGION:-us-east-1}
  fi
  export TABLE_NAME=${TABLE_NAME:-instances} KMS_KEY_ID=${KMS_KEY_ID:-alias/instances}
  cargo build --quiet --bin admin
  target/debug/admin setup >/dev/null
  creds=$(target/debug/admin create-credentials --organization "sam-$(date +%s)" --user ops@example.com | tail -1)
  build
  printf '{"CreateInstanceFunction": {"TABLE_NAME": "%s", "KMS_KEY_ID": "%s"}}\n' "$TABLE_NAME" "$KMS_KEY_ID" >"$state/env.json"
  overrides="Architecture=x86_64 LocalEndpoint=$AWS_ENDPOINT_URL ProviderCheck=${PROVIDER_CHECK:-off}"
}

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$creds" "$1"; }

case "${1:-}" in
engine-up) engine_up "${2:?state directory}" ;;
engine-down) engine_down "${2:?state directory}" ;;
image) image "${2:?state directory}" ;;
build) build ;;
bridge) bridge ;;
invoke)
  event=${2:?usage: tools/sam-local.sh invoke events/NAME.json}
  [ -f "$event" ] || die "no event file $event"
  prepare sam-invoke
  fill() { sed -e "s/{{USER_SECRET}}/$(field userSecret)/" -e "s/{{ORGANIZATION_SECRET}}/$(field organizationSecret)/" \
    -e "s/{{INSTANCE_ID}}/${instance_id:-}/" "$1"; }
  invoke() { SAM_CLI_TELEMETRY=0 "$(sam_bin)/sam" local invoke CreateInstanceFunction -t target/sam-build/template.yaml \
    -e "$1" --env-vars "$state/env.json" --parameter-overrides "$overrides" --skip-pull-image; }
  if grep -q '{{INSTANCE_ID}}' "$event"; then
    # The event reads one instance: create one first, and read that one.
    fill events/create-rest-api.json >"$state/create.json"
    instance_id=$(invoke "$state/create.json" 2>/dev/null | python3 -c '
import json, sys
for line in reversed(sys.stdin.read().splitlines()):
    if line.startswith("{") and "statusCode" in line:
        print(json.loads(json.loads(line)["body"])["id"]); break')
    [ -n "$instance_id" ] || die "the create that the event needs did not answer an id"
    echo "created instance $instance_id for the event to read" >&2
  fi
  fill "$event" >"$state/event.json"
  invoke "$state/event.json"
  ;;
api)
  port=${SAM_PORT:-3000}
  prepare sam-api
  echo "sam local start-api on http://127.0.0.1:$port (Ctrl-C stops it and everything it started)" >&2
  cat >&2 <<EOF

curl -s -X POST http://127.0.0.1:$port/instances \\
  -H 'Authorization: $(field authorization)' \\
  -H 'Content-Type: application/json' \\
  -d '{"element":{"key":"jira"},"configuration":{"jira.username":"me@example.com","jira.password":"api-token","jira.api.url":"https://example.atlassian.net"},"tags":["support"],"name":"Test"}'

EOF
  SAM_CLI_TELEMETRY=0 "$(sam_bin)/sam" local start-api -t target/sam-build/template.yaml -p "$port" \
    --env-vars "$state/env.json" --parameter-overrides "$overrides" --skip-pull-image --warm-containers EAGER
  ;;
*) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
