// KV cache: fp16 and KIVI-style 2/4-bit storage, attention over it (see kv_cache.hpp and
// docs/kv_cache.md for the layout and the byte accounting).
#include "engine/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <string>

#include "engine/half.hpp"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace ipfsa::engine {
namespace {

// Row conversions. With F16C (the engine library is built with -march=native) eight at a time;
// the instructions round exactly like half_from_float, so results do not depend on the path.
void halves_to_floats(const std::uint16_t* src, float* dst, int n) {
  int i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) dst[i] = half_to_float(src[i]);
}

void floats_to_halves(const float* src, std::uint16_t* dst, std::size_t n) {
  std::size_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
#endif
  for (; i < n; ++i) dst[i] = half_from_float(src[i]);
}

// Neighbouring halves, for directed rounding (finite inputs only).
std::uint16_t half_toward_minus_inf(std::uint16_t h) {
  if ((h & 0x7FFFu) == 0) return 0x8001u;  // +/-0 -> smallest negative subnormal
  return (h & 0x8000u) ? static_cast<std::uint16_t>(h + 1) : static_cast<std::uint16_t>(h - 1);
}
std::uint16_t half_toward_plus_inf(std::uint16_t h) {
  if ((h & 0x7FFFu) == 0) return 0x0001u;
  return (h & 0x8000u) ? static_cast<std::uint16_t>(h - 1) : static_cast<std::uint16_t>(h + 1);
}
std::uint16_t half_round_down(float x) {
  std::uint16_t h = half_from_float(x);
  if (half_to_float(h) > x) h = half_toward_minus_inf(h);
  return h;
}
std::uint16_t half_round_up(float x) {
  std::uint16_t h = half_from_float(x);
  if (half_to_float(h) < x) h = half_toward_plus_inf(h);
  return h;
}

// Packed codes, "planar": a run of n codes (n * bits % 8 == 0) takes m = n * bits / 8 bytes, and
// code i sits in byte i % m at bit (i / m) * bits. Each bit plane of the run is then a contiguous
// stretch of codes, which the loops below unpack with plain vector shifts (no gathers, no tables).
void pack_codes(const std::uint8_t* codes, int n, int bits, std::uint8_t* out) {
  const int m = n * bits / 8;
  for (int j = 0; j < m; ++j) {
    unsigned byte = 0;
    for (int k = 0; k < 8 / bits; ++k) byte |= static_cast<unsigned>(codes[k * m + j]) << (k * bits);
    out[j] = static_cast<std::uint8_t>(byte);
  }
}

int unpack_code(const std::uint8_t* packed, int n, int bits, int i) {
  const int m = n * bits / 8;
  return (packed[i % m] >> ((i / m) * bits)) & ((1 << bits) - 1);
}

// scores[t] += w * code[t] for the n packed codes of one key channel in a block.
template <int Bits>
void accumulate_key_channel(const std::uint8_t* __restrict packed, int n, float w, float* __restrict scores) {
  const int m = n * Bits / 8;
  for (int k = 0; k < 8 / Bits; ++k) {
    float* __restrict s = scores + k * m;
    for (int j = 0; j < m; ++j) s[j] += w * static_cast<float>((packed[j] >> (k * Bits)) & ((1 << Bits) - 1));
  }
}

// acc[c] += ps * code[c] + pz for the n packed codes of one value group.
template <int Bits>
void accumulate_value_group(const std::uint8_t* __restrict packed, int n, float ps, float pz,
                            float* __restrict acc) {
  const int m = n * Bits / 8;
  for (int k = 0; k < 8 / Bits; ++k) {
    float* __restrict a = acc + k * m;
    for (int j = 0; j < m; ++j)
      a[j] += ps * static_cast<float>((packed[j] >> (k * Bits)) & ((1 << Bits) - 1)) + pz;
  }
}

// Eight independent partial sums, so the compiler can vectorise without reassociating.
float dot(const float* a, const float* b, int n) {
  float part[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += a[i + k] * b[i + k];
  float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

bool in_half_range(std::span<const float> x) {
  return std::all_of(x.begin(), x.end(),
                     [](float v) { return std::isfinite(v) && std::fabs(v) <= kHalfMax; });
}

}  // namespace

Result<void> validate(const KvCacheParams& p) {
  if (p.heads <= 0) return input_error("kv cache: heads must be positive, got " + std::to_string(p.heads));
  if (p.head_dim <= 0)
    return input_error("kv cache: head_dim must be positive, got " + std::to_string(p.head_dim));
  if (p.bits != 2 && p.bits != 4 && p.bits != 16)
    return input_error("kv cache: bits must be 2, 4 or 16 (fp16), got " + std::to_string(p.bits));
  if (p.window < 0) return input_error("kv cache: window must be >= 0, got " + std::to_string(p.window));
  if (p.bits == 16) {
    if (p.window != 0) return input_error("kv cache: an fp16 cache takes no fp16 window (window must be 0)");
    return {};
  }
  if (p.group <= 0 || (p.group * p.bits) % 8 != 0)
    return input_error("kv cache: group must be a positive multiple of " + std::to_string(8 / p.bits) +
                       " at " + std::to_string(p.bits) + " bits, got " + std::to_string(p.group));
  const int vg = p.value_group == 0 ? p.group : p.value_group;
  if (vg <= 0 || p.head_dim % vg != 0)
    return input_error("kv cache: the value group (" + std::to_string(vg) + ") must divide head_dim (" +
                       std::to_string(p.head_dim) + ")");
  if ((vg * p.bits) % 8 != 0)
    return input_error("kv cache: the value group must be a multiple of " + std::to_string(8 / p.bits) +
                       " at " + std::to_string(p.bits) + " bits, got " + std::to_string(vg));
  return {};
}

KvGroupQuant kv_quantize_group(std::span<const float> x, int bits, std::span<std::uint8_t> codes) {
  IPFSA_EXPECTS(bits == 2 || bits == 4, "kv_quantize_group: bits must be 2 or 4");
  IPFSA_EXPECTS(codes.size() == x.size(), "kv_quantize_group: codes and x differ in size");
  if (x.empty()) return {};
  const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
  const float lo = *lo_it;
  const float hi = *hi_it;
  const int max_code = (1 << bits) - 1;
  KvGroupQuant g;
  // zero <= lo and scale * max_code >= hi - zero: the grid covers [lo, hi], so rounding to the
  // nearest grid point is within scale / 2.
  g.zero = half_round_down(lo);
  const float zero = half_to_float(g.zero);
  g.scale = half_round_up((hi - zero) / static_cast<float>(max_code));
  const float scale = half_to_float(g.scale);
  if (scale == 0.0f) {
    std::fill(codes.begin(), codes.end(), std::uint8_t{0});
    return g;
  }
  const float inv = 1.0f / scale;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float q = std::nearbyint((x[i] - zero) * inv);
    codes[i] = static_cast<std::uint8_t>(std::clamp(q, 0.0f, static_cast<float>(max_code)));
  }
  return g;
}

KvCache::KvCache(const KvCacheParams& params) : params_(params) {
  if (params_.value_group == 0) params_.value_group = params_.group;
}

Result<KvCache> KvCache::create(const KvCacheParams& params) {
  if (auto ok = validate(params); !ok) return ok.error();
  return KvCache(params);
}

Result<void> KvCache::append(std::span<const float> key, std::span<const float> value) {
  if (key.size() != row() || value.size() != row())
    return input_error(
        "kv cache: a token's key and value must each hold heads * head_dim = " + std::to_string(row()) +
        " floats, got " + std::to_string(key.size()) + " and " + std::to_string(value.size()));
  if (!in_half_range(key) || !in_half_range(value))
    return input_error("kv cache: a key or value element is not finite or beyond the fp16 range");
  push_token(key.data(), value.data());
  return {};
}

Result<void> KvCache::append_tokens(std::span<const float> keys, std::span<const float> values) {
  if (keys.size() != values.size() || keys.size() % row() != 0)
    return input_error("kv cache: keys and values must be the same whole number of tokens of " +
                       std::to_string(row()) + " floats, got " + std::to_string(keys.size()) + " and " +
                       std::to_string(values.size()));
  if (!in_half_range(keys) || !in_half_range(values))
    return input_error("kv cache: a key or value element is not finite or beyond the fp16 range");
  const std::size_t n = keys.size() / row();
  for (std::size_t t = 0; t < n; ++t) push_token(keys.data() + t * row(), values.data() + t * row());
  return {};
}

void KvCache::push_token(const float* key, const float* value) {
  const std::size_t r = row();
  key_stage_.resize(key_stage_.size() + r);
  floats_to_halves(key, key_stage_.data() + key_stage_.size() - r, r);
  value_window_.resize(value_window_.size() + r);
  floats_to_halves(value, value_window_.data() + value_window_.size() - r, r);
  ++tokens_;
  if (!quantized()) return;
  while (tokens_ - params_.window - quantized_key_tokens() >= params_.group) quantize_key_block();
  while (tokens_ - params_.window > quantized_values_) quantize_oldest_value();
}

void KvCache::quantize_key_block() {
  const int g = params_.group;
  const int d = params_.head_dim;
  const std::size_t r = row();
  const std::size_t bytes_per_channel = static_cast<std::size_t>(g) * params_.bits / 8;
  const std::uint16_t* stage = key_stage_.data() + key_stage_begin_ * r;
  std::vector<float> x(g);
  std::vector<std::uint8_t> codes(g);
  std::size_t code_at = key_codes_.size();
  key_codes_.resize(code_at + r * bytes_per_channel);
  for (int h = 0; h < params_.heads; ++h) {
    for (int c = 0; c < d; ++c) {
      const std::size_t col = static_cast<std::size_t>(h) * d + c;
      for (int t = 0; t < g; ++t) x[t] = half_to_float(stage[t * r + col]);
      const KvGroupQuant q = kv_quantize_group(x, params_.bits, codes);
      pack_codes(codes.data(), g, params_.bits, key_codes_.data() + code_at);
      code_at += bytes_per_channel;
      key_scales_.push_back(q.scale);
      key_zeros_.push_back(q.zero);
    }
  }
  ++key_blocks_;
  key_stage_begin_ += g;
  // Drop the quantized prefix once it is at least as long as what remains (amortised O(1)).
  const std::size_t live = key_stage_.size() / r - key_stage_begin_;
  if (key_stage_begin_ >= live) {
    key_stage_.erase(key_stage_.begin(),
                     key_stage_.begin() + static_cast<std::ptrdiff_t>(key_stage_begin_ * r));
    key_stage_begin_ = 0;
  }
}

void KvCache::quantize_oldest_value() {
  const int d = params_.head_dim;
  const int vg = params_.value_group;
  const std::size_t r = row();
  const std::size_t bytes_per_group = static_cast<std::size_t>(vg) * params_.bits / 8;
  const std::uint16_t* src = value_window_.data() + value_window_begin_ * r;
  std::vector<float> x(vg);
  std::vector<std::uint8_t> codes(vg);
  std::size_t code_at = value_codes_.size();
  value_codes_.resize(code_at + r * params_.bits / 8);
  for (int h = 0; h < params_.heads; ++h) {
    for (int g0 = 0; g0 < d; g0 += vg) {
      halves_to_floats(src + static_cast<std::size_t>(h) * d + g0, x.data(), vg);
      const KvGroupQuant q = kv_quantize_group(x, params_.bits, codes);
      pack_codes(codes.data(), vg, params_.bits, value_codes_.data() + code_at);
      code_at += bytes_per_group;
      value_scales_.push_back(q.scale);
      value_zeros_.push_back(q.zero);
    }
  }
  ++quantized_values_;
  ++value_window_begin_;
  const std::size_t live = value_window_.size() / r - value_window_begin_;
  if (value_window_begin_ >= live) {
    value_window_.erase(value_window_.begin(),
                        value_window_.begin() + static_cast<std::ptrdiff_t>(value_window_begin_ * r));
    value_window_begin_ = 0;
  }
}

Result<void> KvCache::attention(std::span<const float> query, std::span<float> out) const {
  if (query.size() != row() || out.size() != row())
    return input_error("kv cache: attention query and output must each hold heads * head_dim = " +
                       std::to_string(row()) + " floats");
  if (tokens_ == 0) return input_error("kv cache: attention over an empty cache");
  // Every pass walks the storage in the order it lies in memory (token- or block-major, all heads
  // of a token together), so the fp16 rows stream instead of striding by a whole token per head.
  const int heads = params_.heads;
  const int d = params_.head_dim;
  const std::size_t r = row();
  const std::size_t n = static_cast<std::size_t>(tokens_);
  const int qk = quantized_key_tokens();
  const int qv = quantized_values_;
  const int bits = params_.bits;
  const float inv_sqrt_d = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<float> q(r);
  for (std::size_t i = 0; i < r; ++i) q[i] = query[i] * inv_sqrt_d;
  std::vector<float> scores(static_cast<std::size_t>(heads) * n);  // (heads, tokens)
  std::vector<float> tmp(r);

  // Scores over the quantized key blocks: q . (s * code + z) = sum_c (q_c s_c) code_c + q . z.
  const int g = params_.group;
  const std::size_t bytes_per_channel = static_cast<std::size_t>(g) * bits / 8;
  for (int b = 0; b < key_blocks_; ++b) {
    for (int h = 0; h < heads; ++h) {
      const std::size_t meta = (static_cast<std::size_t>(b) * heads + h) * d;
      const float* qh = q.data() + static_cast<std::size_t>(h) * d;
      const std::uint8_t* codes = key_codes_.data() + meta * bytes_per_channel;
      float* s = scores.data() + h * n + static_cast<std::size_t>(b) * g;
      float bias = 0.0f;
      for (int c = 0; c < d; ++c) bias += qh[c] * half_to_float(key_zeros_[meta + c]);
      std::fill(s, s + g, bias);
      for (int c = 0; c < d; ++c) {
        const float w = qh[c] * half_to_float(key_scales_[meta + c]);
        if (bits == 2)
          accumulate_key_channel<2>(codes + c * bytes_per_channel, g, w, s);
        else
          accumulate_key_channel<4>(codes + c * bytes_per_channel, g, w, s);
      }
    }
  }
  // Scores over the fp16 keys.
  for (int t = qk; t < tokens_; ++t) {
    halves_to_floats(key_stage_.data() + (key_stage_begin_ + (t - qk)) * r, tmp.data(), static_cast<int>(r));
    for (int h = 0; h < heads; ++h) {
      const std::size_t off = static_cast<std::size_t>(h) * d;
      scores[h * n + t] = dot(q.data() + off, tmp.data() + off, d);
    }
  }

  // Softmax numerators per head; the division by the sum comes last.
  std::vector<float> sums(heads);
  for (int h = 0; h < heads; ++h) {
    float* s = scores.data() + h * n;
    const float max_score = *std::max_element(s, s + n);
    float sum = 0.0f;
    for (std::size_t t = 0; t < n; ++t) {
      s[t] = std::exp(s[t] - max_score);
      sum += s[t];
    }
    sums[h] = sum;
  }

  std::vector<float> acc(r, 0.0f);
  // Quantized values: p * (s * code + z) per group.
  const int vg = params_.value_group;
  const int groups = d / vg;
  const std::size_t bytes_per_group = static_cast<std::size_t>(vg) * bits / 8;
  for (int t = 0; t < qv; ++t) {
    for (int h = 0; h < heads; ++h) {
      const std::size_t meta = (static_cast<std::size_t>(t) * heads + h) * groups;
      const std::uint8_t* codes = value_codes_.data() + meta * bytes_per_group;
      const float p = scores[h * n + t];
      float* a = acc.data() + static_cast<std::size_t>(h) * d;
      for (int gi = 0; gi < groups; ++gi) {
        const float ps = p * half_to_float(value_scales_[meta + gi]);
        const float pz = p * half_to_float(value_zeros_[meta + gi]);
        if (bits == 2)
          accumulate_value_group<2>(codes + gi * bytes_per_group, vg, ps, pz, a + gi * vg);
        else
          accumulate_value_group<4>(codes + gi * bytes_per_group, vg, ps, pz, a + gi * vg);
      }
    }
  }
  // fp16 values.
  for (int t = qv; t < tokens_; ++t) {
    halves_to_floats(value_window_.data() + (value_window_begin_ + (t - qv)) * r, tmp.data(),
                     static_cast<int>(r));
    for (int h = 0; h < heads; ++h) {
      const float p = scores[h * n + t];
      const std::size_t off = static_cast<std::size_t>(h) * d;
      for (int c = 0; c < d; ++c) acc[off + c] += p * tmp[off + c];
    }
  }
  for (int h = 0; h < heads; ++h) {
    const float inv_sum = 1.0f / sums[h];
    const std::size_t off = static_cast<std::size_t>(h) * d;
    for (int c = 0; c < d; ++c) out[off + c] = acc[off + c] * inv_sum;
  }
  return {};
}

void KvCache::dequantize(std::vector<float>* keys, std::vector<float>* values) const {
  const std::size_t r = row();
  const int bits = params_.bits;
  keys->assign(static_cast<std::size_t>(tokens_) * r, 0.0f);
  values->assign(static_cast<std::size_t>(tokens_) * r, 0.0f);
  const int g = params_.group;
  const int qk = quantized_key_tokens();
  const std::size_t bytes_per_channel = static_cast<std::size_t>(g) * bits / 8;
  for (int b = 0; b < key_blocks_; ++b) {
    for (std::size_t col = 0; col < r; ++col) {
      const std::size_t meta = static_cast<std::size_t>(b) * r + col;
      const std::uint8_t* codes = key_codes_.data() + meta * bytes_per_channel;
      const float s = half_to_float(key_scales_[meta]);
      const float z = half_to_float(key_zeros_[meta]);
      for (int t = 0; t < g; ++t) {
        const int code = unpack_code(codes, g, bits, t);
        (*keys)[(static_cast<std::size_t>(b) * g + t) * r + col] = s * static_cast<float>(code) + z;
      }
    }
  }
  for (int t = qk; t < tokens_; ++t)
    halves_to_floats(key_stage_.data() + (key_stage_begin_ + (t - qk)) * r, keys->data() + t * r,
                     static_cast<int>(r));
  const int vg = params_.value_group;
  const int qv = quantized_values_;
  for (int t = 0; t < qv; ++t) {
    const std::uint8_t* codes = value_codes_.data() + static_cast<std::size_t>(t) * r * bits / 8;
    for (std::size_t col = 0; col < r; ++col) {
      const std::size_t meta = (static_cast<std::size_t>(t) * r + col) / vg;
      const int code = unpack_code(codes + col / vg * (vg * bits / 8), vg, bits, static_cast<int>(col % vg));
      (*values)[t * r + col] =
          half_to_float(value_scales_[meta]) * static_cast<float>(code) + half_to_float(value_zeros_[meta]);
    }
  }
  for (int t = qv; t < tokens_; ++t)
    halves_to_floats(value_window_.data() + (value_window_begin_ + (t - qv)) * r, values->data() + t * r,
                     static_cast<int>(r));
}

std::size_t KvCache::bytes() const {
  const std::size_t r = row();
  const std::size_t fp16_tokens =
      static_cast<std::size_t>(tokens_ - quantized_key_tokens()) + (tokens_ - quantized_values_);
  return key_codes_.size() + value_codes_.size() +
         2 * (key_scales_.size() + key_zeros_.size() + value_scales_.size() + value_zeros_.size()) +
         2 * r * fp16_tokens;
}

std::size_t KvCache::fp16_bytes() const {
  return 2 * 2 * row() * static_cast<std::size_t>(tokens_);
}

std::size_t KvCache::allocated_bytes() const {
  return key_codes_.capacity() + value_codes_.capacity() +
         2 * (key_scales_.capacity() + key_zeros_.capacity() + value_scales_.capacity() +
              value_zeros_.capacity() + key_stage_.capacity() + value_window_.capacity());
}

KvSample synthetic_kv(int tokens, int heads, int head_dim, std::uint64_t seed) {
  IPFSA_EXPECTS(tokens >= 0 && heads > 0 && head_dim > 0, "synthetic_kv: bad shape");
  std::mt19937_64 rng(seed);
  // Box-Muller on 53-bit uniforms: portable, unlike std::normal_distribution.
  auto normal = [&rng]() {
    const double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1p-53;  // (0, 1]
    const double u2 = static_cast<double>(rng() >> 11) * 0x1p-53;          // [0, 1)
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  };
  const std::size_t r = static_cast<std::size_t>(heads) * head_dim;
  std::vector<float> key_offset(r);
  std::vector<float> value_mean(r);
  for (std::size_t i = 0; i < r; ++i) {
    const bool outlier = (rng() & 15u) == 0;
    key_offset[i] = normal() * (outlier ? 10.0f : 1.0f);
    value_mean[i] = normal() * 0.5f;
  }
  KvSample s;
  s.keys.resize(static_cast<std::size_t>(tokens) * r);
  s.values.resize(static_cast<std::size_t>(tokens) * r);
  for (std::size_t i = 0; i < s.keys.size(); ++i) {
    s.keys[i] = key_offset[i % r] + normal();
    s.values[i] = value_mean[i % r] + normal();
  }
  s.query.resize(r);
  for (float& x : s.query) x = normal();
  return s;
}

void attention_reference(std::span<const float> query, std::span<const float> keys,
                         std::span<const float> values, int tokens, int heads, int head_dim,
                         std::span<float> out) {
  const std::size_t r = static_cast<std::size_t>(heads) * head_dim;
  IPFSA_EXPECTS(tokens > 0 && heads > 0 && head_dim > 0, "attention_reference: empty shape");
  IPFSA_EXPECTS(query.size() == r && out.size() == r, "attention_reference: query/out size");
  IPFSA_EXPECTS(keys.size() == r * tokens && values.size() == r * tokens, "attention_reference: kv size");
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  std::vector<double> scores(tokens);
  for (int h = 0; h < heads; ++h) {
    const std::size_t off = static_cast<std::size_t>(h) * head_dim;
    double max_score = -INFINITY;
    for (int t = 0; t < tokens; ++t) {
      double dot = 0.0;
      for (int c = 0; c < head_dim; ++c) dot += static_cast<double>(query[off + c]) * keys[t * r + off + c];
      scores[t] = dot * scale;
      max_score = std::max(max_score, scores[t]);
    }
    double sum = 0.0;
    for (double& s : scores) {
      s = std::exp(s - max_score);
      sum += s;
    }
    for (int c = 0; c < head_dim; ++c) {
      double acc = 0.0;
      for (int t = 0; t < tokens; ++t) acc += scores[t] * values[t * r + off + c];
      out[off + c] = static_cast<float>(acc / sum);
    }
  }
}

}  // namespace ipfsa::engine
