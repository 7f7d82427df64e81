#!/usr/bin/env bash
# `run --resume RUN_DIR` refuses what it cannot resume (exit 2, naming the folder or the differing
# task) and does nothing for a run that already finished (exit 0, nothing written).
source "$(dirname "$0")/lib.bash"
expect_exit() { expect_exit_in "out err" "$@"; }  # "nothing left to do" is on stdout
cat > a.yaml <<'YAML'
name: resume-a
defaults: {repeats: 1, warmup: 0}
tasks:
  - kind: selftest.ok
    count: 4
YAML
cat > b.yaml <<'YAML'
name: resume-b
defaults: {repeats: 1, warmup: 0}
tasks:
  - kind: selftest.ok
    count: 4
  - kind: selftest.sleep
    params: {ms: 10}
YAML

expect_exit 2 "/nonexistent-run-dir" -- "$IPFSA_BIN" launch -n 2 -- a.yaml --resume /nonexistent-run-dir
# A resumed run's outputs go to its own folder: --out with --resume is refused, not ignored.
expect_exit 2 "--resume excludes --out|--out excludes --resume" -- "$IPFSA_BIN" launch -n 2 -- a.yaml --resume x --out y
mkdir notarun
expect_exit 2 "notarun.*not a run folder" -- "$IPFSA_BIN" launch -n 2 -- a.yaml --resume notarun

"$IPFSA_BIN" launch -n 2 -- a.yaml --out done --store trends.h5 > run.log 2> run.err || fail "first run failed: $(cat run.err)"
[ -f done/run.json ] || fail "no run.json"
sum_before=$(md5sum trends.h5 done/summary.json done/results.csv)

# A different campaign: the message names the folder and the first task that differs.
expect_exit 2 "--resume done: .*task 4.*selftest.sleep" -- "$IPFSA_BIN" launch -n 2 -- b.yaml --resume done
echo "different campaign: $(cat err.txt)"
# The finished run: nothing to do, nothing written.
expect_exit 0 "nothing left to do" -- "$IPFSA_BIN" launch -n 2 -- a.yaml --resume done
echo "finished run: $(cat out.txt)"
expect_eq "$(md5sum trends.h5 done/summary.json done/results.csv)" "$sum_before" "files after resuming a finished run"
echo "PASS"
