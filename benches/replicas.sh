#!/usr/bin/env bash
# Replicas benchmark: the memory store beside two replicas on one Redis, in the same run,
# alternating the two so that drift on a shared machine hits both.
#
#   benches/replicas.sh                      # about 2 minutes on 2 cores
#   DURATION=5s ROUNDS=1 JOURNEYS=500 benches/replicas.sh
#
# Cases: (a) get-journey of created journeys (JOURNEYS of them, cycled; their bodies cached
#        per replica, so this is the store read and the journal write per request): one
#        memory server with CONNECTIONS connections, against two replicas with half each;
#        (b) callbacks delivered per second: JOURNEYS journeys with a callbackUrl completed
#        through the admin API (by 8 clients; through both replicas in turn) to a receiver
#        that answers 200 at once, from the first completion to the last delivery.
# Needs redis-server and wrk (Debian packages; installed when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
JOURNEYS=${JOURNEYS:-2000}
BASE_PORT=${BASE_PORT:-18180}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

. benches/common.sh
refuse_taken replicas.sh BASE_PORT $(seq "$BASE_PORT" $((BASE_PORT + 4)))
need wrk redis-server redis-cli:redis-tools

cargo build --release --quiet --bin otk-mock --example ceiling
target=${CARGO_TARGET_DIR:-target}
MOCK=$target/release/otk-mock
CEILING=$target/release/examples/ceiling

REDIS_PORT=$BASE_PORT
MEMORY_PORT=$((BASE_PORT + 1))
A_PORT=$((BASE_PORT + 2))
B_PORT=$((BASE_PORT + 3))
RECEIVER_PORT=$((BASE_PORT + 4))
redis-server --port $REDIS_PORT --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  --daemonize no --loglevel warning >/dev/null &
PIDS+=("$!")
for _ in $(seq 1 500); do
  redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break
  sleep 0.01
done

start() { # port store
  RUST_LOG=warn $MOCK serve --bind 127.0.0.1:"$1" --store "$2" --auto-complete-after never \
    --max-journeys 100000 --callback-log-entries 100000 >/dev/null 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 500); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/__admin/health" && return 0
    sleep 0.01
  done
  echo "not ready: $1" >&2
  return 1
}
start $MEMORY_PORT memory
start $A_PORT "redis://127.0.0.1:$REDIS_PORT/0"
start $B_PORT "redis://127.0.0.1:$REDIS_PORT/0"
echo '{}' >"$WORK/ok.json"
$CEILING 127.0.0.1:$RECEIVER_PORT "$WORK/ok.json" 2>/dev/null &
PIDS+=("$!")
RECEIVER="http://127.0.0.1:$RECEIVER_PORT/callback"

# Journeys created through the given ports in turn (8 clients), their ids one a line.
create() { # file with_callback port...
  python3 - "$@" <<'PY'
import http.client, json, sys
from concurrent.futures import ThreadPoolExecutor
out, with_callback, ports = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
n = int(__import__("os").environ["JOURNEYS"])
receiver = __import__("os").environ["RECEIVER"]
body = {"flowId": "bench"}
if with_callback:
    body["processingConfig"] = {"callbackUrl": receiver}
body = json.dumps(body)
def run(k):
    conns = {p: http.client.HTTPConnection("127.0.0.1", int(p)) for p in ports}
    ids = []
    for i in range(k, n, 8):
        c = conns[ports[i % len(ports)]]
        c.request("POST", "/api/v3/otk-service/create-journey-url", body,
                  {"Authorization": "t", "Content-Type": "application/json"})
        ids.append(json.loads(c.getresponse().read())["result"]["journeyId"])
    return ids
with ThreadPoolExecutor(8) as pool:
    ids = [i for part in pool.map(run, range(8)) for i in part]
open(out, "w").write("\n".join(ids) + "\n")
PY
}
export JOURNEYS RECEIVER

cat >"$WORK/ids.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do table.insert(ids, line) end
local i = math.random(#ids)
function request()
  i = i % #ids + 1
  return wrk.format("POST", "/api/v3/otk-service/get-journey/" .. ids[i],
    {["Authorization"] = "bench-token"})
end
LUA

rps() { awk '/^Requests\/sec/ {print $2}' "$1"; }

create "$WORK/memory.ids" 0 $MEMORY_PORT
create "$WORK/shared.ids" 0 $A_PORT $B_PORT
half=$((CONNECTIONS / 2))
memory_runs=(); replica_runs=()
for round in $(seq 1 "$ROUNDS"); do
  IDS_FILE=$WORK/memory.ids wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
    -s "$WORK/ids.lua" "http://127.0.0.1:$MEMORY_PORT" >"$WORK/m.txt"
  memory_runs+=("$(rps "$WORK/m.txt")")
  IDS_FILE=$WORK/shared.ids wrk -t1 -c"$half" -d"$DURATION" \
    -s "$WORK/ids.lua" "http://127.0.0.1:$A_PORT" >"$WORK/a.txt" &
  first=$!
  IDS_FILE=$WORK/shared.ids wrk -t1 -c"$half" -d"$DURATION" \
    -s "$WORK/ids.lua" "http://127.0.0.1:$B_PORT" >"$WORK/b.txt"
  wait "$first"
  replica_runs+=("$(awk -v a="$(rps "$WORK/a.txt")" -v b="$(rps "$WORK/b.txt")" 'BEGIN {print a + b}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Callbacks: complete every journey (8 clients), then wait for the last delivery.
callbacks() { # stats_port ports...
  local stats=$1; shift
  create "$WORK/cb.ids" 1 "$@"
  python3 - "$WORK/cb.ids" "$stats" "$@" <<'PY'
import http.client, json, sys, time
from concurrent.futures import ThreadPoolExecutor
ids = open(sys.argv[1]).read().split()
stats_port, ports = sys.argv[2], sys.argv[3:]
def delivered():
    c = http.client.HTTPConnection("127.0.0.1", int(stats_port))
    c.request("GET", "/__admin/callbacks?limit=1")
    return json.loads(c.getresponse().read())["stats"]["delivered"]
before = delivered()
def run(k):
    conns = {p: http.client.HTTPConnection("127.0.0.1", int(p)) for p in ports}
    for i in range(k, len(ids), 8):
        c = conns[ports[i % len(ports)]]
        c.request("POST", f"/__admin/journeys/{ids[i]}/complete")
        c.getresponse().read()
start = time.monotonic()
with ThreadPoolExecutor(8) as pool:
    list(pool.map(run, range(8)))
def pending():
    # Health's count is cheap; the callback log (read above) is every replica's.
    c = http.client.HTTPConnection("127.0.0.1", int(stats_port))
    c.request("GET", "/__admin/health")
    return json.loads(c.getresponse().read())["callbackQueue"]
while pending() > 0:
    if time.monotonic() - start > 120:
        sys.exit("callbacks not all delivered within 120 s")
    time.sleep(0.01)
elapsed = time.monotonic() - start
if delivered() - before != len(ids):
    sys.exit(f"{delivered() - before} callbacks delivered, not {len(ids)}")
print(f"{len(ids) / elapsed:.0f}")
PY
}
MEMORY_CB=$(callbacks $MEMORY_PORT $MEMORY_PORT)
REPLICA_CB=$(callbacks $A_PORT $A_PORT $B_PORT)

cpus=$(nproc)
echo
echo "machine: $cpus CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, $JOURNEYS journeys"
printf '%-58s %12s %12s\n' "case" "memory" "2 replicas"
printf '%-58s %12s %12s\n' "(a) get-journey of created journeys, requests/s (median)" \
  "$(median "${memory_runs[@]}")" "$(median "${replica_runs[@]}")"
printf '%-58s %12s %12s\n' "(b) callbacks completed and delivered, per second" "$MEMORY_CB" "$REPLICA_CB"
echo "rounds: memory ${memory_runs[*]}; replicas ${replica_runs[*]}"
