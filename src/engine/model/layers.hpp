// The operations the transformer engine is built from (docs/engine.md §Blocks): linear layers
// (fp32 on Eigen, or low-bit through qgemm; either on a GPU once uploaded, gpu.hpp), LayerNorm / RMSNorm,
// activations, rotary (RoPE) and ALiBi positions, and multi-head / grouped-query attention over dense fp32
// keys and values. transformer.cpp assembles them into models; tests check them against plain loops.
// Activations are row-major (tokens, features) fp32 arrays. No Eigen types in this header.
// Thread-safety: free functions are pure apart from their output arguments. A Linear is immutable
// once created; apply() may run from several threads at once (qgemm queues, Eigen is reentrant).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "engine/model/gpu.hpp"
#include "engine/model/model_config.hpp"
#include "engine/quant.hpp"

namespace ipfsa::engine {

// Calls fn(begin, end) on contiguous chunks covering [0, n): serially when threads <= 1 or n <= 1,
// else min(threads, n) chunks on the engine's shared pool (thread_pool.hpp; the caller runs the
// first), all finished before returning. fn must not throw.
void parallel_for(int n, int threads, const std::function<void(int, int)>& fn);

// A weight matrix W (out, in) with an optional bias: y = x W^T + b.
class Linear {
 public:
  Linear() = default;
  // w: (out, in) row-major, w.size() == out * in; bias: empty or `out` floats. bits == 0 keeps W
  // fp32; otherwise W is quantized (quantize() with {bits, group, scheme, search_clip = true},
  // `threads` threads). Error (kInput): quantize's, prefixed by `name` and the shape.
  static Result<Linear> create(std::string_view name, std::vector<float> w, int out, int in,
                               std::vector<float> bias, int bits, int group, QuantScheme scheme, int threads);

  // Copies W to `gpu` (quantized: the packed codes; fp32: an fp16 copy for cuBLAS); from then on
  // apply() multiplies there. The host copy stays (row() and bytes() read it). Error from the
  // upload (kInfra), the Linear then unchanged.
  Result<void> upload(std::shared_ptr<GpuDevice> gpu);
  bool on_gpu() const { return gpu_w_ != nullptr; }

  // y (n, out) = x (n, in) W^T + b; all n rows in one product (Eigen, one qgemm call, or on the
  // GPU one qgemm_host / gemm_fp16_host call with the bias added here). Sizes must agree
  // (IPFSA_EXPECTS). Products of at least ~2M multiply-adds are split over `threads`. A GPU error
  // leaves NaN in y and is kept by the GpuDevice (GpuDevice::take_error).
  void apply(std::span<const float> x, int n, std::span<float> y, int threads) const;
  // Row r of W (dequantized when quantized), `in` floats: a lookup in an embedding table.
  void row(int r, std::span<float> out) const;

  int out() const { return out_; }
  int in() const { return in_; }
  int bits() const { return bits_; }  // 0: fp32
  // What the weights occupy as stored: 4 * out * in (fp32) or QuantMatrix::bytes(), plus 4 * bias.
  std::size_t bytes() const;

 private:
  int out_ = 0;
  int in_ = 0;
  int bits_ = 0;
  std::vector<float> w_;  // fp32 weights (bits_ == 0)
  QuantMatrix q_;         // quantized weights (bits_ != 0)
  std::vector<float> bias_;
  std::shared_ptr<GpuDevice> gpu_;           // set by upload(); outlives gpu_w_ (declared first)
  std::shared_ptr<const GpuWeights> gpu_w_;  // W on gpu_
};

// Per row of `cols` features, in place: (x - mean) / sqrt(var + eps) * weight + bias (bias may be
// empty), or x / sqrt(mean(x^2) + eps) * weight. Statistics in double.
void layer_norm(std::span<float> x, int cols, std::span<const float> weight, std::span<const float> bias,
                float eps);
void rms_norm(std::span<float> x, int cols, std::span<const float> weight, float eps);

// gelu: x * Phi(x) (erf); gelu_tanh: the tanh approximation; silu: x * sigmoid(x); relu.
float activate(Activation a, float x);
void activate(Activation a, std::span<float> x);

// Rotary positions in the rotate-half convention of HuggingFace LLaMA / GPT-NeoX: for i < d/2 the
// pair (x_i, x_{i+d/2}) of every head is rotated by the angle pos * theta^(-2i/d). x holds `tokens`
// rows (row stride `row_stride` floats) of `heads` heads of head_dim (even); token t is at position
// pos0 + t.
void apply_rope(float* x, int tokens, int heads, int head_dim, std::size_t row_stride, int pos0, float theta);

// ALiBi slopes (Press et al. 2022, "Train Short, Test Long"): for n a power of two, head h gets
// 2^(-8 (h + 1) / n); otherwise the slopes of the largest power of two m < n followed by every
// other slope of 2m. The bias added to the score of query position i and key position j is
// -slope * |i - j|.
std::vector<float> alibi_slopes(int heads);

// softmax(q k^T / sqrt(head_dim) + bias + mask) v for every query head; query head h reads kv head
// h / (heads / kv_heads) (grouped-query attention as HuggingFace's repeat_kv).
struct AttentionArgs {
  const float* q = nullptr;  // (sq, heads * head_dim), row stride q_stride
  const float* k = nullptr;  // (sk, kv_heads * head_dim), row stride kv_stride
  const float* v = nullptr;  // (sk, kv_heads * head_dim), row stride kv_stride
  float* out = nullptr;      // (sq, heads * head_dim), row stride out_stride
  std::size_t q_stride = 0;
  std::size_t kv_stride = 0;
  std::size_t out_stride = 0;
  int sq = 0;
  int sk = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int q_pos0 = 0;                // position of query 0; key j is at position j
  bool causal = false;           // query at position p sees keys 0 ..= p
  std::span<const float> alibi;  // per-head slopes; empty: no bias
  int threads = 1;               // heads are split over threads for large problems
};
void attention(const AttentionArgs& a);

}  // namespace ipfsa::engine
