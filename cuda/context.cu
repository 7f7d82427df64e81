// GpuContext (stream, cuBLAS handle, scratch), the fp16 weight matrix and the cuBLAS fp16 path
// (cuda/lowbit.hpp, docs/cuda.md).
#include <cuda_fp16.h>

#include <utility>

#include "check.cuh"
#include "lowbit.hpp"

namespace ipfsa::cuda {

const char* to_string(GpuPath path) {
  switch (path) {
    case GpuPath::kGemvDp4a:
      return "gemv_dp4a";
    case GpuPath::kGemmTensorCore:
      return "gemm_wmma_fp16";
  }
  return "?";
}

Result<std::unique_ptr<GpuContext>> GpuContext::create(int device) {
  int n = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess) {
    cudaGetLastError();
    return cuda_error("no usable CUDA device (cudaGetDeviceCount)", e);
  }
  if (device < 0 || device >= n)
    return infra_error("CUDA: device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                       " device(s))");
  std::unique_ptr<GpuContext> ctx(new GpuContext());
  ctx->device_ = device;
  IPFSA_CUDA_TRY(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  IPFSA_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  ctx->stream_ = s;
  auto blas = blas::api();
  if (!blas) return blas.error();
  cublasHandle_t h = nullptr;
  IPFSA_CUBLAS_TRY((*blas)->create(&h));
  ctx->cublas_ = h;
  IPFSA_CUBLAS_TRY((*blas)->set_stream(h, s));
  return std::move(ctx);
}

GpuContext::~GpuContext() {
  cudaSetDevice(device_);
  for (void*& p : scratch_)
    if (p) cudaFree(p);
  if (cublas_) blas::api().value()->destroy(static_cast<cublasHandle_t>(cublas_));  // loaded: it made cublas_
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

Result<void*> GpuContext::scratch(int slot, std::size_t bytes) {
  IPFSA_EXPECTS(slot >= 0 && slot < kScratchSlots, "GpuContext::scratch: slot");
  if (bytes > scratch_bytes_[slot]) {
    IPFSA_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
    if (scratch_[slot]) cudaFree(scratch_[slot]);
    scratch_[slot] = nullptr;
    scratch_bytes_[slot] = 0;
    const std::size_t grown = bytes + bytes / 2 + 256;
    IPFSA_CUDA_TRY(cudaMalloc(&scratch_[slot], grown));
    scratch_bytes_[slot] = grown;
  }
  return scratch_[slot];
}

Result<void> GpuContext::synchronize() {
  IPFSA_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
  return {};
}

// ---- fp16 weights and cuBLAS ----

GpuHalfMatrix::GpuHalfMatrix() = default;
GpuHalfMatrix::~GpuHalfMatrix() {
  if (data_) cudaFree(data_);
}
GpuHalfMatrix::GpuHalfMatrix(GpuHalfMatrix&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), rows_(o.rows_), cols_(o.cols_) {}
GpuHalfMatrix& GpuHalfMatrix::operator=(GpuHalfMatrix&& o) noexcept {
  if (this != &o) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(o.data_, nullptr);
    rows_ = o.rows_;
    cols_ = o.cols_;
  }
  return *this;
}

namespace {

__global__ void float_to_half_kernel(const float* __restrict__ in, __half* __restrict__ out, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(in[i]);
}

Result<void> to_half(const float* d_in, void* d_out, std::size_t n, cudaStream_t s) {
  const int blocks = static_cast<int>(std::min<std::size_t>((n + 255) / 256, 4096));
  float_to_half_kernel<<<blocks, 256, 0, s>>>(d_in, static_cast<__half*>(d_out), n);
  IPFSA_CUDA_LAUNCHED("float_to_half_kernel");
  return {};
}

}  // namespace

Result<GpuHalfMatrix> GpuHalfMatrix::upload(GpuContext& ctx, std::span<const float> w, int rows, int cols) {
  if (rows <= 0 || cols <= 0 || w.size() != static_cast<std::size_t>(rows) * cols)
    return input_error("GpuHalfMatrix::upload: " + std::to_string(w.size()) + " floats for a " +
                       std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
  GpuHalfMatrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  IPFSA_CUDA_TRY(cudaMalloc(&m.data_, m.device_bytes()));
  auto stage = ctx.scratch(5, w.size() * sizeof(float));
  if (!stage) return stage.error();
  const auto s = static_cast<cudaStream_t>(ctx.stream());
  IPFSA_CUDA_TRY(cudaMemcpyAsync(*stage, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice, s));
  if (auto ok = to_half(static_cast<const float*>(*stage), m.data_, w.size(), s); !ok) return ok.error();
  IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
  return std::move(m);
}

Result<void> GpuContext::gemm_fp16(const GpuHalfMatrix& w, const float* d_x, int batch, float* d_y) {
  if (batch <= 0) return input_error("gemm_fp16: batch must be positive");
  IPFSA_CUDA_TRY(cudaSetDevice(device_));  // the calling thread may not be the one that created us
  const std::size_t nx = static_cast<std::size_t>(batch) * w.cols();
  auto xh = scratch(4, nx * sizeof(__half));
  if (!xh) return xh.error();
  const auto s = static_cast<cudaStream_t>(stream_);
  if (auto ok = to_half(d_x, *xh, nx, s); !ok) return ok.error();
  // Row-major y (batch, rows) = x (batch, cols) W^T is, column-major, Y^T (rows, batch) =
  // Wc^T (rows, cols) Xc (cols, batch) with Wc = W read as a cols x rows column-major matrix.
  const float one = 1.0f;
  const float zero = 0.0f;
  // cublas_ exists, so the library is loaded.
  IPFSA_CUBLAS_TRY(blas::api().value()->gemm_ex(
      static_cast<cublasHandle_t>(cublas_), CUBLAS_OP_T, CUBLAS_OP_N, w.rows(), batch, w.cols(), &one,
      w.device_data(), CUDA_R_16F, w.cols(), *xh, CUDA_R_16F, w.cols(), &zero, d_y, CUDA_R_32F, w.rows(),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return {};
}

Result<void> GpuContext::through_device(std::span<const float> x, std::span<float> y,
                                        const std::function<Result<void>(const float*, float*)>& fn) {
  IPFSA_CUDA_TRY(cudaSetDevice(device_));  // the calling thread may not be the one that created us
  auto dx = scratch(0, x.size_bytes());
  if (!dx) return dx.error();
  auto dy = scratch(1, y.size_bytes());
  if (!dy) return dy.error();
  const auto s = static_cast<cudaStream_t>(stream_);
  IPFSA_CUDA_TRY(cudaMemcpyAsync(*dx, x.data(), x.size_bytes(), cudaMemcpyHostToDevice, s));
  if (auto ok = fn(static_cast<const float*>(*dx), static_cast<float*>(*dy)); !ok) return ok;
  IPFSA_CUDA_TRY(cudaMemcpyAsync(y.data(), *dy, y.size_bytes(), cudaMemcpyDeviceToHost, s));
  IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
  return {};
}

Result<void> GpuContext::gemm_fp16_host(const GpuHalfMatrix& w, std::span<const float> x, int batch,
                                        std::span<float> y) {
  if (batch <= 0 || x.size() != static_cast<std::size_t>(batch) * w.cols() ||
      y.size() != static_cast<std::size_t>(batch) * w.rows())
    return input_error("gemm_fp16_host: sizes do not match the matrix and batch");
  return through_device(x, y, [&](const float* dx, float* dy) { return gemm_fp16(w, dx, batch, dy); });
}

}  // namespace ipfsa::cuda
