#!/usr/bin/env bash
# `trends --csv`: series with a planted 20% slowdown in the newest run of exactly one
# configuration give exit 1 and name exactly that one; the same data without it gives exit 0;
# a malformed CSV gives exit 2 naming file and line.
source "$(dirname "$0")/lib.bash"
make_csv() {  # OUT SLOWDOWN
  "$PY" - "$1" "$2" <<'PY'
import csv, random, sys
random.seed(5)
keys = [f"model{m}/cpu/int{b}/b1/latency_p50" for m in range(6) for b in (2, 4, 8)]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["series", "run", "value"])
    for k in keys:
        level = random.uniform(1, 50)
        for r in range(30):
            v = level * random.gauss(1, 0.01) * (1 + 0.002 * random.random())
            if r == 29 and k == "model3/cpu/int4/b1/latency_p50":
                v *= float(sys.argv[2])
            w.writerow([k, f"2026-11-{r+1:02d}", f"{v:.6f}"])
PY
}
make_csv slow.csv 1.2
make_csv flat.csv 1.0
set +e
"$IPFSA_BIN" trends --csv slow.csv > slow.txt; rc_slow=$?
"$IPFSA_BIN" trends --csv flat.csv > flat.txt; rc_flat=$?
set -e
cat slow.txt
expect_eq "$rc_slow" 1 "exit code with the slowdown"
expect_eq "$rc_flat" 0 "exit code without it"
expect_eq "$(grep -c '^regression' slow.txt)" 1 "regressions named"
grep -q $'^regression\tmodel3/cpu/int4/b1/latency_p50' slow.txt || fail "wrong configuration named"
"$IPFSA_BIN" trends --csv slow.csv --format json > slow.json || true  # exits 1: a regression
"$PY" -c '
import json, sys
d = json.load(sys.stdin)
bad = [s["key"] for s in d["series"] if s["verdict"] == "regression"]
assert bad == ["model3/cpu/int4/b1/latency_p50"], bad
assert all({"key", "change_points", "anomaly", "verdict"} <= set(s) for s in d["series"])' < slow.json
printf 'series,run,value\na,1,1.0\na,2,fast\n' > bad.csv
set +e
"$IPFSA_BIN" trends --csv bad.csv 2> err.txt; rc=$?
set -e
expect_eq "$rc" 2 "exit code for a malformed CSV"
grep -q "bad.csv:3:" err.txt || fail "message does not name bad.csv:3: $(cat err.txt)"
echo "PASS"
