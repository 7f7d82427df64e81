#!/usr/bin/env bash
# scripts/slurm/workstation.sh (one box, no Slurm): `launch` under the hood, so its exit code is
# the run's: 0 for a passing campaign on IPFSA_RANKS ranks, 1 for a failing one with -n 2.
source "$(dirname "$0")/lib.bash"
ws=$IPFSA_SOURCE_DIR/scripts/slurm/workstation.sh
cat > ok.yaml <<'YAML'
name: workstation-e2e
defaults: {repeats: 2, warmup: 1, timeout_s: 60, retries: 0, memory_mb: 1024}
tasks:
  - kind: selftest.ok
    name: smoke
    count: 4
matrix:
  - model: llama
    precision: [fp32, int4]
    batch: 1
    seq_len: 8
YAML
printf 'name: workstation-fail\ntasks:\n  - kind: selftest.ok\n  - kind: selftest.fail\n' > fail.yaml
set +e
IPFSA_RANKS=3 "$ws" ok.yaml --out ok --store trends.h5 > ok.log 2>&1
rc=$?
set -e
cat ok.log
expect_eq "$rc" 0 "exit code"
expect_eq "$(json ok/summary.json tasks_passed)" 6 "tasks_passed"
expect_eq "$(json ok/summary.json workers)" 2 "workers (IPFSA_RANKS=3)"
h5check trends.h5 --expect-final 6 --run "$(json ok/summary.json run_id)"
set +e
"$ws" -n 2 fail.yaml --out bad --store trends.h5 > bad.log 2>&1
rc=$?
set -e
expect_eq "$rc" 1 "exit code of a failing campaign (log: $(tail -n 3 bad.log))"
expect_eq "$(json bad/summary.json tasks_failed)" 1 "tasks_failed"
expect_eq "$(json bad/summary.json workers)" 1 "workers (-n 2)"
echo "PASS"
