#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds, and runs the embedded default
# campaign on 4 MPI ranks (1 coordinator + 3 workers). Last line: `results: PATH`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/env.sh
scripts/build.sh --target ipfs-accelerate
set +e
mpirun --enable-recovery -np 4 build/ipfs-accelerate run | tee /tmp/ipfsa-demo.$$.log
rc=${PIPESTATUS[0]}
set -e
results=$(sed -n 's/^results: //p' /tmp/ipfsa-demo.$$.log | tail -n 1)
store=$(sed -n 's/^store: //p' /tmp/ipfsa-demo.$$.log | tail -n 1)
rm -f /tmp/ipfsa-demo.$$.log
if [ -n "$store" ]; then
  build/ipfs-accelerate store show "$store" | tail -n 30
fi
# Open MPI 4.1's mpirun exits 0 for --enable-recovery jobs whatever rank 0 returns: take the run's
# own exit code from summary.json.
if [ -n "$results" ] && [ -f "$results/summary.json" ]; then
  rc=$("$IPFSA_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["exit_code"])' "$results/summary.json")
else
  rc=3
fi
echo "results: ${results:-none}"
exit "$rc"
