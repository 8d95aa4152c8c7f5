#!/usr/bin/env bash
# Benchmark harness (issue 7): run by hand, not in CI. Builds release, starts the
# built-in emulator on loopback for each case, runs a generated pipeline under
# /usr/bin/time -v and prints one Markdown table, with the command that reproduces
# each row.
#
#   scripts/bench.sh                 # everything (rate use takes ~2 x TARGETS/2 s)
#   CASES=throughput scripts/bench.sh
#   CASES=floor scripts/bench.sh     # the JSON reader and Parquet writer alone
#   CASES=profile scripts/bench.sh   # instructions per row by part (callgrind, 500 targets)
#   CASES=capacity scripts/bench.sh  # 1,200 targets, 4/s, 20 runs of 30 s every 5 min
#   CASES=memory scripts/bench.sh    # peak RSS at 2,000, 8,000 and 20,000 targets
#   CASES="rate peer" TARGETS=120 scripts/bench.sh
#
# Knobs (environment):
#   CASES        which groups to run: rate, throughput, peer, floor, profile, capacity,
#                memory (default: rate throughput peer floor)
#   TARGETS      targets of the rate-use runs (default 600: ~300 s per latency)
#   LATENCIES    added emulator latency of the rate-use runs, ms (default "300 1000")
#   SIZES        targets of the throughput runs (default "500 2000 8000")
#   PEER_SIZES   targets of the dlt runs (default: SIZES)
#   BENCH_NOW    the fixed clock of emulator and pipeline (default 2026-11-25T12:00:10Z)
#   CAP_TARGETS, CAP_RPS, CAP_RUNS, CAP_MAX, CAP_SCHEDULE_MIN
#                the capacity case: targets (1200), rate of pipeline and emulator (4),
#                budgeted runs (20), their --max-duration (30s), minutes between runs
#                (5); one run without a limit follows
#   MEM_SIZES    targets of the memory runs (default "2000 8000 20000")
#   BIN          the rtcq binary (default target/release/rtcq, built first)
#   NO_BUILD=1   skip `cargo build --release`
#   OUT          where work files go (default .bench/, git-ignored)
#
# The peer needs `dlt` in .bench-venv (see docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-target/release/rtcq}
EMULATOR=${EMULATOR:-target/release/rtcq-emulator}
CASES=${CASES:-rate throughput peer floor}
TARGETS=${TARGETS:-600}
LATENCIES=${LATENCIES:-300 1000}
SIZES=${SIZES:-500 2000 8000}
PEER_SIZES=${PEER_SIZES:-$SIZES}
BENCH_NOW=${BENCH_NOW:-2026-11-25T12:00:10Z}
OUT=${OUT:-$ROOT/.bench}
PY=${PY:-python3}
PEER_PY=${PEER_PY:-$ROOT/.bench-venv/bin/python}
export VOLC_ACCESSKEY=${VOLC_ACCESSKEY:-AKLTdemo0000000000000000000000}
export VOLC_SECRETKEY=${VOLC_SECRETKEY:-demo-secret-do-not-use}

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --quiet --bin rtcq --bin rtcq-emulator --example bench_decode --example bench_encode
fi
mkdir -p "$OUT"
ROWS=()

emu_pid=
stop_emulator() {
  if [ -n "$emu_pid" ]; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    emu_pid=
  fi
}
trap stop_emulator EXIT

# start_emulator RATE LATENCY_MS LOG [NOW]: sets $url and $emu_pid (clock at NOW,
# default $BENCH_NOW).
start_emulator() {
  local rate=$1 latency=$2 log=$3 now=${4:-$BENCH_NOW}
  "$EMULATOR" --listen 127.0.0.1:0 --now "$now" \
    --rate-limit "$rate" --latency-ms "$latency" >"$log.out" 2>"$log" &
  emu_pid=$!
  url=
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^listening on //p' "$log.out" 2>/dev/null | head -n1)
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "emulator did not start:" >&2; cat "$log" >&2; exit 1; }
}

# emulator_throttled LOG: the throttled count the emulator logs when it stops.
emulator_throttled() {
  sed -n 's/.*emulator stopped.*throttled[=:" ]*\([0-9][0-9]*\).*/\1/p; s/.*throttled[=:" ]*\([0-9][0-9]*\).*emulator stopped.*/\1/p' "$1" | tail -n1
}

# timev FILE KEY: a field of /usr/bin/time -v output.
timev() { sed -n "s/^[[:space:]]*$2: //p" "$1" | tail -n1; }

# json FILE EXPR: a value of the run summary.
json() { "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"; }

# run_rtcq NAME CONFIG: runs the pipeline under time -v into $OUT/NAME.*
run_rtcq() {
  local name=$1 config=$2
  /usr/bin/time -v -o "$OUT/$name.time" \
    "$BIN" --log-format text run --config "$config" --endpoint "$url" --now "$BENCH_NOW" \
    --summary "$OUT/$name.summary.json" 2>"$OUT/$name.log" || true
  [ -s "$OUT/$name.summary.json" ] || { echo "run $name wrote no summary:" >&2; tail "$OUT/$name.log" >&2; exit 1; }
}

wall_of() { json "$1" "(__import__('datetime').datetime.fromisoformat(s['finished_at'].replace('Z','+00:00'))-__import__('datetime').datetime.fromisoformat(s['started_at'].replace('Z','+00:00'))).total_seconds()"; }

# A first run of $2 targets x 5 indicators into a fresh $OUT/$1.data, against an
# emulator without limit or latency: the throughput and memory cases.
unlimited_first_run() {
  local name=$1 n=$2
  rm -rf "$OUT/$name.data"
  "$PY" scripts/bench_pipeline.py --targets "$n" --indicators 5 --rps 1000 \
    --sink "$OUT/$name.data" >"$OUT/$name.toml"
  start_emulator 0 0 "$OUT/$name.emulator.log"
  run_rtcq "$name" "$OUT/$name.toml"
  stop_emulator
}

case_rate() {
  local latency=$1
  local name="rate-${latency}ms-$TARGETS"
  echo "== rate use: $TARGETS targets, emulator limit 2/s, +$latency ms" >&2
  rm -rf "$OUT/$name.data"
  "$PY" scripts/bench_pipeline.py --targets "$TARGETS" --indicators 1 --rps 2 \
    --sink "$OUT/$name.data" >"$OUT/$name.toml"
  start_emulator 2 "$latency" "$OUT/$name.emulator.log"
  run_rtcq "$name" "$OUT/$name.toml"
  stop_emulator
  local s="$OUT/$name.summary.json"
  local sent wall thr_run thr_emu
  sent=$(json "$s" "s['requests_sent']")
  thr_run=$(json "$s" "s['requests_throttled']")
  thr_emu=$(emulator_throttled "$OUT/$name.emulator.log")
  wall=$(wall_of "$s")
  ROWS+=("$("$PY" - "$TARGETS" "$latency" "$sent" "$wall" "$thr_run" "${thr_emu:-?}" <<'EOF'
import sys
t, lat, sent, wall, thr, emu = sys.argv[1:]
t, sent, wall = int(t), int(sent), float(wall)
rps = sent / wall
print(f"| rate use, {t} targets, +{lat} ms | {rps:.3f} req/s = {100*rps/2:.1f} % of 2/s "
      f"| wall {wall:.1f} s vs ideal {t/2:.0f} s | throttled {thr} (rtcq) / {emu} (emulator) "
      f"= {100*int(thr)/max(sent,1):.2f} % | |")
EOF
)")
  ROWS+=("|  ↳ \`CASES=rate TARGETS=$TARGETS LATENCIES=$latency scripts/bench.sh\` | | | | |")
}

case_throughput() {
  local n=$1
  local name="tp-$n"
  echo "== throughput: $n targets x 5 indicators, no limit" >&2
  unlimited_first_run "$name" "$n"
  local s="$OUT/$name.summary.json" t="$OUT/$name.time"
  local rows wall user sys rss
  rows=$(json "$s" "s['rows_written']")
  wall=$(wall_of "$s")
  user=$(timev "$t" "User time (seconds)")
  sys=$(timev "$t" "System time (seconds)")
  rss=$(timev "$t" "Maximum resident set size (kbytes)")
  echo "$n $rows $wall $rss" >"$OUT/$name.rtcq"
  ROWS+=("$("$PY" - "$n" "$rows" "$wall" "$user" "$sys" "$rss" <<'EOF'
import sys
n, rows, wall, user, sys_, rss = sys.argv[1:]
rows, wall, cpu, rss = int(rows), float(wall), float(user) + float(sys_), int(rss)
print(f"| throughput, {n} targets x 5 ind. | {rows/wall:,.0f} rows/s ({rows:,} rows in {wall:.1f} s) "
      f"| {cpu/(rows/1e6):.3f} CPU-s per M rows (user {user} + sys {sys_}) "
      f"| peak RSS {rss/1024:.1f} MB | |")
EOF
)")
  ROWS+=("|  ↳ \`CASES=throughput SIZES=$n scripts/bench.sh\` | | | | |")
}

case_peer() {
  local n=$1
  local name="dlt-$n"
  [ -x "$PEER_PY" ] || { echo "no $PEER_PY: skipping the dlt peer (see docs/performance.md)" >&2; return; }
  echo "== peer (dlt): $n targets x 5 indicators, no limit" >&2
  rm -rf "$OUT/$name.data" "$OUT/$name.dlt"
  start_emulator 0 0 "$OUT/$name.emulator.log"
  /usr/bin/time -v -o "$OUT/$name.time" env DLT_DATA_DIR="$OUT/$name.dlt" \
    DLT_PROJECT_DIR="$OUT/$name.dlt" RUNTIME__LOG_LEVEL=WARNING \
    "$PEER_PY" scripts/bench_dlt.py --endpoint "$url" --now "$BENCH_NOW" --targets "$n" \
    --out "$OUT/$name.data" --result "$OUT/$name.result.json" >"$OUT/$name.log" 2>&1 || {
      echo "dlt run failed:" >&2; tail -n 20 "$OUT/$name.log" >&2; stop_emulator; return; }
  stop_emulator
  local t="$OUT/$name.time" rows wall rss mine
  rows=$(json "$OUT/$name.result.json" "s['rows']")
  wall=$(json "$OUT/$name.result.json" "s['seconds']")
  rss=$(timev "$t" "Maximum resident set size (kbytes)")
  cpu=$("$PY" -c "print(float('$(timev "$t" "User time (seconds)")') + float('$(timev "$t" "System time (seconds)")'))")
  mine=$(cat "$OUT/tp-$n.rtcq" 2>/dev/null || echo "")
  ROWS+=("$("$PY" - "$n" "$rows" "$wall" "$rss" "$cpu" "$mine" <<'EOF'
import sys
n, rows, wall, rss, cpu, mine = sys.argv[1:]
rows, wall, rss, cpu = int(rows), float(wall), int(rss), float(cpu)
rs = rows / wall
ratio = ""
if mine:
    _, mrows, mwall, mrss = mine.split()
    mrs = int(mrows) / float(mwall)
    ratio = f"rtcq/dlt: {mrs/rs:.1f}x rows/s, {int(mrss)/rss:.2f}x RSS"
print(f"| peer dlt, {n} targets x 5 ind. | {rs:,.0f} rows/s ({rows:,} rows in {wall:.1f} s) "
      f"| {cpu/(rows/1e6):.2f} CPU-s per M rows | peak RSS {rss/1024:.1f} MB | {ratio} |")
EOF
)")
  ROWS+=("|  ↳ \`CASES=peer PEER_SIZES=$n scripts/bench.sh\` (after the throughput row) | | | | |")
}

# Instructions per row by part of the run, counted by callgrind: the same figures on
# every run, whatever else the machine does (user space only; kernel time is not in it).
case_profile() {
  local n=${PROFILE_TARGETS:-500} name=profile rows
  echo "== profile: callgrind over a $n-target catch-up" >&2
  command -v valgrind >/dev/null || { echo "no valgrind: skipping the profile" >&2; return; }
  rm -rf "$OUT/$name.data"
  "$PY" scripts/bench_pipeline.py --targets "$n" --indicators 5 --rps 1000 \
    --sink "$OUT/$name.data" >"$OUT/$name.toml"
  start_emulator 0 0 "$OUT/$name.emulator.log"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind" \
    "$BIN" --log-format text run --config "$OUT/$name.toml" --endpoint "$url" \
    --now "$BENCH_NOW" --summary "$OUT/$name.summary.json" 2>"$OUT/$name.log" || true
  stop_emulator
  callgrind_annotate --inclusive=yes "$OUT/$name.callgrind" >"$OUT/$name.txt" 2>/dev/null
  rows=$(json "$OUT/$name.summary.json" "s['rows_written']")
  ROWS+=("$("$PY" scripts/profile_summary.py "$rows" "$OUT/$name.txt")")
  ROWS+=("|  ↳ \`CASES=profile scripts/bench.sh\` (all functions: \`.bench/profile.txt\`) | | | | |")
}

# The two libraries every row goes through, timed alone (no HTTP, no spill, no merge):
# serde_json reading answers and the Parquet writer encoding a slot file.
case_floor() {
  echo "== floor: decode and encode alone" >&2
  local dir=target/release/examples dec enc
  dec=$("$dir/bench_decode")
  enc=$("$dir/bench_encode")
  ROWS+=("| floor: JSON answer to points | $dec | | | |")
  ROWS+=("| floor: points to a Parquet slot file | $enc | | | |")
  ROWS+=("|  ↳ \`CASES=floor scripts/bench.sh\` | | | | |")
}

# Many targets over consecutive simulated runs at a scaled-down budget: each run gets
# its own emulator pinned to the run's clock (strict rate limit), a budgeted
# --max-duration, and the state is kept between runs; a last run has no limit.
case_capacity() {
  local n=${CAP_TARGETS:-1200} rps=${CAP_RPS:-4} runs=${CAP_RUNS:-20} max=${CAP_MAX:-30s}
  local every=${CAP_SCHEDULE_MIN:-5} name="capacity-$n" dir k now limit
  dir="$OUT/$name"
  echo "== capacity: $n targets at $rps/s, $runs runs of $max every $every min, then one without a limit" >&2
  rm -rf "$dir" && mkdir -p "$dir"
  "$PY" scripts/bench_pipeline.py --targets "$n" --indicators 2 --rps "$rps" \
    --name cap --sink "$dir/data" >"$dir/cap.toml"
  for k in $(seq 0 "$runs"); do
    now=$("$PY" -c "import datetime as d,sys; t=d.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00'))+d.timedelta(minutes=$every*$k); print(t.strftime('%Y-%m-%dT%H:%M:%SZ'))" "$BENCH_NOW")
    limit=(--max-duration "$max")
    [ "$k" -eq "$runs" ] && limit=()
    start_emulator "$rps" 0 "$dir/emu-$k.log" "$now"
    "$BIN" --log-format text run --config "$dir/cap.toml" --endpoint "$url" --now "$now" \
      --schedule "${every}m" "${limit[@]}" --summary "$dir/run-$k.summary.json" \
      2>"$dir/run-$k.log" || true
    stop_emulator
    echo "$now" >"$dir/run-$k.now"
    cp "$dir/data/_state/cap.json" "$dir/run-$k.state.json"
    echo "   run $k at $now: exit $(json "$dir/run-$k.summary.json" "s['exit_code']"), served $(json "$dir/run-$k.summary.json" "s['targets_served']"), gaps $(json "$dir/run-$k.summary.json" "s['gaps_recorded']")" >&2
  done
  local vpy=$ROOT/.venv/bin/python
  [ -x "$vpy" ] || vpy=$PY
  ROWS+=("$("$vpy" scripts/bench_capacity.py "$dir")")
  ROWS+=("|  ↳ \`CASES=capacity CAP_TARGETS=$n CAP_RPS=$rps CAP_RUNS=$runs CAP_MAX=$max scripts/bench.sh\` | | | | |")
}

# Peak RSS of one unlimited first run at several sizes (5 indicators a target) and the
# growth per target between sizes.
case_memory() {
  local prev_n= prev_rss= n name rss
  for n in ${MEM_SIZES:-2000 8000 20000}; do
    name="mem-$n"
    echo "== memory: $n targets x 5 indicators, no limit" >&2
    unlimited_first_run "$name" "$n"
    rss=$(timev "$OUT/$name.time" "Maximum resident set size (kbytes)")
    local per=""
    if [ -n "$prev_n" ]; then
      per=$("$PY" -c "print(f'{($rss - $prev_rss) * 1024 / ($n - $prev_n):,.0f} bytes per target more than at $prev_n')")
    fi
    ROWS+=("| memory, $n targets x 5 ind. | $(json "$OUT/$name.summary.json" "s['rows_written']") rows | | peak RSS $("$PY" -c "print(f'{$rss/1024:.1f}')") MB | $per |")
    prev_n=$n prev_rss=$rss
  done
  ROWS+=("|  ↳ \`CASES=memory MEM_SIZES=\"${MEM_SIZES:-2000 8000 20000}\" scripts/bench.sh\` | | | | |")
}

for c in $CASES; do
  case $c in
    rate) for l in $LATENCIES; do case_rate "$l"; done ;;
    throughput) for n in $SIZES; do case_throughput "$n"; done ;;
    peer) for n in $PEER_SIZES; do case_peer "$n"; done ;;
    floor) case_floor ;;
    profile) case_profile ;;
    capacity) case_capacity ;;
    memory) case_memory ;;
    *) echo "unknown case $c (rate, throughput, peer, floor, profile, capacity, memory)" >&2; exit 2 ;;
  esac
done

echo
echo "| case | speed | time / CPU | throttled / memory | vs peer |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
