// AVX2 + FMA + F16C kernels of qgemm (docs/kernels.md). Every function that uses those instructions
// carries __attribute__((target(...))), so this file builds without -mavx2 and the code runs only
// after qgemm.cpp has checked the CPU (__builtin_cpu_supports).
//
// Per 32-weight chunk and weight row: unpack the codes into 32 u8 lanes in weight order (2 ALU ops
// for 2-, 4- and 8-bit, 7 for 3-bit), multiply with the group's int8 activations by
// vpmaddubsw (u8 x s8 -> pairs summed in int16). For <= 4 bits the int16 results of a group's chunks
// are added in int16 (bound: 15 * 127 * 2 * 4 chunks = 15,240 < 32,767) and widened once per group
// by vpmaddwd; 8-bit codes are re-centred (q - 128, signed) and multiplied as |q - 128| times
// sign-adjusted activations (128 * 127 * 2 = 32,512, no saturation), widened per chunk. Per group and
// row: one int32 -> fp32 conversion and one FMA with s * d (precomputed for 8 groups at a time);
// the offset term m' * dsum is a separate 8-wide FMA per 8 groups.
// Row blocks: 4 weight rows per iteration for batch 1 (4 independent accumulator chains), 2 rows x
// up to 4 batch rows for batch > 1 (each unpacked chunk is reused for 4 activation rows).
// Thread-safety: pure functions of their arguments; they write only their rows of y.
#include "engine/qgemm_kernels.hpp"

#if defined(IPFSA_HAVE_AVX2_KERNELS)

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

#define IPFSA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define IPFSA_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

namespace ipfsa::engine::detail {
namespace {

IPFSA_AVX2_INLINE std::int64_t load_i64(const std::uint8_t* p) {
  std::int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
IPFSA_AVX2_INLINE std::int32_t load_i32(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The 32 codes of the chunk at p as u8 lanes, lane i = code of weight i (docs/quantization.md).
// 8-bit codes come back re-centred: lane i = q_i - 128 as s8.
template <int Bits>
IPFSA_AVX2_INLINE __m256i unpack(const std::uint8_t* p) {
  if constexpr (Bits == 8) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(-128));
  } else if constexpr (Bits == 4) {
    // Low 128-bit lane: low nibbles (weights 0-15); high lane: high nibbles (weights 16-31).
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
  } else {
    // 64-bit lane k holds bits 2k..2k+1 of bytes 0-7: weights 8k .. 8k+7.
    const __m256i v = _mm256_set1_epi64x(load_i64(p));
    const __m256i low =
        _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(6, 4, 2, 0)), _mm256_set1_epi8(3));
    if constexpr (Bits == 2) {
      return low;
    } else {
      // Byte lane i <- byte i / 8 of the high-bit word, tested against bit i % 8.
      const __m256i word = _mm256_set1_epi32(load_i32(p + 8));
      const __m256i sel = _mm256_shuffle_epi8(
          word, _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
      const __m256i bit = _mm256_set1_epi64x(static_cast<std::int64_t>(0x8040201008040201ull));
      const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(sel, bit), bit);
      return _mm256_or_si256(low, _mm256_and_si256(set, _mm256_set1_epi8(4)));
    }
  }
}

// Software prefetch distance, in bytes ahead in each row's stream (docs/kernels.md §Prefetch):
// with 4 rows in flight about 16 KiB ahead per thread, several DRAM latencies at 15 GB/s per core.
// prefetcht1 (into L2) measured better than prefetcht0 here: it leaves the L1 miss buffers free.
constexpr std::size_t kPrefetchAhead = 4096;

IPFSA_AVX2_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[n0 + n][r0 + r] for r < R, n < NB, over all groups of the rows. C = chunks per group.
// The loops over r, n and c have compile-time trip counts and are unrolled by pragma: without it
// GCC 12 keeps acc[][] in memory (a store-load round trip per group and row on the critical path).
template <int Bits, int C, int R, int NB>
IPFSA_AVX2 void block(const KernelArgs& a, int r0, int n0) {
  const QuantMatrix& w = *a.w;
  const int gpr = w.groups_per_row();
  const int cols = w.cols;
  constexpr int kGroup = C * 32;
  constexpr int kChunkBytes = 4 * Bits;
  const std::size_t rb = w.row_bytes();
  const bool asym = w.params.scheme == QuantScheme::kAsymmetric;
  // m' = (asym ? m : 0) + offset * s: the value of code 0, plus 128 s for the re-centred 8-bit codes.
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
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256 voffset = _mm256_set1_ps(offset);

  // Every row is a short stream (a few KiB, often less than a page), too short for the hardware
  // prefetchers to ramp up on: prefetch each row kPrefetchAhead bytes ahead, continuing into the
  // same row of the next block (rows r0 + R ..) past the end of the row.
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
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const std::uint8_t* wc = wp[r] + static_cast<std::size_t>(g) * C * kChunkBytes;
        __m256i wv[C];
        __m256i wa[C];  // 8-bit only: |q - 128|
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          wv[c] = unpack<Bits>(wc + c * kChunkBytes);
          if constexpr (Bits == 8) wa[c] = _mm256_abs_epi8(wv[c]);
        }
#pragma GCC unroll 8
        for (int n = 0; n < NB; ++n) {
          const std::int8_t* xg = xq[n] + static_cast<std::size_t>(g) * kGroup;
          __m256i s32;
          if constexpr (Bits == 8) {
            s32 = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
              const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 32 * c));
              const __m256i p = _mm256_maddubs_epi16(wa[c], _mm256_sign_epi8(xv, wv[c]));
              s32 = _mm256_add_epi32(s32, _mm256_madd_epi16(p, ones));
            }
          } else {
            __m256i s16 =
                _mm256_maddubs_epi16(wv[0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg)));
#pragma GCC unroll 8
            for (int c = 1; c < C; ++c)
              s16 = _mm256_add_epi16(
                  s16, _mm256_maddubs_epi16(
                           wv[c], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 32 * c))));
            s32 = _mm256_madd_epi16(s16, ones);
          }
          acc[r][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), _mm256_broadcast_ss(&sd[r][n][gi]), acc[r][n]);
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
IPFSA_AVX2 void batch_tiles(const KernelArgs& a, int r) {
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
IPFSA_AVX2 void rows_kernel(const KernelArgs& a, int r0, int r1) {
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

IPFSA_AVX2 void quantize_activations_avx2(const float* x, int batch, int cols, int group, std::int8_t* q,
                                          float* d, float* dsum) {
  const int gpr = cols / group;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int n = 0; n < batch; ++n) {
    for (int g = 0; g < gpr; ++g) {
      const std::size_t base = static_cast<std::size_t>(n) * cols + static_cast<std::size_t>(g) * group;
      const float* xg = x + base;
      __m256 vmax = _mm256_setzero_ps();
      for (int i = 0; i < group; i += 8)
        vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(xg + i), abs_mask));
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float amax = _mm_cvtss_f32(m4);
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const __m256 vinv = _mm256_set1_ps(inv);
      __m256i vsum = _mm256_setzero_si256();
      for (int i = 0; i < group; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; ++k) {
          const __m256 f = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xg + i + 8 * k), vinv),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          v[k] = _mm256_cvtps_epi32(f);
          vsum = _mm256_add_epi32(vsum, v[k]);
        }
        const __m256i ab = _mm256_packs_epi32(v[0], v[1]);
        const __m256i cd = _mm256_packs_epi32(v[2], v[3]);
        const __m256i b8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + base + i), b8);
      }
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(vsum), _mm256_extracti128_si256(vsum, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      const std::size_t gi = static_cast<std::size_t>(n) * gpr + g;
      d[gi] = amax / 127.0f;
      dsum[gi] = d[gi] * static_cast<float>(_mm_cvtsi128_si32(s4));
    }
  }
}

RowKernel avx2_kernel(int bits, int group) {
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

#endif  // IPFSA_HAVE_AVX2_KERNELS
