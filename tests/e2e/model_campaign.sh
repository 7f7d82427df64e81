#!/usr/bin/env bash
# Issue 3 acceptance: a campaign over tiny models of every family x fp32/int8/int4/int3/int2/a
# mixed profile runs under mpirun -np 4 and stores latency, throughput and accuracy for each;
# accuracy falls as bits fall. Checked in the HDF5 store with h5py.
source "$(dirname "$0")/lib.bash"
set +e
mpirun_ipfsa 4 run "$IPFSA_SOURCE_DIR/configs/examples/model-families.yaml" --out out --store trends.h5 \
  > run.log 2> run.err
set -e
tail -3 run.log
[ -f out/summary.json ] || fail "no summary.json (stderr: $(tail -5 run.err))"
expect_eq "$(json out/summary.json exit_code)" 0 "exit code (stderr: $(tail -5 run.err))"
total=$(json out/summary.json tasks_total)
expect_eq "$(json out/summary.json tasks_passed)" "$total" "tasks_passed"
run_id=$(json out/summary.json run_id)
h5check trends.h5 --expect-final "$total" --run "$run_id" > /dev/null
"$PY" - trends.h5 "$run_id" <<'PY'
import math, sys
from collections import defaultdict
import h5py

store, run_id = sys.argv[1], sys.argv[2].encode()
with h5py.File(store, "r", swmr=True) as f:
    res = f["results"][:]
    names = f["metrics"]["name"][:]
rows = [r for r in res if r["run_id"] == run_id and r["final"]]
problems = []
families = set()
cos = defaultdict(dict)
for r in rows:
    tid = r["task_id"].decode()
    model, prec, scen = r["model"].decode(), r["precision"].decode(), r["scenario"].decode()
    if r["status"] != b"passed":
        problems.append(f"{tid}: {r['status'].decode()}")
    if r["sample_count"] < 1 or not r["latency_p50_s"] > 0:
        problems.append(f"{tid}: no latency samples")
    if not r["throughput"] > 0:
        problems.append(f"{tid}: no throughput")
    for k in ("acc_cosine", "acc_rel_error", "acc_kl", "acc_top1"):
        if math.isnan(r[k]):
            problems.append(f"{tid}: {k} is NaN")
    m = {names[i].decode() for i in range(r["metrics_offset"], r["metrics_offset"] + r["metrics_count"])}
    for k in ("parameters", "weight_bytes", "bits_per_weight"):
        if k not in m:
            problems.append(f"{tid}: metric {k} missing")
    if scen in ("prefill", "decode") and "decode_tokens_per_s" not in m:
        problems.append(f"{tid}: metric decode_tokens_per_s missing")
    if scen == "latency":
        cos[model][prec] = (r["acc_cosine"], r["acc_rel_error"])
ladder = ["fp32", "int8", "int4", "int3", "int2"]
for model, by in sorted(cos.items()):
    missing = [p for p in ladder + ["mixed-a4f3"] if p not in by]
    if missing:
        problems.append(f"{model}: no latency row for {missing}")
        continue
    if by["fp32"][0] != 1.0:
        problems.append(f"{model}: fp32 cosine {by['fp32'][0]} != 1")
    for hi, lo in zip(ladder, ladder[1:]):
        if not (by[lo][0] < by[hi][0] and by[lo][1] > by[hi][1]):
            problems.append(f"{model}: accuracy does not fall from {hi} {by[hi]} to {lo} {by[lo]}")
    mixed = by["mixed-a4f3"]
    if not (by["int2"][0] < mixed[0] < by["int8"][0]):
        problems.append(f"{model}: mixed-a4f3 cosine {mixed[0]} not between int2 and int8")
    print(f"{model:10s} " + " ".join(f"{p}={by[p][0]:.5f}" for p in ladder + ["mixed-a4f3"]))
if len(cos) < 7:
    problems.append(f"only {len(cos)} models have latency rows")
for p in problems:
    print("FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "PASS"
