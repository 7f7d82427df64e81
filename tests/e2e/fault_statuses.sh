#!/usr/bin/env bash
# A campaign mixing selftest.segfault, .abort, .hang, .oom, .fail and .ok under mpirun -np 4:
# finishes with those statuses recorded, no rank lost, exit code 1.
# `launch` runs `mpirun --enable-recovery -np 4 ipfs-accelerate run ...` and returns the run's
# exit code (mpirun itself exits 0 for recoverable jobs in Open MPI 4.1).
source "$(dirname "$0")/lib.bash"
set +e
"$IPFSA_BIN" launch -n 4 -- "$IPFSA_SOURCE_DIR/configs/examples/faults.yaml" --out out --store trends.h5 > run.log 2> run.err
rc=$?
set -e
cat run.log
expect_eq "$rc" 1 "exit code (stderr: $(tail -5 run.err))"
expect_eq "$(json out/summary.json exit_code)" 1 "summary exit_code"
expect_eq "$(json out/summary.json workers_lost)" 0 "workers_lost"
expect_eq "$(json out/summary.json workers)" 3 "workers"
[ "$(json out/summary.json tasks_crashed)" -ge 2 ] || fail "segfault and abort tasks not recorded as crashed"
[ "$(json out/summary.json tasks_timeout)" -ge 1 ] || fail "hang task not recorded as timeout"
[ "$(json out/summary.json tasks_oom)" -ge 1 ] || fail "oom task not recorded as oom"
[ "$(json out/summary.json tasks_failed)" -ge 1 ] || fail "fail task not recorded as failed"
[ "$(json out/summary.json tasks_passed)" -ge 1 ] || fail "ok tasks did not pass"
[ "$(json out/summary.json tasks_retried)" -ge 1 ] || fail "nothing was retried"
"$PY" - out/results.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by_kind = {}
for r in rows:
    by_kind.setdefault(r["kind"], set()).add(r["status"])
want = {"selftest.segfault": {"crashed"}, "selftest.abort": {"crashed"}, "selftest.hang": {"timeout"},
        "selftest.oom": {"oom"}, "selftest.fail": {"failed"}, "selftest.ok": {"passed"}}
for kind, statuses in want.items():
    if kind in by_kind and by_kind[kind] != statuses:
        sys.exit(f"{kind}: statuses {by_kind[kind]}, expected {statuses}")
seg = [r for r in rows if r["kind"] == "selftest.segfault"]
if seg and any(r["signal"] != "11" for r in seg):
    sys.exit("segfault tasks must record signal 11")
if any(int(r["attempts"]) < 2 for r in rows if r["status"] != "passed"):
    sys.exit("a non-passing task was not retried")
print("statuses:", {k: sorted(v) for k, v in by_kind.items()})
PY
h5check trends.h5 --expect-final "$(json out/summary.json tasks_total)" --run "$(json out/summary.json run_id)"
echo "PASS"
