#!/usr/bin/env bash
# scripts/slurm/nightly.sbatch under a real single-node Slurm (Debian's munge, slurmctld, slurmd,
# started by scripts/slurm/start-local-slurm.sh in a temporary folder and always stopped):
#  1. `sbatch --wait -n 3` of a small campaign (4 selftest.ok + 2 tiny models): the job COMPLETED
#     with exit 0, summary.json says all 6 passed, the store reads in h5py with 6 final results.
#  2. `scontrol requeue` of a running job once some results are stored: the run is stopped
#     (SIGTERM), Slurm starts the script again (Restarts=1) and it resumes the run in attempt-0
#     (`run --resume`): the stored results are kept, the rest run, the run ends `completed`. This
#     job runs the HA quorum (5 tasks: 3 coordinators, 2 workers), on both attempts.
#  3. The pre-walltime signal (USR1 to the batch shell, here sent with scancel --batch): the run is
#     stopped, logged, and the job fails with exit code 143.
# Skips (77) when the Slurm/munge daemons are not installed or when not root (the daemons run as
# root); scripts/install-deps.sh installs them.
PATH="$PATH:/usr/sbin:/sbin"
for c in munged mungekey slurmctld slurmd sbatch scontrol sinfo scancel; do
  command -v "$c" >/dev/null 2>&1 || { echo "SKIP: $c not installed (apt-get install slurmctld slurmd slurm-client munge, or scripts/install-deps.sh)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the local Slurm runs its daemons as root; not root here"; exit 77; }
source "$(dirname "$0")/lib.bash"
slurm_scripts=$IPFSA_SOURCE_DIR/scripts/slurm
# munged needs every folder above its socket searchable by all: not inside the 0700 $WORK.
SLURM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ipfsa-slurm.XXXXXX")
trap '"$slurm_scripts/stop-local-slurm.sh" "$SLURM_DIR"; rm -rf "$SLURM_DIR" "$WORK"' EXIT
t0=$SECONDS
"$slurm_scripts/start-local-slurm.sh" "$SLURM_DIR" > slurm.env || fail "start-local-slurm.sh"
export "$(tail -n 1 slurm.env)"
[ -f "$SLURM_CONF" ] || fail "no SLURM_CONF from start-local-slurm.sh"
echo "local Slurm up in $((SECONDS - t0)) s"

export IPFSA_ROOT=$IPFSA_SOURCE_DIR IPFSA_STORE=$WORK/trends.h5 IPFSA_RUNS_DIR=$WORK/runs
# 3 tasks on a node of $(nproc) CPUs: --overcommit. A short --time with the USR1 lead well under
# it (the script's default lead, 300 s, would signal at once).
SB=(sbatch --parsable -n 3 --overcommit --time=10 --signal=B:USR1@30)

# scontrol show job's FIELD (e.g. JobState, ExitCode, Restarts) for job $1.
field() { scontrol show job -o "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_state JOB REGEX SECONDS: until JobState matches.
wait_state() {
  local end=$((SECONDS + $3)) s=""
  while [ "$SECONDS" -lt "$end" ]; do
    s=$(field "$1" JobState)
    [[ "$s" =~ $2 ]] && return 0
    sleep 0.3
  done
  fail "job $1: state '$s' after $3 s, expected $2 (log: $(tail -n 5 "job-$1.out" 2>/dev/null))"
}
# wait_log JOB TEXT SECONDS: until the job's output file holds TEXT.
wait_log() {
  local end=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$end" ]; do
    grep -qF -- "$2" "job-$1.out" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "job $1: no '$2' in its log after $3 s (state $(field "$1" JobState); log: $(tail -n 5 "job-$1.out" 2>/dev/null))"
}

# 1. A campaign to completion.
cat > campaign.yaml <<'YAML'
name: slurm-e2e
defaults: {repeats: 2, warmup: 1, timeout_s: 60, retries: 0, memory_mb: 1024}
tasks:
  - kind: selftest.ok
    name: smoke
    count: 4
matrix:
  - model: [llama, bert]
    precision: fp32
    batch: 1
    seq_len: 8
YAML
t1=$SECONDS
set +e
job=$(IPFSA_CAMPAIGN=$WORK/campaign.yaml timeout 90 "${SB[@]}" --wait -o "$WORK/job-%j.out" \
  "$slurm_scripts/nightly.sbatch")
rc=$?
set -e
job=${job%%;*}
[ -n "$job" ] || fail "sbatch printed no job id (rc $rc)"
cat "job-$job.out"
expect_eq "$rc" 0 "sbatch --wait exit code"
expect_eq "$(field "$job" JobState)" COMPLETED "job $job state"
expect_eq "$(field "$job" ExitCode)" 0:0 "job $job exit code"
out=runs/job-$job/attempt-0
expect_eq "$(json "$out/summary.json" exit_code)" 0 "summary exit_code"
expect_eq "$(json "$out/summary.json" tasks_total)" 6 "tasks_total"
expect_eq "$(json "$out/summary.json" tasks_passed)" 6 "tasks_passed"
expect_eq "$(json "$out/summary.json" workers)" 2 "workers"
grep -q "done: exit code 0" "job-$job.out" || fail "no 'done' line in the job log"
h5check trends.h5 --expect-final 6 --run "$(json "$out/summary.json" run_id)"
echo "sbatch --wait: job $job COMPLETED in $((SECONDS - t1)) s"

# A campaign that takes a few seconds, to interrupt: 6 tasks of one 1 s sleep on 2 workers.
cat > slow.yaml <<'YAML'
name: slurm-e2e-slow
defaults: {repeats: 1, warmup: 0, timeout_s: 60, retries: 0, memory_mb: 1024}
tasks:
  - kind: selftest.sleep
    name: nap
    count: 6
    params: {ms: 1000}
YAML

# 2. scontrol requeue of a running job once some results are stored: the script starts again and
#    resumes the run in attempt-0 (run --resume): the stored results are kept, the rest run. This
#    job runs the HA quorum: 5 tasks, 3 coordinators, 2 workers.
t1=$SECONDS
SB5=(sbatch --parsable -n 5 --overcommit --time=10 --signal=B:USR1@30)
job=$(IPFSA_COORDINATORS=3 IPFSA_CAMPAIGN=$WORK/slow.yaml "${SB5[@]}" -o "$WORK/job-%j.out" \
  "$slurm_scripts/nightly.sbatch")
job=${job%%;*}
wait_log "$job" "worker rank 4 joined" 30
n=0
for _ in $(seq 1 150); do  # the first job's 6 rows + at least 2 of this run's
  n=$(store_finals trends.h5)
  [ "$n" -ge 8 ] && break
  sleep 0.2
done
[ "$n" -ge 8 ] || fail "job $job: fewer than 2 results stored before the requeue (saw $((n - 6)))"
[ "$n" -lt 12 ] || fail "job $job finished before it could be requeued"
scontrol requeue "$job" || fail "scontrol requeue $job"
wait_state "$job" '^PENDING$' 30
# Slurm holds a requeued batch job for about 2 minutes (Reason=BeginTime); release it now.
scontrol update JobId="$job" StartTime=now || fail "scontrol update StartTime=now"
wait_state "$job" '^(COMPLETED|FAILED|CANCELLED|TIMEOUT)$' 60
cat "job-$job.out"
expect_eq "$(field "$job" JobState)" COMPLETED "requeued job $job state"
expect_eq "$(field "$job" Restarts)" 1 "requeued job $job restarts"
grep -q "got SIGTERM: stopping the run" "job-$job.out" || fail "the requeue's SIGTERM is not logged"
grep -q "requeued (restart 1): resuming the run in" "job-$job.out" || fail "the resume is not logged"
grep -q "5 ranks (3 coordinators)" "job-$job.out" || fail "the job did not run a quorum of 3"
out=runs/job-$job/attempt-0
[ ! -d "runs/job-$job/attempt-1/" ] || [ ! -f "runs/job-$job/attempt-1/summary.json" ] ||
  fail "the requeued job ran a fresh attempt instead of resuming"
expect_eq "$(json "$out/summary.json" tasks_passed)" 6 "resumed run tasks_passed"
kept=$(json "$out/summary.json" results_kept)
[ "$kept" -ge 2 ] || fail "the resumed run kept $kept results, expected the >= 2 stored before the requeue"
expect_eq "$(json "$out/summary.json" results_written)" $((6 - kept)) "results written by the resumed run"
h5check trends.h5 --expect-final 6 --run "$(json "$out/summary.json" run_id)" > h5.json
cat h5.json
# Two runs in the store (the first job's and this one, resumed rather than run again), completed.
expect_eq "$(json h5.json runs)" 2 "runs in the store"
expect_eq "$(json h5.json run_status)" completed "the resumed run's status"
echo "requeue: job $job resumed (kept $kept results) and COMPLETED in $((SECONDS - t1)) s"

# 3. The pre-walltime signal: USR1 to the batch shell stops the run, exit 143.
t1=$SECONDS
job=$(IPFSA_CAMPAIGN=$WORK/slow.yaml "${SB[@]}" -o "$WORK/job-%j.out" "$slurm_scripts/nightly.sbatch")
job=${job%%;*}
wait_log "$job" "worker rank 2 joined" 30
scancel --batch --signal=USR1 "$job" || fail "scancel --batch --signal=USR1 $job"
wait_state "$job" '^(COMPLETED|FAILED|CANCELLED|TIMEOUT)$' 30
cat "job-$job.out"
expect_eq "$(field "$job" JobState)" FAILED "signalled job $job state"
expect_eq "$(field "$job" ExitCode)" 143:0 "signalled job $job exit code"
grep -q "got SIGUSR1: stopping the run" "job-$job.out" || fail "USR1 is not logged"
grep -q "stopped by SIGUSR1" "job-$job.out" || fail "the stop is not logged"
echo "USR1: job $job stopped in $((SECONDS - t1)) s"
echo "PASS ($((SECONDS - t0)) s)"
