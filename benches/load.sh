#!/usr/bin/env bash
# Load benchmark: otk-mock against the ceiling (the smallest hyper server returning the same
# bytes from memory, examples/ceiling.rs), driven by the same client (wrk) with the same
# settings, alternating ceiling and otk-mock runs so that drift on a shared machine hits both.
#
#   benches/load.sh                 # everything, about 5 minutes on 2 cores
#   DURATION=5s ROUNDS=1 benches/load.sh
#
# Cases: (a) one journey id of a bundled scenario over and over (cache hits);
#        (b) a new journey id on every request (every body rendered);
#        (c) case (a) mixed across all bundled scenarios.
# Then start-up to the first 200 (median of 7), and resident memory at idle and after
# 1,000,000 requests over 200,000 distinct journey ids.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
MEMORY_REQUESTS=${MEMORY_REQUESTS:-1000000}
MEMORY_IDS=${MEMORY_IDS:-200000}
MOCK_PORT=${MOCK_PORT:-18080}
CEILING_PORT=${CEILING_PORT:-18090}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

. benches/common.sh
refuse_taken load.sh "MOCK_PORT / CEILING_PORT" "$MOCK_PORT" "$CEILING_PORT"
need wrk

cargo build --release --quiet --bin otk-mock --example ceiling
MOCK=target/release/otk-mock
CEILING=target/release/examples/ceiling
MOCK_URL=http://127.0.0.1:$MOCK_PORT
CEILING_URL=http://127.0.0.1:$CEILING_PORT
API=/api/v3/otk-service/get-journey

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

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# Start-up to the first 200, validation of the bundled catalogue included.
read -r STARTUP startup_runs < <(python3 benches/startup.py "$MOCK" "$MOCK_PORT" 7)

RUST_LOG=warn $MOCK serve --bind 127.0.0.1:$MOCK_PORT &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_ready "$MOCK_URL$API/success-bench-1"
kill -0 "$MOCK_PID" 2>/dev/null || { echo "load.sh: otk-mock exited; see its error above" >&2; exit 1; }
sleep 1
IDLE_RSS=$(rss_kb "$MOCK_PID")

curl -s -X POST -H 'Authorization: t' "$MOCK_URL$API/success-bench-1" -o "$WORK/body.json"
BODY_BYTES=$(wc -c <"$WORK/body.json")
$CEILING 127.0.0.1:$CEILING_PORT "$WORK/body.json" 2>/dev/null &
PIDS+=("$!")
wait_ready "$CEILING_URL/x"

SCENARIOS=$($MOCK scenarios | awk 'NR > 1 {print $1}' | tr '\n' ' ')

cat >"$WORK/a.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "bench-token"
wrk.headers["Content-Type"] = "application/json"
wrk.path = "/api/v3/otk-service/get-journey/success-bench-1"
LUA
# The start of the scripts that need each thread's number (1, 2, ...) and the thread count.
# setup() runs in wrk's main Lua state and each thread has a state of its own, so a count kept
# in setup() is not seen by the threads: it comes from THREADS instead.
cat >"$WORK/threads.lua" <<'LUA'
local tid = 1
local threads = tonumber(os.getenv("THREADS")) or 1
local numbered = 0
function setup(thread)
  numbered = numbered + 1
  thread:set("tid", numbered)
end
function init(args)
  tid = wrk.thread:get("tid") or 1
end
LUA
{ cat "$WORK/threads.lua"; cat <<'LUA'; } >"$WORK/b.lua"
local counter = 0
-- RUN is new for every run, so that no run asks for an id an earlier run has rendered.
local run = os.getenv("RUN") or "0"
function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v3/otk-service/get-journey/B" .. run .. "t" .. tid .. "x" .. counter,
    {["Authorization"] = "bench-token", ["Content-Type"] = "application/json"})
end
LUA
cat >"$WORK/c.lua" <<'LUA'
local names = {}
for name in string.gmatch(os.getenv("SCENARIOS") or "success", "%S+") do
  table.insert(names, name)
end
local i = 0
function request()
  i = i + 1
  local name = names[(i % #names) + 1]
  return wrk.format("POST", "/api/v3/otk-service/get-journey/" .. name .. "-bench-1",
    {["Authorization"] = "bench-token", ["Content-Type"] = "application/json"})
end
LUA
{ cat "$WORK/threads.lua"; cat <<'LUA'; } >"$WORK/memory.lua"
-- Journey ids cycle through IDS distinct values, each thread taking every THREADS-th one;
-- OFFSET moves each chunk on.
local ids = tonumber(os.getenv("IDS"))
local offset = tonumber(os.getenv("OFFSET"))
local sent = 0
function request()
  sent = sent + 1
  local id = (offset + tid * 7919 + sent * threads) % ids
  return wrk.format("POST", "/api/v3/otk-service/get-journey/M" .. id,
    {["Authorization"] = "bench-token"})
end
LUA

# wrk's latency figures in milliseconds.
to_ms() {
  awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } print v }'
}

run() { # url script -> "rps p50 p99"
  local out
  RUN_NUMBER=$((RUN_NUMBER + 1))
  out=$(RUN=$RUN_NUMBER SCENARIOS="$SCENARIOS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1")
  local rps p50 p99
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers in a run:" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $p50 $p99"
}

RUN_NUMBER=0
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| case | ceiling req/s | otk-mock req/s | ratio (min–max) | ceiling p50 / p99 ms | otk-mock p50 / p99 ms |"
echo "|---|---|---|---|---|---|"
for case in a b c; do
  : >"$WORK/ceiling.$case"; : >"$WORK/mock.$case"; : >"$WORK/ratio.$case"
  for round in $(seq 1 "$ROUNDS"); do
    # A round is a ceiling run and an otk-mock run back to back, in turns first, so that the
    # machine's drift (it is shared) weighs on both; the ratio is taken within each round.
    if [ $((round % 2)) = 1 ]; then
      run "$CEILING_URL" "$WORK/$case.lua" >>"$WORK/ceiling.$case"
      run "$MOCK_URL" "$WORK/$case.lua" >>"$WORK/mock.$case"
    else
      run "$MOCK_URL" "$WORK/$case.lua" >>"$WORK/mock.$case"
      run "$CEILING_URL" "$WORK/$case.lua" >>"$WORK/ceiling.$case"
    fi
    c=$(tail -1 "$WORK/ceiling.$case" | awk '{print $1}')
    m=$(tail -1 "$WORK/mock.$case" | awk '{print $1}')
    awk -v m="$m" -v c="$c" 'BEGIN {printf "%.3f\n", m / c}' >>"$WORK/ratio.$case"
  done
  c_rps=$(awk '{print $1}' "$WORK/ceiling.$case" | median)
  m_rps=$(awk '{print $1}' "$WORK/mock.$case" | median)
  c_p50=$(awk '{print $2}' "$WORK/ceiling.$case" | median)
  c_p99=$(awk '{print $3}' "$WORK/ceiling.$case" | median)
  m_p50=$(awk '{print $2}' "$WORK/mock.$case" | median)
  m_p99=$(awk '{print $3}' "$WORK/mock.$case" | median)
  ratio=$(median <"$WORK/ratio.$case")
  low=$(sort -g "$WORK/ratio.$case" | head -1)
  high=$(sort -g "$WORK/ratio.$case" | tail -1)
  printf "| (%s) | %.0f | %.0f | %.2f (%.2f–%.2f) | %s / %s | %s / %s |\n" "$case" "$c_rps" "$m_rps" \
    "$ratio" "$low" "$high" "$c_p50" "$c_p99" "$m_p50" "$m_p99"
done

# wrk cannot stop at a request count, so it runs in 5 s chunks until the count is reached.
SENT=0
while [ "$SENT" -lt "$MEMORY_REQUESTS" ]; do
  out=$(THREADS=$THREADS IDS=$MEMORY_IDS OFFSET=$SENT wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s "$WORK/memory.lua" "$MOCK_URL")
  SENT=$(( SENT + $(echo "$out" | awk '/requests in/ {print $1}') ))
done
sleep 1
LOADED_RSS=$(rss_kb "$MOCK_PID")
PEAK_RSS=$(hwm_kb "$MOCK_PID")

echo
# Every round's ratio, in order, so that a stray round shows as one.
for case in a b c; do
  echo "ratios by round, ($case): $(paste -sd' ' "$WORK/ratio.$case")"
done
echo "body: $BODY_BYTES bytes; start-up to first 200: ${STARTUP} ms (median of 7: $startup_runs)"
echo "resident memory: idle $(( IDLE_RSS / 1024 )) MB; after $SENT requests over $MEMORY_IDS ids $(( LOADED_RSS / 1024 )) MB (peak $(( PEAK_RSS / 1024 )) MB)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds; req/s and latencies are medians over rounds, the ratio the median of each round's ratio"
