#!/usr/bin/env bash
# Issue 4: `bench gemv --device cuda` and `models run --device cuda`. Bad flags exit 2 naming the
# flag before any GPU is touched; a build without the CUDA backend exits 2 saying so; without a
# GPU both commands exit 3 with the reason; with one, the benchmark's JSON has every field with
# positive figures and `models run` reports the GPU and accuracy against the CPU fp32 model.
source "$(dirname "$0")/lib.bash"
# run_cmd EXPECTED_RC ARGS...: runs the binary, checks the exit code and that stderr says something.
run_cmd() {
  local want=$1
  shift
  set +e
  "$IPFSA_BIN" "$@" > out.txt 2> err.txt
  local rc=$?
  set -e
  expect_eq "$rc" "$want" "exit code of: $* (stderr: $(cat err.txt))"
  if [ "$want" != 0 ]; then [ -s err.txt ] || fail "no message on stderr for: $*"; fi
}
# Bad values: exit 2 naming the flag (on any machine, GPU or not, CUDA build or not).
bad_flag() {
  local flag=$1
  shift
  run_cmd 2 bench gemv --device cuda "$@"
  grep -q -- "$flag" err.txt || fail "message does not name $flag: $(cat err.txt)"
}
bad_flag --bits --bits 5
bad_flag --batch --batch 0
bad_flag --m --m 0
bad_flag --m --m -4
bad_flag --k --k 100 --group 64
bad_flag --group --group 48
bad_flag --device --device tpu
bad_flag --threads --threads 4
bad_flag --warm --warm
grep -q "multiple of the group" <(
  set +e
  "$IPFSA_BIN" bench gemv --device cuda --k 100 --group 64 2>&1
) || fail "no explanation for --k 100 --group 64"
run_cmd 2 models run gpt2 --device tpu
run_cmd 2 models run no-such-model --device cuda

cuda_build=$(grep -q "^IPFSA_ENABLE_CUDA:BOOL=ON" "$IPFSA_BUILD_DIR/CMakeCache.txt" && echo 1 || echo 0)
if [ "$cuda_build" = 0 ]; then
  run_cmd 2 bench gemv --device cuda --json
  grep -q "this build has no CUDA backend (IPFSA_ENABLE_CUDA=OFF)" err.txt || fail "$(cat err.txt)"
  run_cmd 2 models run gpt2 --device cuda
  grep -q "this build has no CUDA backend" err.txt || fail "$(cat err.txt)"
elif ! { command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; }; then
  # No GPU: exit 3 with the reason GpuContext::create gave, not a crash.
  run_cmd 3 bench gemv --device cuda --bits 4 --m 256 --k 1024 --batch 1 --json
  grep -q "bench gemv: --device cuda: .*CUDA" err.txt || fail "no reason: $(cat err.txt)"
  [ ! -s out.txt ] || fail "output without a GPU: $(cat out.txt)"
  run_cmd 3 models run gpt2 --precision int4 --device cuda --json
  grep -q "models run: model gpt2: hardware cuda (GPU 0): .*CUDA" err.txt || fail "no reason: $(cat err.txt)"
else
  for bits in 2 3 4 8; do
    for batch in 1 16; do
      run_cmd 0 bench gemv --device cuda --bits "$bits" --m 1024 --k 2048 --batch "$batch" --runs 10 --json
      cat out.txt
      "$PY" - out.txt "$bits" "$batch" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bits, batch = int(sys.argv[2]), int(sys.argv[3])
for key in ("device", "path", "us", "weight_gbps", "cublas_fp16_us", "ratio_vs_cublas_fp16", "stream_gbps",
            "fraction_of_stream", "max_rel_error", "bits", "group", "m", "k", "batch", "copies"):
    assert key in d, (key, d)
assert d["bits"] == bits and d["batch"] == batch and d["m"] == 1024 and d["k"] == 2048 and d["group"] == 64, d
assert isinstance(d["device"], str) and d["device"], d
# cuda::kMaxGemvBatch = 8: the dp4a GEMV up to batch 8, the tensor-core GEMM above.
assert d["path"] == ("gemv_dp4a" if batch <= 8 else "gemm_wmma_fp16"), d
for key in ("us", "us_isolated", "weight_gbps", "cublas_fp16_us", "cublas_fp16_us_isolated", "ratio_vs_cublas_fp16", "stream_gbps", "fraction_of_stream",
            "copies"):
    assert d[key] > 0, (key, d)
assert abs(d["ratio_vs_cublas_fp16"] - d["cublas_fp16_us"] / d["us"]) < 1e-6 * d["ratio_vs_cublas_fp16"], d
assert abs(d["fraction_of_stream"] - d["weight_gbps"] / d["stream_gbps"]) < 1e-6 * d["fraction_of_stream"], d
assert 0 <= d["max_rel_error"] < 0.02, d
PY
    done
  done
  run_cmd 0 bench gemv --device cuda --bits 4 --m 512 --k 1024 --runs 5
  grep -q "cuBLAS fp16" out.txt || fail "text output: $(cat out.txt)"
  run_cmd 0 models run gpt2 --precision int4 --device cuda --json
  cat out.txt
  "$PY" -c '
import json
d = json.load(open("out.txt"))
assert d["device"] == "cuda" and d["gpu_name"], d
assert d["status"] == "passed" and d["gpu_device"] == 0 and d["gpu_weight_bytes"] > 0, d
assert 0.9 < d["acc_cosine"] <= 1.0 + 1e-9, d'
fi
echo "PASS"
