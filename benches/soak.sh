#!/usr/bin/env bash
# Soak and abuse benchmarks: what otk-mock keeps doing while clients misbehave or pile on.
# One independent section each, in release:
#
#   benches/soak.sh                     # every section
#   benches/soak.sh stalled callbacks   # only the named ones
#
# Sections:
#   stalled    STALLED (1,000) sockets stall their request bodies; the latency of everyone
#              else's get-journeys is printed (goal: p99 under 50 ms), and every stalled
#              socket must get its 408 once --body-read-timeout has passed.
#   ids        COUNT_IDS (10,000) get-journeys with 200 KB journey ids (ID_BYTES), then as many
#              with ids just under --max-journey-id, each a new journey: peak resident memory
#              printed (goal: under 100 MB), and every long id answered 414.
#   callbacks  10,000 callbacks against a local receiver that fails every other attempt of each
#              (COUNT=10000): every one delivered, none lost, none duplicated, the mock's
#              counters balanced, and the delivered rate printed (goal: >= 5,000/s).
#              CALLBACK_QUEUE=500 makes the intake small, so create calls meet 503s and retry.
#
# Each section is a function of its own (soak_<name>) with its own ports and processes; add a
# section by adding a function and a line to the `case` at the bottom. Sections print their
# figures and exit non-zero when a goal is missed.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

. benches/common.sh

wait_ready() { # url
  for _ in $(seq 1 500); do
    if curl -s -o /dev/null "$1"; then
      return 0
    fi
    sleep 0.01
  done
  echo "not ready: $1" >&2
  return 1
}

# --- stalled -------------------------------------------------------------------------------
# STALLED (1,000) connections each send a get-journey head with Content-Length: 1000 and one
# byte of body, then nothing. While they are held, REQUESTS (4,000) get-journeys from CLIENTS
# (4) kept-alive connections, and a quarter as many on a new connection each, are timed,
# before the stall and during it; then every stalled socket must get its 408 once
# --body-read-timeout (BODY_READ_TIMEOUT, 10s) has passed.
soak_stalled() {
  local port=${STALLED_PORT:-18181}
  refuse_taken soak.sh STALLED_PORT "$port"
  cargo build --release --quiet --bin otk-mock --example stalled
  RUST_LOG=warn "$TARGET"/release/otk-mock serve --bind 127.0.0.1:"$port" \
    --body-read-timeout "${BODY_READ_TIMEOUT:-10s}" &
  local mock=$!
  PIDS+=("$mock")
  wait_ready "http://127.0.0.1:$port/__admin/health"
  echo "== stalled: otk-mock $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores"
  "$TARGET"/release/examples/stalled 127.0.0.1:"$port" "${STALLED:-1000}" "${REQUESTS:-4000}" "${CLIENTS:-4}"
  kill "$mock"
  wait "$mock" 2>/dev/null || true
}

# --- ids -------------------------------------------------------------------------------------
soak_ids() {
  local port=${IDS_PORT:-18182}
  refuse_taken soak.sh IDS_PORT "$port"
  cargo build --release --quiet --bin otk-mock
  RUST_LOG=warn "$TARGET/release/otk-mock" serve --bind "127.0.0.1:$port" &
  local mock=$!
  PIDS+=("$mock")
  wait_ready "http://127.0.0.1:$port/__admin/health"
  echo "== ids: ${COUNT_IDS:-10000} of ${ID_BYTES:-204800} bytes, then as many of 250 bytes"
  python3 - "$port" "${COUNT_IDS:-10000}" "${ID_BYTES:-204800}" "$mock" <<'PY'
import socket, sys
port, count, size, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def status(sock):
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0

def rss(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) // 1024
    return -1

idle = rss("VmRSS")
statuses = {}
for i in range(count):
    # A target this long is refused before it is routed: a new connection each time.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        path = f"/api/v3/otk-service/get-journey/success-{i}-" + "x" * size
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nContent-Length: 0\r\n\r\n".encode())
        code = status(sock)
        statuses[code] = statuses.get(code, 0) + 1
long_peak = rss("VmHWM")
short = {}
with socket.create_connection(("127.0.0.1", port)) as sock:
    for i in range(count):
        # Just under --max-journey-id (256): kept in the journal and rendered, every one new.
        path = f"/api/v3/otk-service/get-journey/success-{i:06d}-" + "y" * 234
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nContent-Length: 0\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                if length and len(body) >= length[0]:
                    break
        code = int(data.split(b" ", 2)[1])
        short[code] = short.get(code, 0) + 1
peak = rss("VmHWM")
print(f"long ids: statuses {statuses}; short ids: statuses {short}")
print(f"resident memory: idle {idle} MB, peak after the long ids {long_peak} MB, peak after both {peak} MB, now {rss('VmRSS')} MB")
ok = statuses.get(414, 0) == count and short.get(200, 0) == count and peak < 100
print("PASS" if ok else "FAIL: every long id should get 414, every short one 200, the peak stay under 100 MB")
sys.exit(0 if ok else 1)
PY
  kill "$mock"
  wait "$mock" 2>/dev/null || true
}

# --- callbacks -----------------------------------------------------------------------------
soak_callbacks() {
  local count=${COUNT:-10000}
  local port=${CALLBACK_SOAK_PORT:-18180}
  refuse_taken soak.sh CALLBACK_SOAK_PORT "$port"
  cargo build --release --quiet --bin otk-mock --example callback_soak
  # Journeys complete as soon as they are created; retries come quickly; callbacks are signed
  # so that each carries its webhook-id, by which the receiver counts them.
  RUST_LOG=warn "$TARGET/release/otk-mock" serve --bind "127.0.0.1:$port" \
    --auto-complete-after 0s \
    --callback-backoff-initial 10ms --callback-backoff-max 50ms --callback-max-attempts 8 \
    --callback-signing-secret soak-secret --callback-queue "${CALLBACK_QUEUE:-10000}" &
  local mock=$!
  PIDS+=("$mock")
  wait_ready "http://127.0.0.1:$port/__admin/health"
  echo "== callbacks: $count, receiver failing every other attempt"
  "$TARGET/release/examples/callback_soak" "http://127.0.0.1:$port" "$count"
  kill "$mock"
  wait "$mock" 2>/dev/null || true
}

SECTIONS=("$@")
if [ ${#SECTIONS[@]} -eq 0 ]; then
  SECTIONS=(stalled ids callbacks)
fi
for section in "${SECTIONS[@]}"; do
  case "$section" in
    stalled) soak_stalled ;;
    ids) soak_ids ;;
    callbacks) soak_callbacks ;;
    *) echo "unknown section: $section (stalled, ids, callbacks)" >&2; exit 2 ;;
  esac
done
