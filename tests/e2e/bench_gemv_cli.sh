#!/usr/bin/env bash
# `bench gemv` (issue 3, item 8): the JSON fields on a small shape for every bit width, the forced
# portable path, and exit 2 with a message for bad flags. No timing is asserted (only that the
# figures are positive and consistent with each other).
source "$(dirname "$0")/lib.bash"
for bits in 2 3 4 8; do
  "$IPFSA_BIN" bench gemv --bits "$bits" --m 256 --k 1024 --group 64 --batch 1 --threads 2 --repeats 3 \
    --stream-mib 64 --json > "gemv$bits.json"
  cat "gemv$bits.json"
  "$PY" - "gemv$bits.json" "$bits" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bits = int(sys.argv[2])
for key in ("us", "weight_bytes", "weight_gbps", "eigen_fp32_us", "ratio_vs_eigen_fp32", "stream_gbps",
            "fraction_of_stream", "isa", "threads", "bits_per_weight", "max_rel_error"):
    assert key in d, (key, d)
assert d["bits"] == bits and d["m"] == 256 and d["k"] == 1024 and d["threads"] == 2, d
assert d["isa"] in ("avx512vnni", "avx2", "portable"), d
# 256 x 1024 codes + fp16 scale and offset per group of 64.
assert d["weight_bytes"] == 256 * 1024 * bits // 8 + 256 * (1024 // 64) * 4, d
assert abs(d["bits_per_weight"] - (bits + 32 / 64)) < 1e-9, d
for key in ("us", "weight_gbps", "eigen_fp32_us", "stream_gbps", "fraction_of_stream", "ratio_vs_eigen_fp32"):
    assert d[key] > 0, (key, d)
assert abs(d["weight_gbps"] - d["weight_bytes"] / d["us"] / 1e3) < 1e-6 * d["weight_gbps"], d
assert abs(d["ratio_vs_eigen_fp32"] - d["eigen_fp32_us"] / d["us"]) < 1e-6 * d["ratio_vs_eigen_fp32"], d
# int8 activation rounding: well under 2 % of the largest output on N(0, 1) data (docs/kernels.md).
assert 0 <= d["max_rel_error"] < 0.02, d
PY
done

# Symmetric, batch > 1 (GEMM), and the portable path forced by the environment.
IPFSA_KERNEL=portable "$IPFSA_BIN" bench gemv --bits 3 --m 67 --k 512 --group 128 --scheme sym --batch 3 \
  --repeats 2 --stream-mib 16 --json > sym.json
cat sym.json
"$PY" -c '
import json
d = json.load(open("sym.json"))
assert d["isa"] == "portable" and d["scheme"] == "sym" and d["batch"] == 3, d
assert abs(d["bits_per_weight"] - (3 + 16 / 128)) < 1e-9, d
assert 0 <= d["max_rel_error"] < 0.02, d'

# Bad flags: exit 2 and a message on stderr.
expect_exit2() {
  set +e
  "$IPFSA_BIN" bench gemv "$@" > out.txt 2> err.txt
  local rc=$?
  set -e
  expect_eq "$rc" 2 "exit code for: $*"
  [ -s err.txt ] || fail "no message on stderr for: $*"
}
expect_exit2 --bits 5
expect_exit2 --group 48
expect_exit2 --scheme zero
expect_exit2 --m 0
expect_exit2 --k 100 --group 64
expect_exit2 --batch 0
expect_exit2 --threads 0
expect_exit2 --m 65536 --k 65536
grep -q "multiple of the group" <(
  set +e
  "$IPFSA_BIN" bench gemv --k 100 --group 64 2>&1
) || fail "no explanation for --k 100 --group 64"
echo "PASS"
