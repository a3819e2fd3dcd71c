#!/usr/bin/env bash
# Load benchmark: otk-mock against the ceiling (the smallest hyper server returning the same
# bytes from memory, examples/ceiling.rs), driven by the same client (wrk) with the same
# settings, alternating ceiling and otk-mock runs so that drift on a shared machine hits both.
#
#   benches/load.sh                 # everything, about 4 minutes on 2 cores
#   DURATION=5s ROUNDS=1 benches/load.sh
#
# Cases: (a) one journey id of a bundled scenario over and over (cache hits);
#        (b) a new journey id on every request (every body rendered);
#        (c) case (a) mixed across all bundled scenarios.
# Then start-up to the first 200 (median of 5), and resident memory at idle and after
# 1,000,000 requests over 200,000 distinct journey ids.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
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

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq wrk >/dev/null
fi

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
startup_ms=()
for _ in 1 2 3 4 5; do
  t0=$(date +%s%N)
  RUST_LOG=warn $MOCK serve --bind 127.0.0.1:$MOCK_PORT &
  pid=$!
  wait_ready "$MOCK_URL$API/startup-1"
  t1=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  startup_ms+=($(( (t1 - t0) / 1000000 )))
done
STARTUP=$(printf '%s\n' "${startup_ms[@]}" | sort -n | sed -n 3p)

RUST_LOG=warn $MOCK serve --bind 127.0.0.1:$MOCK_PORT &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
wait_ready "$MOCK_URL$API/success-bench-1"
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
cat >"$WORK/b.lua" <<'LUA'
local counter = 0
local tid = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tid = wrk.thread:get("tid") or 0
end
function request()
  counter = counter + 1
  return wrk.format("POST", "/api/v3/otk-service/get-journey/B" .. tid .. "x" .. counter,
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
cat >"$WORK/memory.lua" <<'LUA'
local quota = tonumber(os.getenv("QUOTA"))
local ids = tonumber(os.getenv("IDS"))
local sent = 0
local done = 0
local tid = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tid = wrk.thread:get("tid") or 1
end
function request()
  sent = sent + 1
  local id = ((tid - 1) * quota + sent) % ids
  return wrk.format("POST", "/api/v3/otk-service/get-journey/M" .. id,
    {["Authorization"] = "bench-token"})
end
function response(status, headers, body)
  done = done + 1
  if done >= quota then wrk.thread:stop() end
end
LUA

# wrk's latency figures in milliseconds.
to_ms() {
  awk '{ v=$1; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } print v }'
}

run() { # url script -> "rps p50 p99"
  local out
  out=$(SCENARIOS="$SCENARIOS" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1")
  local rps p50 p99
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers in a run:" >&2; echo "$out" >&2; exit 1; fi
  echo "$rps $p50 $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| case | ceiling req/s | otk-mock req/s | ratio | ceiling p50 / p99 ms | otk-mock p50 / p99 ms |"
echo "|---|---|---|---|---|---|"
for case in a b c; do
  : >"$WORK/ceiling.$case"; : >"$WORK/mock.$case"
  for _ in $(seq 1 "$ROUNDS"); do
    run "$CEILING_URL" "$WORK/$case.lua" >>"$WORK/ceiling.$case"
    run "$MOCK_URL" "$WORK/$case.lua" >>"$WORK/mock.$case"
  done
  c_rps=$(awk '{print $1}' "$WORK/ceiling.$case" | median)
  m_rps=$(awk '{print $1}' "$WORK/mock.$case" | median)
  c_p50=$(awk '{print $2}' "$WORK/ceiling.$case" | median)
  c_p99=$(awk '{print $3}' "$WORK/ceiling.$case" | median)
  m_p50=$(awk '{print $2}' "$WORK/mock.$case" | median)
  m_p99=$(awk '{print $3}' "$WORK/mock.$case" | median)
  ratio=$(awk -v m="$m_rps" -v c="$c_rps" 'BEGIN {printf "%.2f", m / c}')
  echo "| ($case) | $c_rps | $m_rps | $ratio | $c_p50 / $c_p99 | $m_p50 / $m_p99 |"
  if [ "$case" = b ]; then B_RPS=$m_rps; fi
done

# wrk's main thread sleeps for the whole -d even after every thread has stopped at its quota,
# so the duration is sized from case (b)'s rate (at half of it, for slack) rather than fixed.
MEMORY_SECONDS=$(awk -v n="$MEMORY_REQUESTS" -v r="$B_RPS" \
  'BEGIN { s = int(n / (r * 0.5)) + 5; if (s > 600) s = 600; print s }')

QUOTA=$(( MEMORY_REQUESTS / THREADS )) IDS=$MEMORY_IDS \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${MEMORY_SECONDS}s" -s "$WORK/memory.lua" "$MOCK_URL" >"$WORK/memory.out"
sleep 1
LOADED_RSS=$(rss_kb "$MOCK_PID")
PEAK_RSS=$(hwm_kb "$MOCK_PID")
SENT=$(awk '/requests in/ {print $1}' "$WORK/memory.out")

echo
echo "body: $BODY_BYTES bytes; start-up to first 200: ${STARTUP} ms (median of 5: ${startup_ms[*]})"
echo "resident memory: idle $(( IDLE_RSS / 1024 )) MB; after $SENT requests over $MEMORY_IDS ids $(( LOADED_RSS / 1024 )) MB (peak $(( PEAK_RSS / 1024 )) MB)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, medians"
