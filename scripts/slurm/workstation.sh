#!/usr/bin/env bash
# Runs a campaign on one machine with mpirun (no Slurm): 1 coordinator + N-1 workers.
#   scripts/slurm/workstation.sh [-n RANKS] [CAMPAIGN.yaml] [run options...]
# RANKS defaults to the number of cores + 1 (the coordinator is mostly idle), at least 2.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
source "$here/scripts/env.sh"
ranks=$(( $(nproc) + 1 ))
if [ "${1:-}" = "-n" ]; then ranks=$2; shift 2; fi
[ "$ranks" -ge 2 ] || ranks=2
exec mpirun --enable-recovery -np "$ranks" "$here/build/ipfs-accelerate" run "$@"
