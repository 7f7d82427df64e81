#!/usr/bin/env bash
# Failover time of the HA coordinator quorum (docs/design.md §HA quorum): RUNS campaigns of 200
# short tasks on 6 ranks with --coordinators 3, each with the leader SIGKILLed once 20 results are
# committed -- by itself (--chaos kill-leader-after=20) and from outside (kill -9 of rank 0, the
# first leader, once 20 results are in the store). Each run must complete with exit 0 and every
# task exactly once in the store; the table lists failover_ms_max from summary.json (the new
# leader's first assignments minus the last time it heard the old leader) and the median and max.
#   benchmarks/failover/run.sh [RUNS] [extra run options, e.g. --election-timeout-ms 150]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
RUNS=${1:-10}
shift || true
EXTRA=("$@")
scripts/build.sh --target ipfs-accelerate > /dev/null
BIN=$PWD/build/ipfs-accelerate
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/ipfsa-failover.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
cat > campaign.yaml <<'YAML'
name: failover-bench
defaults: {repeats: 1, warmup: 0, timeout_s: 30, retries: 0}
tasks:
  - kind: selftest.sleep
    params: {ms: 30}
    count: 200
YAML
finals() {
  "$PY" - "$1" <<'PY' 2>/dev/null || echo 0
import sys, h5py
with h5py.File(sys.argv[1], "r", libver="latest", swmr=True) as f:
    r = f["results"]; r.refresh(); print(int((r["final"][()] == 1).sum()))
PY
}
check() {  # OUT STORE -> the run's failover_ms_max, after checking the run
  "$PY" - "$1" "$2" <<'PY'
import collections, json, sys, h5py
s = json.load(open(sys.argv[1] + "/summary.json"))
with h5py.File(sys.argv[2], "r", libver="latest", swmr=True) as f:
    r = f["results"][()]
rows = [x for x in r if x["run_id"].decode() == s["run_id"]]
fin = collections.Counter(int(x["task_index"]) for x in rows if x["final"] == 1)
assert s["exit_code"] == 0 and len(fin) == 200 and max(fin.values()) == 1, (s["exit_code"], len(fin))
assert s["leader_changes"] >= 1, s["leader_changes"]
print("%.0f" % s["failover_ms_max"])
PY
}
rank_pid() {
  local p
  for p in $(pgrep -f -- "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}
stats() { "$PY" -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("median %.0f ms, max %.0f ms over %d runs" % (statistics.median(v), max(v), len(v)))' "$@"; }

self=() outside=()
for i in $(seq 1 "$RUNS"); do
  "$BIN" launch -n 6 -- campaign.yaml --coordinators 3 --chaos kill-leader-after=20 --out "self-$i" \
    --store "self-$i.h5" --finalize-timeout-ms 3000 "${EXTRA[@]}" > /dev/null 2> "self-$i.err"
  self+=("$(check "self-$i" "self-$i.h5")")
  out="$WORK/outside-$i"
  "$BIN" launch -n 6 -- campaign.yaml --coordinators 3 --out "$out" --store "outside-$i.h5" \
    --finalize-timeout-ms 3000 "${EXTRA[@]}" > /dev/null 2> "outside-$i.err" &
  job=$!
  for _ in $(seq 1 600); do
    [ -f "outside-$i.h5" ] && [ "$(finals "outside-$i.h5")" -ge 20 ] && break
    sleep 0.05
  done
  kill -9 "$(rank_pid "$out" 0)"
  wait "$job"
  outside+=("$(check "$out" "outside-$i.h5")")
  echo "run $i: kill-leader-after=20 ${self[-1]} ms, outside kill -9 ${outside[-1]} ms"
done
echo "leader kills itself (--chaos kill-leader-after=20): $(stats "${self[@]}")"
echo "leader killed from outside (kill -9):             $(stats "${outside[@]}")"
