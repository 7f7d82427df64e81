// `ipfs-accelerate bench gemv`: speed of the dequant-fused low-bit GEMV/GEMM (src/engine/qgemm.hpp)
// on a seeded N(0, 1) matrix, against the read-bandwidth ceiling and an Eigen fp32 product of the
// same shape measured in the same run (docs/kernels.md). Single process, no MPI.
// `--device cuda` times the GPU kernels instead (cuda::bench_gemv on GPU 0: the dequant-fused
// GEMV or tensor-core GEMM against cuBLAS fp16 and the device's streaming-read bandwidth,
// docs/cuda.md).
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
  int repeats = 20;            // timed products per measurement (--repeats or --runs); the median is reported
  bool repeats_given = false;  // --repeats / --runs was given (cuda: otherwise GemvBenchConfig's 100)
  int stream_mib = 512;        // size of the read-bandwidth probe's buffer
  bool stream_mib_given = false;  // cuda: measure the device's read bandwidth over this many MiB
  bool warm = false;              // skip the cache eviction before each timed product
  std::uint64_t seed = 42;
  bool json = false;           // one JSON object on stdout; otherwise one human-readable line
  std::string device = "cpu";  // cpu or cuda
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
//
// --device cuda: the same checks (messages name the flag), plus --threads and --warm rejected (CPU
// only), all before the GPU is touched; then cuda::bench_gemv on GPU 0 with {bits, group, scheme,
// m, k, batch, runs = --runs (default 100), seed} and prints device (the GPU's name), path,
// us, weight_gbps, cublas_fp16_us, ratio_vs_cublas_fp16, stream_gbps, fraction_of_stream,
// max_rel_error (against the naive GPU kernel), bits, group, scheme, m, k, batch, runs, copies.
// Exit 2 in a build without CUDA ("this build has no CUDA backend (IPFSA_ENABLE_CUDA=OFF)"); 3
// with the reason when there is no usable GPU or a CUDA call fails.
int bench_gemv_command(const BenchGemvOptions& options);

}  // namespace ipfsa::cli
