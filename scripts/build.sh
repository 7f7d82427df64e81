#!/usr/bin/env bash
# Configures (once) and builds the release preset into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ ! -f build/CMakeCache.txt ]; then
  cmake --preset release >&2
fi
cmake --build build -j "$IPFSA_JOBS" "$@" >&2
