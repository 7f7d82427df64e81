#!/usr/bin/env bash
# A rank that dies while the job starts (before MPI_Init completes) must not hang the job: MPI
# start-up is collective, so the other ranks end themselves after --startup-timeout-ms, and rank 0
# leaves exit code 3 (infrastructure) in the status file. Rank 2 here is a process that kills
# itself at once (mpirun's MPMD form), so the death is in the start-up window every time.
source "$(dirname "$0")/lib.bash"
cat > campaign.yaml <<'YAML'
name: startup-death-e2e
tasks:
  - kind: selftest.ok
    count: 4
YAML
args=(run campaign.yaml --out out --store trends.h5 --startup-timeout-ms 3000 --status-file status)
start=$(date +%s)
set +e
timeout 120 mpirun --enable-recovery -np 2 "$IPFSA_BIN" "${args[@]}" : -np 1 sh -c 'kill -9 $$' \
  : -np 1 "$IPFSA_BIN" "${args[@]}" > run.log 2> run.err
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
[ "$rc" -ne 124 ] || fail "the job hung (killed by timeout after 120 s); stderr: $(tail -5 run.err)"
[ -f status ] || fail "rank 0 left no status file; stderr: $(tail -5 run.err)"
expect_eq "$(cat status)" 3 "exit code in the status file"
grep -q "rank 0: MPI start-up did not complete within 3000 ms" run.err || fail "no start-up message: $(cat run.err)"
grep -q "rank 3: MPI start-up did not complete" run.err || fail "rank 3 did not end itself: $(cat run.err)"
echo "job ended in ${elapsed} s with exit code 3"
echo "PASS"
