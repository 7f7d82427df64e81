#!/usr/bin/env bash
# The whole job is killed (SIGKILL of mpirun and every rank) mid-campaign; `run --resume RUN_DIR`
# continues the same run: the final results recorded before the kill are kept as they are (not
# rerun, not rewritten), the rest run, and every task ends with exactly one final result.
source "$(dirname "$0")/lib.bash"
cat > campaign.yaml <<'YAML'
name: resume-e2e
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.sleep
    params: {ms: 400}
    count: 24
YAML
# A marker unique to this test's job, to find (and kill) all of its processes.
OUT="$WORK/run-resume-$$"
"$IPFSA_BIN" launch -n 3 -- campaign.yaml --out "$OUT" --store trends.h5 --prefetch 1 > run1.log 2> run1.err &
job=$!
n=0
for _ in $(seq 1 600); do
  [ -f trends.h5 ] && n=$(store_finals trends.h5)
  [ "$n" -ge 3 ] && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
[ "$n" -ge 3 ] || { pkill -9 -f "$OUT" || true; fail "fewer than 3 final results appeared (saw $n); stderr: $(tail -5 run1.err)"; }
pkill -9 -f -- "$OUT" || true  # launch, mpirun, every rank (their command lines name $OUT)
set +e
wait "$job"
set -e
sleep 0.5
pkill -9 -f -- "$OUT" || true
[ ! -f "$OUT/summary.json" ] || fail "the first run finished before it was killed: make its tasks longer"
[ -f "$OUT/run.json" ] || fail "no run.json in $OUT (rank 0 writes it when the run begins)"
run_id=$(json "$OUT/run.json" run_id)

# What the store holds for the run after the kill (rows of final results, as they are).
snapshot() {
  "$PY" - "$1" "$2" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r", libver="latest", swmr=True) as f:
    r = f["results"][()]
    for i, row in enumerate(r):
        if row["run_id"].decode() == sys.argv[2] and row["final"] == 1:
            print(i, row["task_index"], row["attempt"], repr(float(row["started_unix"])),
                  repr(float(row["ended_unix"])), row["worker_rank"], repr(float(row["latency_mean_s"])))
PY
}
snapshot trends.h5 "$run_id" > before.txt
kept=$(wc -l < before.txt)
echo "killed the job with $kept final results recorded"
[ "$kept" -ge 3 ] && [ "$kept" -lt 24 ] || fail "expected 3..23 final results before the resume, got $kept"

set +e
timeout 240 "$IPFSA_BIN" launch -n 3 -- campaign.yaml --resume "$OUT" > run2.log 2> run2.err
rc=$?
set -e
cat run2.log
[ "$rc" -eq 0 ] || fail "resume exited $rc; stderr: $(tail -5 run2.err)"
grep -q "results: $OUT" run2.log || fail "the resumed run did not write to $OUT"
expect_eq "$(json "$OUT/summary.json" run_id)" "$run_id" "run_id of the resumed run"
expect_eq "$(json "$OUT/summary.json" resumed_from)" "$OUT" "resumed_from"
expect_eq "$(json "$OUT/summary.json" results_kept)" "$kept" "results_kept"
expect_eq "$(json "$OUT/summary.json" tasks_total)" 24 "tasks_total"
expect_eq "$(json "$OUT/summary.json" tasks_passed)" 24 "tasks_passed"
expect_eq "$(json "$OUT/summary.json" tasks_unfinished)" 0 "tasks_unfinished"
expect_eq "$(json "$OUT/summary.json" status)" completed "status"
# Only the other tasks ran: each wrote one row (no retries, no lost workers this time).
expect_eq "$(json "$OUT/summary.json" results_written)" "$((24 - kept))" "results_written (rows of the resumed run)"
# The store: one run, every task exactly one final result, the kept rows untouched.
h5check trends.h5 --expect-final 24 --run "$run_id" > check.json
"$PY" - trends.h5 "$run_id" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    runs = f["runs"][()]
    assert len(runs) == 1, f"{len(runs)} runs in the store, want 1 (the resumed run is the same run)"
    assert runs[0]["status"].decode() == "completed", runs[0]["status"]
    assert runs[0]["ended_unix"] > 0
PY
snapshot trends.h5 "$run_id" > after.txt
head -n "$kept" after.txt | diff before.txt - || fail "final results recorded before the kill changed"
# results.csv: every task once.
expect_eq "$(tail -n +2 "$OUT/results.csv" | wc -l)" 24 "results.csv rows"
expect_eq "$(tail -n +2 "$OUT/results.csv" | cut -d, -f1 | sort -n | uniq | wc -l)" 24 "distinct tasks in results.csv"
expect_eq "$(tail -n +2 "$OUT/results.csv" | cut -d, -f11 | sort -u)" passed "statuses in results.csv"
echo "PASS"
