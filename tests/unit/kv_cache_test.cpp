// The KV cache (src/engine/kv_cache.hpp, docs/kv_cache.md) and its fp16 helper (src/engine/half.hpp):
// half conversion, the per-group error bound, exact byte accounting (partial groups, windows),
// attention against the fp32 reference, the 2-bit cache against the fp16 one, the fp16 window,
// bulk appends, and parameter / input errors.
#include "engine/kv_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/half.hpp"

namespace ipfsa::engine {
namespace {

KvCacheParams make_params(int heads, int head_dim, int bits, int group, int window = 0, int value_group = 0) {
  KvCacheParams p;
  p.heads = heads;
  p.head_dim = head_dim;
  p.bits = bits;
  p.group = group;
  p.window = window;
  p.value_group = value_group;
  return p;
}

KvCache filled_cache(const KvCacheParams& p, const KvSample& s) {
  auto cache = KvCache::create(p);
  EXPECT_TRUE(cache.ok()) << cache.error().message;
  auto ok = cache->append_tokens(s.keys, s.values);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  return std::move(cache).value();
}

std::vector<float> fp16_rounded(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = half_to_float(half_from_float(x[i]));
  return y;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

// ||a - ref|| / ||ref||
double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(err / norm);
}

std::vector<float> attend(const KvCache& cache, const std::vector<float>& query) {
  std::vector<float> out(query.size(), std::numeric_limits<float>::quiet_NaN());
  auto ok = cache.attention(query, out);
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  return out;
}

// ---- half.hpp ----

TEST(KvCacheHalf, EveryHalfRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xFFFFu; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_EQ(half_from_float(f) & 0x7E00u, 0x7E00u) << h;  // stays a quiet NaN
      continue;
    }
    ASSERT_EQ(half_from_float(f), h) << "half 0x" << std::hex << h << " -> " << f;
  }
}

TEST(KvCacheHalf, KnownValues) {
  EXPECT_EQ(half_from_float(1.0f), 0x3C00u);
  EXPECT_EQ(half_from_float(-2.0f), 0xC000u);
  EXPECT_EQ(half_from_float(-0.0f), 0x8000u);
  EXPECT_EQ(half_from_float(65504.0f), 0x7BFFu);
  EXPECT_EQ(half_from_float(65519.0f), 0x7BFFu);
  EXPECT_EQ(half_from_float(65520.0f), 0x7C00u);  // the tie above the largest half goes to inf
  EXPECT_EQ(half_from_float(-1e9f), 0xFC00u);
  EXPECT_EQ(half_from_float(0x1p-24f), 0x0001u);
  EXPECT_EQ(half_from_float(0x1p-25f), 0x0000u);         // tie between 0 and 2^-24: even
  EXPECT_EQ(half_from_float(0x1.8p-24f), 0x0002u);       // tie between 1 and 2 units: even
  EXPECT_EQ(half_from_float(1.0f + 0x1p-11f), 0x3C00u);  // tie: even mantissa
  EXPECT_EQ(half_from_float(1.0f + 0x1.8p-10f), 0x3C02u);
  EXPECT_EQ(half_from_float(std::numeric_limits<float>::infinity()), 0x7C00u);
  EXPECT_FLOAT_EQ(half_to_float(0x3555u), 0.333251953125f);
  EXPECT_FLOAT_EQ(half_to_float(0x0200u), 0x1p-15f);
}

TEST(KvCacheHalf, RoundsToNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-26.0f, 15.9f);
  for (int i = 0; i < 200000; ++i) {
    const float f = (i % 2 ? -1.0f : 1.0f) * std::exp2(exponent(rng));
    const std::uint16_t h = half_from_float(f);
    const double err = std::fabs(static_cast<double>(half_to_float(h)) - f);
    // No neighbour of h is nearer (same sign direction: one step up and one down in magnitude).
    for (int step : {-1, 1}) {
      const int n = static_cast<int>(h & 0x7FFFu) + step;
      if (n < 0 || n >= 0x7C00) continue;
      const double nerr =
          std::fabs(static_cast<double>(half_to_float(static_cast<std::uint16_t>((h & 0x8000u) | n))) - f);
      ASSERT_LE(err, nerr) << f;
      if (err == nerr) {
        ASSERT_EQ(h & 1u, 0u) << "tie not to even at " << f;
      }
    }
  }
}

// ---- the group quantizer ----

TEST(KvCacheQuant, GroupErrorWithinHalfScale) {
  std::mt19937 rng(11);
  for (int bits : {2, 4}) {
    const int max_code = (1 << bits) - 1;
    for (int trial = 0; trial < 400; ++trial) {
      const int n = 1 + trial % 130;
      const float spread = std::exp2(static_cast<float>(trial % 23) - 12.0f);
      const float center = (trial % 3 - 1) * spread * static_cast<float>(trial % 7);
      std::normal_distribution<float> normal(center, spread);
      std::vector<float> x(n);
      for (float& v : x) v = normal(rng);
      if (trial % 17 == 0) std::fill(x.begin(), x.end(), center + 0.1f);  // constant group
      std::vector<std::uint8_t> codes(n, 0xFF);
      const KvGroupQuant g = kv_quantize_group(x, bits, codes);
      const float s = half_to_float(g.scale);
      const float z = half_to_float(g.zero);
      ASSERT_GE(s, 0.0f);
      ASSERT_LE(z, *std::min_element(x.begin(), x.end()));
      const float hi = *std::max_element(x.begin(), x.end());
      ASSERT_GE(z + s * max_code, hi - 1e-6f * std::fabs(hi));
      for (int i = 0; i < n; ++i) {
        ASSERT_LE(codes[i], max_code);
        const float rec = s * static_cast<float>(codes[i]) + z;
        const float slack = 4e-7f * (std::fabs(z) + s * max_code);  // fp32 rounding of s * q + z
        ASSERT_LE(std::fabs(x[i] - rec), 0.5f * s + slack)
            << bits << "-bit trial " << trial << " element " << i << " x " << x[i] << " scale " << s;
      }
    }
  }
}

// The whole cache: every quantized key and value lies within scale / 2 of the fp16-rounded input,
// with the scale bounded from the group's range (zero rounded down, scale rounded up in fp16).
TEST(KvCacheQuant, CacheContentsWithinHalfScale) {
  const int heads = 2, d = 32, group = 16, window = 5, tokens = 53;
  for (int bits : {2, 4}) {
    const int max_code = (1 << bits) - 1;
    const KvSample s = synthetic_kv(tokens, heads, d, 5);
    const KvCache cache = filled_cache(make_params(heads, d, bits, group, window, 8), s);
    std::vector<float> keys, values;
    cache.dequantize(&keys, &values);
    const std::vector<float> k16 = fp16_rounded(s.keys), v16 = fp16_rounded(s.values);
    const int r = heads * d;
    auto bound = [&](float lo, float hi) {
      const float range = (hi - lo) + std::fabs(lo) * 0x1p-10f + 0x1p-24f;
      return 0.5f * range / max_code * (1 + 0x1p-9f) + 1e-6f * (std::fabs(lo) + std::fabs(hi));
    };
    ASSERT_EQ(cache.quantized_key_tokens(), 48);
    ASSERT_EQ(cache.quantized_value_tokens(), 48);
    for (int b = 0; b < 3; ++b)
      for (int col = 0; col < r; ++col) {
        float lo = INFINITY, hi = -INFINITY;
        for (int t = b * group; t < (b + 1) * group; ++t) {
          lo = std::min(lo, k16[t * r + col]);
          hi = std::max(hi, k16[t * r + col]);
        }
        for (int t = b * group; t < (b + 1) * group; ++t)
          ASSERT_LE(std::fabs(keys[t * r + col] - k16[t * r + col]), bound(lo, hi)) << "key t " << t;
      }
    for (int t = 0; t < 48; ++t)
      for (int g0 = 0; g0 < r; g0 += 8) {
        const auto first = v16.begin() + t * r + g0;
        const float lo = *std::min_element(first, first + 8), hi = *std::max_element(first, first + 8);
        for (int c = g0; c < g0 + 8; ++c)
          ASSERT_LE(std::fabs(values[t * r + c] - v16[t * r + c]), bound(lo, hi)) << "value t " << t;
      }
    // Newer tokens are fp16, exactly.
    for (int i = 48 * r; i < tokens * r; ++i) {
      ASSERT_EQ(keys[i], k16[i]);
      ASSERT_EQ(values[i], v16[i]);
    }
  }
}

// ---- byte accounting ----

TEST(KvCacheBytes, Fp16CountsEveryToken) {
  auto cache = KvCache::create(make_params(4, 16, 16, 128));
  ASSERT_TRUE(cache.ok()) << cache.error().message;
  EXPECT_EQ(cache->bytes(), 0u);
  const std::vector<float> kv(4 * 16, 0.5f);
  for (int t = 1; t <= 33; ++t) {
    ASSERT_TRUE(cache->append(kv, kv).ok());
    EXPECT_EQ(cache->bytes(), static_cast<std::size_t>(2 * 2 * t * 4 * 16));
    EXPECT_EQ(cache->fp16_bytes(), cache->bytes());
    EXPECT_GE(cache->allocated_bytes(), cache->bytes());
  }
}

// Hand-computed figures for 2 heads x 8 channels, 2-bit, group 8, no window.
TEST(KvCacheBytes, TwoBitHandCounted) {
  auto cache = KvCache::create(make_params(2, 8, 2, 8));
  ASSERT_TRUE(cache.ok());
  const KvSample s = synthetic_kv(11, 2, 8, 3);
  for (int t = 0; t < 11; ++t) {
    ASSERT_TRUE(
        cache->append(std::span(s.keys).subspan(t * 16, 16), std::span(s.values).subspan(t * 16, 16)).ok());
    if (t == 6) {
      // 7 keys staged in fp16 (224 B); 7 values: 7 * 16 codes / 4 = 28 B + 7 tokens * 2 heads * (scale,
      // zero) * 2 B = 56 B.
      EXPECT_EQ(cache->bytes(), 224u + 28u + 56u);
    }
    if (t == 7) {
      // One key block: 16 channels * 8 tokens / 4 = 32 B + 16 * 4 B metadata; values 32 + 64.
      EXPECT_EQ(cache->bytes(), 32u + 64u + 32u + 64u);
      EXPECT_EQ(cache->fp16_bytes(), 512u);
    }
  }
  // 3 more staged keys (96 B); values 44 + 88.
  EXPECT_EQ(cache->bytes(), 32u + 64u + 96u + 44u + 88u);
  EXPECT_EQ(cache->quantized_key_tokens(), 8);
  EXPECT_EQ(cache->quantized_value_tokens(), 11);
}

struct ByteCase {
  int bits, group, value_group, window, tokens;
};

TEST(KvCacheBytes, QuantizedCountsMatchTheLayout) {
  const int heads = 3, d = 32;
  const ByteCase cases[] = {{2, 8, 8, 0, 0},   {2, 8, 8, 0, 1},     {2, 8, 8, 0, 8},    {2, 8, 8, 0, 29},
                            {2, 16, 32, 4, 3}, {2, 16, 32, 4, 20},  {2, 16, 32, 4, 21}, {2, 16, 16, 7, 64},
                            {4, 8, 8, 0, 17},  {4, 32, 32, 10, 75}, {2, 4, 4, 100, 50}, {4, 2, 2, 1, 9}};
  for (const ByteCase& c : cases) {
    SCOPED_TRACE("bits " + std::to_string(c.bits) + " group " + std::to_string(c.group) + " vg " +
                 std::to_string(c.value_group) + " window " + std::to_string(c.window) + " tokens " +
                 std::to_string(c.tokens));
    const KvSample s = synthetic_kv(c.tokens, heads, d, 9);
    const KvCache cache = filled_cache(make_params(heads, d, c.bits, c.group, c.window, c.value_group), s);
    const std::size_t values_per_token = heads * d;
    const std::size_t out_of_window = std::max(0, c.tokens - c.window);
    const std::size_t qk = out_of_window / c.group * c.group;
    const std::size_t qv = out_of_window;
    const std::size_t key_bytes = qk * values_per_token * c.bits / 8 + (qk / c.group) * values_per_token * 4 +
                                  (c.tokens - qk) * values_per_token * 2;
    const std::size_t value_bytes = qv * values_per_token * c.bits / 8 +
                                    qv * heads * (d / c.value_group) * 4 +
                                    (c.tokens - qv) * values_per_token * 2;
    EXPECT_EQ(cache.quantized_key_tokens(), static_cast<int>(qk));
    EXPECT_EQ(cache.quantized_value_tokens(), static_cast<int>(qv));
    EXPECT_EQ(cache.bytes(), key_bytes + value_bytes);
    EXPECT_EQ(cache.fp16_bytes(), 4 * c.tokens * values_per_token);
    EXPECT_GE(cache.allocated_bytes(), cache.bytes());
  }
}

// Issue 3 acceptance: 2-bit, group 128, no window saves >= 85.5% with metadata counted
// (docs ANCHORS: 2.25 bits per value, 85.9%).
TEST(KvCacheBytes, TwoBitGroup128ReductionAtLeast855Permille) {
  const KvSample s = synthetic_kv(512, 8, 128, 1);
  const KvCache cache = filled_cache(make_params(8, 128, 2, 128), s);
  const double reduction = 1.0 - static_cast<double>(cache.bytes()) / static_cast<double>(cache.fp16_bytes());
  EXPECT_GE(reduction, 0.855);
  EXPECT_DOUBLE_EQ(reduction, 1.0 - 2.25 / 16.0);
}

// ---- attention ----

TEST(KvCacheAttention, Fp16MatchesFp32Reference) {
  const int heads = 4, d = 64, tokens = 300;
  const KvSample s = synthetic_kv(tokens, heads, d, 21);
  const KvCache cache = filled_cache(make_params(heads, d, 16, 128), s);
  const std::vector<float> out = attend(cache, s.query);
  std::vector<float> ref(s.query.size());
  attention_reference(s.query, s.keys, s.values, tokens, heads, d, ref);
  // Against the fp32 inputs: fp16 storage error (2^-11 relative per element, keys up to ~30).
  EXPECT_LT(rel_error(out, ref), 3e-3);
  // Against the cache's own fp16 contents: fp32 arithmetic only.
  std::vector<float> keys, values;
  cache.dequantize(&keys, &values);
  attention_reference(s.query, keys, values, tokens, heads, d, ref);
  EXPECT_LT(rel_error(out, ref), 2e-5);
}

// attention() dequantizes on the fly; it must agree with the reference over dequantize()'s fp32
// cache, for every layout: partial key blocks, windows, several value groups per head.
TEST(KvCacheAttention, QuantizedMatchesReferenceOverItsContents) {
  const int heads = 3, d = 64;
  const ByteCase cases[] = {{2, 32, 64, 0, 96}, {2, 32, 16, 0, 101},  {2, 16, 32, 9, 77},
                            {4, 8, 8, 0, 45},   {4, 64, 64, 20, 150}, {2, 128, 64, 0, 5}};
  for (const ByteCase& c : cases) {
    SCOPED_TRACE(std::to_string(c.bits) + "-bit group " + std::to_string(c.group) + " window " +
                 std::to_string(c.window) + " tokens " + std::to_string(c.tokens));
    const KvSample s = synthetic_kv(c.tokens, heads, d, 100 + c.tokens);
    const KvCache cache = filled_cache(make_params(heads, d, c.bits, c.group, c.window, c.value_group), s);
    std::vector<float> keys, values;
    cache.dequantize(&keys, &values);
    std::vector<float> ref(s.query.size());
    attention_reference(s.query, keys, values, c.tokens, heads, d, ref);
    EXPECT_LT(rel_error(attend(cache, s.query), ref), 2e-5);
  }
}

TEST(KvCacheAttention, TwoBitCloseToFp16) {
  const int heads = 8, d = 128, tokens = 1024;
  const KvSample s = synthetic_kv(tokens, heads, d, 42);
  const std::vector<float> half = attend(filled_cache(make_params(heads, d, 16, 128), s), s.query);
  const std::vector<float> two = attend(filled_cache(make_params(heads, d, 2, 128), s), s.query);
  const std::vector<float> four = attend(filled_cache(make_params(heads, d, 4, 128), s), s.query);
  EXPECT_GT(cosine(two, half), 0.95);
  EXPECT_LT(rel_error(two, half), 0.15);
  // More bits, less error.
  EXPECT_LT(rel_error(four, half), rel_error(two, half));
}

// ---- the fp16 window ----

TEST(KvCacheWindow, NewestTokensStayExact) {
  const int heads = 2, d = 16, group = 8, window = 7;
  const KvSample s = synthetic_kv(40, heads, d, 8);
  auto cache = KvCache::create(make_params(heads, d, 2, group, window));
  ASSERT_TRUE(cache.ok());
  const int r = heads * d;
  for (int t = 0; t < 40; ++t) {
    ASSERT_TRUE(
        cache->append(std::span(s.keys).subspan(t * r, r), std::span(s.values).subspan(t * r, r)).ok());
    std::vector<float> keys, values;
    cache->dequantize(&keys, &values);
    const int first_exact = std::max(0, t + 1 - window);
    for (int u = first_exact; u <= t; ++u)
      for (int c = 0; c < r; ++c) {
        ASSERT_EQ(keys[u * r + c], half_to_float(half_from_float(s.keys[u * r + c])))
            << "t " << t << " u " << u;
        ASSERT_EQ(values[u * r + c], half_to_float(half_from_float(s.values[u * r + c])));
      }
    EXPECT_EQ(cache->quantized_value_tokens(), first_exact);
    EXPECT_EQ(cache->quantized_key_tokens(), first_exact / group * group);
  }
}

TEST(KvCacheWindow, WithinTheWindowAttentionEqualsFp16) {
  const int heads = 2, d = 32, tokens = 12;
  const KvSample s = synthetic_kv(tokens, heads, d, 13);
  const KvCache windowed = filled_cache(make_params(heads, d, 2, 8, tokens), s);
  const KvCache half = filled_cache(make_params(heads, d, 16, 8), s);
  EXPECT_EQ(windowed.bytes(), half.bytes());
  EXPECT_EQ(attend(windowed, s.query), attend(half, s.query));
}

// ---- appends ----

TEST(KvCacheAppend, BulkEqualsOneAtATime) {
  const int heads = 2, d = 32, tokens = 70;
  const KvSample s = synthetic_kv(tokens, heads, d, 17);
  const KvCacheParams p = make_params(heads, d, 2, 16, 5, 16);
  const KvCache bulk = filled_cache(p, s);
  auto single = KvCache::create(p);
  ASSERT_TRUE(single.ok());
  const int r = heads * d;
  for (int t = 0; t < tokens; ++t)
    ASSERT_TRUE(
        single->append(std::span(s.keys).subspan(t * r, r), std::span(s.values).subspan(t * r, r)).ok());
  std::vector<float> k1, v1, k2, v2;
  bulk.dequantize(&k1, &v1);
  single->dequantize(&k2, &v2);
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(v1, v2);
  EXPECT_EQ(bulk.bytes(), single->bytes());
  EXPECT_EQ(attend(bulk, s.query), attend(*single, s.query));
}

TEST(KvCacheAppend, BadInputLeavesTheCacheUnchanged) {
  auto cache = KvCache::create(make_params(2, 8, 2, 8));
  ASSERT_TRUE(cache.ok());
  std::vector<float> out(16);
  const std::vector<float> q(16, 1.0f);
  const auto empty = cache->attention(q, out);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

  const std::vector<float> good(16, 0.25f);
  ASSERT_TRUE(cache->append(good, good).ok());
  const std::size_t bytes = cache->bytes();
  std::vector<float> nan = good, inf = good, big = good;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  inf[0] = -std::numeric_limits<float>::infinity();
  big[15] = 1e5f;
  for (const auto* bad : {&nan, &inf, &big}) {
    const auto r1 = cache->append(*bad, good);
    ASSERT_FALSE(r1.ok());
    EXPECT_EQ(r1.error().code, ErrorCode::kInput);
    EXPECT_NE(r1.error().message.find("fp16 range"), std::string::npos) << r1.error().message;
    EXPECT_FALSE(cache->append(good, *bad).ok());
  }
  EXPECT_FALSE(cache->append(std::vector<float>(15, 0.0f), good).ok());
  std::vector<float> two_tokens(32, 0.5f);
  two_tokens[20] = std::numeric_limits<float>::quiet_NaN();  // bad value in the second token
  EXPECT_FALSE(cache->append_tokens(two_tokens, std::vector<float>(32, 0.5f)).ok());
  EXPECT_FALSE(cache->append_tokens(std::vector<float>(32, 0.5f), std::vector<float>(16, 0.5f)).ok());
  EXPECT_FALSE(cache->append_tokens(std::vector<float>(24, 0.5f), std::vector<float>(24, 0.5f)).ok());
  EXPECT_EQ(cache->tokens(), 1);
  EXPECT_EQ(cache->bytes(), bytes);

  const auto wrong = cache->attention(std::vector<float>(8, 1.0f), out);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("heads * head_dim"), std::string::npos);
}

// ---- parameters ----

TEST(KvCacheParams, BadParametersGiveErrors) {
  struct Case {
    KvCacheParams params;
    const char* expect;
  };
  const Case cases[] = {
      {make_params(0, 128, 2, 128), "heads"},
      {make_params(8, -1, 2, 128), "head_dim"},
      {make_params(8, 128, 3, 128), "bits must be 2, 4 or 16"},
      {make_params(8, 128, 8, 128), "bits must be 2, 4 or 16"},
      {make_params(8, 128, 2, 0), "group must be a positive multiple of 4"},
      {make_params(8, 128, 2, 6), "group must be a positive multiple of 4"},
      {make_params(8, 128, 4, 3), "group must be a positive multiple of 2"},
      {make_params(8, 96, 2, 64), "must divide head_dim"},
      {make_params(8, 128, 2, 128, 0, 48), "must divide head_dim"},
      {make_params(8, 126, 2, 64, 0, 2), "value group must be a multiple of 4"},
      {make_params(8, 128, 2, 128, -1), "window"},
      {make_params(8, 128, 16, 128, 4), "fp16 cache takes no fp16 window"},
  };
  for (const Case& c : cases) {
    const auto cache = KvCache::create(c.params);
    ASSERT_FALSE(cache.ok()) << c.expect;
    EXPECT_EQ(cache.error().code, ErrorCode::kInput);
    EXPECT_NE(cache.error().message.find(c.expect), std::string::npos) << cache.error().message;
  }
  EXPECT_TRUE(KvCache::create(make_params(8, 96, 2, 128, 0, 32)).ok());  // key group need not divide D
  EXPECT_TRUE(KvCache::create(make_params(8, 128, 16, 7)).ok());         // fp16 ignores the group
}

}  // namespace
}  // namespace ipfsa::engine
