// The key/value cache of one attention layer (docs/kv_cache.md): `heads` x `head_dim` keys and
// values per token, appended one token at a time or in bulk, stored either as fp16 or KIVI-style
// at 2 or 4 bits (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV
// Cache"):
//   - keys are quantized per channel: the cache holds new keys in an fp16 staging buffer until
//     `group` of them are older than the fp16 window, then quantizes that block, each (head,
//     channel) getting its own fp16 scale and zero over the block's `group` tokens;
//   - values are quantized per token as soon as they leave the window, in groups of `value_group`
//     consecutive channels of one head, each with an fp16 scale and zero;
//   - the newest `window` tokens (0 = none) stay in fp16, keys and values.
// Quantization is asymmetric min/max: x ~ scale * q + zero, q in [0, 2^bits - 1], with the zero
// rounded down and the scale rounded up to fp16 so that every element lies within scale / 2 of
// its reconstruction.
// attention() computes softmax(q K^T / sqrt(head_dim)) V for one query vector per head directly
// over the stored form, a block or a token at a time; it never materialises the fp32 cache.
// Thread-safety: a KvCache is a value; concurrent const calls (attention, bytes, dequantize) are
// safe, appends need exclusive access. Functions returning Result leave the cache unchanged on
// failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.hpp"

namespace ipfsa::engine {

struct KvCacheParams {
  int heads = 32;
  int head_dim = 128;
  int bits = 2;         // 16: plain fp16 cache; 2 or 4: KIVI-style quantized cache
  int group = 128;      // keys: tokens per quantization block (one scale/zero per head and channel)
  int value_group = 0;  // values: channels per scale/zero along head_dim; 0 = same as `group`
  int window = 0;       // newest tokens kept in fp16 (quantized caches only; must be 0 for fp16)
};

// Ok, or a kInput error naming the first bad field: heads, head_dim > 0; bits in {2, 4, 16};
// for 2/4 bits group > 0 with group * bits a multiple of 8, value_group dividing head_dim with
// value_group * bits a multiple of 8, window >= 0; for 16 bits window == 0.
Result<void> validate(const KvCacheParams& params);

// One group quantized by asymmetric min/max rounding.
struct KvGroupQuant {
  std::uint16_t scale = 0;  // fp16, >= 0
  std::uint16_t zero = 0;   // fp16, <= min(x)
};

// Quantizes x (finite, |x| <= 65504) to bits in {2, 4}, writing one code per byte to codes
// (codes.size() == x.size()). Postcondition: |x[i] - (scale * codes[i] + zero)| <= scale / 2 up
// to fp32 rounding, with scale and zero read back from fp16. Empty x gives scale = zero = 0.
KvGroupQuant kv_quantize_group(std::span<const float> x, int bits, std::span<std::uint8_t> codes);

class KvCache {
 public:
  // A validated, empty cache; the error of validate() otherwise.
  static Result<KvCache> create(const KvCacheParams& params);

  // Appends one token: key and value are (heads, head_dim) row-major. Error (cache unchanged) for
  // a wrong size or an element that is not finite or beyond the fp16 range.
  Result<void> append(std::span<const float> key, std::span<const float> value);
  // Appends n tokens: keys and values are (n, heads, head_dim) with n = keys.size() / (heads *
  // head_dim); same result as n calls of append. Error (nothing appended) as for append, or for
  // sizes that are not whole tokens or differ between keys and values.
  Result<void> append_tokens(std::span<const float> keys, std::span<const float> values);

  // out (heads, head_dim) = for each head h: softmax(q_h K_h^T / sqrt(head_dim)) V_h over every
  // token in the cache, with fp32 arithmetic on the dequantized-on-the-fly values. Error for wrong
  // sizes or an empty cache (out untouched).
  Result<void> attention(std::span<const float> query, std::span<float> out) const;

  // The cache's contents as fp32, (tokens, heads, head_dim) each: what attention() sees. For tests
  // and references; allocates the full fp32 cache.
  void dequantize(std::vector<float>* keys, std::vector<float>* values) const;

  const KvCacheParams& params() const { return params_; }
  int tokens() const { return tokens_; }
  int quantized_key_tokens() const { return key_blocks_ * params_.group; }
  int quantized_value_tokens() const { return quantized_values_; }

  // Bytes of data the cache holds for its tokens: quantized payload + every fp16 scale and zero +
  // the fp16 staging keys and window values. Not counted: allocator slack and the object itself
  // (see allocated_bytes).
  std::size_t bytes() const;
  // Bytes an fp16 cache would need for the same tokens: 2 * tokens * heads * head_dim * 2.
  std::size_t fp16_bytes() const;
  // Capacity of every buffer the cache has allocated (>= bytes(); vectors grow geometrically and
  // the fp16 buffers compact lazily).
  std::size_t allocated_bytes() const;

 private:
  explicit KvCache(const KvCacheParams& params);
  bool quantized() const { return params_.bits != 16; }
  std::size_t row() const { return static_cast<std::size_t>(params_.heads) * params_.head_dim; }
  void push_token(const float* key, const float* value);
  void quantize_key_block();
  void quantize_oldest_value();

  KvCacheParams params_;
  int tokens_ = 0;

  // fp16 keys not yet quantized (all keys for bits 16): tokens [quantized_key_tokens, tokens_),
  // stored from token offset key_stage_begin_ of key_stage_, (token, heads, head_dim).
  std::vector<std::uint16_t> key_stage_;
  std::size_t key_stage_begin_ = 0;
  // fp16 values not yet quantized (all values for bits 16): tokens [quantized_values_, tokens_).
  std::vector<std::uint16_t> value_window_;
  std::size_t value_window_begin_ = 0;

  // Quantized keys: key_blocks_ blocks of `group` tokens.
  int key_blocks_ = 0;
  std::vector<std::uint8_t> key_codes_;    // (block, head, head_dim, group * bits / 8) packed
  std::vector<std::uint16_t> key_scales_;  // (block, head, head_dim) fp16
  std::vector<std::uint16_t> key_zeros_;   // (block, head, head_dim) fp16

  // Quantized values: the oldest quantized_values_ tokens.
  int quantized_values_ = 0;
  std::vector<std::uint8_t> value_codes_;    // (token, head, head_dim * bits / 8) packed
  std::vector<std::uint16_t> value_scales_;  // (token, head, head_dim / value_group) fp16
  std::vector<std::uint16_t> value_zeros_;   // (token, head, head_dim / value_group) fp16
};

// Seeded synthetic keys, values and a query with the structure KIVI relies on (docs/kv_cache.md):
// keys[t, h, c] = offset[h, c] + N(0, 1), where offset ~ N(0, 1) and one channel in 16 is an
// outlier with offset ~ N(0, 10^2); values[t, h, c] = N(0, 1) + a per-channel mean ~ N(0, 0.5^2);
// query ~ N(0, 1). Deterministic for a given seed (std::mt19937_64, Box-Muller of our own, so the
// numbers do not depend on the standard library).
struct KvSample {
  std::vector<float> keys;    // (tokens, heads, head_dim)
  std::vector<float> values;  // (tokens, heads, head_dim)
  std::vector<float> query;   // (heads, head_dim)
};
KvSample synthetic_kv(int tokens, int heads, int head_dim, std::uint64_t seed);

// Plain fp32 attention (double accumulation) over dense keys and values (tokens, heads, head_dim):
// the reference the cache is tested against. Sizes must agree (checked by IPFSA_EXPECTS);
// tokens > 0.
void attention_reference(std::span<const float> query, std::span<const float> keys,
                         std::span<const float> values, int tokens, int heads, int head_dim,
                         std::span<float> out);

}  // namespace ipfsa::engine
