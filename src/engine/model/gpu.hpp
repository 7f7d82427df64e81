// The engine's CUDA backend (docs/cuda.md §Engine backend): one GPU that a model's linear layers
// run on. A Linear uploaded to a GpuDevice keeps its weights on the device (quantized ones as a
// cuda::GpuQuantMatrix read by the dequant-fused kernels, fp32 ones as an fp16 copy for cuBLAS)
// and multiplies there; attention, norms, embedding lookups and the KV cache stay on the CPU.
// Builds without CUDA (IPFSA_HAVE_CUDA unset) compile this too: open() then fails with
// kNoCudaBuild, so a `hardware: cuda` task never silently runs on the CPU.
// Thread-safety: a GpuDevice serialises every use of its context behind a mutex, so the Linears
// of one model may be applied from several threads; errors are sticky until take_error().
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "core/error.hpp"
#include "engine/quant.hpp"

#if IPFSA_HAVE_CUDA
#include "lowbit.hpp"
#endif

namespace ipfsa::engine {

// The error of a build without the CUDA backend.
inline constexpr const char* kNoCudaBuild = "this build has no CUDA backend (IPFSA_ENABLE_CUDA=OFF)";

// True when this binary was built with the CUDA backend.
bool cuda_built();

// Weights of one Linear on the device (defined in gpu.cpp; empty in builds without CUDA).
struct GpuWeights;

class GpuDevice {
 public:
  // Selects GPU `device` and creates its context (stream, cuBLAS handle). Error: kInput with
  // kNoCudaBuild in a build without CUDA; kInfra with the reason cuda::GpuContext::create gave
  // (no driver, no such device).
  static Result<std::shared_ptr<GpuDevice>> open(int device);
  ~GpuDevice();
  GpuDevice(const GpuDevice&) = delete;
  GpuDevice& operator=(const GpuDevice&) = delete;

  int device() const;
  const std::string& name() const;  // the GPU's name, e.g. "NVIDIA H100 80GB HBM3"
  // Device bytes of every weight matrix uploaded so far (GpuQuantMatrix / GpuHalfMatrix).
  std::size_t weight_bytes() const;

  // Copies a weight matrix to the device: quantized (QuantMatrix, through cuda_view) or fp32
  // (w, rows x cols, stored as fp16). Error (kInfra or kInput) from the upload; nothing is kept.
  Result<std::shared_ptr<const GpuWeights>> upload(const QuantMatrix& q);
  Result<std::shared_ptr<const GpuWeights>> upload(std::span<const float> w, int rows, int cols);

  // y (n, rows) = x (n, cols) W^T on the device (no bias), synchronously. A failure is recorded
  // (the first one is kept) and y is filled with NaN: callers that return void keep going and
  // the model checks take_error() when its pass ends. After an error every product is skipped.
  void multiply(const GpuWeights& w, std::span<const float> x, int n, std::span<float> y);

  // The first error since the last call (and clears it), or ok.
  Result<void> take_error();

  struct Impl;

 private:
  explicit GpuDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

#if IPFSA_HAVE_CUDA
// The kernels' view of a QuantMatrix (no copy: the pointers alias q's vectors, which must outlive
// the view): shape, bits, group, symmetric == (scheme == kSymmetric), zeros null when symmetric.
cuda::QuantView cuda_view(const QuantMatrix& q);
#endif

}  // namespace ipfsa::engine
