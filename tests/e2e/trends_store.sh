#!/usr/bin/env bash
# `trends --store` on a store built by real campaigns (issue 6): 8 runs of three selftest.sleep
# configurations (batch 1, 2, 4: three configurations), then a 9th run where the batch-2 one
# sleeps 20% longer (its `ms` param is edited: the configuration, and so the series, stays the
# same). The store then exits 1 and names exactly that configuration (its p50 at least); a copy
# taken before the 9th run, and `--run` of the 8th run, exit 0. `--format json` parses and
# has the documented fields; a missing store, a file that is not HDF5 and an unknown run exit 2
# naming the file or run.
# Noise: sleeps of 40-60 ms, 8 samples each. A false verdict needs an effect of at least 10%
# (4-6 ms) on the newest run and a raw-sample test at p < 0.01 (for p99: at least two of its 8
# samples above the pooled p99 of the earlier runs); the planted +20% gives p ~ 1e-6 and up.
source "$(dirname "$0")/lib.bash"

campaign() {  # FILE MS_OF_B
  cat > "$1" <<YAML
name: trends-store-e2e
defaults: {repeats: 8, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - {kind: selftest.sleep, name: a, batch: 1, params: {ms: 40}}
  - {kind: selftest.sleep, name: b, batch: 2, params: {ms: $2}}
  - {kind: selftest.sleep, name: c, batch: 4, params: {ms: 60}}
YAML
}
campaign base.yaml 50
campaign slow.yaml 60

launch_run() {  # CAMPAIGN N
  timeout 120 "$IPFSA_BIN" launch -n 3 -- "$1" --store trends.h5 --out "out$2" > "run$2.log" 2>&1 ||
    fail "run $2 of $1 failed: $(tail -5 "run$2.log")"
}
start=$SECONDS
for i in 1 2 3 4 5 6 7 8; do launch_run base.yaml "$i"; done
cp trends.h5 clean.h5
launch_run slow.yaml 9
echo "9 runs in $((SECONDS - start)) s"
run8=$(json out8/summary.json run_id)
run9=$(json out9/summary.json run_id)

set +e
"$IPFSA_BIN" trends --store trends.h5 > slow.txt 2> slow.err; rc_slow=$?
"$IPFSA_BIN" trends --store clean.h5 > clean.txt 2> clean.err; rc_clean=$?
"$IPFSA_BIN" trends --store trends.h5 --run "$run8" > at8.txt 2> at8.err; rc_at8=$?
"$IPFSA_BIN" trends --store trends.h5 --run "$run9" > at9.txt 2> at9.err; rc_at9=$?
"$IPFSA_BIN" trends --store trends.h5 --format json > slow.json; rc_json=$?
set -e
cat slow.txt
expect_eq "$rc_slow" 1 "exit code with the slowdown (stderr: $(cat slow.err))"
expect_eq "$rc_clean" 0 "exit code of the store without the slow run ($(grep -v $'^none\t' clean.txt))"
expect_eq "$rc_at8" 0 "exit code of --run $run8 ($(grep -v $'^none\t' at8.txt))"
expect_eq "$rc_at9" 1 "exit code of --run $run9"
expect_eq "$rc_json" 1 "exit code of --format json"
grep -q "^trends.h5: judging run $run9\$" slow.txt || fail "text output does not name the judged run"
grep -q "^trends.h5: judging run $run8\$" at8.txt || fail "--run $run8 does not judge $run8"

want='kind=selftest.sleep model=selftest.sleep hardware=cpu precision=fp32 batch=2 seq_len=0 scenario=latency'
# Regression lines: "regression<TAB>METRIC | CONFIG | FINGERPRINT<TAB>...".
named=$(grep $'^regression\t' slow.txt | cut -f2 | awk -F' [|] ' '{print $2}' | sort -u || true)
expect_eq "$named" "$want" "configurations named as regressions"
# The median is always caught; the tails (p90, p99 of 8 samples: about the two slowest) usually
# too, but on a saturated machine the baseline's own tails can come within 10% of the slowed run.
grep -q $'^regression\t'"latency_p50 | $want | cpu=" slow.txt || fail "p50 of the slowed configuration is not a regression"
! grep -q $'^regression\t' clean.txt || fail "the store without the slow run has a regression"

"$PY" - slow.json "$want" "$run9" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
want, run9 = sys.argv[2], sys.argv[3]
series = doc["series"]
assert len(series) >= 9, len(series)  # 3 configurations x (p50, p90, p99, peak memory)
for s in series:
    missing = {"key", "change_points", "anomaly", "verdict", "metric", "config", "fingerprint", "judged_run",
               "newest_run", "verdict_p_value", "task_id"} - set(s)
    assert not missing, (s["key"], missing)
    assert s["verdict"] in ("regression", "improvement", "none"), s["verdict"]
    assert isinstance(s["anomaly"], bool)
    assert s["judged_run"] == run9, s["judged_run"]
    assert s["points"] == 9, (s["key"], s["points"])  # one fingerprint: nothing split
    assert s["fingerprint"].startswith("cpu=") and s["fingerprint"].endswith(";nodes=1"), s["fingerprint"]
    for cp in s["change_points"]:
        assert {"index", "magnitude_pct", "p_value"} <= set(cp), cp
        assert 0 <= cp["index"] < s["points"], cp
bad = [s for s in series if s["verdict"] == "regression"]
assert {s["config"] for s in bad} == {want}, [s["key"] for s in bad]
assert "latency_p50" in {s["metric"] for s in bad}, [s["key"] for s in bad]
for s in bad:
    if s["metric"].startswith("latency_"):
        assert s["verdict_p_value"] < 0.01, s
    assert s["newest_effect_pct"] >= 10, s
    assert s["task_id"] == "selftest.sleep[ms=60]:b/cpu/fp32/b2/s0/latency", s["task_id"]
print("json ok:", len(series), "series,", len(bad), "regressions:", sorted(s["metric"] for s in bad))
PY

# Bad input: exit 2, the message names the file or the run.
printf 'not an HDF5 file\n' > junk.h5
set +e
"$IPFSA_BIN" trends --store missing.h5 2> missing.err; rc_missing=$?
"$IPFSA_BIN" trends --store junk.h5 2> junk.err; rc_junk=$?
"$IPFSA_BIN" trends --store trends.h5 --run no-such-run 2> run.err; rc_run=$?
"$IPFSA_BIN" trends --store trends.h5 --csv x.csv 2> both.err; rc_both=$?
set -e
expect_eq "$rc_missing" 2 "exit code for a missing store"
grep -q "missing.h5" missing.err || fail "message does not name missing.h5: $(cat missing.err)"
expect_eq "$rc_junk" 2 "exit code for a file that is not HDF5"
grep -q "junk.h5: not an ipfs-accelerate trend store" junk.err || fail "message does not name junk.h5: $(cat junk.err)"
expect_eq "$rc_run" 2 "exit code for an unknown run"
grep -q "trends.h5: no run 'no-such-run' in the store" run.err || fail "message does not name the run: $(cat run.err)"
expect_eq "$rc_both" 2 "exit code for --csv with --store"
echo "PASS in $((SECONDS - start)) s"
