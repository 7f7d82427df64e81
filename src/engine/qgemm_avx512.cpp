// AVX-512 VNNI kernels of qgemm (docs/kernels.md §The AVX-512 VNNI kernels): the AVX2 kernels'
// structure (qgemm_avx2.cpp: row blocks, prefetch, the fp32 part) with 256-bit vectors and the
// EVEX instructions of AVX-512 F/BW/VL/VNNI. Every function carries __attribute__((target(...))),
// so this file builds without -mavx512*; the code runs only after qgemm.cpp has checked the CPU
// (__builtin_cpu_supports).
//
// Per 32-weight chunk and weight row: `vpdpbusd` (u8 codes x s8 activations, 4-way dot products
// accumulated straight into int32) replaces vpmaddubsw + the int16 sum + vpmaddwd. The 2- and
// 4-bit planes are masked in place (no shift: 64-bit lane k of a 2-bit chunk holds its codes times
// 4^k, the high 128-bit lane of a 4-bit chunk its codes times 16, all <= 240 as u8) and each int32
// lane of a group's sum is shifted back once per group (vpsravd, exact). The 3-bit high
// plane is one mask register: the 32-bit high-bit word of a chunk has bit i = weight i, so a
// masked `vpaddb` adds 4 to exactly those lanes of the 2-bit plane. 8-bit codes go in unchanged
// (u8 0..255, no saturation in int32); to give the AVX2 path's integer sums lane for lane (that
// path re-centres the codes to q - 128) each group's int32 accumulator starts at
// -128 * sum x (per lane, computed once per group and activation row, shared by the row block),
// and the offset keeps its + 128 s. So every int32 lane, and every fp32 operation after it, is
// the AVX2 kernel's: the results are bit-identical to it (tested).
// Thread-safety: pure functions of their arguments; they write only their rows of y.
#include "engine/qgemm_kernels.hpp"

#if defined(IPFSA_HAVE_AVX512VNNI_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

#define IPFSA_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define IPFSA_AVX512_INLINE \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline

namespace ipfsa::engine::detail {
namespace {

IPFSA_AVX512_INLINE std::int64_t load_i64(const std::uint8_t* p) {
  std::int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
IPFSA_AVX512_INLINE std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 32 codes of the chunk at p as u8 lanes, lane i = (code of weight i) << Shift(i / 8), with the
// per-64-bit-lane shifts of kLaneShift<Bits> (docs/quantization.md for the layouts): the 2- and
// 4-bit planes are masked in place instead of shifted down, and each int32 lane of a group's dot
// products is shifted back once per group (exact: it is a multiple of 2^shift).
template <int Bits>
IPFSA_AVX512_INLINE __m256i unpack(const std::uint8_t* p) {
  if constexpr (Bits == 8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  } else if constexpr (Bits == 4) {
    // Low 128-bit lane: low nibbles (weights 0-15); high lane: high nibbles (weights 16-31), x 16.
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_and_si256(v, _mm256_set_epi64x(0xF0F0F0F0F0F0F0F0ull, 0xF0F0F0F0F0F0F0F0ull,
                                                 0x0F0F0F0F0F0F0F0Full, 0x0F0F0F0F0F0F0F0Full));
  } else if constexpr (Bits == 2) {
    // 64-bit lane k holds bits 2k..2k+1 of bytes 0-7: weights 8k .. 8k+7, x 4^k.
    const __m256i v = _mm256_set1_epi64x(load_i64(p));
    return _mm256_and_si256(v, _mm256_set_epi64x(0xC0C0C0C0C0C0C0C0ull, 0x3030303030303030ull,
                                                 0x0C0C0C0C0C0C0C0Cull, 0x0303030303030303ull));
  } else {
    // The 2-bit plane shifted down (lane 3 would not fit in a byte with its high bit), then
    // bit i of the high-bit word is the high bit of weight i: + 4 in those lanes.
    const __m256i v = _mm256_set1_epi64x(load_i64(p));
    const __m256i low =
        _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(6, 4, 2, 0)), _mm256_set1_epi8(3));
    const __mmask32 high = load_u32(p + 8);
    return _mm256_mask_add_epi8(low, high, low, _mm256_set1_epi8(4));
  }
}

// The int32 lanes' shifts back (see unpack): int32 lane j covers weights 4j .. 4j+3 of every chunk.
template <int Bits>
IPFSA_AVX512_INLINE __m256i unscale(__m256i s32) {
  if constexpr (Bits == 2) return _mm256_srav_epi32(s32, _mm256_setr_epi32(0, 0, 2, 2, 4, 4, 6, 6));
  if constexpr (Bits == 4) return _mm256_srav_epi32(s32, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
  return s32;
}

// As in qgemm_avx2.cpp (docs/kernels.md §Prefetch).
constexpr std::size_t kPrefetchAhead = 4096;

IPFSA_AVX512_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[n0 + n][r0 + r] for r < R, n < NB, over all groups of the rows. C = chunks per group.
// Same structure and fp32 operation order as block() in qgemm_avx2.cpp.
template <int Bits, int C, int R, int NB>
IPFSA_AVX512 void block(const KernelArgs& a, int r0, int n0) {
  const QuantMatrix& w = *a.w;
  const int gpr = w.groups_per_row();
  const int cols = w.cols;
  constexpr int kGroup = C * 32;
  constexpr int kChunkBytes = 4 * Bits;
  const std::size_t rb = w.row_bytes();
  const bool asym = w.params.scheme == QuantScheme::kAsymmetric;
  // m' = (asym ? m : 0) + offset * s; 8-bit: + 128 s, matching the - 128 sum x in the int32 sums.
  const float offset = (Bits == 8 ? 128.0f : 0.0f) - (asym ? 0.0f : static_cast<float>(1 << (Bits - 1)));

  const std::uint8_t* wp[R];
  const std::uint16_t* sp[R];
  const std::uint16_t* zp[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    wp[r] = w.packed.data() + static_cast<std::size_t>(r0 + r) * rb;
    sp[r] = w.scales.data() + static_cast<std::size_t>(r0 + r) * gpr;
    zp[r] = asym ? w.zeros.data() + static_cast<std::size_t>(r0 + r) * gpr : nullptr;
  }
  const std::int8_t* xq[NB];
  const float* xd[NB];
  const float* xs[NB];
#pragma GCC unroll 8
  for (int n = 0; n < NB; ++n) {
    xq[n] = a.x.q + static_cast<std::size_t>(n0 + n) * cols;
    xd[n] = a.x.d + static_cast<std::size_t>(n0 + n) * gpr;
    xs[n] = a.x.dsum + static_cast<std::size_t>(n0 + n) * gpr;
  }

  __m256 acc[R][NB];
  __m256 macc[R][NB];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int n = 0; n < NB; ++n) acc[r][n] = macc[r][n] = _mm256_setzero_ps();
  alignas(32) float sd[R][NB][8];  // s_rg * d_ng for the 8 groups in flight
  const __m256 voffset = _mm256_set1_ps(offset);

  const std::size_t block_bytes = static_cast<std::size_t>(8) * C * kChunkBytes;  // 8 groups of a row
  const bool next_block = r0 + 2 * R <= w.rows;
  const std::uint8_t* const base = w.packed.data();
  const std::size_t matrix_bytes = w.packed.size();

  for (int g0 = 0; g0 < gpr; g0 += 8) {
    const int ng = std::min(8, gpr - g0);
    const std::size_t ahead = static_cast<std::size_t>(g0) * C * kChunkBytes + kPrefetchAhead;
    if (ahead < rb || next_block) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const std::size_t at = ahead < rb ? static_cast<std::size_t>(wp[r] - base) + ahead
                                          : static_cast<std::size_t>(wp[r] - base) + R * rb + (ahead - rb);
        if (at + block_bytes <= matrix_bytes)
          for (std::size_t off = 0; off < block_bytes; off += 64)
            _mm_prefetch(reinterpret_cast<const char*>(base + at + off), _MM_HINT_T1);
      }
    }
    if (next_block && g0 % 32 == 0) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(sp[r] + R * gpr + g0), _MM_HINT_T1);
        if (asym) _mm_prefetch(reinterpret_cast<const char*>(zp[r] + R * gpr + g0), _MM_HINT_T1);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      // Metadata of groups g0 .. g0+7; a partial last block is zero-padded.
      __m128i sh, zh = _mm_setzero_si128();
      if (ng == 8) {
        sh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sp[r] + g0));
        if (asym) zh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(zp[r] + g0));
      } else {
        alignas(16) std::uint16_t s16[8] = {}, z16[8] = {};
        std::memcpy(s16, sp[r] + g0, sizeof(std::uint16_t) * ng);
        if (asym) std::memcpy(z16, zp[r] + g0, sizeof(std::uint16_t) * ng);
        sh = _mm_load_si128(reinterpret_cast<const __m128i*>(s16));
        zh = _mm_load_si128(reinterpret_cast<const __m128i*>(z16));
      }
      const __m256 s = _mm256_cvtph_ps(sh);
      const __m256 m = _mm256_fmadd_ps(voffset, s, _mm256_cvtph_ps(zh));
#pragma GCC unroll 8
      for (int n = 0; n < NB; ++n) {
        __m256 d, ds;
        if (ng == 8) {
          d = _mm256_loadu_ps(xd[n] + g0);
          ds = _mm256_loadu_ps(xs[n] + g0);
        } else {
          alignas(32) float d8[8] = {}, ds8[8] = {};
          std::memcpy(d8, xd[n] + g0, sizeof(float) * ng);
          std::memcpy(ds8, xs[n] + g0, sizeof(float) * ng);
          d = _mm256_load_ps(d8);
          ds = _mm256_load_ps(ds8);
        }
        _mm256_store_ps(sd[r][n], _mm256_mul_ps(s, d));
        macc[r][n] = _mm256_fmadd_ps(m, ds, macc[r][n]);
      }
    }

    for (int gi = 0; gi < ng; ++gi) {
      const int g = g0 + gi;
      // The group's activations, loaded once for the row block; 8-bit: the starting value
      // -128 * sum x of every int32 lane (lane j: bytes 4j..4j+3 of every chunk).
      __m256i xv[NB][C];
      __m256i init[NB];
#pragma GCC unroll 8
      for (int n = 0; n < NB; ++n) {
        const std::int8_t* xg = xq[n] + static_cast<std::size_t>(g) * kGroup;
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
          xv[n][c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 32 * c));
        init[n] = _mm256_setzero_si256();
        if constexpr (Bits == 8) {
          __m256i sum = _mm256_setzero_si256();
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) sum = _mm256_dpbusd_epi32(sum, _mm256_set1_epi8(-128), xv[n][c]);
          init[n] = _mm256_sub_epi32(init[n], sum);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const std::uint8_t* wc = wp[r] + static_cast<std::size_t>(g) * C * kChunkBytes;
        __m256i wv[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) wv[c] = unpack<Bits>(wc + c * kChunkBytes);
#pragma GCC unroll 8
        for (int n = 0; n < NB; ++n) {
          __m256i s32 = init[n];
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) s32 = _mm256_dpbusd_epi32(s32, wv[c], xv[n][c]);
          acc[r][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(unscale<Bits>(s32)),
                                      _mm256_broadcast_ss(&sd[r][n][gi]), acc[r][n]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int n = 0; n < NB; ++n)
      a.y[static_cast<std::size_t>(n0 + n) * w.rows + r0 + r] = hsum(_mm256_add_ps(acc[r][n], macc[r][n]));
}

template <int Bits, int C, int R>
IPFSA_AVX512 void batch_tiles(const KernelArgs& a, int r) {
  const int batch = a.x.batch;
  int n = 0;
  for (; n + 4 <= batch; n += 4) block<Bits, C, R, 4>(a, r, n);
  switch (batch - n) {
    case 3:
      block<Bits, C, R, 3>(a, r, n);
      break;
    case 2:
      block<Bits, C, R, 2>(a, r, n);
      break;
    case 1:
      block<Bits, C, R, 1>(a, r, n);
      break;
    default:
      break;
  }
}

template <int Bits, int C>
IPFSA_AVX512 void rows_kernel(const KernelArgs& a, int r0, int r1) {
  int r = r0;
  if (a.x.batch == 1) {
    for (; r + 4 <= r1; r += 4) block<Bits, C, 4, 1>(a, r, 0);
    for (; r < r1; ++r) block<Bits, C, 1, 1>(a, r, 0);
    return;
  }
  for (; r + 2 <= r1; r += 2) batch_tiles<Bits, C, 2>(a, r);
  for (; r < r1; ++r) batch_tiles<Bits, C, 1>(a, r);
}

template <int Bits>
RowKernel kernel_for_group(int group) {
  switch (group) {
    case 32:
      return &rows_kernel<Bits, 1>;
    case 64:
      return &rows_kernel<Bits, 2>;
    case 128:
      return &rows_kernel<Bits, 4>;
    default:
      IPFSA_EXPECTS(false, "qgemm: unsupported group size");
  }
  return nullptr;
}

}  // namespace

RowKernel avx512vnni_kernel(int bits, int group) {
  switch (bits) {
    case 2:
      return kernel_for_group<2>(group);
    case 3:
      return kernel_for_group<3>(group);
    case 4:
      return kernel_for_group<4>(group);
    case 8:
      return kernel_for_group<8>(group);
    default:
      IPFSA_EXPECTS(false, "qgemm: unsupported bit width");
  }
  return nullptr;
}

}  // namespace ipfsa::engine::detail

#endif  // IPFSA_HAVE_AVX512VNNI_KERNELS
