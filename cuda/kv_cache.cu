// The KIVI-style 2/4-bit KV cache on the GPU and its decode-attention kernel (cuda/lowbit.hpp,
// docs/cuda.md §KV cache). Keys: per (head, channel) over blocks of `group` tokens; values: per
// token in groups of `value_group` channels; both asymmetric min/max with the zero rounded down and
// the scale rounded up to fp16 (every element within scale / 2 of its reconstruction), packed as
// the CPU cache packs them (src/engine/kv_cache.cpp: code i of n at byte i % (n * bits / 8), shift
// (i / (n * bits / 8)) * bits).
#include <cuda_fp16.h>

#include <cmath>
#include <utility>
#include <vector>

#include "check.cuh"
#include "lowbit.hpp"

namespace ipfsa::cuda {

// The cache as the kernels see it: plain values and device pointers (passed to kernels by value).
struct KvDev {
  GpuKvParams p;
  int tokens = 0;
  int blocks = 0;                       // quantized key blocks
  int tail = 0;                         // fp16 keys not yet in a block (tokens - blocks * group)
  std::uint8_t* key_codes = nullptr;    // (block, head, channel, group * bits / 8)
  __half2* key_sm = nullptr;            // (block, head, channel): scale, zero
  __half* key_tail = nullptr;           // (group, head, channel)
  std::uint8_t* value_codes = nullptr;  // (token, head, head_dim * bits / 8)
  __half2* value_sm = nullptr;          // (token, head, head_dim / value_group)
  float* scores = nullptr;              // (head, max_tokens)
  float* io = nullptr;                  // query (heads * head_dim) | out (heads * head_dim)

  __host__ __device__ std::size_t row() const { return static_cast<std::size_t>(p.heads) * p.head_dim; }
  __host__ __device__ int key_bytes() const { return p.group * p.bits / 8; }
  __host__ __device__ int value_bytes() const { return p.head_dim * p.bits / 8; }
  __host__ __device__ int value_groups() const { return p.head_dim / p.value_group; }
};

struct GpuKvCache::Impl {
  KvDev c;
  float* staging = nullptr;  // fp32 keys | values of one append (grows)
  std::size_t staging_floats = 0;

  ~Impl() {
    for (void* q :
         {static_cast<void*>(c.key_codes), static_cast<void*>(c.key_sm), static_cast<void*>(c.key_tail),
          static_cast<void*>(c.value_codes), static_cast<void*>(c.value_sm), static_cast<void*>(c.scores),
          static_cast<void*>(c.io), static_cast<void*>(staging)})
      if (q) cudaFree(q);
  }
};

namespace {

// Asymmetric min/max over n values x[i * stride]; writes codes packed into out (n * bits / 8
// bytes) and returns (scale, zero).
__device__ __half2 quantize_run(const float* x, int n, int stride, int bits, std::uint8_t* out) {
  float lo = x[0];
  float hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = fminf(lo, x[i * stride]);
    hi = fmaxf(hi, x[i * stride]);
  }
  const int maxc = (1 << bits) - 1;
  const __half zh = __float2half_rd(lo);
  const float zero = __half2float(zh);
  const __half sh = __float2half_ru((hi - zero) / static_cast<float>(maxc));
  const float scale = __half2float(sh);
  const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
  const int m = n * bits / 8;
  for (int j = 0; j < m; ++j) {
    unsigned byte = 0;
    for (int k = 0; k < 8 / bits; ++k) {
      const float v = x[(k * m + j) * stride];
      const int q = min(max(__float2int_rn((v - zero) * inv), 0), maxc);
      byte |= static_cast<unsigned>(q) << (k * bits);
    }
    out[j] = static_cast<std::uint8_t>(byte);
  }
  return __half2(sh, zh);
}

__device__ __forceinline__ int unpack(const std::uint8_t* packed, int m, int bits, int i) {
  return (packed[i % m] >> ((i / m) * bits)) & ((1 << bits) - 1);
}

// One thread per (token, head, value group) of the n new tokens.
__global__ void kv_quantize_values_kernel(KvDev c, const float* values, int first, int n) {
  const int vgs = c.p.head_dim / c.p.value_group;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n * c.p.heads * vgs) return;
  const int t = idx / (c.p.heads * vgs);
  const int h = (idx / vgs) % c.p.heads;
  const int g = idx % vgs;
  const float* x =
      values + (static_cast<std::size_t>(t) * c.p.heads + h) * c.p.head_dim + g * c.p.value_group;
  const std::size_t tok = static_cast<std::size_t>(first + t) * c.p.heads + h;
  std::uint8_t* out = c.value_codes + tok * c.value_bytes() + g * (c.p.value_group * c.p.bits / 8);
  c.value_sm[tok * vgs + g] = quantize_run(x, c.p.value_group, 1, c.p.bits, out);
}

// Keys of n new tokens into the fp16 tail at position `at`.
__global__ void kv_stage_keys_kernel(KvDev c, const float* keys, int at, int n) {
  const std::size_t row = c.row();
  const std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::size_t>(n) * row) return;
  c.key_tail[static_cast<std::size_t>(at) * row + idx] = __float2half_rn(keys[idx]);
}

// One thread per (head, channel): quantize the full tail (group tokens) as key block `blk`.
__global__ void kv_quantize_key_block_kernel(KvDev c, int blk) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= c.p.heads * c.p.head_dim) return;
  float x[256];  // group <= 256 (validated)
  for (int t = 0; t < c.p.group; ++t)
    x[t] = __half2float(c.key_tail[static_cast<std::size_t>(t) * c.row() + idx]);
  const std::size_t at = static_cast<std::size_t>(blk) * c.row() + idx;
  c.key_sm[at] = quantize_run(x, c.p.group, 1, c.p.bits, c.key_codes + at * c.key_bytes());
}

__device__ float key_at(const KvDev& c, int t, int h, int ch) {
  const int qtok = c.blocks * c.p.group;
  if (t < qtok) {
    const int blk = t / c.p.group;
    const std::size_t at = (static_cast<std::size_t>(blk) * c.p.heads + h) * c.p.head_dim + ch;
    const float2 sz = __half22float2(c.key_sm[at]);
    return fmaf(
        sz.x,
        static_cast<float>(unpack(c.key_codes + at * c.key_bytes(), c.key_bytes(), c.p.bits, t % c.p.group)),
        sz.y);
  }
  return __half2float(c.key_tail[static_cast<std::size_t>(t - qtok) * c.row() +
                                 static_cast<std::size_t>(h) * c.p.head_dim + ch]);
}

__device__ float value_at(const KvDev& c, int t, int h, int ch) {
  const std::size_t tok = static_cast<std::size_t>(t) * c.p.heads + h;
  const int g = ch / c.p.value_group;
  const int m = c.p.value_group * c.p.bits / 8;
  const float2 sz = __half22float2(c.value_sm[tok * c.value_groups() + g]);
  const std::uint8_t* packed = c.value_codes + tok * c.value_bytes() + g * m;
  return fmaf(sz.x, static_cast<float>(unpack(packed, m, c.p.bits, ch % c.p.value_group)), sz.y);
}

constexpr int kAttnThreads = 256;

__device__ float block_reduce(float v, bool is_max, float* shm) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  float r = shm[0];
  for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) r = is_max ? fmaxf(r, shm[w]) : r + shm[w];
  return r;
}

// One block per head: scores over every token straight from the packed keys (the per-channel
// scale folded into the query once per block of tokens), softmax, then the value sum straight from
// the packed values.
__global__ void __launch_bounds__(kAttnThreads) kv_attention_kernel(KvDev c, const float* query, float* out) {
  extern __shared__ float shm[];  // q (head_dim) | qs (head_dim) | reduce (32) | partial (kAttnThreads)
  float* q = shm;
  float* qs = shm + c.p.head_dim;
  float* red = qs + c.p.head_dim;
  float* part = red + 32;
  const int h = blockIdx.x;
  const int hd = c.p.head_dim;
  const float scale = rsqrtf(static_cast<float>(hd));
  for (int i = threadIdx.x; i < hd; i += blockDim.x)
    q[i] = query[static_cast<std::size_t>(h) * hd + i] * scale;
  __syncthreads();
  float* scores = c.scores + static_cast<std::size_t>(h) * c.p.max_tokens;
  float mx = -INFINITY;
  const int qtok = c.blocks * c.p.group;
  for (int blk = 0; blk < c.blocks; ++blk) {
    // qs[ch] = q[ch] * scale[ch]; the zero term sum_ch q[ch] * zero[ch] is shared by the block.
    float zt = 0.0f;
    __syncthreads();
    for (int ch = threadIdx.x; ch < hd; ch += blockDim.x) {
      const float2 sz = __half22float2(c.key_sm[(static_cast<std::size_t>(blk) * c.p.heads + h) * hd + ch]);
      qs[ch] = q[ch] * sz.x;
      zt += q[ch] * sz.y;
    }
    zt = block_reduce(zt, false, red);
    __syncthreads();
    for (int i = threadIdx.x; i < c.p.group; i += blockDim.x) {
      float s = zt;
      const std::uint8_t* codes =
          c.key_codes + ((static_cast<std::size_t>(blk) * c.p.heads + h) * hd) * c.key_bytes();
      for (int ch = 0; ch < hd; ++ch)
        s = fmaf(qs[ch],
                 static_cast<float>(unpack(codes + static_cast<std::size_t>(ch) * c.key_bytes(),
                                           c.key_bytes(), c.p.bits, i)),
                 s);
      scores[blk * c.p.group + i] = s;
      mx = fmaxf(mx, s);
    }
  }
  for (int t = qtok + threadIdx.x; t < c.tokens; t += blockDim.x) {
    float s = 0.0f;
    for (int ch = 0; ch < hd; ++ch) s = fmaf(q[ch], key_at(c, t, h, ch), s);
    scores[t] = s;
    mx = fmaxf(mx, s);
  }
  mx = block_reduce(mx, true, red);
  float sum = 0.0f;
  for (int t = threadIdx.x; t < c.tokens; t += blockDim.x) {
    const float e = __expf(scores[t] - mx);
    scores[t] = e;
    sum += e;
  }
  sum = block_reduce(sum, false, red);  // its barriers also publish the scores
  // Value sum: thread (channel, slice) over a slice of the tokens.
  const int slices = max(static_cast<int>(blockDim.x) / hd, 1);
  const int ch = threadIdx.x % hd;
  const int slice = threadIdx.x / hd;
  float acc = 0.0f;
  if (slice < slices && static_cast<int>(threadIdx.x) < slices * hd)
    for (int t = slice; t < c.tokens; t += slices) acc = fmaf(scores[t], value_at(c, t, h, ch), acc);
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int i = threadIdx.x; i < hd; i += blockDim.x) {
    float v = 0.0f;
    if (hd <= static_cast<int>(blockDim.x)) {
      for (int sl = 0; sl < slices; ++sl) v += part[sl * hd + i];
    } else {
      v = 0.0f;
      for (int t = 0; t < c.tokens; ++t) v = fmaf(scores[t], value_at(c, t, h, i), v);
    }
    out[static_cast<std::size_t>(h) * hd + i] = v / sum;
  }
}

__global__ void kv_dequantize_kernel(KvDev c, float* keys, float* values) {
  const std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::size_t>(c.tokens) * c.row()) return;
  const int t = static_cast<int>(idx / c.row());
  const int h = static_cast<int>(idx % c.row()) / c.p.head_dim;
  const int ch = static_cast<int>(idx % c.p.head_dim);
  keys[idx] = key_at(c, t, h, ch);
  values[idx] = value_at(c, t, h, ch);
}

}  // namespace

GpuKvCache::GpuKvCache() = default;
GpuKvCache::~GpuKvCache() = default;
GpuKvCache::GpuKvCache(GpuKvCache&&) noexcept = default;
GpuKvCache& GpuKvCache::operator=(GpuKvCache&&) noexcept = default;
int GpuKvCache::tokens() const {
  return impl_->c.tokens;
}
const GpuKvParams& GpuKvCache::params() const {
  return impl_->c.p;
}

std::size_t GpuKvCache::bytes() const {
  const KvDev& c = impl_->c;
  return static_cast<std::size_t>(c.blocks) * c.row() * (c.key_bytes() + 4) +
         static_cast<std::size_t>(c.tail) * c.row() * 2 +
         static_cast<std::size_t>(c.tokens) * c.p.heads * (c.value_bytes() + 4 * c.value_groups());
}

Result<GpuKvCache> GpuKvCache::create(GpuContext& ctx, const GpuKvParams& params) {
  GpuKvParams p = params;
  if (p.value_group == 0) p.value_group = p.head_dim;
  if (p.heads <= 0 || p.head_dim <= 0 || p.head_dim > 1024)
    return input_error("kv cache: heads > 0 and 0 < head_dim <= 1024");
  if (p.bits != 2 && p.bits != 4)
    return input_error("kv cache: bits must be 2 or 4, got " + std::to_string(p.bits));
  if (p.group <= 0 || p.group > 256 || p.group * p.bits % 8 != 0)
    return input_error("kv cache: group must be in 1..256 with group * bits a multiple of 8");
  if (p.head_dim % p.value_group != 0 || p.value_group * p.bits % 8 != 0)
    return input_error("kv cache: value_group must divide head_dim with value_group * bits a multiple of 8");
  if (p.max_tokens <= 0) return input_error("kv cache: max_tokens must be positive");
  IPFSA_CUDA_TRY(cudaSetDevice(ctx.device()));
  GpuKvCache cache;
  cache.impl_ = std::make_unique<Impl>();
  KvDev& c = cache.impl_->c;
  c.p = p;
  const std::size_t max_blocks = static_cast<std::size_t>(p.max_tokens) / p.group + 1;
  IPFSA_CUDA_TRY(cudaMalloc(&c.key_codes, max_blocks * c.row() * c.key_bytes()));
  IPFSA_CUDA_TRY(cudaMalloc(&c.key_sm, max_blocks * c.row() * sizeof(__half2)));
  IPFSA_CUDA_TRY(cudaMalloc(&c.key_tail, static_cast<std::size_t>(p.group) * c.row() * sizeof(__half)));
  IPFSA_CUDA_TRY(
      cudaMalloc(&c.value_codes, static_cast<std::size_t>(p.max_tokens) * p.heads * c.value_bytes()));
  IPFSA_CUDA_TRY(cudaMalloc(
      &c.value_sm, static_cast<std::size_t>(p.max_tokens) * p.heads * c.value_groups() * sizeof(__half2)));
  IPFSA_CUDA_TRY(cudaMalloc(&c.scores, static_cast<std::size_t>(p.max_tokens) * p.heads * sizeof(float)));
  IPFSA_CUDA_TRY(cudaMalloc(&c.io, 2 * c.row() * sizeof(float)));
  return std::move(cache);
}

Result<void> GpuKvCache::append(GpuContext& ctx, std::span<const float> keys, std::span<const float> values) {
  KvDev& c = impl_->c;
  const std::size_t row = c.row();
  if (keys.size() != values.size() || keys.size() % row != 0 || keys.empty())
    return input_error("kv cache: keys and values must be the same whole number of (heads, head_dim) tokens");
  const int n = static_cast<int>(keys.size() / row);
  if (c.tokens + n > c.p.max_tokens)
    return input_error("kv cache: " + std::to_string(c.tokens + n) + " tokens exceed the capacity of " +
                       std::to_string(c.p.max_tokens));
  const auto s = static_cast<cudaStream_t>(ctx.stream());
  Impl& im = *impl_;
  if (2 * keys.size() > im.staging_floats) {
    IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
    if (im.staging) cudaFree(im.staging);
    im.staging = nullptr;
    im.staging_floats = 0;
    IPFSA_CUDA_TRY(cudaMalloc(&im.staging, 2 * keys.size() * sizeof(float)));
    im.staging_floats = 2 * keys.size();
  }
  float* dk = im.staging;
  float* dv = im.staging + keys.size();
  IPFSA_CUDA_TRY(cudaMemcpyAsync(dk, keys.data(), keys.size_bytes(), cudaMemcpyHostToDevice, s));
  IPFSA_CUDA_TRY(cudaMemcpyAsync(dv, values.data(), values.size_bytes(), cudaMemcpyHostToDevice, s));
  const int vthreads = n * c.p.heads * c.value_groups();
  kv_quantize_values_kernel<<<(vthreads + 127) / 128, 128, 0, s>>>(c, dv, c.tokens, n);
  IPFSA_CUDA_LAUNCHED("kv_quantize_values_kernel");
  for (int done = 0; done < n;) {
    const int take = std::min(n - done, c.p.group - c.tail);
    const std::size_t elems = static_cast<std::size_t>(take) * row;
    kv_stage_keys_kernel<<<static_cast<unsigned>((elems + 255) / 256), 256, 0, s>>>(c, dk + done * row,
                                                                                    c.tail, take);
    IPFSA_CUDA_LAUNCHED("kv_stage_keys_kernel");
    c.tail += take;
    done += take;
    if (c.tail == c.p.group) {
      kv_quantize_key_block_kernel<<<static_cast<unsigned>((row + 127) / 128), 128, 0, s>>>(c, c.blocks);
      IPFSA_CUDA_LAUNCHED("kv_quantize_key_block_kernel");
      ++c.blocks;
      c.tail = 0;
    }
  }
  c.tokens += n;
  IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
  return {};
}

Result<void> GpuKvCache::attention(GpuContext& ctx, std::span<const float> query, std::span<float> out) {
  KvDev& c = impl_->c;
  if (query.size() != c.row() || out.size() != c.row())
    return input_error("kv cache: query and out must hold heads * head_dim floats");
  if (c.tokens == 0) return input_error("kv cache: attention over an empty cache");
  const auto s = static_cast<cudaStream_t>(ctx.stream());
  IPFSA_CUDA_TRY(cudaMemcpyAsync(c.io, query.data(), query.size_bytes(), cudaMemcpyHostToDevice, s));
  const std::size_t shm = (2 * static_cast<std::size_t>(c.p.head_dim) + 32 + kAttnThreads) * sizeof(float);
  kv_attention_kernel<<<c.p.heads, kAttnThreads, shm, s>>>(c, c.io, c.io + c.row());
  IPFSA_CUDA_LAUNCHED("kv_attention_kernel");
  IPFSA_CUDA_TRY(cudaMemcpyAsync(out.data(), c.io + c.row(), out.size_bytes(), cudaMemcpyDeviceToHost, s));
  IPFSA_CUDA_TRY(cudaStreamSynchronize(s));
  return {};
}

Result<void> GpuKvCache::dequantize(GpuContext& ctx, std::span<float> keys, std::span<float> values) {
  KvDev& c = impl_->c;
  const std::size_t n = static_cast<std::size_t>(c.tokens) * c.row();
  if (keys.size() != n || values.size() != n)
    return input_error("kv cache: dequantize needs tokens * heads * head_dim floats each");
  const auto s = static_cast<cudaStream_t>(ctx.stream());
  float* dk = nullptr;
  IPFSA_CUDA_TRY(cudaMalloc(&dk, 2 * n * sizeof(float)));
  kv_dequantize_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, s>>>(c, dk, dk + n);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaMemcpyAsync(keys.data(), dk, n * sizeof(float), cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess)
    e = cudaMemcpyAsync(values.data(), dk + n, n * sizeof(float), cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  cudaFree(dk);
  if (e != cudaSuccess) return cuda_error("kv dequantize", e);
  return {};
}

}  // namespace ipfsa::cuda
