// IEEE 754 binary16 (half precision) conversion for the quantization metadata (scales, zeros).
// Portable bit manipulation only, so every translation unit sees the same inline definitions
// whatever its -march; the results are bit-identical to the F16C instructions (vcvtps2ph with
// round-to-nearest-even, vcvtph2ps), which SIMD kernels may use directly on the stored uint16_t
// (tests/unit/quant_test.cpp checks the equivalence where the CPU has F16C).
// Thread-safety: pure functions. Nothing here fails: out-of-range values become +/-inf, NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>

namespace ipfsa::engine {

// Exact: every half is representable as a float.
inline float fp16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +/-0
  } else {
    // Subnormal half: value = mant * 2^-24; normalise it for the float.
    int e = 113;  // float exponent field of 2^-14
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<std::uint32_t>(e) << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest, ties to even; overflow gives +/-inf, NaN gives a quiet NaN.
inline std::uint16_t fp16_from_float(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or NaN
    if (abs == 0x7F800000u) return sign | 0x7C00u;
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  }
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to inf
  if (abs < 0x38800000u) {                        // below 2^-14: half subnormal or zero
    if (abs < 0x33000000u) return sign;           // <= 2^-25 rounds to zero (tie goes to even 0)
    const std::uint32_t e = abs >> 23;            // 102..112
    const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // value = m * 2^(e-150); half unit is 2^-24
    std::uint32_t h = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  // Normal range: rebias 127 -> 15 and round the 13 dropped mantissa bits; a carry into the
  // exponent is correct (it may produce inf at the top, excluded above).
  std::uint32_t h = ((abs - 0x38000000u) >> 13);
  const std::uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

// The next half towards +inf / -inf from a finite half (used to round metadata outwards).
inline std::uint16_t fp16_next_up(std::uint16_t h) {
  if (h == 0x8000u) return 0x0001u;  // -0 -> smallest positive subnormal
  if (h & 0x8000u) return h - 1u;    // negative: magnitude shrinks
  return h == 0x7C00u ? h : h + 1u;  // positive: magnitude grows (inf stays)
}
inline std::uint16_t fp16_next_down(std::uint16_t h) {
  if (h == 0x0000u) return 0x8001u;
  if (h & 0x8000u) return h == 0xFC00u ? h : h + 1u;
  return h - 1u;
}

// Directed conversions: the half nearest to f that is >= f (resp. <= f). Finite f only.
inline std::uint16_t fp16_from_float_up(float f) {
  const std::uint16_t h = fp16_from_float(f);
  return fp16_to_float(h) < f ? fp16_next_up(h) : h;
}
inline std::uint16_t fp16_from_float_down(float f) {
  const std::uint16_t h = fp16_from_float(f);
  return fp16_to_float(h) > f ? fp16_next_down(h) : h;
}

}  // namespace ipfsa::engine
