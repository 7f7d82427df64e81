// `ipfs-accelerate bench kv` (see bench_kv_command.hpp).
#include "cli/bench_kv_command.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/kv_cache.hpp"

namespace ipfsa::cli {
namespace {

int fail(const std::string& message) {
  std::cerr << "ipfs-accelerate: bench kv: " << message << "\n";
  return 2;
}

// Median wall time of `repeats` attention calls, in microseconds.
double time_attention_us(const engine::KvCache& cache, const std::vector<float>& query,
                         std::vector<float>* out, int repeats) {
  std::vector<double> us;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto ok = cache.attention(query, *out);
    const auto stop = std::chrono::steady_clock::now();
    IPFSA_ASSERT(ok.ok());  // shapes were checked when the cache was built
    us.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

}  // namespace

int bench_kv_command(const BenchKvOptions& o) {
  if (o.bits != 2 && o.bits != 4) return fail("--bits must be 2 or 4, got " + std::to_string(o.bits));
  if (o.tokens <= 0 || o.heads <= 0 || o.head_dim <= 0)
    return fail("--tokens, --heads and --head-dim must be positive");
  if (static_cast<double>(o.tokens) * o.heads * o.head_dim > 2147483647.0)
    return fail("tokens * heads * head_dim must stay below 2^31");
  engine::KvCacheParams qp;
  qp.heads = o.heads;
  qp.head_dim = o.head_dim;
  qp.bits = o.bits;
  qp.group = o.group;
  qp.window = o.window;
  auto quant = engine::KvCache::create(qp);
  if (!quant) return fail(quant.error().message);
  engine::KvCacheParams hp = qp;
  hp.bits = 16;
  hp.window = 0;
  auto half = engine::KvCache::create(hp);
  if (!half) return fail(half.error().message);

  const engine::KvSample sample = engine::synthetic_kv(o.tokens, o.heads, o.head_dim, o.seed);
  if (auto ok = quant->append_tokens(sample.keys, sample.values); !ok) return fail(ok.error().message);
  if (auto ok = half->append_tokens(sample.keys, sample.values); !ok) return fail(ok.error().message);

  const std::size_t r = static_cast<std::size_t>(o.heads) * o.head_dim;
  std::vector<float> out_q(r);
  std::vector<float> out_h(r);
  const double attention_us = time_attention_us(*quant, sample.query, &out_q, 5);
  const double fp16_attention_us = time_attention_us(*half, sample.query, &out_h, 5);

  double dot = 0.0, nq = 0.0, nh = 0.0, err = 0.0;
  for (std::size_t i = 0; i < r; ++i) {
    dot += static_cast<double>(out_q[i]) * out_h[i];
    nq += static_cast<double>(out_q[i]) * out_q[i];
    nh += static_cast<double>(out_h[i]) * out_h[i];
    err += (static_cast<double>(out_q[i]) - out_h[i]) * (static_cast<double>(out_q[i]) - out_h[i]);
  }
  const double cosine = (nq > 0.0 && nh > 0.0) ? dot / std::sqrt(nq * nh) : 0.0;
  const double rel_error = nh > 0.0 ? std::sqrt(err / nh) : 0.0;
  const double bytes = static_cast<double>(quant->bytes());
  const double fp16_bytes = static_cast<double>(quant->fp16_bytes());
  const double reduction = 1.0 - bytes / fp16_bytes;
  const double bits_per_value = bytes * 8.0 / (2.0 * static_cast<double>(o.tokens) * static_cast<double>(r));

  if (o.json) {
    nlohmann::ordered_json j;
    j["bits"] = o.bits;
    j["tokens"] = o.tokens;
    j["heads"] = o.heads;
    j["head_dim"] = o.head_dim;
    j["group"] = o.group;
    j["window"] = o.window;
    j["seed"] = o.seed;
    j["bytes"] = quant->bytes();
    j["fp16_bytes"] = quant->fp16_bytes();
    j["reduction"] = reduction;
    j["bits_per_value"] = bits_per_value;
    j["cosine"] = cosine;
    j["rel_error"] = rel_error;
    j["attention_us"] = attention_us;
    j["fp16_attention_us"] = fp16_attention_us;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << o.bits << "-bit KV cache, " << o.tokens << " tokens x " << o.heads << " heads x "
              << o.head_dim << ", group " << o.group << ", window " << o.window << ": " << quant->bytes()
              << " bytes vs fp16 " << quant->fp16_bytes() << " (" << reduction * 100.0 << "% saved, "
              << bits_per_value << " bits/value); attention vs fp16: cosine " << cosine << ", rel_error "
              << rel_error << "; " << attention_us << " us (fp16 " << fp16_attention_us << " us)\n";
  }
  return 0;
}

}  // namespace ipfsa::cli
