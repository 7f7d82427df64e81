#!/usr/bin/env bash
# Builds (unless a build is already there) and runs the GPU tests, then the GPU benchmark table
# (docs/cuda.md §Measuring). Needs CUDA, cuBLAS and, to build, GoogleTest; nothing else of ours.
#   benchmarks/gpu/run.sh [ipfsa_gpu_bench flags, e.g. --json FILE --runs 100]
# IPFSA_GPU_BUILD: the build folder (default build-gpu); IPFSA_CUDA_ARCHS: archs to build (90).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${IPFSA_GPU_BUILD:-$root/build-gpu}
if [[ ! -x $build/tests/gpu/ipfsa_gpu_tests || ! -x $build/benchmarks/gpu/ipfsa_gpu_bench ]]; then
  cmake -S "$root" -B "$build" -DIPFSA_GPU_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="${IPFSA_CUDA_ARCHS:-90}" > /dev/null
  cmake --build "$build" -j "$(nproc)" --target ipfsa_gpu_tests ipfsa_gpu_bench > /dev/null
fi
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader || true
echo "== GPU tests"
tests_rc=0
"$build/tests/gpu/ipfsa_gpu_tests" --gtest_brief=1 || tests_rc=$?
echo "== GPU benchmark"
"$build/benchmarks/gpu/ipfsa_gpu_bench" "$@"
if ((tests_rc != 0)); then
  echo "GPU tests FAILED (exit $tests_rc)" >&2
  exit "$tests_rc"
fi
