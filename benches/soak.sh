#!/usr/bin/env bash
# Soak and abuse benchmarks: what otk-mock keeps doing for everyone else while some clients
# misbehave. Each section runs on its own against a release build:
#
#   benches/soak.sh stalled     1,000 sockets stall their request bodies; others' latency
#   benches/soak.sh             every section
#
# Sections print their figures and exit non-zero when a goal is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECTION=${1:-all}
TARGET=${CARGO_TARGET_DIR:-target}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_ready() { # url
  for _ in $(seq 1 500); do
    if curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: t' "$1" | grep -q 200; then
      return 0
    fi
    sleep 0.01
  done
  echo "not ready: $1" >&2
  return 1
}

# ---------------------------------------------------------------------------------------------
# stalled: STALLED (1,000) connections each send a get-journey head with Content-Length: 1000
# and one byte of body, then nothing. While they are held, REQUESTS (4,000) get-journeys from
# CLIENTS (4) kept-alive connections, and a quarter as many on a new connection each, are
# timed, before the stall and during it (goal: p99 under 50 ms); then every stalled socket
# must get its 408 once --body-read-timeout (BODY_READ_TIMEOUT, 10s) has passed.
# ---------------------------------------------------------------------------------------------
stalled() {
  local port=${STALLED_PORT:-18180}
  cargo build --release --quiet --bin otk-mock --example stalled
  RUST_LOG=warn "$TARGET"/release/otk-mock serve --bind 127.0.0.1:"$port" \
    --body-read-timeout "${BODY_READ_TIMEOUT:-10s}" &
  PIDS+=("$!")
  wait_ready "http://127.0.0.1:$port/api/v3/otk-service/get-journey/success-ready"
  echo "== stalled: otk-mock $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores"
  "$TARGET"/release/examples/stalled 127.0.0.1:"$port" "${STALLED:-1000}" "${REQUESTS:-4000}" "${CLIENTS:-4}"
  kill "${PIDS[-1]}" 2>/dev/null || true
}

case "$SECTION" in
  stalled) stalled ;;
  all) stalled ;;
  *)
    echo "usage: $0 [stalled|all]" >&2
    exit 2
    ;;
esac
