#!/usr/bin/env bash
# The embedded default campaign under mpirun -np 4: exit 0, every task passed, the store lists
# them and reads in h5py with exactly one final result per task.
source "$(dirname "$0")/lib.bash"
set +e
mpirun_ipfsa 4 run --out out --store trends.h5 > run.log 2> run.err
rc=$?
set -e
cat run.log
expect_eq "$rc" 0 "exit code (stderr: $(tail -5 run.err))"
expect_eq "$(json out/summary.json exit_code)" 0 "summary exit_code"
total=$(json out/summary.json tasks_total)
[ "$total" -gt 0 ] || fail "no tasks"
expect_eq "$(json out/summary.json tasks_passed)" "$total" "tasks_passed"
expect_eq "$(json out/summary.json workers)" 3 "workers"
expect_eq "$(json out/summary.json results_written)" "$total" "results_written"
[ "$(tail -n 1 run.log)" = "results: out" ] || fail "last line is not 'results: out'"
lines=$(($(wc -l < out/results.csv) - 1))
expect_eq "$lines" "$total" "results.csv rows"
"$IPFSA_BIN" store show trends.h5 > show.txt
run_id=$(json out/summary.json run_id)
grep -q "$run_id" show.txt || fail "store show does not list run $run_id"
grep -q "model(llama)" show.txt || fail "store show does not list the model tasks"
h5check trends.h5 --expect-final "$total" --run "$run_id"
# A second run appends to the same store.
mpirun_ipfsa 4 run --out out2 --store trends.h5 > /dev/null 2>&1 || fail "second run"
"$IPFSA_BIN" store show trends.h5 > show2.txt
grep -q "$run_id" show2.txt || fail "first run missing after the second"
grep -q "$(json out2/summary.json run_id)" show2.txt || fail "second run not listed"
h5check trends.h5 --expect-final "$total" --run "$(json out2/summary.json run_id)"
echo "PASS"
