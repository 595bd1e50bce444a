#!/usr/bin/env bash
# Export benchmarks: speed under the rate limit (benches/export_bench.rs, CSV then Parquet), then
# peak RSS of the release binary exporting 5,000, 50,000 and 100,000 contacts (no limits, no
# latency) from a sandbox running in its own process, so that only the export's memory is measured.
#
#   benches/export.sh               # both
#   SKIP_SPEED=1 benches/export.sh  # RSS only
#   RSS_CONTACTS="5000 50000" RSS_FORMATS="csv parquet" SKIP_SPEED=1 benches/export.sh
#   RSS_WIDE=1 ...                  # also a wide account (40 attributes a contact)
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
# A wide account (RSS_WIDE=1): 40 custom attributes and a browser object a contact, ~1.7 kB of
# JSON each (the generated ones are ~0.35 kB), loaded with --seed-file.
wide_seed() {
  python3 - "$1" >"$2" <<'PY'
import json, sys
for i in range(1, int(sys.argv[1]) + 1):
    attrs = {}
    for k in range(10):
        attrs[f"text_{k}"] = f"value {i * 7 + k} of a free-text field, a sentence long"
        attrs[f"int_{k}"] = i * 1000 + k
        attrs[f"num_{k}"] = i / 7 + k
        attrs[f"date_{k}"] = f"20{10 + k}-0{1 + i % 9}-1{i % 10}"
    browser = {"browser_name": "Firefox", "browser_version": "131.0", "platform_name": "Linux",
               "referer": f"https://example.com/landing/{i}?utm_source=newsletter&utm_campaign=c{i % 50}",
               "initiated_at": {"timestamp": f"Tue Dec 03 2026 10:{i % 60:02} GMT+0000"}}
    print(json.dumps({"id": i, "name": f"Wide Contact {i}", "email": f"wide{i}@example.com",
                      "phone_number": f"+4420794{i % 100000:05}", "created_at": 1700000000 + i,
                      "custom_attributes": attrs,
                      "additional_attributes": {"browser": browser, "city": "Lyon", "company_name": f"Co {i % 977}"}}))
PY
}
runs=""
for n in ${RSS_CONTACTS:-5000 50000 100000}; do runs="$runs $n:seeded"; done
if [ "${RSS_WIDE:-0}" = 1 ]; then
  for n in ${RSS_CONTACTS:-5000 50000 100000}; do runs="$runs $n:wide"; done
fi
for run in $runs; do
  n=${run%%:*} kind=${run#*:}
  port=$(( 20000 + RANDOM % 20000 ))
  if [ "$kind" = wide ]; then
    wide_seed "$n" "$WORK/wide.jsonl"
    seed=(--seed-file "$WORK/wide.jsonl")
  else
    seed=(--seed-contacts "$n")
  fi
  "$BIN" sandbox --port "$port" "${seed[@]}" >"$WORK/sandbox.log" 2>&1 & SB=$!
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/_sandbox/stats" && break
    sleep 0.2
  done
  for fmt in ${RSS_FORMATS:-csv xlsx jsonl parquet}; do
    out=$WORK/out-$n.$fmt
    DOTO_API_TOKEN=sandbox-admin-token /usr/bin/time -f "%M %e" -o "$WORK/time" \
      "$BIN" export -q --base-url "http://127.0.0.1:$port" --account-id 1 --rate 100000 -o "$out"
    read -r rss secs <"$WORK/time"
    rows=$(grep -o '"rows": [0-9]*' "$out.manifest.json" | head -1 | grep -o '[0-9]*')
    echo "rss: $n $kind, $rows rows, $fmt: peak RSS ${rss} KiB, ${secs} s, $(stat -c %s "$out") bytes"
  done
  kill "$SB"; wait "$SB" 2>/dev/null || true
done
