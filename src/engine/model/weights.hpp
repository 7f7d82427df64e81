// The weights of a transformer model (docs/engine.md §Weights): a named set of fp32 tensors, the
// canonical tensor names and shapes every family uses (what transformer.hpp builds from), seeded
// synthetic weights scaled like real initialisations, and a safetensors reader and writer.
//
// Canonical names (S = stack prefix "encoder", "decoder" or "vision"; i = block; e = expert):
//   embed_tokens.weight                       (vocab, hidden)      token frontend, shared by stacks
//   S.embed_positions.weight                  (max_positions, hidden)   learned positions only
//   S.patch_embed.weight / .bias              (hidden, channels, patch, patch) / (hidden)
//   S.cls_token                               (hidden)             patch frontend
//   S.conv1.weight / .bias                    (hidden, mel_bins, 3) / (hidden)   audio frontend
//   S.conv2.weight / .bias                    (hidden, hidden, 3) / (hidden)     stride 2
//   S.embed_norm.weight / .bias               (hidden)   post-norm stacks: norm of the embeddings
//   S.layers.i.attn_norm.weight / .bias       (hidden)   .bias for LayerNorm only
//   S.layers.i.attn.{q,k,v,o}.weight         q (heads*hd, hidden), k/v (kv_heads*hd, hidden),
//                                             o (hidden, heads*hd); .bias when qkv_bias
//   S.layers.i.cross_attn_norm.* / cross_attn.{q,k,v,o}.*   decoder of an encoder-decoder
//   S.layers.i.mlp_norm.weight / .bias        (hidden)
//   S.layers.i.mlp.{gate,up}.weight           (ffn, hidden) (gate only when gated_mlp)
//   S.layers.i.mlp.down.weight                (hidden, ffn); .bias on all three when mlp_bias
//   S.layers.i.moe.router.weight              (experts, hidden)
//   S.layers.i.moe.experts.e.{gate,up,down}.* as mlp.*
//   S.final_norm.weight / .bias               (hidden)   pre-norm stacks
//   lm_head.weight                            (vocab, hidden)   untied LM head; audio CTC head
//   lm_head.bias                              (vocab)    audio only
//   head.weight / head.bias                   (num_labels, hidden) / (num_labels)   vision
//   text_projection.weight                    (projection_dim, encoder.hidden)      dual encoder
//   visual_projection.weight                  (projection_dim, vision.hidden)
//   logit_scale                               (1)        log of the similarity scale
// Linear weights are (out features, in features), row-major, as in PyTorch and QuantMatrix.
//
// Thread-safety: TensorSet is a value type; functions are pure apart from the files they read or
// write. synthetic_weights may use `threads` std::threads and joins them before returning.
// Functions returning Result produce nothing on failure (a writer may leave a partial file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "engine/model/model_config.hpp"

namespace ipfsa::engine {

struct Tensor {
  std::vector<std::int64_t> shape;  // empty: a scalar
  std::vector<float> data;          // row-major, numel() floats

  std::int64_t numel() const;
};

// name -> tensor, ordered by name.
class TensorSet {
 public:
  using Map = std::map<std::string, Tensor, std::less<>>;

  // Inserts or replaces. data.size() must equal the product of shape (IPFSA_EXPECTS).
  void insert(std::string name, Tensor tensor);
  // nullptr when absent.
  const Tensor* find(std::string_view name) const;
  Tensor* find(std::string_view name);
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // Removes and returns the tensor (an empty Tensor when absent).
  Tensor take(std::string_view name);
  bool erase(std::string_view name);

  std::size_t size() const { return tensors_.size(); }
  bool empty() const { return tensors_.empty(); }
  Map::const_iterator begin() const { return tensors_.begin(); }
  Map::const_iterator end() const { return tensors_.end(); }
  // Sum of numel() over all tensors.
  std::int64_t parameters() const;

 private:
  Map tensors_;
};

// How a canonical tensor is used; decides quantization (transformer.hpp) and synthetic init.
enum class TensorRole : std::uint8_t {
  kLinear,     // a (out, in) matrix multiplied by activations: quantized when its bits are non-zero
  kTable,      // the token embedding table: a lookup (and the tied LM head)
  kPositions,  // learned position table, cls token: added, never quantized
  kBias,       // biases: fp32
  kNorm,       // norm weights and biases: fp32
  kRouter,     // MoE router: fp32 (routing is discontinuous; llama.cpp keeps it fp32 too)
  kScalar,     // logit_scale
};

struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  TensorRole role = TensorRole::kLinear;
  Component component = Component::kAttention;
  int layer = 0;   // block index within its stack (0 for stack-level tensors)
  int layers = 0;  // blocks of its stack (0 for model-level tensors)
  // Synthetic init: N(mean, std^2) (constant `mean` when std == 0).
  float mean = 0.0f;
  float std = 0.0f;
};

// Every tensor a model of this config needs, in a fixed order (frontend, stacks, heads), with the
// shapes above. The config should be valid (ModelConfig::validate); for an invalid one the list
// is still well defined (no crash) but meaningless.
std::vector<TensorSpec> canonical_tensors(const ModelConfig& config);

// Deterministic synthetic weights for every canonical tensor: linear weights N(0, 0.02^2), output
// projections (attn.o, mlp.down, experts' down) N(0, (0.02 / sqrt(2 * layers))^2), embeddings and
// positions N(0, 0.02^2), biases N(0, 0.01^2), norms weight 1 / bias 0, logit_scale ln(1 / 0.07).
// Each chunk of 65536 elements of a tensor is drawn from its own stream seeded by (seed, name,
// chunk), so a tensor does not depend on which other tensors exist, nor on `threads` (chunks are
// spread over `threads` std::threads).
TensorSet synthetic_weights(const ModelConfig& config, std::uint64_t seed, int threads = 1);

// ---- safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header length
// N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data; offsets are relative to the end of the header.

enum class SafetensorsDtype : std::uint8_t { kF32, kF16, kBF16 };
std::string_view to_string(SafetensorsDtype d);

// Reads every tensor of one file as fp32 (F32, F16 and BF16 are converted). Errors (kInput, the
// message starting with the file name): the file cannot be opened or read; shorter than 8 bytes;
// header length beyond the file; header that is not valid JSON or not an object; an entry without
// a valid dtype, shape or data_offsets; an unsupported dtype; offsets beyond the data, decreasing,
// overlapping another tensor's, or not matching shape x dtype size. Nothing is allocated for a
// tensor before its extent has been checked against the file size.
Result<TensorSet> read_safetensors(const std::filesystem::path& file);

// Reads a sharded checkpoint through its index (model.safetensors.index.json: {"weight_map":
// {name: shard file}}): every shard named (relative to the index's folder), each tensor from the
// shard the map names; tensors a shard holds but the map does not name are ignored. Errors as
// read_safetensors, plus an invalid index (not JSON, no weight_map object, a shard name that is
// not a plain relative path) and a tensor missing from its shard.
Result<TensorSet> read_safetensors_index(const std::filesystem::path& index_json);

// The tensors of a checkpoint folder: through model.safetensors.index.json when present, else the
// union of every *.safetensors file in it (a name in two files is an error). Error when there is
// no safetensors file.
Result<TensorSet> read_safetensors_dir(const std::filesystem::path& dir);

// Writes `tensors` to `file` (names sorted, data contiguous in that order, header padded with
// spaces to a multiple of 8 bytes, "__metadata__" = {"format": "pt"} plus `metadata`). dtype kF16
// rounds to nearest even; kBF16 is not written (an error). Error (kInput) when the file cannot be
// written.
Result<void> write_safetensors(const std::filesystem::path& file, const TensorSet& tensors,
                               SafetensorsDtype dtype = SafetensorsDtype::kF32,
                               const std::map<std::string, std::string>& metadata = {});

// Writes `tensors` into `shards` files dir/model-0000k-of-0000n.safetensors (contiguous runs of the
// sorted names, as even in count as possible) and dir/model.safetensors.index.json, the layout
// HuggingFace uses for large checkpoints. shards >= 1 (IPFSA_EXPECTS); dir must exist.
Result<void> write_safetensors_sharded(const std::filesystem::path& dir, const TensorSet& tensors, int shards,
                                       SafetensorsDtype dtype = SafetensorsDtype::kF32);

}  // namespace ipfsa::engine
