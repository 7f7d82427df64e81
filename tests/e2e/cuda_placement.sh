#!/usr/bin/env bash
# Hardware-aware placement end to end: a task that needs CUDA runs only on a GPU rank. On a
# machine without a GPU it is recorded `skipped` with the reason, the CPU tasks pass, and the run
# still exits 0 (skipped tasks do not fail a run).
source "$(dirname "$0")/lib.bash"
cat > campaign.yaml <<'YAML'
name: placement-e2e
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.ok
    count: 6
  - kind: selftest.ok
    name: on-gpu
    hardware: cuda
YAML
set +e
"$IPFSA_BIN" launch -n 3 -- campaign.yaml --out out --store trends.h5 > run.log 2> run.err
rc=$?
set -e
cat run.log
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  expect_eq "$rc" 0 "exit code"
  expect_eq "$(json out/summary.json tasks_passed)" 7 "tasks_passed with a GPU"
else
  expect_eq "$rc" 0 "exit code (stderr: $(tail -3 run.err))"
  expect_eq "$(json out/summary.json tasks_passed)" 6 "tasks_passed"
  expect_eq "$(json out/summary.json tasks_skipped)" 1 "tasks_skipped"
  grep -q "on-gpu.*skipped.*needs cuda" out/results.csv || fail "cuda task not skipped with its reason: $(grep on-gpu out/results.csv)"
fi
h5check trends.h5 --expect-final 7 --run "$(json out/summary.json run_id)"
echo "PASS"
