#!/usr/bin/env bash
# One CI step for a nightly (or per-commit) campaign: run it, judge the trends, publish.
# The GitHub Actions, GitLab CI and Jenkins examples beside this script call it; docs/ci.md.
#
#   scripts/ci/run-campaign.sh [CAMPAIGN.yaml]
#
# Environment:
# Paths are relative to the current folder (CI runs it from the repository root).
#   IPFSA_BIN        the binary (default: the repository's build/ipfs-accelerate; scripts/build.sh)
#   IPFSA_STORE      the HDF5 trend store that carries history between CI runs (default:
#                    results/trends.h5; keep it in a cache, an artifact or a shared folder)
#   IPFSA_RANKS      MPI ranks (default: 4)
#   IPFSA_RUN_ARGS   extra `run` options, e.g. "--coordinators 3 --prefetch 4"
#   IPFSA_CI_OUT     where the files to publish go (default: ci-out)
#   IPFSA_SLURM=1    submit scripts/slurm/nightly.sbatch with `sbatch --wait` instead of running
#                    here (IPFSA_SBATCH_ARGS: extra sbatch options, e.g. "-N 2 --time=02:00:00")
#   IPFSA_THRESHOLD_PCT  minimum effect for a regression verdict (default 10)
#
# Output in $IPFSA_CI_OUT: junit.xml (the run: one testcase per task), trends-junit.xml
# (regressions as failures), summary.md (also appended to $GITHUB_STEP_SUMMARY when set),
# report.html (self-contained dashboard), summary.json, results.csv, trends.json.
# Exit code: 0 all passed and no regression; 1 a task failed or a series regressed (the summary
# says which); 2 bad input; 3 infrastructure failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091  # found at run time
source "$root/scripts/env.sh"
bin=${IPFSA_BIN:-$root/build/ipfs-accelerate}
store=${IPFSA_STORE:-results/trends.h5}
ranks=${IPFSA_RANKS:-4}
out=${IPFSA_CI_OUT:-ci-out}
threshold=${IPFSA_THRESHOLD_PCT:-10}
campaign=("$@")
log() { echo "run-campaign.sh: $*" >&2; }
[ -x "$bin" ] || { log "no binary at $bin (run scripts/build.sh or set IPFSA_BIN)"; exit 2; }
mkdir -p "$out" "$(dirname "$store")"
read -r -a extra <<< "${IPFSA_RUN_ARGS:-}"

run_dir="$out/run"
rm -rf "$run_dir"
if [ "${IPFSA_SLURM:-0}" = 1 ]; then
  read -r -a sbatch_args <<< "${IPFSA_SBATCH_ARGS:-}"
  runs_dir=$(mktemp -d "$(realpath "$out")/slurm.XXXXXX")
  log "sbatch --wait scripts/slurm/nightly.sbatch (runs in $runs_dir)"
  set +e
  IPFSA_BIN=$(realpath "$bin") IPFSA_STORE=$(realpath -m "$store") IPFSA_RUNS_DIR=$runs_dir \
    IPFSA_ROOT=$root IPFSA_CAMPAIGN=${campaign[0]:+$(realpath "${campaign[0]}")} sbatch --wait --parsable "${sbatch_args[@]}" -o "$out/slurm-%j.out" \
    "$root/scripts/slurm/nightly.sbatch" "${extra[@]}"
  run_rc=$?
  set -e
  found=$(ls -d "$runs_dir"/job-*/attempt-* 2>/dev/null | while read -r d; do [ -f "$d/summary.json" ] && echo "$d"; done | tail -n 1)
  [ -n "$found" ] && cp -r "$found" "$run_dir"
else
  set +e
  "$bin" launch -n "$ranks" -- "${campaign[@]}" --store "$store" --out "$run_dir" "${extra[@]}"
  run_rc=$?
  set -e
fi
set +e
if [ ! -f "$run_dir/summary.json" ]; then
  log "the run left no summary.json (exit $run_rc)"
  [ "$run_rc" = 0 ] && run_rc=3
  exit "$run_rc"
fi
for f in summary.json results.csv junit.xml summary.md report.html; do
  [ -f "$run_dir/$f" ] && cp "$run_dir/$f" "$out/$f"
done

# Trends over the store's history: regressions of this run against its baseline.
"$bin" trends --store "$store" --threshold-pct "$threshold" --format json > "$out/trends.json"
trends_rc=$?
"$bin" trends --store "$store" --threshold-pct "$threshold" --format junit > "$out/trends-junit.xml"
"$bin" trends --store "$store" --threshold-pct "$threshold" --format markdown > "$out/trends.md"
if [ "$trends_rc" -ge 2 ]; then log "trends failed (exit $trends_rc)"; exit "$trends_rc"; fi
cat "$out/trends.md" >> "$out/summary.md"
[ -n "${GITHUB_STEP_SUMMARY:-}" ] && cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"

rc=$run_rc
[ "$rc" = 0 ] && [ "$trends_rc" = 1 ] && rc=1
log "run exit $run_rc, trends exit $trends_rc ($( [ "$trends_rc" = 1 ] && echo "regressions: see $out/trends.md" || echo "no regression")); files in $out"
exit "$rc"
