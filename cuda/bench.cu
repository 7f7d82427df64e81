// Device measurements (cuda/lowbit.hpp): the streaming-read probe and the GEMV benchmark behind
// `ipfs-accelerate bench gemv --device cuda` and benchmarks/gpu (docs/cuda.md §Measuring).
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

#include "check.cuh"
#include "lowbit.hpp"

namespace ipfsa::cuda {

namespace {

// Reads n 16-byte words (streaming loads, four in flight per thread); the XOR of everything read
// is written only if it equals a constant, which keeps the loads without a store per thread.
__global__ void stream_read_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* sink) {
  unsigned acc = 0;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = __ldcs(p + i);
    const uint4 b = __ldcs(p + i + stride);
    const uint4 c = __ldcs(p + i + 2 * stride);
    const uint4 d = __ldcs(p + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) {
    const uint4 a = __ldcs(p + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

// Pseudo-random fp16 values in [-0.05, 0.05), never all zero.
__global__ void fill_half_kernel(__half* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ seed;
    h ^= h >> 15;
    h *= 0x85EBCA77u;
    h ^= h >> 13;
    p[i] = __float2half_rn((static_cast<float>(h & 0xFFFFu) / 65536.0f - 0.5f) * 0.1f);
  }
}

// Products per timed sample in the steady-state figures.
constexpr int kBurst = 10;

int sm_count(int device) {
  int n = 0;
  cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
  return std::max(n, 1);
}

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Times `samples` event pairs on `s`, each around `inner` back-to-back calls of fn(i) (i counts
// every call), after `warmup` untimed calls; the median over samples of the time per call, in
// microseconds. inner = 1 times an isolated launch (the event pair's own overhead included);
// inner > 1 the steady state of launches queued one after another, as a model's layers run.
// fn returns Result<void>.
template <typename Fn>
Result<double> time_median_us(cudaStream_t s, int warmup, int samples, int inner, Fn&& fn) {
  for (int i = 0; i < warmup; ++i)
    if (auto ok = fn(i); !ok) return ok.error();
  std::vector<cudaEvent_t> ev(2 * static_cast<std::size_t>(samples));
  for (auto& e : ev) IPFSA_CUDA_TRY(cudaEventCreate(&e));
  std::optional<Error> failed;
  int call = 0;
  for (int i = 0; i < samples && !failed; ++i) {
    cudaEventRecord(ev[2 * i], s);
    for (int j = 0; j < inner && !failed; ++j)
      if (auto ok = fn(call++); !ok) failed = ok.error();
    cudaEventRecord(ev[2 * i + 1], s);
  }
  const cudaError_t sync = cudaStreamSynchronize(s);
  std::vector<float> ms(samples);
  for (int i = 0; i < samples && sync == cudaSuccess && !failed; ++i)
    cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]);
  for (auto& e : ev) cudaEventDestroy(e);
  if (failed) return *failed;
  if (sync != cudaSuccess) return cuda_error("cudaStreamSynchronize", sync);
  return median(std::move(ms)) * 1000.0 / inner;
}

struct DeviceMem {
  void* p = nullptr;
  ~DeviceMem() {
    if (p) cudaFree(p);
  }
};

}  // namespace

Result<double> stream_read_gbps(GpuContext& ctx, std::size_t bytes, int runs) {
  IPFSA_CUDA_TRY(cudaSetDevice(ctx.device()));
  bytes = bytes / 16 * 16;
  if (bytes == 0 || runs <= 0) return input_error("stream_read_gbps: bytes and runs must be positive");
  DeviceMem buf;
  DeviceMem sink;
  IPFSA_CUDA_TRY(cudaMalloc(&buf.p, bytes));
  IPFSA_CUDA_TRY(cudaMalloc(&sink.p, sizeof(unsigned)));
  IPFSA_CUDA_TRY(cudaMemset(buf.p, 0x5A, bytes));
  const auto s = static_cast<cudaStream_t>(ctx.stream());
  const int blocks = sm_count(ctx.device()) * 8;
  auto us = time_median_us(s, 3, runs, 1, [&](int) -> Result<void> {
    stream_read_kernel<<<blocks, 256, 0, s>>>(static_cast<const uint4*>(buf.p), bytes / 16,
                                              static_cast<unsigned*>(sink.p));
    IPFSA_CUDA_LAUNCHED("stream_read_kernel");
    return {};
  });
  if (!us) return us.error();
  return static_cast<double>(bytes) / (*us * 1e-6) / 1e9;
}

Result<GemvBenchResult> bench_gemv(GpuContext& ctx, const GemvBenchConfig& c) {
  if (c.batch <= 0 || c.m <= 0 || c.k <= 0 || c.runs <= 0)
    return input_error("bench_gemv: sizes and runs must be positive");
  IPFSA_CUDA_TRY(cudaSetDevice(ctx.device()));
  GemvBenchResult r;
  cudaDeviceProp prop{};
  IPFSA_CUDA_TRY(cudaGetDeviceProperties(&prop, ctx.device()));
  r.device = prop.name;
  const auto s = static_cast<cudaStream_t>(ctx.stream());

  if (c.stream_gbps > 0) {
    r.stream_gbps = c.stream_gbps;
  } else {
    auto g = stream_read_gbps(ctx);
    if (!g) return g.error();
    r.stream_gbps = *g;
  }

  // Random codes, scales and offsets (a matrix of zeros would time a different machine).
  const int groups = c.k / std::max(c.group, 1);
  const std::size_t row_bytes = static_cast<std::size_t>(c.k) / 32 * 4 * c.bits;
  std::vector<std::uint8_t> packed(static_cast<std::size_t>(c.m) * row_bytes);
  std::vector<std::uint16_t> scales(static_cast<std::size_t>(c.m) * groups);
  std::vector<std::uint16_t> zeros(c.symmetric ? 0 : scales.size());
  std::mt19937_64 rng(c.seed);
  for (std::size_t i = 0; i < packed.size(); i += 8) {
    const std::uint64_t v = rng();
    for (std::size_t j = 0; j < 8 && i + j < packed.size(); ++j)
      packed[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  std::uniform_real_distribution<float> us_(0.002f, 0.02f);
  std::uniform_real_distribution<float> uz(-0.1f, 0.0f);
  for (auto& v : scales) v = __half_as_ushort(__float2half_rn(us_(rng)));
  for (auto& v : zeros) v = __half_as_ushort(__float2half_rn(uz(rng)));
  QuantView view{c.m,         c.k,           c.bits,        c.group,
                 c.symmetric, packed.data(), scales.data(), c.symmetric ? nullptr : zeros.data()};
  if (auto ok = validate(view); !ok) return ok.error();

  std::vector<GpuQuantMatrix> copies;
  {
    auto first = GpuQuantMatrix::upload(ctx, view);
    if (!first) return first.error();
    copies.push_back(std::move(first).value());
  }
  const std::size_t qbytes = copies[0].device_bytes();
  const int want = static_cast<int>(std::clamp<std::size_t>((c.rotate_bytes + qbytes - 1) / qbytes, 2, 64));
  while (static_cast<int>(copies.size()) < want) {
    auto more = GpuQuantMatrix::upload(ctx, view);
    if (!more) return more.error();
    copies.push_back(std::move(more).value());
  }
  r.copies = want;
  packed = {};

  // Activations N(0, 1).
  std::vector<float> hx(static_cast<std::size_t>(c.batch) * c.k);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : hx) v = nd(rng);
  DeviceMem dx, dy, dy_ref;
  IPFSA_CUDA_TRY(cudaMalloc(&dx.p, hx.size() * sizeof(float)));
  IPFSA_CUDA_TRY(cudaMalloc(&dy.p, static_cast<std::size_t>(c.batch) * c.m * sizeof(float)));
  IPFSA_CUDA_TRY(cudaMalloc(&dy_ref.p, static_cast<std::size_t>(c.batch) * c.m * sizeof(float)));
  IPFSA_CUDA_TRY(cudaMemcpy(dx.p, hx.data(), hx.size() * sizeof(float), cudaMemcpyHostToDevice));
  const auto* x = static_cast<const float*>(dx.p);
  auto* y = static_cast<float*>(dy.p);

  GpuPath path = GpuPath::kGemvDp4a;
  auto run_q = [&](int i) -> Result<void> {
    auto p = ctx.qgemm(copies[i % copies.size()], x, c.batch, y);
    if (!p) return p.error();
    path = *p;
    return {};
  };
  auto q_us = time_median_us(s, 10, c.runs, kBurst, run_q);
  if (!q_us) return q_us.error();
  auto q_iso = time_median_us(s, 2, c.runs, 1, run_q);
  if (!q_iso) return q_iso.error();
  r.us_isolated = *q_iso;
  r.path = to_string(path);
  r.us = *q_us;
  r.weight_gbps = static_cast<double>(qbytes) / (r.us * 1e-6) / 1e9;
  r.fraction_of_stream = r.weight_gbps / r.stream_gbps;

  // Correctness of what was timed: the fast kernel against the plain one on copy 0.
  if (auto p = ctx.qgemm(copies[0], x, c.batch, y); !p) return p.error();
  if (auto ok = ctx.qgemm_naive(copies[0], x, c.batch, static_cast<float*>(dy_ref.p)); !ok) return ok.error();
  std::vector<float> hy(static_cast<std::size_t>(c.batch) * c.m);
  std::vector<float> hr(hy.size());
  IPFSA_CUDA_TRY(cudaMemcpyAsync(hy.data(), dy.p, hy.size() * sizeof(float), cudaMemcpyDeviceToHost, s));
  IPFSA_CUDA_TRY(cudaMemcpyAsync(hr.data(), dy_ref.p, hr.size() * sizeof(float), cudaMemcpyDeviceToHost, s));
  IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
  double max_ref = 0.0;
  double max_diff = 0.0;
  for (std::size_t i = 0; i < hy.size(); ++i) {
    if (!std::isfinite(hy[i])) return infra_error("bench_gemv: the kernel produced a non-finite value");
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(hr[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(hy[i]) - hr[i]));
  }
  r.max_rel_error = max_ref > 0 ? max_diff / max_ref : max_diff;
  copies.clear();

  // cuBLAS fp16 of the same shape: fp16 weights, activations and output, fp32 accumulation.
  const std::size_t hbytes = static_cast<std::size_t>(c.m) * c.k * 2;
  const int hcopies =
      static_cast<int>(std::clamp<std::size_t>((c.rotate_bytes + hbytes - 1) / hbytes, 2, 64));
  std::vector<DeviceMem> wh(hcopies);
  for (int i = 0; i < hcopies; ++i) {
    IPFSA_CUDA_TRY(cudaMalloc(&wh[i].p, hbytes));
    fill_half_kernel<<<sm_count(ctx.device()) * 8, 256, 0, s>>>(static_cast<__half*>(wh[i].p), hbytes / 2,
                                                                0x1234u + static_cast<unsigned>(i));
    IPFSA_CUDA_LAUNCHED("fill_half_kernel");
  }
  DeviceMem xh, yh;
  IPFSA_CUDA_TRY(cudaMalloc(&xh.p, static_cast<std::size_t>(c.batch) * c.k * 2));
  IPFSA_CUDA_TRY(cudaMalloc(&yh.p, static_cast<std::size_t>(c.batch) * c.m * 2));
  fill_half_kernel<<<64, 256, 0, s>>>(static_cast<__half*>(xh.p), static_cast<std::size_t>(c.batch) * c.k,
                                      0x777u);
  IPFSA_CUDA_LAUNCHED("fill_half_kernel");
  const float one = 1.0f;
  const float zero = 0.0f;
  auto h = static_cast<cublasHandle_t>(ctx.cublas());
  const blas::Api& cublas = *blas::api().value();  // loaded: the context has a handle
  auto run_b = [&](int i) -> Result<void> {
    IPFSA_CUBLAS_TRY(cublas.gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, c.m, c.batch, c.k, &one, wh[i % hcopies].p,
                                    CUDA_R_16F, c.k, xh.p, CUDA_R_16F, c.k, &zero, yh.p, CUDA_R_16F, c.m,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return {};
  };
  auto b_us = time_median_us(s, 10, c.runs, kBurst, run_b);
  if (!b_us) return b_us.error();
  auto b_iso = time_median_us(s, 2, c.runs, 1, run_b);
  if (!b_iso) return b_iso.error();
  r.cublas_fp16_us_isolated = *b_iso;
  r.cublas_fp16_us = *b_us;
  r.ratio_vs_cublas_fp16 = r.cublas_fp16_us / r.us;
  return r;
}

}  // namespace ipfsa::cuda
