#!/usr/bin/env bash
# Issue 4: a campaign of tiny models, one per family (the smallest of each in the catalog), at
# every precision profile of `models precisions`, all `hardware: cuda`, launched like
# cuda_placement.sh. With a GPU (nvidia-smi -L works) every task passes on it, with the GPU metrics
# and the accuracy columns (against the CPU fp32 model) filled; without one every task is recorded
# skipped with its reason and the run still exits 0.
source "$(dirname "$0")/lib.bash"
"$IPFSA_BIN" models list --json > models.json
"$IPFSA_BIN" models precisions --json > precisions.json
"$PY" - <<'PY'
import json
models = json.load(open("models.json"))
precisions = [p["name"] for p in json.load(open("precisions.json"))]
smallest = {}
for m in models:
    f = m["family"]
    if f not in smallest or m["tiny_parameters"] < smallest[f]["tiny_parameters"]:
        smallest[f] = m
names = [smallest[f]["name"] for f in sorted(smallest)]
assert len(names) == 7, names
assert len(precisions) >= 6, precisions
with open("campaign.yaml", "w") as out:
    out.write("name: cuda-campaign-e2e\n")
    out.write("defaults: {repeats: 2, warmup: 1, timeout_s: 120, retries: 0, memory_mb: 4096}\n")
    out.write("matrix:\n")
    out.write(f"  - model: [{', '.join(names)}]\n")
    out.write(f"    precision: [{', '.join(precisions)}]\n")
    out.write("    hardware: cuda\n    batch: 2\n    seq_len: 8\n")
print(f"{len(names)} models x {len(precisions)} precisions: {', '.join(names)}")
PY
expected=$("$IPFSA_BIN" validate campaign.yaml --list | grep -c "/cuda/" || true)
set +e
"$IPFSA_BIN" launch -n 3 -- campaign.yaml --out out --store trends.h5 > run.log 2> run.err
rc=$?
set -e
cat run.log
[ -f out/summary.json ] || fail "no summary.json (rc $rc, stderr: $(tail -5 run.err))"
total=$(json out/summary.json tasks_total)
[ "$total" -ge 42 ] || fail "only $total tasks (validate listed $expected cuda lines)"
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  expect_eq "$rc" 0 "exit code (stderr: $(tail -5 run.err))"
  expect_eq "$(json out/summary.json tasks_passed)" "$total" "tasks_passed with a GPU"
  run_id=$(json out/summary.json run_id)
  h5check trends.h5 --expect-final "$total" --run "$run_id" > /dev/null
  "$PY" - trends.h5 "$run_id" <<'PY'
import math, sys
import h5py
store, run_id = sys.argv[1], sys.argv[2].encode()
with h5py.File(store, "r", swmr=True) as f:
    res = f["results"][:]
    names = f["metrics"]["name"][:]
    values = f["metrics"]["value"][:]
rows = [r for r in res if r["run_id"] == run_id and r["final"]]
problems = []
for r in rows:
    tid = r["task_id"].decode()
    if r["status"] != b"passed":
        problems.append(f"{tid}: {r['status'].decode()}")
    for k in ("acc_cosine", "acc_rel_error", "acc_kl", "acc_top1"):
        if math.isnan(r[k]):
            problems.append(f"{tid}: {k} is NaN")
    # The reference is the CPU fp32 model: the GPU's products (fp16 or int8 activations) differ.
    if not (0.5 < r["acc_cosine"] <= 1.0 + 1e-9):
        problems.append(f"{tid}: acc_cosine {r['acc_cosine']}")
    m = {names[i].decode(): values[i] for i in range(r["metrics_offset"], r["metrics_offset"] + r["metrics_count"])}
    if "gpu_device" not in m or m["gpu_device"] < 0:
        problems.append(f"{tid}: metric gpu_device missing")
    if not m.get("gpu_weight_bytes", 0) > 0:
        problems.append(f"{tid}: metric gpu_weight_bytes missing")
for p in problems:
    print("FAIL:", p, file=sys.stderr)
print(f"{len(rows)} cuda tasks passed with accuracy and GPU metrics")
sys.exit(1 if problems or not rows else 0)
PY
  head -1 out/results.csv | grep -q "acc_cosine,acc_rel_error,acc_kl,acc_top1" || fail "results.csv lacks accuracy columns"
else
  expect_eq "$rc" 0 "exit code without a GPU (stderr: $(tail -3 run.err))"
  expect_eq "$(json out/summary.json tasks_skipped)" "$total" "tasks_skipped without a GPU"
  expect_eq "$(json out/summary.json tasks_passed)" 0 "tasks_passed without a GPU"
  skipped=$(grep -c ",skipped,.*needs cuda" out/results.csv || true)
  expect_eq "$skipped" "$total" "rows of results.csv skipped with the reason 'needs cuda'"
  h5check trends.h5 --expect-final "$total" --run "$(json out/summary.json run_id)" > /dev/null
fi
echo "PASS"
