// `ipfs-accelerate bench gemv`: speed of the dequant-fused low-bit GEMV/GEMM (src/engine/qgemm.hpp)
// on a seeded N(0, 1) matrix, against the read-bandwidth ceiling and an Eigen fp32 product of the
// same shape measured in the same run (docs/kernels.md). Single process, no MPI.
// Thread-safety: writes to std::cout / std::cerr; call from one thread.
#pragma once

#include <cstdint>
#include <string>

namespace ipfsa::cli {

struct BenchGemvOptions {
  int bits = 4;                 // 2, 3, 4 or 8
  int m = 4096;                 // rows of W (output features)
  int k = 14336;                // columns of W (input features); a multiple of group
  int group = 64;               // 32, 64 or 128
  std::string scheme = "asym";  // asym or sym
  int batch = 1;                // activation rows (1: GEMV)
  int threads = 0;              // 0: default_thread_count() (hardware threads, or IPFSA_THREADS)
  int repeats = 20;             // timed products per measurement; the median is reported
  int stream_mib = 512;         // size of the read-bandwidth probe's buffer
  bool warm = false;            // skip the cache eviction before each timed product
  std::uint64_t seed = 42;
  bool json = false;  // one JSON object on stdout; otherwise one human-readable line
};

// Draws W (m x k) and X (batch x k) from N(0, 1) (std::mt19937_64(seed), W first), quantizes W with
// min/max rounding (search_clip off: same layout and speed), and prints: us (median microseconds
// per product, caches evicted before each unless --warm), weight_bytes, weight_gbps,
// bits_per_weight, eigen_fp32_us (Eigen fp32 product of the same shape, same threads, same
// eviction), ratio_vs_eigen_fp32, stream_gbps (ReadProbe, best of 5), fraction_of_stream, isa (avx512vnni |
// avx2 | portable), threads, max_rel_error (max |y - y_ref| / max |y_ref| against gemv_reference), rel_rmse
// and, unless --warm, stream_gbps_during_median (the eviction sweeps between the kernel's runs). Returns 0,
// or 2 with a message on stderr for bad options (unsupported bits/group/scheme, k not a multiple of group, m
// * k above 2^28, batch * (m + k) above 2^28).
int bench_gemv_command(const BenchGemvOptions& options);

}  // namespace ipfsa::cli
