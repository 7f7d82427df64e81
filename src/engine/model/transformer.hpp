// The transformer engine (docs/engine.md): a Model built from a ModelConfig, its weights (canonical
// names, weights.hpp) and a PrecisionPlan, running every family of model_config.hpp on the CPU, or
// with its linear layers on a GPU (gpu.hpp, docs/cuda.md §Engine backend).
// Weight matrices whose PrecisionPlan::bits_for(...) is non-zero are quantized at build time
// (quantize with plan.group / plan.scheme and the clipping search) and multiplied with qgemm, all
// tokens of a batch in one call per projection; the others stay fp32 and run on Eigen. Norms,
// biases, positions, the MoE router and logit_scale are always fp32.
// Decoders (decoder, moe, and the decoder of encoder-decoders) also run incrementally: prefill()
// then decode_step(), with one KV cache per layer and batch row: plain fp32 when plan.kv_bits == 32
// or the plan is the fp32 one (every weight fp32 and kv_bits at its default 16), else a KvCache
// (kv_cache.hpp) at plan.kv_bits (16, 4, 2; quantized caches use key group 32, no fp16 window), so
// fp32 weights with kv_bits 4 or 2 measure the cache alone.
// Thread-safety: a built Model's const functions (forward, weight_bytes, ...) may run from several
// threads at once; prefill / decode_step / reset_cache change the cache and need exclusive access.
// Each call uses up to the `threads` given to build (qgemm, large fp32 products, attention heads).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/error.hpp"
#include "engine/model/gpu.hpp"
#include "engine/model/model_config.hpp"
#include "engine/model/weights.hpp"

namespace ipfsa::engine {

// What a model reads, by family (unused fields stay empty):
//   encoder, decoder, moe   tokens (batch, seq)
//   encoder_decoder         tokens (batch, seq) or mel (batch, frames, mel_bins) for the encoder by
//                           the frontend; decoder_tokens (batch, decoder_seq)
//   vision                  pixels (batch, channels, image_size, image_size)
//   audio                   mel (batch, frames, mel_bins); the conv frontend halves `frames`
//   dual_encoder            tokens (batch, seq) for the text tower and pixels for the image tower
struct ModelInput {
  int batch = 0;
  int seq = 0;
  std::vector<std::int32_t> tokens;
  std::vector<float> pixels;
  int frames = 0;
  std::vector<float> mel;
  int decoder_seq = 0;
  std::vector<std::int32_t> decoder_tokens;
};

// A seeded input of the shape the family reads: token ids uniform in [0, vocab) with seq = seq_len
// (decoder_seq = seq_len too), pixels and mel frames N(0, 1) with frames = 2 * seq_len (so the
// audio encoder sees seq_len positions). Vision models ignore seq_len (their sequence is the
// patches). Sizes are not checked against the config's limits here; forward() does.
ModelInput make_synthetic_input(const ModelConfig& config, int batch, int seq_len, std::uint64_t seed);

struct ModelOutput {
  // The final hidden states of the last stack run (after its final norm when pre-norm): the
  // decoder for decoder / moe / encoder_decoder, the encoder for encoder / vision / audio, the
  // image tower for dual_encoder.
  int batch = 0;
  int seq = 0;
  int hidden_size = 0;
  std::vector<float> hidden;  // (batch, seq, hidden_size)
  // (batch, seq, vocab) for LM and CTC heads, (batch, num_labels) for vision classification (class
  // token), (batch, batch) for dual_encoder: exp(logit_scale) * cos(text_i, image_j).
  std::vector<std::int64_t> logits_shape;
  std::vector<float> logits;
};

class Model {
 public:
  // Validates the config (ModelConfig::validate) and the plan (kv_bits in {2, 4, 16, 32}), checks
  // that every canonical tensor is present with its shape (extra tensors are ignored), copies the
  // weights and quantizes those the plan asks for with `threads` threads (<= 0: default_thread_count()
  // of thread_pool.hpp). Error (kInput) naming the first missing or misshapen tensor, or a matrix
  // that cannot be quantized (e.g. columns not a multiple of plan.group).
  // With `gpu`, every Linear except the MoE router is uploaded to it once here (Linear::upload) and
  // multiplies there; attention, norms, embedding lookups and the KV cache stay on the CPU. A
  // failed upload is an Error with the upload's code (kInfra for the GPU) naming the tensor.
  // forward / prefill / decode_step then also return a GPU error (kInfra) met during the pass.
  static Result<Model> build(const ModelConfig& config, const TensorSet& weights, const PrecisionPlan& plan,
                             int threads = 1, std::shared_ptr<GpuDevice> gpu = nullptr);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // Runs the whole model on `input` (no cache). Error (kInput) for input sizes that do not match
  // the config, token ids outside [0, vocab), or sequences longer than a learned position table.
  Result<ModelOutput> forward(const ModelInput& input) const;

  // True for decoder, moe and encoder_decoder models (prefill / decode_step work).
  bool can_decode() const;
  // Clears the caches, then runs the prompt like forward() (same outputs: prompt attention uses the
  // exact fp32 keys and values) while filling one cache per decoder layer and batch row; for
  // encoder-decoders it runs the encoder on `input` and keeps the cross-attention keys/values. The
  // prompt is `tokens` (decoder_tokens for encoder-decoders). Error as forward, or for a family
  // without a decoder (caches left empty).
  Result<ModelOutput> prefill(const ModelInput& input);
  // Appends one token per batch row (tokens.size() == the prefill batch) at position
  // cached_tokens() and returns its hidden state and logits, shapes (batch, 1, ...). Error when
  // nothing was prefilled, for a wrong count or an id out of range, beyond a learned position
  // table, or a value the fp16 / quantized cache cannot hold (cache then unusable: prefill again).
  Result<ModelOutput> decode_step(std::span<const std::int32_t> tokens);
  void reset_cache();
  int cached_tokens() const;
  // 32 (fp32 cache), 16, 4 or 2.
  int kv_cache_bits() const;
  // Bytes the caches hold (4 per element for fp32; KvCache::bytes() otherwise), cross-attention
  // keys/values (fp32) included.
  std::size_t kv_cache_bytes() const;

  const ModelConfig& config() const;
  const PrecisionPlan& plan() const;
  // What the weights occupy as stored: 4 bytes per fp32 element plus QuantMatrix::bytes() of every
  // quantized matrix (a tied table counted once).
  std::size_t weight_bytes() const;
  // Number of weight matrices stored quantized.
  int quantized_matrices() const;
  // The GPU the linear layers run on; null when on the CPU.
  const GpuDevice* gpu() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ipfsa::engine
