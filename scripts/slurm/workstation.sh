#!/usr/bin/env bash
# Runs a campaign on one machine without Slurm: `ipfs-accelerate launch`, i.e. exactly
# `mpirun --enable-recovery -np RANKS ipfs-accelerate run ARGS`, exiting with the run's exit code
# (mpirun itself exits 0 for --enable-recovery jobs; README "Exit codes").
#   scripts/slurm/workstation.sh [-n RANKS] [CAMPAIGN.yaml] [run options...]
# RANKS: -n, else IPFSA_RANKS, else the number of cores + 1 (1 coordinator, which is mostly idle,
# + one worker per core); at least 2. The binary: IPFSA_BIN, else build/ipfs-accelerate.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC1091  # found at run time
source "$here/scripts/env.sh"
ranks=${IPFSA_RANKS:-$(( $(nproc) + 1 ))}
if [ "${1:-}" = "-n" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 [-n RANKS] [CAMPAIGN.yaml] [run options...]" >&2; exit 2; }
  ranks=$2
  shift 2
fi
[[ "$ranks" =~ ^[0-9]+$ ]] || { echo "workstation.sh: RANKS must be a number, got '$ranks'" >&2; exit 2; }
[ "$ranks" -ge 2 ] || ranks=2
bin=${IPFSA_BIN:-$here/build/ipfs-accelerate}
[ -x "$bin" ] || { echo "workstation.sh: no binary at $bin (build it: scripts/build.sh, or set IPFSA_BIN)" >&2; exit 2; }
exec "$bin" launch -n "$ranks" -- "$@"
