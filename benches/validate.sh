#!/usr/bin/env bash
# Benchmark: `doto-bulk validate` against the Python peer (csv + phonenumbers + email-validator)
# on the same generated files, in the same run. Not a test: prints a table of rows/s and peak RSS.
#
#   benches/validate.sh                 # 100k and 1M rows (CSV)
#   SIZES="100000" benches/validate.sh  # other sizes
#   XLSX=1 benches/validate.sh          # also 200k rows of XLSX against pandas.read_excel
#
# Needs python3 (a venv with tests/requirements.txt, plus openpyxl, is made in .venv-bench/) and
# /usr/bin/time (else peak RSS is sampled from /proc/PID/status VmHWM). The data comes from
# tests/diff/gen_contacts.py. The Python peer (validate_peer.py) is not part of the repository: it
# is read from $DOTO_PEERS (default ../shared/peers beside the checkout); without it only
# doto-bulk's rows are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GEN=$ROOT/tests/diff/gen_contacts.py
PEERS=${DOTO_PEERS:-$ROOT/../shared/peers}
PEER=$PEERS/validate_peer.py
[ -f "$PEER" ] || echo "validate.sh: no Python peer at $PEER: measuring doto-bulk only" >&2
DATA=$ROOT/target/bench-data
SIZES=${SIZES:-"100000 1000000"}
VENV=$ROOT/.venv-bench
mkdir -p "$DATA"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/tests/requirements.txt" openpyxl==3.1.5
fi
if [ "${XLSX:-0}" = 1 ] && ! "$VENV/bin/python" -c 'import pandas' 2>/dev/null; then
  "$VENV/bin/pip" install -q pandas
fi
PY=$VENV/bin/python

cargo build --release --quiet
BIN=$ROOT/target/release/doto-bulk

# measure OUTFILE CMD...: run CMD, write "<peak RSS KiB> <wall s> <CPU s (user+sys)>" to OUTFILE.
# CPU seconds are reported beside wall time because the machine may be shared: rows per CPU
# second does not depend on what else runs.
measure() {
  local out=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M %e %U %S" -o "$out" "$@" >"$out.stdout"
    awk 'END { printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$out" >"$out.tmp" && mv "$out.tmp" "$out"
  else
    local t0 t1 pid hwm=0 h
    t0=$(date +%s.%N)
    "$@" >"$out.stdout" & pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
      sleep 0.05
    done
    wait "$pid"
    t1=$(date +%s.%N)
    echo "$hwm $(echo "$t1 - $t0" | bc) NA" >"$out"
  fi
}

printf '%-8s %-5s %-20s %10s %8s %8s %12s %9s\n' rows fmt tool rows/s wall_s cpu_s rows/cpu_s RSS_MiB
row() { printf '%-8s %-5s %-20s %10s %8s %8s %12s %9s\n' "$@"; }
per_cpu() { "$PY" -c "import sys; c=sys.argv[2]; print('NA' if c=='NA' else round(int(sys.argv[1])/float(c)))" "$1" "$2"; }
ratio() { "$PY" -c "import sys; a,b=sys.argv[1:]; print('NA' if 'NA' in (a,b) else f'{float(a)/float(b):.1f}x')" "$1" "$2"; }

# report_rows N FORMAT PEER_NAME: the two tools and their ratios (higher is better for us).
report_rows() {
  local ours_pc peer_pc
  ours_pc=$(per_cpu "$1" "$ours_cpu"); peer_pc=$(per_cpu "$1" "$peer_cpu")
  row "$1" "$2" "doto-bulk validate" "$ours_rps" "$ours_wall" "$ours_cpu" "$ours_pc" "$((ours_kib / 1024))"
  row "$1" "$2" "$3" "$peer_rps" "$peer_wall" "$peer_cpu" "$peer_pc" "$((peer_kib / 1024))"
  row "$1" "$2" "ratio ours/peer" "$(ratio "$ours_rps" "$peer_rps")" "$(ratio "$peer_wall" "$ours_wall")" \
    "$(ratio "$peer_cpu" "$ours_cpu")" "$(ratio "$ours_pc" "$peer_pc")" "-"
}

for N in $SIZES; do
  DIR=$DATA/$N
  if [ ! -s "$DIR/contacts.csv" ]; then
    NO_XLSX=1 python3 "$GEN" "$N" "$DIR" >/dev/null
  fi
  RUN=$DIR/run-ours
  rm -rf "$RUN"
  set +e
  measure "$DIR/ours.time" "$BIN" -q validate "$DIR/contacts.csv" -m benches/gen_contacts.yaml --out "$RUN"
  code=$?
  set -e
  [ "$code" = 0 ] || [ "$code" = 3 ] || { echo "doto-bulk validate failed with $code"; exit 1; }
  read -r ours_kib ours_wall ours_cpu < <(tail -n1 "$DIR/ours.time")
  ours_rps=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["rows_per_s"]))' "$RUN/summary.json")
  ours_bad=$("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["outcomes"]["invalid"])' "$RUN/summary.json")

  if [ ! -f "$PEER" ]; then
    row "$N" csv "doto-bulk validate" "$ours_rps" "$ours_wall" "$ours_cpu" \
      "$(per_cpu "$N" "$ours_cpu")" "$((ours_kib / 1024))"
    echo "         (invalid rows: ours $ours_bad; no Python peer)"
    continue
  fi
  measure "$DIR/peer.time" "$PY" "$PEER" "$DIR/contacts.csv" "$DIR/peer-failures.csv"
  read -r peer_kib peer_wall peer_cpu < <(tail -n1 "$DIR/peer.time")
  peer_rps=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["rows_per_s"])' "$DIR/peer.time.stdout")
  peer_bad=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["invalid"])' "$DIR/peer.time.stdout")

  report_rows "$N" csv "python peer"
  echo "         (invalid rows: ours $ours_bad, peer $peer_bad; the peer checks phone and email only)"
done

if [ "${XLSX:-0}" = 1 ]; then
  N=${XLSX_ROWS:-200000}
  DIR=$DATA/xlsx-$N
  if [ ! -s "$DIR/contacts.xlsx" ]; then
    "$PY" "$GEN" "$N" "$DIR" >/dev/null
  fi
  RUN=$DIR/run-ours
  rm -rf "$RUN"
  set +e
  measure "$DIR/ours.time" "$BIN" -q validate "$DIR/contacts.xlsx" -m benches/gen_contacts.yaml --out "$RUN"
  code=$?
  set -e
  [ "$code" = 0 ] || [ "$code" = 3 ] || { echo "doto-bulk validate (xlsx) failed with $code"; exit 1; }
  read -r ours_kib ours_wall ours_cpu < <(tail -n1 "$DIR/ours.time")
  ours_rps=$("$PY" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["rows_per_s"]))' "$RUN/summary.json")
  # The pandas peer: read_excel, then the same checks as validate_peer.py, row by row.
  cat >"$DIR/pandas_peer.py" <<'PYEOF'
import json, sys, time
import pandas as pd
import phonenumbers
from email_validator import EmailNotValidError, validate_email
t0 = time.perf_counter()
df = pd.read_excel(sys.argv[1], dtype=str, keep_default_na=False)
rows = bad = 0
for phone, country, email in zip(df["phone"], df["country"], df["email"]):
    rows += 1
    err = False
    phone = str(phone).strip()
    if phone:
        try:
            n = phonenumbers.parse(phone, str(country).strip() or "US")
            err = not phonenumbers.is_valid_number(n)
            if not err:
                phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            err = True
    email = str(email).strip().lower()
    if email and not err:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            err = True
    bad += err
secs = time.perf_counter() - t0
print(json.dumps({"rows": rows, "invalid": bad, "seconds": round(secs, 3), "rows_per_s": round(rows / secs)}))
PYEOF
  measure "$DIR/peer.time" "$PY" "$DIR/pandas_peer.py" "$DIR/contacts.xlsx"
  read -r peer_kib peer_wall peer_cpu < <(tail -n1 "$DIR/peer.time")
  peer_rps=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read())["rows_per_s"])' "$DIR/peer.time.stdout")
  report_rows "$N" xlsx "pandas peer"
fi
