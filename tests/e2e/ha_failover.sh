#!/usr/bin/env bash
# The HA coordinator quorum on real ranks (issue 5): `--coordinators 3` on 6 ranks, 200 tasks.
#   1. --chaos kill-leader-after=20: the leader SIGKILLs itself; the run completes (exit 0), every
#      task has exactly one final row in the store and no attempt is written twice,
#      leader_changes >= 1.
#   2. The same with the leader's process killed from outside (kill -9 of rank 0, the first leader).
#   3. Two of three coordinators killed: no quorum, the run stops (exit 3) without losing the
#      results it acknowledged; `run --resume` then completes it without rerunning them.
#   4. A quorum of 5 on 8 ranks: the leader killed from outside, then its successor: exit 0.
# Bad input: --coordinators 2, a malformed --chaos, too few ranks for the quorum: exit 2.
source "$(dirname "$0")/lib.bash"
cat > campaign.yaml <<'YAML'
name: ha-e2e
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.sleep
    params: {ms: 30}
    count: 200
YAML
FAST=(--finalize-timeout-ms 3000)

# check_store STORE OUT -> "finals=N tasks=N max_finals=N dup_attempts=N" for the run in OUT.
check_store() {
  "$PY" - "$1" "$2" <<'PY'
import collections, json, sys, h5py
run = json.load(open(sys.argv[2] + "/run.json"))["run_id"]
with h5py.File(sys.argv[1], "r", libver="latest", swmr=True) as f:
    r = f["results"][()]
rows = [x for x in r if x["run_id"].decode() == run]
fin = collections.Counter(int(x["task_index"]) for x in rows if x["final"] == 1)
att = collections.Counter((int(x["task_index"]), int(x["attempt"])) for x in rows)
print("finals=%d tasks=%d max_finals=%d dup_attempts=%d" % (
    sum(fin.values()), len(fin), max(fin.values() or [0]), sum(1 for v in att.values() if v > 1)))
PY
}
expect_complete() {  # OUT STORE LABEL
  expect_eq "$(check_store "$2" "$1")" "finals=200 tasks=200 max_finals=1 dup_attempts=0" "$3: store"
  expect_eq "$(json "$1/summary.json" exit_code)" 0 "$3: summary exit_code"
  expect_eq "$(json "$1/summary.json" tasks_passed)" 200 "$3: tasks passed"
}
# The pid of rank R of the job whose command line names MARKER.
rank_pid() {
  local p
  for p in $(pgrep -f -- "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}

# 1. The leader kills itself after 20 committed results.
set +e
"$IPFSA_BIN" launch -n 6 -- campaign.yaml --coordinators 3 --chaos kill-leader-after=20 --out chaos \
  --store chaos.h5 "${FAST[@]}" > chaos.log 2> chaos.err
rc=$?
set -e
expect_eq "$rc" 0 "chaos run exit code (stderr: $(grep -v joined chaos.err | tail -5))"
grep -q "chaos: kill-leader-after=20" chaos.err || fail "the leader did not kill itself"
expect_complete chaos chaos.h5 "kill-leader-after"
changes=$(json chaos/summary.json leader_changes)
[ "$changes" -ge 1 ] || fail "leader_changes is $changes after the leader was killed"
leader=$(json chaos/summary.json leader)
[ "$leader" != 0 ] || fail "rank 0 (killed) reported as the final leader"
echo "kill-leader-after=20: exit 0, 200 tasks once each, leader_changes=$changes," \
  "failover_ms_max=$(json chaos/summary.json failover_ms_max), final leader rank $leader"

# 2. The leader (rank 0 wins the first election) killed from outside once 20 results are stored.
OUT="$WORK/outside-$$"
"$IPFSA_BIN" launch -n 6 -- campaign.yaml --coordinators 3 --out "$OUT" --store outside.h5 "${FAST[@]}" \
  > outside.log 2> outside.err &
job=$!
n=0
for _ in $(seq 1 600); do
  [ -f outside.h5 ] && n=$(store_finals outside.h5)
  [ "$n" -ge 20 ] && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.05
done
[ "$n" -ge 20 ] || fail "fewer than 20 results appeared before the kill (saw $n)"
pid=$(rank_pid "$OUT" 0)
[ -n "$pid" ] || fail "rank 0 of the job not found"
kill -9 "$pid"
set +e
wait "$job"
rc=$?
set -e
expect_eq "$rc" 0 "outside kill: exit code (stderr: $(grep -v joined outside.err | tail -5))"
expect_complete "$OUT" outside.h5 "outside kill -9"
changes=$(json "$OUT/summary.json" leader_changes)
[ "$changes" -ge 1 ] || fail "outside kill: leader_changes is $changes"
echo "kill -9 of the leader (pid $pid) after $n stored results: exit 0, 200 tasks once each," \
  "leader_changes=$changes, failover_ms_max=$(json "$OUT/summary.json" failover_ms_max)"

# 3. Two of three coordinators die: no quorum; nothing acknowledged is lost; --resume completes.
set +e
"$IPFSA_BIN" launch -n 6 -- campaign.yaml --coordinators 3 --chaos kill-rank=1@20 --chaos kill-rank=2@20 \
  --quorum-timeout-ms 2000 --out noq --store noq.h5 "${FAST[@]}" > noq.log 2> noq.err
rc=$?
set -e
expect_eq "$rc" 3 "no quorum: exit code"
grep -q "no quorum" noq.err || fail "no quorum: the reason is not reported: $(tail -5 noq.err)"
[ ! -f noq/summary.json ] || fail "no quorum: a summary claims the run ended"
before=$(check_store noq.h5 noq)
kept=$(echo "$before" | sed 's/finals=\([0-9]*\).*/\1/')
[ "$kept" -ge 20 ] && [ "$kept" -lt 200 ] || fail "no quorum: expected 20..199 final rows, got: $before"
echo "$before" | grep -q "max_finals=1 dup_attempts=0" || fail "no quorum: duplicates: $before"
set +e
"$IPFSA_BIN" launch -n 6 -- campaign.yaml --coordinators 3 --resume noq "${FAST[@]}" > resume.log 2> resume.err
rc=$?
set -e
expect_eq "$rc" 0 "resume after no quorum: exit code (stderr: $(tail -5 resume.err))"
expect_complete noq noq.h5 "resume after no quorum"
expect_eq "$(json noq/summary.json results_kept)" "$kept" "results kept by the resume"
expect_eq "$(json noq/summary.json results_written)" "$((200 - kept))" "rows written by the resume"
echo "two of three coordinators killed: exit 3 with $kept results stored; --resume kept them and ran $((200 - kept))"

# 4. A quorum of 5 on 8 ranks loses two leaders in a row (kill -9 of rank 0 after 20 stored
#    results, then of the leader that replaced it after 80): exit 0, every task once, 2 changes.
OUT="$WORK/five-$$"
"$IPFSA_BIN" launch -n 8 -- campaign.yaml --coordinators 5 --out "$OUT" --store five.h5 "${FAST[@]}" \
  > five.log 2> five.err &
job=$!
wait_finals() {  # N: until the store holds N final rows (or the job ended)
  local n=0
  for _ in $(seq 1 600); do
    [ -f five.h5 ] && n=$(store_finals five.h5)
    [ "$n" -ge "$1" ] && return 0
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  fail "five: fewer than $1 results stored (saw $n)"
}
wait_finals 20
kill -9 "$(rank_pid "$OUT" 0)"
second=""
for _ in $(seq 1 200); do
  second=$(sed -n 's/.*coordinator rank \([0-9]\): leader of term [2-9].*/\1/p' five.err | tail -n 1)
  [ -n "$second" ] && break
  sleep 0.05
done
[ -n "$second" ] || fail "five: no new leader after rank 0 was killed: $(tail -5 five.err)"
wait_finals 80
kill -9 "$(rank_pid "$OUT" "$second")"
set +e
wait "$job"
rc=$?
set -e
expect_eq "$rc" 0 "five: exit code (stderr: $(grep -v joined five.err | tail -5))"
expect_complete "$OUT" five.h5 "five coordinators, two leaders killed"
changes=$(json "$OUT/summary.json" leader_changes)
[ "$changes" -ge 2 ] || fail "five: leader_changes is $changes after two leaders were killed"
echo "quorum of 5: leaders 0 and $second killed in turn: exit 0, 200 tasks once each, leader_changes=$changes"

# Bad input: exit 2 with the reason.
expect_exit 2 "--coordinators" -- "$IPFSA_BIN" launch -n 6 -- campaign.yaml --coordinators 2
expect_exit 2 "--chaos kill-rank=x@3" -- "$IPFSA_BIN" launch -n 6 -- campaign.yaml --chaos kill-rank=x@3
expect_exit 2 "--chaos explode=1: unknown fault" -- "$IPFSA_BIN" launch -n 6 -- campaign.yaml --chaos explode=1
expect_exit 2 "at least 4 MPI ranks" -- "$IPFSA_BIN" launch -n 3 -- campaign.yaml --coordinators 3 --store bad.h5
echo "bad input: --coordinators 2, malformed --chaos, too few ranks: exit 2"
