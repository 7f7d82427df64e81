// Low-bit weights on the GPU (cuda/lowbit.hpp, docs/cuda.md): the repacked layout, the activation
// rounding kernel, the dequant-fused dp4a GEMV (batch 1-8), the fp16 tensor-core GEMM (batch > 8)
// and the plain reference kernel.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "check.cuh"
#include "lowbit.hpp"

namespace ipfsa::cuda {

// ---- layout (docs/cuda.md §Layout) ----

struct GpuQuantMatrix::Impl {
  int rows = 0;
  int cols = 0;
  int bits = 4;
  int group = 64;
  bool symmetric = false;
  int kp = 0;                  // cols padded to a whole number of segments
  int nseg = 0;                // segments per row (16 bytes of codes each; 32 at 8 bits)
  int groups_p = 0;            // kp / group
  int gshift = 0;              // log2(group / 32): chunk index >> gshift = group index
  std::size_t code_pitch = 0;  // bytes per row of `codes` (the 2-bit plane at 3 bits)
  std::size_t hi_pitch = 0;    // bytes per row of `hi` (3 bits only)
  std::uint8_t* codes = nullptr;
  std::uint8_t* hi = nullptr;
  __half2* sm = nullptr;  // (rows, groups_p): (scale, value of code 0)

  ~Impl() {
    if (codes) cudaFree(codes);
    if (hi) cudaFree(hi);
    if (sm) cudaFree(sm);
  }
  std::size_t bytes() const {
    return static_cast<std::size_t>(rows) * (code_pitch + hi_pitch + groups_p * sizeof(__half2));
  }
};

namespace {

int segment_weights(int bits) {
  return bits <= 3 ? 64 : 32;
}

// The 3-bit high-bit word of one chunk, re-ordered so that (H >> (k + 4w)) & 0x01010101 puts the
// high bits of the four codes that ((lo_w >> 2k) & 0x03030303) holds into bit 0 of each byte:
// bit 8b + k + 4w of H = bit 2 of code 4w + b + 8k.
std::uint32_t regroup_high_bits(std::uint32_t h) {
  std::uint32_t out = 0;
  for (int i = 0; i < 32; ++i) {
    const int b = i % 4;
    const int w = (i % 8) / 4;
    const int k = i / 8;
    out |= ((h >> i) & 1u) << (8 * b + k + 4 * w);
  }
  return std::move(out);
}

__half host_half(std::uint16_t bits) {
  __half_raw r;
  r.x = bits;
  return __half(r);
}

}  // namespace

Result<void> validate(const QuantView& w) {
  if (w.bits != 2 && w.bits != 3 && w.bits != 4 && w.bits != 8)
    return input_error("cuda: bits must be 2, 3, 4 or 8, got " + std::to_string(w.bits));
  if (w.group != 32 && w.group != 64 && w.group != 128)
    return input_error("cuda: group must be 32, 64 or 128, got " + std::to_string(w.group));
  if (w.rows <= 0 || w.cols <= 0 || w.cols % w.group != 0)
    return input_error("cuda: a " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                       " matrix needs positive sizes and cols a multiple of the group (" +
                       std::to_string(w.group) + ")");
  if (!w.packed || !w.scales || (!w.symmetric && !w.zeros)) return input_error("cuda: the view has no data");
  return {};
}

GpuQuantMatrix::GpuQuantMatrix() = default;
GpuQuantMatrix::~GpuQuantMatrix() = default;
GpuQuantMatrix::GpuQuantMatrix(GpuQuantMatrix&&) noexcept = default;
GpuQuantMatrix& GpuQuantMatrix::operator=(GpuQuantMatrix&&) noexcept = default;
int GpuQuantMatrix::rows() const {
  return impl_->rows;
}
int GpuQuantMatrix::cols() const {
  return impl_->cols;
}
int GpuQuantMatrix::bits() const {
  return impl_->bits;
}
int GpuQuantMatrix::group() const {
  return impl_->group;
}
bool GpuQuantMatrix::symmetric() const {
  return impl_->symmetric;
}
std::size_t GpuQuantMatrix::device_bytes() const {
  return impl_->bytes();
}

Result<GpuQuantMatrix> GpuQuantMatrix::upload(GpuContext& ctx, const QuantView& w) {
  if (auto ok = validate(w); !ok) return ok.error();
  IPFSA_CUDA_TRY(cudaSetDevice(ctx.device()));
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.rows = w.rows;
  m.cols = w.cols;
  m.bits = w.bits;
  m.group = w.group;
  m.symmetric = w.symmetric;
  const int segw = segment_weights(w.bits);
  m.kp = (w.cols + segw - 1) / segw * segw;
  m.nseg = m.kp / segw;
  m.groups_p = m.kp / w.group;
  m.gshift = w.group == 32 ? 0 : w.group == 64 ? 1 : 2;
  const int chunks_p = m.kp / 32;
  const int chunks = w.cols / 32;
  const std::size_t src_chunk = 4 * static_cast<std::size_t>(w.bits);
  const std::size_t src_row = chunks * src_chunk;
  m.code_pitch = static_cast<std::size_t>(chunks_p) * (w.bits == 3 ? 8 : src_chunk);
  m.hi_pitch = w.bits == 3 ? static_cast<std::size_t>(chunks_p) * 4 : 0;

  std::vector<std::uint8_t> codes(static_cast<std::size_t>(w.rows) * m.code_pitch, 0);
  std::vector<std::uint8_t> hi(static_cast<std::size_t>(w.rows) * m.hi_pitch, 0);
  std::vector<__half2> sm(static_cast<std::size_t>(w.rows) * m.groups_p,
                          __half2(__float2half(0.f), __float2half(0.f)));
  const int groups = w.cols / w.group;
  const float centre = static_cast<float>(1 << (w.bits - 1));
  for (int r = 0; r < w.rows; ++r) {
    const std::uint8_t* src = w.packed + r * src_row;
    std::uint8_t* dst = codes.data() + r * m.code_pitch;
    if (w.bits != 3) {
      std::memcpy(dst, src, src_row);
    } else {
      std::uint8_t* dhi = hi.data() + r * m.hi_pitch;
      for (int c = 0; c < chunks; ++c) {
        std::memcpy(dst + c * 8, src + c * 12, 8);
        std::uint32_t h = 0;
        std::memcpy(&h, src + c * 12 + 8, 4);
        const std::uint32_t regrouped = regroup_high_bits(h);
        std::memcpy(dhi + c * 4, &regrouped, 4);
      }
    }
    for (int g = 0; g < groups; ++g) {
      const std::size_t i = static_cast<std::size_t>(r) * groups + g;
      const __half s = host_half(w.scales[i]);
      __half m0;
      if (w.symmetric) {
        const float v = -centre * __half2float(s);  // exact: a power of two times an fp16 value
        m0 = __float2half_rn(v);
        if (!std::isfinite(__half2float(m0)))
          return input_error("cuda: row " + std::to_string(r) + " group " + std::to_string(g) +
                             ": the symmetric offset overflows fp16");
      } else {
        m0 = host_half(w.zeros[i]);
      }
      sm[static_cast<std::size_t>(r) * m.groups_p + g] = __half2(s, m0);
    }
  }
  IPFSA_CUDA_TRY(cudaMalloc(&m.codes, codes.size()));
  IPFSA_CUDA_TRY(cudaMemcpy(m.codes, codes.data(), codes.size(), cudaMemcpyHostToDevice));
  if (!hi.empty()) {
    IPFSA_CUDA_TRY(cudaMalloc(&m.hi, hi.size()));
    IPFSA_CUDA_TRY(cudaMemcpy(m.hi, hi.data(), hi.size(), cudaMemcpyHostToDevice));
  }
  IPFSA_CUDA_TRY(cudaMalloc(&m.sm, sm.size() * sizeof(__half2)));
  IPFSA_CUDA_TRY(cudaMemcpy(m.sm, sm.data(), sm.size() * sizeof(__half2), cudaMemcpyHostToDevice));
  GpuQuantMatrix out;
  out.impl_ = std::move(impl);
  return std::move(out);
}

// ---- kernels ----

namespace {

struct MatArgs {
  const std::uint8_t* codes;
  const std::uint8_t* hi;
  const __half2* sm;
  int rows, cols, kp, nseg, groups_p, gshift, bits;
  std::size_t code_pitch, hi_pitch;
};

MatArgs args_of(const GpuQuantMatrix::Impl& m) {
  return MatArgs{m.codes, m.hi,       m.sm,     m.rows, m.cols,       m.kp,
                 m.nseg,  m.groups_p, m.gshift, m.bits, m.code_pitch, m.hi_pitch};
}

// Programmatic dependent launch (sm_90): wait until the grids this one depends on have finished
// and their writes are visible; let the dependent grid start early. No-ops on older GPUs.
__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Rounded activations: xq (batch, kp) int8, xd (batch, groups_p) the step d of each group,
// xds (batch, kp / 32) d times the sum of the chunk's codes (docs/kernels.md §Activations).
struct ActArgs {
  const std::int8_t* xq;
  const float* xd;
  const float* xds;
};

// One warp per (batch row, group): the CPU kernels' rounding, d = max|x| / 127,
// q = rint(x * (127 / max|x|)).
template <int G>
__global__ void quantize_x_kernel(const float* __restrict__ x, int batch, int cols, int kp, int groups_p,
                                  std::int8_t* __restrict__ xq, float* __restrict__ xd,
                                  float* __restrict__ xds) {
  constexpr int J = G / 32;
  allow_dependent_launch();
  const int lane = threadIdx.x & 31;
  const int id = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (id >= batch * groups_p) return;
  const int b = id / groups_p;
  const int g = id % groups_p;
  float v[J];
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int k = g * G + j * 32 + lane;
    v[j] = k < cols ? x[static_cast<std::size_t>(b) * cols + k] : 0.0f;
    amax = fmaxf(amax, fabsf(v[j]));
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  const float d = amax / 127.0f;
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int q = __float2int_rn(v[j] * inv);
    xq[static_cast<std::size_t>(b) * kp + g * G + j * 32 + lane] = static_cast<std::int8_t>(q);
    int s = q;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) xds[static_cast<std::size_t>(b) * (kp / 32) + g * J + j] = d * static_cast<float>(s);
  }
  if (lane == 0) xd[static_cast<std::size_t>(b) * groups_p + g] = d;
}

// Four unsigned 8-bit codes times four signed 8-bit activations, added to c.
__device__ __forceinline__ int dp4a(unsigned a, int b, int c) {
  int d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// Integer dot product of one 32-weight chunk with its 32 int8 activations a[0..7] (a[i] holds
// activations 4i .. 4i+3). wa/wb: the segment's registers; j: the chunk within the segment.
template <int BITS>
__device__ __forceinline__ int chunk_dot(const uint4& wa, const uint4& wb, int j, const int (&a)[8]) {
  int s = 0;
  if constexpr (BITS == 2 || BITS == 3) {
    const unsigned w0 = j == 0 ? wa.x : wa.z;
    const unsigned w1 = j == 0 ? wa.y : wa.w;
    const unsigned h = j == 0 ? wb.x : wb.y;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      unsigned c0 = (w0 >> (2 * k)) & 0x03030303u;
      unsigned c1 = (w1 >> (2 * k)) & 0x03030303u;
      if constexpr (BITS == 3) {
        c0 |= ((h >> k) & 0x01010101u) << 2;
        c1 |= ((h >> (k + 4)) & 0x01010101u) << 2;
      }
      s = dp4a(c0, a[2 * k], s);
      s = dp4a(c1, a[2 * k + 1], s);
    }
  } else if constexpr (BITS == 4) {
    const unsigned w[4] = {wa.x, wa.y, wa.z, wa.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      s = dp4a(w[i] & 0x0F0F0F0Fu, a[i], s);
      s = dp4a((w[i] >> 4) & 0x0F0F0F0Fu, a[4 + i], s);
    }
  } else {
    s = dp4a(wa.x, a[0], s);
    s = dp4a(wa.y, a[1], s);
    s = dp4a(wa.z, a[2], s);
    s = dp4a(wa.w, a[3], s);
    s = dp4a(wb.x, a[4], s);
    s = dp4a(wb.y, a[5], s);
    s = dp4a(wb.z, a[6], s);
    s = dp4a(wb.w, a[7], s);
  }
  return s;
}

// Segment s of each of the R rows: 16 bytes of codes (32 at 8 bits; plus 8 bytes of high bits at 3
// bits) and the (scale, offset) pairs of its CPS chunks.
template <int BITS, int R, int CPS>
__device__ __forceinline__ void load_segment(const MatArgs& p, const int (&rowc)[R], int s, uint4 (&wa)[R],
                                             uint4 (&wb)[R], unsigned (&smv)[R][CPS]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::uint8_t* base = p.codes + static_cast<std::size_t>(rowc[r]) * p.code_pitch;
    if constexpr (BITS == 8) {
      wa[r] = __ldg(reinterpret_cast<const uint4*>(base + static_cast<std::size_t>(s) * 32));
      wb[r] = __ldg(reinterpret_cast<const uint4*>(base + static_cast<std::size_t>(s) * 32 + 16));
    } else {
      wa[r] = __ldg(reinterpret_cast<const uint4*>(base + static_cast<std::size_t>(s) * 16));
      if constexpr (BITS == 3) {
        const uint2 h = __ldg(reinterpret_cast<const uint2*>(
            p.hi + static_cast<std::size_t>(rowc[r]) * p.hi_pitch + static_cast<std::size_t>(s) * 8));
        wb[r] = make_uint4(h.x, h.y, 0u, 0u);
      } else {
        wb[r] = make_uint4(0u, 0u, 0u, 0u);
      }
    }
    const unsigned* smp =
        reinterpret_cast<const unsigned*>(p.sm) + static_cast<std::size_t>(rowc[r]) * p.groups_p;
#pragma unroll
    for (int j = 0; j < CPS; ++j) smv[r][j] = __ldg(smp + ((s * CPS + j) >> p.gshift));
  }
}

constexpr int kGemvMaxThreads = 256;

// y (B, rows) = W-hat x-hat^T. Block: R consecutive weight rows; its threads stride over
// the rows' segments (16 contiguous bytes of each row per thread per step: coalesced 512-byte
// warp reads), load all rows' segments before using them, and reuse each activation chunk for
// every row. Partial sums: warp shuffles, then shared memory across warps.
// Registers are left to the compiler: ncu on an H100 (2 bits, 8192 x 28672, batch 1) shows 31%
// theoretical occupancy, register-limited, but capping the registers (__launch_bounds__ with 3
// blocks of 256 per SM) gained nothing at 2 and 4 bits and lost 10-20% at 3 and 8 bits (spills).
template <int BITS, int B, int R>
__global__ void __launch_bounds__(kGemvMaxThreads) qgemv_kernel(MatArgs p, ActArgs x, float* __restrict__ y) {
  constexpr int CPS = BITS <= 3 ? 2 : 1;  // chunks per segment
  const int row0 = blockIdx.x * R;
  float acc[R][B];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;
  int rowc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) rowc[r] = min(row0 + r, p.rows - 1);
  const int cpr = p.kp / 32;

  // Software pipeline: segment s + blockDim.x is loaded while s is computed. The first loads are
  // issued before waiting for the activation kernel (programmatic dependent launch, sm_90), so the
  // weight stream starts while the activations are still being rounded.
  uint4 wa[R], wb[R];
  unsigned smv[R][CPS];
  int s = threadIdx.x;
  if (s < p.nseg) load_segment<BITS, R, CPS>(p, rowc, s, wa, wb, smv);
  grid_dependency_wait();
  while (s < p.nseg) {
    const int sn = s + blockDim.x;
    uint4 na[R], nb[R];
    unsigned nsm[R][CPS];
    if (sn < p.nseg) load_segment<BITS, R, CPS>(p, rowc, sn, na, nb, nsm);
#pragma unroll
    for (int j = 0; j < CPS; ++j) {
      const int ch = s * CPS + j;
      const int g = ch >> p.gshift;
      float2 sm[R];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        __half2 h;
        memcpy(&h, &smv[r][j], 4);
        sm[r] = __half22float2(h);
      }
#pragma unroll
      for (int b = 0; b < B; ++b) {
        const int4* xa = reinterpret_cast<const int4*>(x.xq + static_cast<std::size_t>(b) * p.kp + ch * 32);
        const int4 a0 = __ldg(xa);
        const int4 a1 = __ldg(xa + 1);
        const int a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float d = __ldg(x.xd + static_cast<std::size_t>(b) * p.groups_p + g);
        const float ds = __ldg(x.xds + static_cast<std::size_t>(b) * cpr + ch);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int isum = chunk_dot<BITS>(wa[r], wb[r], j, a);
          acc[r][b] = fmaf(sm[r].x, d * static_cast<float>(isum), fmaf(sm[r].y, ds, acc[r][b]));
        }
      }
    }
    if (sn < p.nseg) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        wa[r] = na[r];
        wb[r] = nb[r];
#pragma unroll
        for (int j = 0; j < CPS; ++j) smv[r][j] = nsm[r][j];
      }
    }
    s = sn;
  }

  __shared__ float red[kGemvMaxThreads / 32][R * B];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < B; ++b) {
      float v = acc[r][b];
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0) red[warp][r * B + b] = v;
    }
  __syncthreads();
  for (int i = threadIdx.x; i < R * B; i += blockDim.x) {
    const int r = i / B;
    const int b = i % B;
    float v = 0.0f;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) v += red[w][i];
    const int row = row0 + r;
    if (row < p.rows) y[static_cast<std::size_t>(b) * p.rows + row] = v;
  }
}

// The code of weight (row, k) in the repacked layout, any width.
__device__ __forceinline__ int code_at(const MatArgs& p, int row, int k) {
  const int c = k >> 5;
  const int i = k & 31;
  const std::uint8_t* base = p.codes + static_cast<std::size_t>(row) * p.code_pitch;
  switch (p.bits) {
    case 8:
      return base[c * 32 + i];
    case 4:
      return (base[c * 16 + (i & 15)] >> (4 * (i >> 4))) & 15;
    case 2:
      return (base[c * 8 + (i & 7)] >> (2 * (i >> 3))) & 3;
    default: {  // 3
      const int lo = (base[c * 8 + (i & 7)] >> (2 * (i >> 3))) & 3;
      const std::uint8_t* h = p.hi + static_cast<std::size_t>(row) * p.hi_pitch + c * 4;
      const int b = i & 3;
      const int w = (i & 7) >> 2;
      const int kk = i >> 3;
      const int bit = 8 * b + kk + 4 * w;
      return lo | (((h[bit >> 3] >> (bit & 7)) & 1) << 2);
    }
  }
}

// Plain reference: one thread per output, fp32 dequantization and accumulation.
__global__ void qgemm_naive_kernel(MatArgs p, const float* __restrict__ x, int batch, float* __restrict__ y) {
  const std::size_t idx = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::size_t>(batch) * p.rows) return;
  const int b = static_cast<int>(idx / p.rows);
  const int row = static_cast<int>(idx % p.rows);
  const int group = 32 << p.gshift;
  float acc = 0.0f;
  for (int k = 0; k < p.cols; ++k) {
    const float2 sm = __half22float2(p.sm[static_cast<std::size_t>(row) * p.groups_p + k / group]);
    const float w = fmaf(sm.x, static_cast<float>(code_at(p, row, k)), sm.y);
    acc = fmaf(w, x[static_cast<std::size_t>(b) * p.cols + k], acc);
  }
  y[static_cast<std::size_t>(b) * p.rows + row] = acc;
}

// The raw bytes holding the 16 codes of half `part` (0: weights 0-15, 1: 16-31) of chunk `ch` of
// `row`: one vector load (two at 3 bits), decoded by decode_half.
struct RawHalf {
  uint4 v;
  unsigned h;
};

template <int BITS>
__device__ __forceinline__ RawHalf load_half(const MatArgs& p, int row, int ch, int part) {
  const std::uint8_t* base = p.codes + static_cast<std::size_t>(row) * p.code_pitch;
  RawHalf r{make_uint4(0u, 0u, 0u, 0u), 0u};
  if constexpr (BITS == 8) {
    r.v = __ldg(reinterpret_cast<const uint4*>(base + ch * 32 + part * 16));
  } else if constexpr (BITS == 4) {
    r.v = __ldg(reinterpret_cast<const uint4*>(base + ch * 16));
  } else {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(base + ch * 8));
    r.v.x = v.x;
    r.v.y = v.y;
    if constexpr (BITS == 3)
      r.h = __ldg(
          reinterpret_cast<const unsigned*>(p.hi + static_cast<std::size_t>(row) * p.hi_pitch + ch * 4));
  }
  return r;
}

template <int BITS>
__device__ __forceinline__ int decode_half(const RawHalf& raw, int part, int i) {
  const unsigned w[4] = {raw.v.x, raw.v.y, raw.v.z, raw.v.w};
  if constexpr (BITS == 8) {
    return (w[i / 4] >> (8 * (i % 4))) & 0xFF;
  } else if constexpr (BITS == 4) {
    return (w[i / 4] >> (8 * (i % 4) + 4 * part)) & 0xF;
  } else {
    const int j = part * 16 + i;  // weight within the chunk: byte j % 8, bits 2 (j / 8)
    int c = (w[(j % 8) / 4] >> (8 * (j % 4) + 2 * (j / 8))) & 3;
    if constexpr (BITS == 3) c |= ((raw.h >> (8 * (j & 3) + (j >> 3) + 4 * ((j & 7) >> 2))) & 1) << 2;
    return c;
  }
}

// Tensor-core GEMM for batches above kMaxGemvBatch: a tile of 64 weight rows x 16 * NB batch rows
// per block of 4 warps (warp w: weight rows 16w .. 16w + 15, all NB 16-row batch fragments;
// WMMA 16x16x16 fp16 with fp32 accumulators). Per 32-wide k step the weight tile is dequantized in
// registers (one vector load per 16 codes) into shared memory as fp16 and the activations
// converted beside it. The k range is split over gridDim.z blocks, which add their partial tiles
// into y (zeroed first) with atomicAdd.
constexpr int kTileRows = 64;
constexpr int kTileK = 32;
constexpr int kLds = kTileK + 8;  // halves: rows stay 16-byte aligned, banks spread

template <int BITS, int NB>
__global__ void __launch_bounds__(128) qgemm_wmma_kernel(MatArgs p, const float* __restrict__ x, int batch,
                                                         int chunks_per_split, float* __restrict__ y) {
  using namespace nvcuda;
  constexpr int TB = 16 * NB;
  __shared__ __align__(32) __half ws[kTileRows][kLds];
  __shared__ __align__(32) __half xs[TB][kLds];
  __shared__ __align__(32) float cs[TB][kTileRows + 4];
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int row0 = blockIdx.x * kTileRows;
  const int b0 = blockIdx.y * TB;
  const int kc0 = blockIdx.z * chunks_per_split;
  const int kc1 = min(kc0 + chunks_per_split, p.kp / kTileK);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NB];
#pragma unroll
  for (int i = 0; i < NB; ++i) wmma::fill_fragment(acc[i], 0.0f);

  const int my_r = tid >> 1;  // weight tile row
  const int part = tid & 1;   // which 16 of the chunk's 32 weights
  const int row = min(row0 + my_r, p.rows - 1);
  const unsigned* smp = reinterpret_cast<const unsigned*>(p.sm) + static_cast<std::size_t>(row) * p.groups_p;
  // Each thread loads NB float4 of activations per step: element e = tid + 128 q of the
  // TB x 32 tile, batch row e / 8, columns 4 (e % 8) .. + 3.
  auto load_x = [&](int kc, float4(&xv)[NB]) {
#pragma unroll
    for (int q = 0; q < NB; ++q) {
      const int e = tid + 128 * q;
      const int b = b0 + e / 8;
      const int k = kc * kTileK + (e % 8) * 4;
      xv[q] = (b < batch && k < p.cols)
                  ? __ldg(reinterpret_cast<const float4*>(x + static_cast<std::size_t>(b) * p.cols + k))
                  : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  };
  // Software pipeline: step kc + 1's codes, scales and activations are loaded before step kc's
  // products.
  RawHalf raw{};
  unsigned smv = 0;
  float4 xv[NB];
  if (kc0 < kc1) {
    raw = load_half<BITS>(p, row, kc0, part);
    smv = __ldg(smp + (kc0 >> p.gshift));
    load_x(kc0, xv);
  }
  for (int kc = kc0; kc < kc1; ++kc) {
    {
      __half2 hs;
      memcpy(&hs, &smv, 4);
      const float2 sm = __half22float2(hs);
      __align__(16) __half2 v[8];
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v[i] =
            __floats2half2_rn(fmaf(sm.x, static_cast<float>(decode_half<BITS>(raw, part, 2 * i)), sm.y),
                              fmaf(sm.x, static_cast<float>(decode_half<BITS>(raw, part, 2 * i + 1)), sm.y));
      uint4* dst = reinterpret_cast<uint4*>(&ws[my_r][part * 16]);
      dst[0] = *reinterpret_cast<const uint4*>(&v[0]);
      dst[1] = *reinterpret_cast<const uint4*>(&v[4]);
#pragma unroll
      for (int q = 0; q < NB; ++q) {
        const int e = tid + 128 * q;
        *reinterpret_cast<__half2*>(&xs[e / 8][(e % 8) * 4]) = __floats2half2_rn(xv[q].x, xv[q].y);
        *reinterpret_cast<__half2*>(&xs[e / 8][(e % 8) * 4 + 2]) = __floats2half2_rn(xv[q].z, xv[q].w);
      }
    }
    if (kc + 1 < kc1) {
      raw = load_half<BITS>(p, row, kc + 1, part);
      smv = __ldg(smp + ((kc + 1) >> p.gshift));
      load_x(kc + 1, xv);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
      wmma::load_matrix_sync(fb, &ws[warp * 16][kk], kLds);
#pragma unroll
      for (int i = 0; i < NB; ++i) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
        wmma::load_matrix_sync(fa, &xs[i * 16][kk], kLds);
        wmma::mma_sync(acc[i], fa, fb, acc[i]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < NB; ++i)
    wmma::store_matrix_sync(&cs[i * 16][warp * 16], acc[i], kTileRows + 4, wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < TB * kTileRows; e += blockDim.x) {
    const int bb = e / kTileRows;
    const int r = e % kTileRows;
    if (b0 + bb < batch && row0 + r < p.rows)
      atomicAdd(&y[static_cast<std::size_t>(b0 + bb) * p.rows + row0 + r], cs[bb][r]);
  }
}

template <int BITS>
void launch_wmma_bits(const MatArgs& p, const float* x, int batch, float* y, int sms, cudaStream_t s) {
  const int nb = batch <= 16 ? 1 : batch <= 32 ? 2 : 4;
  const int tb = 16 * nb;
  const int row_tiles = (p.rows + kTileRows - 1) / kTileRows;
  const int batch_tiles = (batch + tb - 1) / tb;
  const int chunks = p.kp / kTileK;
  // Enough blocks for ~16 per multiprocessor (8 are resident at a time: the rest hide the tail),
  // each with at least 16 k steps.
  const int want = std::max(1, 16 * sms / std::max(1, row_tiles * batch_tiles));
  const int splits = std::clamp(want, 1, std::max(1, chunks / 16));
  const int per = (chunks + splits - 1) / splits;
  const dim3 grid(row_tiles, batch_tiles, (chunks + per - 1) / per);
  switch (nb) {
    case 1:
      qgemm_wmma_kernel<BITS, 1><<<grid, 128, 0, s>>>(p, x, batch, per, y);
      break;
    case 2:
      qgemm_wmma_kernel<BITS, 2><<<grid, 128, 0, s>>>(p, x, batch, per, y);
      break;
    default:
      qgemm_wmma_kernel<BITS, 4><<<grid, 128, 0, s>>>(p, x, batch, per, y);
      break;
  }
}

// Launch shape of the GEMV (docs/cuda.md §GEMV): rows per block and segments per thread.
struct GemvShape {
  int rows_per_block;
  int segs_per_thread;
};

// Defaults from a sweep on an H100 (docs/cuda.md §GEMV): batch 1 takes 4 rows per block with each
// thread streaming about 4 segments (deeper pipelining); batches 2-4 at 2 and 3 bits take 8 rows
// (each activation chunk, re-read per row group, serves twice the rows); the rest 4 rows.
GemvShape gemv_shape(int bits, int batch) {
  GemvShape g{4, 4};
  if (batch >= 2 && batch <= 4 && bits <= 3) g = {8, 2};
  // Tuning knobs for measurements (benchmarks/gpu): IPFSA_GEMV_ROWS=2|4|8, IPFSA_GEMV_SPT=1..8.
  if (const char* e = std::getenv("IPFSA_GEMV_ROWS")) {
    const int v = std::atoi(e);
    if (v == 2 || v == 4 || v == 8) g.rows_per_block = v;
  }
  if (const char* e = std::getenv("IPFSA_GEMV_SPT")) g.segs_per_thread = std::clamp(std::atoi(e), 1, 8);
  return g;
}

template <int BITS, int B, int R>
void launch_gemv_r(const MatArgs& p, const ActArgs& a, float* y, int threads, cudaStream_t s) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((p.rows + R - 1) / R);
  cfg.blockDim = dim3(threads);
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, qgemv_kernel<BITS, B, R>, p, a, y);  // errors: cudaGetLastError at the caller
}

template <int BITS, int B>
void launch_gemv_b(const MatArgs& p, const ActArgs& a, float* y, const GemvShape& g, cudaStream_t s) {
  const int per = (p.nseg + g.segs_per_thread - 1) / g.segs_per_thread;
  const int threads = std::clamp((per + 31) / 32 * 32, 32, kGemvMaxThreads);
  switch (g.rows_per_block) {
    case 2:
      launch_gemv_r<BITS, B, 2>(p, a, y, threads, s);
      break;
    case 8:
      if constexpr (B <= 4) {  // 8 rows x more batch rows would spill registers
        launch_gemv_r<BITS, B, 8>(p, a, y, threads, s);
        break;
      }
      [[fallthrough]];
    default:
      launch_gemv_r<BITS, B, 4>(p, a, y, threads, s);
      break;
  }
}

template <int BITS>
void launch_gemv_bits(const MatArgs& p, const ActArgs& a, int batch, float* y, cudaStream_t s) {
  const GemvShape g = gemv_shape(BITS, batch);
  switch (batch) {
    case 1:
      launch_gemv_b<BITS, 1>(p, a, y, g, s);
      break;
    case 2:
      launch_gemv_b<BITS, 2>(p, a, y, g, s);
      break;
    case 3:
      launch_gemv_b<BITS, 3>(p, a, y, g, s);
      break;
    case 4:
      launch_gemv_b<BITS, 4>(p, a, y, g, s);
      break;
    case 5:
      launch_gemv_b<BITS, 5>(p, a, y, g, s);
      break;
    case 6:
      launch_gemv_b<BITS, 6>(p, a, y, g, s);
      break;
    case 7:
      launch_gemv_b<BITS, 7>(p, a, y, g, s);
      break;
    default:
      launch_gemv_b<BITS, 8>(p, a, y, g, s);
      break;
  }
}

}  // namespace

Result<GpuPath> GpuContext::qgemm(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y) {
  return qgemm(w, d_x, batch, d_y, batch <= kMaxGemvBatch ? GpuPath::kGemvDp4a : GpuPath::kGemmTensorCore);
}

Result<GpuPath> GpuContext::qgemm(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y,
                                  GpuPath force) {
  if (batch <= 0) return input_error("qgemm: batch must be positive");
  IPFSA_CUDA_TRY(cudaSetDevice(device_));  // the calling thread may not be the one that created us
  const GpuQuantMatrix::Impl& m = w.impl();
  const MatArgs p = args_of(m);
  const auto s = static_cast<cudaStream_t>(stream_);
  if (force == GpuPath::kGemmTensorCore) {
    IPFSA_CUDA_TRY(cudaMemsetAsync(d_y, 0, static_cast<std::size_t>(batch) * m.rows * sizeof(float), s));
    int sms = 0;
    IPFSA_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_));
    switch (m.bits) {
      case 2:
        launch_wmma_bits<2>(p, d_x, batch, d_y, sms, s);
        break;
      case 3:
        launch_wmma_bits<3>(p, d_x, batch, d_y, sms, s);
        break;
      case 4:
        launch_wmma_bits<4>(p, d_x, batch, d_y, sms, s);
        break;
      default:
        launch_wmma_bits<8>(p, d_x, batch, d_y, sms, s);
        break;
    }
    IPFSA_CUDA_LAUNCHED("qgemm_wmma_kernel");
    return GpuPath::kGemmTensorCore;
  }
  if (batch > kMaxGemvBatch)
    return input_error("qgemm: the dp4a GEMV takes batches up to " + std::to_string(kMaxGemvBatch));
  // Scratch slot 2: xq (batch, kp) int8 | xd (batch, groups_p) | xds (batch, kp / 32), each 16-aligned.
  auto align = [](std::size_t n) { return (n + 15) / 16 * 16; };
  const std::size_t nq = align(static_cast<std::size_t>(batch) * m.kp);
  const std::size_t nd = align(static_cast<std::size_t>(batch) * m.groups_p * sizeof(float));
  const std::size_t ns = align(static_cast<std::size_t>(batch) * (m.kp / 32) * sizeof(float));
  auto buf = scratch(2, nq + nd + ns);
  if (!buf) return buf.error();
  auto* base = static_cast<std::uint8_t*>(*buf);
  auto* xq = reinterpret_cast<std::int8_t*>(base);
  auto* xd = reinterpret_cast<float*>(base + nq);
  auto* xds = reinterpret_cast<float*>(base + nq + nd);
  const int warps = batch * m.groups_p;
  const int qblocks = (warps + 7) / 8;
  switch (m.group) {
    case 32:
      quantize_x_kernel<32><<<qblocks, 256, 0, s>>>(d_x, batch, m.cols, m.kp, m.groups_p, xq, xd, xds);
      break;
    case 64:
      quantize_x_kernel<64><<<qblocks, 256, 0, s>>>(d_x, batch, m.cols, m.kp, m.groups_p, xq, xd, xds);
      break;
    default:
      quantize_x_kernel<128><<<qblocks, 256, 0, s>>>(d_x, batch, m.cols, m.kp, m.groups_p, xq, xd, xds);
      break;
  }
  IPFSA_CUDA_LAUNCHED("quantize_x_kernel");
  const ActArgs a{xq, xd, xds};
  switch (m.bits) {
    case 2:
      launch_gemv_bits<2>(p, a, batch, d_y, s);
      break;
    case 3:
      launch_gemv_bits<3>(p, a, batch, d_y, s);
      break;
    case 4:
      launch_gemv_bits<4>(p, a, batch, d_y, s);
      break;
    default:
      launch_gemv_bits<8>(p, a, batch, d_y, s);
      break;
  }
  IPFSA_CUDA_LAUNCHED("qgemv_kernel");
  return GpuPath::kGemvDp4a;
}

Result<void> GpuContext::qgemm_naive(const GpuQuantMatrix& w, const float* d_x, int batch, float* d_y) {
  if (batch <= 0) return input_error("qgemm_naive: batch must be positive");
  IPFSA_CUDA_TRY(cudaSetDevice(device_));
  const MatArgs p = args_of(w.impl());
  const std::size_t n = static_cast<std::size_t>(batch) * p.rows;
  qgemm_naive_kernel<<<static_cast<unsigned>((n + 127) / 128), 128, 0, static_cast<cudaStream_t>(stream_)>>>(
      p, d_x, batch, d_y);
  IPFSA_CUDA_LAUNCHED("qgemm_naive_kernel");
  return {};
}

Result<GpuPath> GpuContext::qgemm_host(const GpuQuantMatrix& w, std::span<const float> x, int batch,
                                       std::span<float> y) {
  if (batch <= 0 || x.size() != static_cast<std::size_t>(batch) * w.cols() ||
      y.size() != static_cast<std::size_t>(batch) * w.rows())
    return input_error("qgemm_host: sizes do not match the matrix and batch");
  GpuPath path = GpuPath::kGemvDp4a;
  auto ok = through_device(x, y, [&](const float* dx, float* dy) -> Result<void> {
    auto p = qgemm(w, dx, batch, dy);
    if (!p) return p.error();
    path = *p;
    return {};
  });
  if (!ok) return ok.error();
  return path;
}

}  // namespace ipfsa::cuda
