// IEEE 754 binary16 <-> binary32 conversion for the KV cache (src/engine/kv_cache.hpp): the fp16
// cache payload, the fp16 staging/window tokens and the fp16 scales and zeros of the 2-bit cache.
// Portable bit manipulation only, so every translation unit sees the same inline definitions
// whatever its -march (an F16C version here would differ between TUs built with and without
// -mf16c: an ODR violation). Results match the F16C instructions bit for bit (vcvtps2ph with
// round-to-nearest-even, vcvtph2ps); kv_cache.cpp uses F16C directly for whole rows where the
// build enables it (__F16C__), and tests/unit/kv_cache_test.cpp checks the scalar code.
// Thread-safety: pure functions. Nothing here fails: values beyond the half range become +/-inf,
// NaN stays NaN (quiet).
#pragma once

#include <cstdint>
#include <cstring>

namespace ipfsa::engine {

// Largest finite half (0x7BFF).
inline constexpr float kHalfMax = 65504.0f;

// Exact: every half is a float.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t em = h & 0x7FFFu;  // exponent and mantissa
  std::uint32_t bits;
  if (em >= 0x7C00u) {
    bits = sign | 0x7F800000u | ((em & 0x3FFu) << 13);  // inf, or NaN with its payload
  } else if (em >= 0x0400u) {
    bits = sign | ((em << 13) + 0x38000000u);  // normal: rebias the exponent 15 -> 127
  } else {
    const float magnitude = static_cast<float>(em) * 0x1p-24f;  // subnormal or zero: exact
    std::memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest, ties to even (the default rounding mode is assumed for subnormal results).
inline std::uint16_t half_from_float(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return static_cast<std::uint16_t>(sign | (a > 0x7F800000u ? 0x7E00u : 0x7C00u));
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520: inf
  if (a < 0x38800000u) {
    // Below 2^-14: the half is subnormal (or zero). Adding 0.5 puts the value's 2^-24 units in the
    // low mantissa bits of a float whose ulp is 2^-24, so the FPU does the rounding.
    float magnitude;
    std::memcpy(&magnitude, &a, sizeof a);
    magnitude += 0.5f;
    std::uint32_t m;
    std::memcpy(&m, &magnitude, sizeof m);
    return static_cast<std::uint16_t>(sign | (m - 0x3F000000u));
  }
  // Normal: rebias the exponent (127 -> 15, i.e. subtract 112 << 23) and round the 13 dropped
  // bits to nearest even; a carry out of the mantissa correctly bumps the exponent (up to inf).
  const std::uint32_t odd = (a >> 13) & 1u;
  a += 0xC8000FFFu + odd;
  return static_cast<std::uint16_t>(sign | (a >> 13));
}

}  // namespace ipfsa::engine
