#!/usr/bin/env bash
# SIGKILL of one worker rank's process mid-campaign: the campaign completes on the remaining
# workers and every task has exactly one final result in the store.
source "$(dirname "$0")/lib.bash"
cat > campaign.yaml <<'YAML'
name: sigkill-e2e
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 1}
tasks:
  - kind: selftest.sleep
    params: {ms: 40}
    count: 300
YAML
timeout 240 mpirun --enable-recovery -np 4 "$IPFSA_BIN" run campaign.yaml --out out --store trends.h5 --worker-timeout-ms 1500 > run.log 2> run.err &
launcher=$!
# Find worker rank 2 (its environment says so) once it runs, and kill it after ~1 s of work.
victim=""
for _ in $(seq 1 100); do
  for pid in $(pgrep -f "ipfs-accelerate run campaign.yaml" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=2"; then victim=$pid; fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { kill "$launcher"; fail "worker rank 2 not found"; }
# Kill it once it works (it has started its executor, so MPI start-up is over: a death inside the
# start-up collectives is tests/e2e/rank_dies_at_startup.sh), then after ~1 s of tasks.
for _ in $(seq 1 600); do
  [ -n "$(pgrep -P "$victim" || true)" ] && break
  sleep 0.1
done
[ -n "$(pgrep -P "$victim" || true)" ] || { kill "$launcher"; fail "worker rank 2 never started its executor"; }
sleep 1.0
kill -9 "$victim"
echo "killed worker rank 2 (pid $victim)"
set +e
wait "$launcher"
rc=$?
set -e
cat run.log
[ "$rc" -ne 124 ] || fail "the job hung after the kill (stopped by timeout); stderr: $(tail -5 run.err)"
[ -f out/summary.json ] || fail "no summary.json (stderr: $(tail -5 run.err))"
total=$(json out/summary.json tasks_total)
expect_eq "$(json out/summary.json workers_lost)" 1 "workers_lost"
expect_eq "$(json out/summary.json tasks_passed)" "$total" "tasks_passed"
expect_eq "$(json out/summary.json tasks_unfinished)" 0 "tasks_unfinished"
[ "$(json out/summary.json attempts_lost)" -ge 1 ] || fail "no in-flight attempt was re-run (attempts_lost = 0)"
h5check trends.h5 --expect-final "$total" --run "$(json out/summary.json run_id)"
echo "PASS"
