#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, builds everything, and runs every test that
# can run on this machine (unit, MPI at 1/2/4 ranks, end-to-end). GPU tests skip with a reason
# where no GPU is present. Extra arguments go to ctest (e.g. -L unit, -R campaign).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/env.sh
scripts/build.sh
ctest --test-dir build --output-on-failure --no-tests=error -j "$IPFSA_JOBS" "$@"
