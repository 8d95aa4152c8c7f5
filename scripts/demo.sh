#!/usr/bin/env bash
# Runs the demo pipeline against the built-in emulator: start the emulator on a free
# loopback port, run the job, print the summary and the files, stop the emulator.
# DEMO_NOW fixes the clock of both (so a second demo fetches nothing and leaves the
# dataset unchanged) and writes pipelines/demo.toml into ./demo-data; DEMO_NOW=now uses
# the real clock with its own pipeline (pipelines/demo-live.toml, ./demo-live-data), so
# it never inherits the pinned demo's cursors.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/rtcq}
EMULATOR=${EMULATOR:-target/release/rtcq-emulator}
DEMO_NOW=${DEMO_NOW:-2026-11-25T12:00:10Z}
# The emulator's documented demo key pair (never a real credential).
export VOLC_ACCESSKEY=${VOLC_ACCESSKEY:-AKLTdemo0000000000000000000000}
export VOLC_SECRETKEY=${VOLC_SECRETKEY:-demo-secret-do-not-use}

now_args=()
pipeline=pipelines/demo-live.toml
data=demo-live-data
if [ "$DEMO_NOW" != now ]; then
  now_args=(--now "$DEMO_NOW")
  pipeline=pipelines/demo.toml
  data=demo-data
fi

tmp=$(mktemp -d)
"$EMULATOR" --listen 127.0.0.1:0 "${now_args[@]}" >"$tmp/emulator.out" 2>"$tmp/emulator.log" &
emu=$!
trap 'kill $emu 2>/dev/null || true; wait $emu 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
  [ -s "$tmp/emulator.out" ] && break
  sleep 0.05
done
url=$(head -n1 "$tmp/emulator.out" | sed -n 's/^listening on //p')
[ -n "$url" ] || { echo "emulator did not start:"; cat "$tmp/emulator.log"; exit 1; }
echo "emulator listening on $url"

set +e
"$BIN" run --config "$pipeline" --endpoint "$url" "${now_args[@]}" \
  --log-format text --summary "$tmp/summary.json"
code=$?
set -e
echo
echo "run summary:"
cat "$tmp/summary.json" 2>/dev/null || true
echo
echo "exit code: $code"
name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$pipeline")
echo "files under ./$data:"
find "$data" -name '*.parquet' | sort | sed 's/^/  /'
echo "state: $data/_state/$name.json"
exit $code
