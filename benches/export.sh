#!/usr/bin/env bash
# Export benchmarks: speed under the rate limit (benches/export_bench.rs, CSV then Parquet), then
# peak RSS of the release binary exporting 5,000, 50,000 and 100,000 contacts (no limits, no
# latency) from a sandbox running in its own process, so that only the export's memory is measured.
#
#   benches/export.sh               # both
#   SKIP_SPEED=1 benches/export.sh  # RSS only
#   RSS_CONTACTS="5000 50000" RSS_FORMATS="csv parquet" SKIP_SPEED=1 benches/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${SKIP_SPEED:-0}" != 1 ]; then
  for fmt in csv parquet; do
    DOTO_BENCH_FORMAT=$fmt cargo bench --bench export_bench
  done
fi
cargo build --release --quiet
BIN=$ROOT/target/release/doto-bulk
WORK=$(mktemp -d)
trap 'kill $SB 2>/dev/null || true; rm -rf "$WORK"' EXIT
for n in ${RSS_CONTACTS:-5000 50000 100000}; do
  port=$(( 20000 + RANDOM % 20000 ))
  "$BIN" sandbox --port "$port" --seed-contacts "$n" >"$WORK/sandbox.log" 2>&1 & SB=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/_sandbox/stats" && break
    sleep 0.2
  done
  for fmt in ${RSS_FORMATS:-csv xlsx jsonl parquet}; do
    out=$WORK/out-$n.$fmt
    DOTO_API_TOKEN=sandbox-admin-token /usr/bin/time -f "%M %e" -o "$WORK/time" \
      "$BIN" export -q --base-url "http://127.0.0.1:$port" --account-id 1 --rate 100000 -o "$out"
    read -r rss secs <"$WORK/time"
    rows=$(grep -o '"rows": [0-9]*' "$out.manifest.json" | head -1 | grep -o '[0-9]*')
    echo "rss: $n seeded, $rows rows, $fmt: peak RSS ${rss} KiB, ${secs} s, $(stat -c %s "$out") bytes"
  done
  kill "$SB"; wait "$SB" 2>/dev/null || true
done
