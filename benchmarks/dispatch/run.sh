#!/usr/bin/env bash
# Dispatch throughput: trivial selftest.ok tasks through coordinator -> workers (isolated executor
# processes) -> HDF5 store with mpirun -np 4, against mpi4py.futures.MPIPoolExecutor doing the same
# number of trivial tasks with chunksize=1 and chunksize=64 in the same script. Prints a table and
# the ratios. Every ipfs-accelerate result is checked in the store (h5py).
#   benchmarks/dispatch/run.sh [N_TASKS] [PREFETCH...]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
N=${1:-100000}
shift || true
PREFETCH=("${@:-64}")
[ ${#PREFETCH[@]} -gt 0 ] || PREFETCH=(64)
scripts/build.sh --target ipfs-accelerate
BIN=$PWD/build/ipfs-accelerate
WORK=$(mktemp -d /tmp/ipfsa-dispatch.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/dispatch.yaml" <<YAML
name: dispatch-benchmark
defaults: {repeats: 1, warmup: 0, timeout_s: 60, retries: 0}
tasks:
  - kind: selftest.ok
    count: $N
YAML

printf '%-44s %12s %10s\n' "configuration" "tasks/s" "seconds"
declare -A RATE
for p in "${PREFETCH[@]}"; do
  out="$WORK/out-$p"
  mpirun --enable-recovery -np 4 "$BIN" run "$WORK/dispatch.yaml" --out "$out" --store "$WORK/trends-$p.h5" \
    --prefetch "$p" --log-level warn > "$WORK/run-$p.log"
  read -r rate secs written < <("$IPFSA_PYTHON" -c '
import json,sys; s=json.load(open(sys.argv[1]))
print(s["tasks_per_s"], s["dispatch_s"], s["results_written"])' "$out/summary.json")
  [ "$written" = "$N" ] || { echo "only $written of $N results written" >&2; exit 1; }
  "$IPFSA_PYTHON" tests/e2e/store_h5py_check.py "$WORK/trends-$p.h5" --expect-final "$N" > /dev/null
  RATE[$p]=$rate
  printf '%-44s %12.0f %10.3f\n' "ipfs-accelerate -np 4, prefetch $p (store+isolation)" "$rate" "$secs"
done
for c in 1 64; do
  read -r rate secs < <(mpirun -np 4 "$IPFSA_PYTHON" -m mpi4py.futures benchmarks/dispatch/mpi4py_pool.py "$N" "$c" |
    "$IPFSA_PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["tasks_per_s"], d["seconds"])')
  RATE[mpi4py$c]=$rate
  printf '%-44s %12.0f %10.3f\n' "mpi4py.futures -np 4, chunksize $c" "$rate" "$secs"
done
for p in "${PREFETCH[@]}"; do
  "$IPFSA_PYTHON" -c "
a=${RATE[$p]}; b=${RATE[mpi4py1]}; c=${RATE[mpi4py64]}
print(f'ratio prefetch $p vs mpi4py chunksize=1: {a/b:.1f}x   vs chunksize=64: {a/c:.2f}x')"
done
