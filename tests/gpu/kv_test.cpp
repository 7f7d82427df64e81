// The GPU KV cache (2 and 4 bits) against the CPU: every dequantized element within half a step of
// its input, decode attention equal to the fp32 reference over the dequantized cache, and an error
// against the unquantized attention no worse than the CPU KvCache's at the same settings.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/kv_cache.hpp"
#include "gpu_test_util.hpp"

namespace ipfsa::cuda {
namespace {

double rel_error(std::span<const float> a, std::span<const float> ref) {
  double num = 0.0;
  double den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

struct KvCase {
  int bits;
  int group;
  int value_group;
  int head_dim;
};

TEST(GpuKv, QuantizesWithinHalfAStepAndAttendsLikeTheReference) {
  IPFSA_GPU_CONTEXT(ctx);
  const int heads = 4;
  const int tokens = 100;  // 37 + 63: three key blocks of 32 and a tail of 4
  for (const KvCase& k : {KvCase{2, 32, 32, 128}, KvCase{4, 32, 128, 128}, KvCase{2, 128, 64, 64}}) {
    const std::string what = std::to_string(k.bits) + " bits, group " + std::to_string(k.group) +
                             ", value group " + std::to_string(k.value_group) + ", head_dim " +
                             std::to_string(k.head_dim);
    const engine::KvSample s = engine::synthetic_kv(tokens, heads, k.head_dim, 42 + k.bits);
    GpuKvParams p;
    p.heads = heads;
    p.head_dim = k.head_dim;
    p.bits = k.bits;
    p.group = k.group;
    p.value_group = k.value_group;
    p.max_tokens = 256;
    auto cache = GpuKvCache::create(ctx, p);
    ASSERT_TRUE(cache.ok()) << cache.error().message;
    const std::size_t row = static_cast<std::size_t>(heads) * k.head_dim;
    const std::span<const float> keys(s.keys);
    const std::span<const float> values(s.values);
    ASSERT_TRUE(cache->append(ctx, keys.first(37 * row), values.first(37 * row)).ok());
    ASSERT_TRUE(cache->append(ctx, keys.subspan(37 * row), values.subspan(37 * row)).ok());
    EXPECT_EQ(cache->tokens(), tokens);
    EXPECT_LT(cache->bytes(), 2 * row * tokens * 2);  // smaller than fp16

    std::vector<float> dk(tokens * row);
    std::vector<float> dv(tokens * row);
    ASSERT_TRUE(cache->dequantize(ctx, dk, dv).ok());
    const int maxc = (1 << k.bits) - 1;
    const int qtok = tokens / k.group * k.group;
    // Keys: per (block, head, channel) over the block's tokens; the tail is fp16.
    for (std::size_t hc = 0; hc < row; ++hc)
      for (int b0 = 0; b0 < tokens; b0 += k.group) {
        const int n = std::min(k.group, tokens - b0);
        float lo = INFINITY;
        float hi = -INFINITY;
        for (int t = b0; t < b0 + n; ++t) {
          lo = std::min(lo, s.keys[t * row + hc]);
          hi = std::max(hi, s.keys[t * row + hc]);
        }
        const double step = b0 < qtok ? ((hi - lo) * (1 + 1.0 / 256) + std::fabs(lo) / 512) / maxc : 0.0;
        for (int t = b0; t < b0 + n; ++t) {
          const double x = s.keys[t * row + hc];
          ASSERT_LE(std::fabs(dk[t * row + hc] - x), step / 2 + std::fabs(x) / 1024 + 1e-6)
              << what << ": key token " << t << " element " << hc;
        }
      }
    // Values: per token and group of value_group channels.
    for (int t = 0; t < tokens; ++t)
      for (std::size_t g0 = 0; g0 < row; g0 += k.value_group) {
        float lo = INFINITY;
        float hi = -INFINITY;
        for (int i = 0; i < k.value_group; ++i) {
          lo = std::min(lo, s.values[t * row + g0 + i]);
          hi = std::max(hi, s.values[t * row + g0 + i]);
        }
        const double step = ((hi - lo) * (1 + 1.0 / 256) + std::fabs(lo) / 512) / maxc;
        for (int i = 0; i < k.value_group; ++i)
          ASSERT_LE(std::fabs(dv[t * row + g0 + i] - s.values[t * row + g0 + i]), step / 2 + 1e-6)
              << what << ": value token " << t << " element " << g0 + i;
      }

    std::vector<float> out(row, std::nanf(""));
    ASSERT_TRUE(cache->attention(ctx, s.query, out).ok());
    std::vector<float> over_cache(row);
    engine::attention_reference(s.query, dk, dv, tokens, heads, k.head_dim, over_cache);
    EXPECT_LT(rel_error(out, over_cache), 1e-4) << what << ": attention over the dequantized cache";

    std::vector<float> exact(row);
    engine::attention_reference(s.query, s.keys, s.values, tokens, heads, k.head_dim, exact);
    engine::KvCacheParams cp;
    cp.heads = heads;
    cp.head_dim = k.head_dim;
    cp.bits = k.bits;
    cp.group = k.group;
    cp.value_group = k.value_group;
    auto cpu = engine::KvCache::create(cp);
    ASSERT_TRUE(cpu.ok());
    ASSERT_TRUE(cpu->append_tokens(s.keys, s.values).ok());
    std::vector<float> cpu_out(row);
    ASSERT_TRUE(cpu->attention(s.query, cpu_out).ok());
    const double gpu_err = rel_error(out, exact);
    const double cpu_err = rel_error(cpu_out, exact);
    EXPECT_LE(gpu_err, 1.5 * cpu_err + 1e-3) << what << ": GPU " << gpu_err << " vs CPU " << cpu_err;
  }
}

TEST(GpuKv, RejectsBadParamsAndOverflow) {
  IPFSA_GPU_CONTEXT(ctx);
  GpuKvParams p;
  p.heads = 2;
  p.head_dim = 64;
  p.bits = 3;
  EXPECT_FALSE(GpuKvCache::create(ctx, p).ok());
  p.bits = 2;
  p.group = 32;
  p.max_tokens = 4;
  auto c = GpuKvCache::create(ctx, p);
  ASSERT_TRUE(c.ok());
  std::vector<float> five(5 * 2 * 64, 0.5f);
  auto r = c->append(ctx, five, five);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  EXPECT_EQ(c->tokens(), 0);
  std::vector<float> q(2 * 64, 1.0f);
  std::vector<float> out(2 * 64);
  EXPECT_FALSE(c->attention(ctx, q, out).ok());  // empty
}

}  // namespace
}  // namespace ipfsa::cuda
