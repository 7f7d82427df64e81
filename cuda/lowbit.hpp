// The CUDA backend's host API (issue 4, docs/cuda.md): low-bit weights on the GPU, the
// dequant-fused GEMV (batch 1-8) and tensor-core GEMM (batch > 8) that read them, the cuBLAS fp16
// baseline and fp16 path, the device streaming-read probe, and the 2/4-bit KIVI KV cache with its
// decode-attention kernel.
// Plain C++: no CUDA header is needed to include this, so the engine (g++) and the GPU-only test
// and benchmark programs share it. Depends on core/error.hpp only.
// Every function that touches the GPU returns Result: a CUDA or cuBLAS failure, or no device, is an
// Error (kInfra) naming the call; bad shapes or parameters are kInput. Nothing here aborts on a
// GPU error.
// Thread-safety: a GpuContext (one stream, one cuBLAS handle, scratch buffers) must be used by one
// thread at a time, but may be used from any thread (each product selects the context's device); the matrices
// and caches are immutable after upload (except KV appends) and can be shared by contexts on the same device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/error.hpp"

namespace ipfsa::cuda {

// A host view of the engine's packed QuantMatrix (src/engine/quant.hpp, docs/quantization.md):
// 32-weight chunks of 4 * bits bytes, fp16 scales and (asymmetric) fp16 offsets per group.
struct QuantView {
  int rows = 0;
  int cols = 0;
  int bits = 4;    // 2, 3, 4 or 8
  int group = 64;  // 32, 64 or 128
  bool symmetric = false;
  const std::uint8_t* packed = nullptr;   // rows * (cols / 32 * 4 * bits) bytes
  const std::uint16_t* scales = nullptr;  // rows * (cols / group) fp16
  const std::uint16_t* zeros = nullptr;   // rows * (cols / group) fp16; null when symmetric
};

// Ok when the view describes a matrix the kernels take (the same rules as the CPU engine).
Result<void> validate(const QuantView& w);

class GpuContext;

// Weights repacked at upload into the layout the kernels read (docs/cuda.md §Layout); owns its
// device memory. Move-only.
class GpuQuantMatrix {
 public:
  GpuQuantMatrix();
  ~GpuQuantMatrix();
  GpuQuantMatrix(GpuQuantMatrix&&) noexcept;
  GpuQuantMatrix& operator=(GpuQuantMatrix&&) noexcept;

  // Repacks on the host and copies to the current device of `ctx`.
  static Result<GpuQuantMatrix> upload(GpuContext& ctx, const QuantView& w);

  int rows() const;
  int cols() const;
  int bits() const;
  int group() const;
  bool symmetric() const;
  // Bytes the kernels read for one product: codes + scales/offsets as stored on the device.
  std::size_t device_bytes() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// An fp16 copy of an fp32 weight matrix (rows, cols) row-major, for the cuBLAS path. Move-only.
class GpuHalfMatrix {
 public:
  GpuHalfMatrix();
  ~GpuHalfMatrix();
  GpuHalfMatrix(GpuHalfMatrix&&) noexcept;
  GpuHalfMatrix& operator=(GpuHalfMatrix&&) noexcept;

  static Result<GpuHalfMatrix> upload(GpuContext& ctx, std::span<const float> w, int rows, int cols);
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  const void* device_data() const { return data_; }  // __half*, rows * cols
  std::size_t device_bytes() const { return static_cast<std::size_t>(rows_) * cols_ * 2; }

 private:
  void* data_ = nullptr;
  int rows_ = 0;
  int cols_ = 0;
};

// Which kernel qgemm used (for tests and the benchmark table).
enum class GpuPath : std::uint8_t { kGemvDp4a = 0, kGemmTensorCore = 1 };
const char* to_string(GpuPath path);
// Batches up to this size run the dequant-fused dp4a GEMV; larger ones the tensor-core GEMM.
inline constexpr int kMaxGemvBatch = 8;

// One device, one stream, one cuBLAS handle, and scratch buffers that grow with use.
class GpuContext {
 public:
  ~GpuContext();
  // Selects `device` (cudaSetDevice) and creates the stream and cuBLAS handle. kInfra error when
  // there is no such device.
  static Result<std::unique_ptr<GpuContext>> create(int device);

  int device() const { return device_; }

  // ---- device-pointer API: asynchronous on the context's stream ----
  // y (batch, w.rows) = x (batch, w.cols) W-hat^T, fp32 row-major on the device. batch <=
  // kMaxGemvBatch uses the dp4a GEMV (activations rounded to int8 per weight group, exactly as the
  // CPU kernels do, docs/kernels.md), larger batches the fp16 tensor-core GEMM; `force` picks one.
  Result<GpuPath> qgemm(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y);
  Result<GpuPath> qgemm(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y, GpuPath force);
  // The plain reference kernel: one thread per output, fp32 dequantization, fp32 accumulation.
  // Slow; used to check the fast kernels on the device.
  Result<void> qgemm_naive(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y);
  // y (batch, rows) = x (batch, cols) W^T through cuBLAS (fp16 operands, fp32 accumulate and output).
  Result<void> gemm_fp16(const GpuHalfMatrix& w, const float* d_x, int batch, float* d_y);

  // ---- host API: copies in, runs, copies out, synchronizes ----
  Result<GpuPath> qgemm_host(const GpuQuantMatrix& w, std::span<const float> x, int batch,
                             std::span<float> y);
  Result<void> gemm_fp16_host(const GpuHalfMatrix& w, std::span<const float> x, int batch,
                              std::span<float> y);

  Result<void> synchronize();

  // Internal handles (cudaStream_t, cublasHandle_t) for the .cu files.
  void* stream() const { return stream_; }
  void* cublas() const { return cublas_; }
  // A device scratch buffer of at least `bytes` for slot `slot` (0..kScratchSlots-1); grows, never
  // shrinks; valid until the next call for the same slot.
  static constexpr int kScratchSlots = 6;
  Result<void*> scratch(int slot, std::size_t bytes);

 private:
  GpuContext() = default;
  // Copies x to the device, runs fn(d_x, d_y), copies y back, synchronizes (the host API's body).
  Result<void> through_device(std::span<const float> x, std::span<float> y,
                              const std::function<Result<void>(const float*, float*)>& fn);
  int device_ = 0;
  void* stream_ = nullptr;
  void* cublas_ = nullptr;
  void* scratch_[kScratchSlots] = {};
  std::size_t scratch_bytes_[kScratchSlots] = {};
};

// ---- measurement (ipfs-accelerate bench gemv --device cuda; benchmarks/gpu) ----

// Streaming-read bandwidth of the device: a kernel reading `bytes` with 16-byte loads, median of
// `runs` timed with events after a warm-up, in GB/s (1e9 bytes per second).
Result<double> stream_read_gbps(GpuContext& ctx, std::size_t bytes = std::size_t{1} << 30, int runs = 20);

struct GemvBenchConfig {
  int bits = 4;
  int group = 64;
  bool symmetric = false;
  int m = 4096;  // weight rows (output features)
  int k = 4096;  // weight cols (input features)
  int batch = 1;
  int runs = 100;                                     // timed samples (see GemvBenchResult::us)
  std::size_t rotate_bytes = std::size_t{256} << 20;  // weight copies rotate until this many bytes (> L2)
  std::uint64_t seed = 1;
  double stream_gbps = 0.0;  // 0: measure here; > 0: reuse a figure from the same run
};

struct GemvBenchResult {
  std::string device;  // GPU name
  std::string path;    // to_string(GpuPath)
  // Steady state: the median over `runs` samples of the time per product in a burst of 10
  // back-to-back products (activation rounding included), as consecutive layers run.
  double us = 0.0;
  double us_isolated = 0.0;     // one product alone between two events (launch overhead in)
  double weight_gbps = 0.0;     // device_bytes / us
  double cublas_fp16_us = 0.0;  // cuBLAS fp16 of the same shape, same run, same method as us
  double cublas_fp16_us_isolated = 0.0;
  double ratio_vs_cublas_fp16 = 0.0;  // cublas_fp16_us / us
  double stream_gbps = 0.0;
  double fraction_of_stream = 0.0;  // weight_gbps / stream_gbps
  double max_rel_error = 0.0;       // max |y - y_naive| / max |y_naive| over the whole output
  int copies = 0;                   // weight buffers rotated
};

// Random codes and random (never zero) scales and offsets, uploaded `copies` times; for the
// quantized kernel and for cuBLAS fp16 alike: warm-up, then `runs` samples of bursts of 10 and
// `runs` isolated products, rotating among the copies.
Result<GemvBenchResult> bench_gemv(GpuContext& ctx, const GemvBenchConfig& config);

// ---- KV cache (KIVI, 2 or 4 bits) and decode attention ----

struct GpuKvParams {
  int heads = 32;
  int head_dim = 128;
  int bits = 2;           // 2 or 4
  int group = 128;        // keys: tokens per block, one (scale, zero) per (head, channel) per block
  int value_group = 0;    // values: channels per (scale, zero) of one token and head; 0 = head_dim
  int max_tokens = 4096;  // capacity
};

// Keys of the newest tokens that do not yet fill a block stay fp16 until they do; values are
// quantized per token at once (docs/cuda.md §KV cache). Move-only.
class GpuKvCache {
 public:
  GpuKvCache();
  ~GpuKvCache();
  GpuKvCache(GpuKvCache&&) noexcept;
  GpuKvCache& operator=(GpuKvCache&&) noexcept;

  static Result<GpuKvCache> create(GpuContext& ctx, const GpuKvParams& params);
  // Appends n tokens: keys and values (n, heads, head_dim) fp32 on the host. Error (kInput) when
  // the capacity would be exceeded or sizes are wrong.
  Result<void> append(GpuContext& ctx, std::span<const float> keys, std::span<const float> values);
  // out (heads, head_dim) = softmax(q K^T / sqrt(head_dim)) V per head, on the host.
  Result<void> attention(GpuContext& ctx, std::span<const float> query, std::span<float> out);
  // The cache's contents dequantized, (tokens, heads, head_dim) each, on the host: what attention
  // sees (for tests).
  Result<void> dequantize(GpuContext& ctx, std::span<float> keys, std::span<float> values);

  int tokens() const;
  const GpuKvParams& params() const;
  // Device bytes of the quantized payload + scales/zeros + fp16 key tail for the current tokens.
  std::size_t bytes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipfsa::cuda
