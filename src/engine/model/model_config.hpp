// The shape of a transformer model (M6): what the model catalog (configs/models/, catalog.hpp)
// describes, what a HuggingFace config.json is mapped onto (hf_config.hpp), and what the engine
// builds and runs (transformer.hpp). Plain values, no I/O.
// Families and how their stacks are used:
//   encoder          tokens -> `encoder` (bidirectional) -> hidden states; logits = LM head (tied)
//   decoder          tokens -> `decoder` (causal) -> logits over `vocab`; prefill + decode with a KV cache
//   encoder_decoder  encoder input -> `encoder`; decoder tokens -> `decoder` with cross-attention
//                    over the encoder output -> logits (T5, BART; Whisper with the audio frontend)
//   vision           image patches -> `encoder` -> classifier logits over `num_labels` (ViT, DeiT)
//   audio            conv frontend over log-mel frames -> `encoder` -> logits over `vocab` (Wav2Vec2: CTC)
//   dual_encoder     text tokens -> `encoder`, image patches -> `vision`; both projected to
//                    `projection_dim`; logits = scaled cosine similarities (CLIP)
//   moe              decoder whose MLPs are `experts` experts with top-`experts_top_k` routing (Mixtral)
// Thread-safety: values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/task.hpp"
#include "engine/quant.hpp"

namespace ipfsa::engine {

enum class Family : std::uint8_t { kEncoder, kDecoder, kEncoderDecoder, kVision, kAudio, kDualEncoder, kMoe };
enum class NormKind : std::uint8_t { kLayerNorm, kRmsNorm };
enum class Activation : std::uint8_t { kGelu, kGeluTanh, kSilu, kRelu };
// kRope: rotary on q and k (theta `rope_theta`); kAlibi: per-head linear bias; kLearned: a table of
// `max_positions` added to the input; kNone: no position signal in the stack itself.
enum class PositionKind : std::uint8_t { kLearned, kRope, kAlibi, kNone };
enum class Frontend : std::uint8_t { kTokens, kPatches, kAudioConv };

// Lower-case names as written in the catalog and printed by `models list` ("encoder_decoder",
// "rms_norm", "gelu_tanh", "rope", "audio_conv"); parse_* return nullopt for an unknown name.
std::string_view to_string(Family f);
std::string_view to_string(NormKind n);
std::string_view to_string(Activation a);
std::string_view to_string(PositionKind p);
std::string_view to_string(Frontend f);
std::optional<Family> parse_family(std::string_view s);
std::optional<NormKind> parse_norm(std::string_view s);
std::optional<Activation> parse_activation(std::string_view s);
std::optional<PositionKind> parse_position(std::string_view s);
std::optional<Frontend> parse_frontend(std::string_view s);

// One stack of transformer blocks. layers == 0 means the stack is absent.
struct StackConfig {
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;  // == heads: multi-head; < heads (dividing it): grouped-query; 1: multi-query
  int ffn = 0;       // MLP inner width (per expert for MoE)
  bool causal = false;
  bool gated_mlp = false;  // act(x W_gate) * (x W_up) then W_down (LLaMA); else act(x W_up) W_down
  Activation activation = Activation::kGelu;
  NormKind norm = NormKind::kLayerNorm;
  bool pre_norm = true;  // norm before attention/MLP (GPT-2, LLaMA); false: after (BERT, BART)
  float norm_eps = 1e-5f;
  PositionKind position = PositionKind::kLearned;
  float rope_theta = 10000.0f;
  int max_positions = 512;
  bool qkv_bias = true;          // biases on the q/k/v/o projections
  bool mlp_bias = true;          // biases on the MLP projections
  bool cross_attention = false;  // decoder of an encoder-decoder
  int experts = 0;               // > 0: mixture of experts in every block
  int experts_top_k = 0;

  int head_dim() const { return heads > 0 ? hidden / heads : 0; }
};

struct ModelConfig {
  std::string name;      // catalog key ("llama") or the model folder's name when loaded
  std::string hf_class;  // HuggingFace class ("LlamaForCausalLM")
  Family family = Family::kDecoder;
  Frontend frontend = Frontend::kTokens;
  int vocab = 0;       // token vocabulary (tokens frontend), CTC vocabulary (audio)
  int num_labels = 0;  // classifier outputs (vision)
  int image_size = 0;  // patches frontend: square images of image_size^2 pixels
  int patch_size = 0;
  int channels = 3;
  int mel_bins = 0;            // audio frontend input features per frame
  int projection_dim = 0;      // dual encoder
  bool tie_embeddings = true;  // LM head shares the token embedding
  StackConfig encoder;         // absent (layers == 0) for decoder-only models
  StackConfig decoder;         // absent for encoder-only models
  StackConfig vision;          // dual encoder's image tower only
  float embed_scale = 1.0f;    // token embeddings are multiplied by it on lookup (Gemma: sqrt(hidden))

  // Ok, or a kInput error naming the first inconsistent field (e.g. "decoder.kv_heads: 3 does
  // not divide heads 8"), prefixed by `where` (a file name, a catalog entry).
  Result<void> validate(std::string_view where) const;
  // Weights in the model (all stacks, embeddings and heads).
  std::int64_t parameters() const;
};

// Which weights a precision setting applies to.
enum class Component : std::uint8_t {
  kAttention,    // q, k, v, o projections (self and cross)
  kFeedForward,  // MLP / expert projections
  kEmbedding,    // token/patch/position embeddings and the frontend
  kHead,         // LM head / classifier / projections (when not tied)
};

// The bits of every quantizable weight matrix of a model: what a campaign's `precision` names
// ("fp32", "int8", "int4", "int3", "int2" or a mixed profile from configs/precision/, see
// precision.hpp). bits == 0 means fp32 (Eigen); otherwise 2, 3, 4 or 8 with `group` and `scheme`.
struct PrecisionPlan {
  std::string name = "fp32";
  int attention_bits = 0;
  int ffn_bits = 0;
  int embedding_bits = 0;  // embeddings stay fp32 in every built-in profile (a lookup, not a GEMM)
  int head_bits = 0;
  int edge_layer_bits = 0;  // != 0: the first and last `edge_layers` blocks of every stack use it
  int edge_layers = 1;
  int group = 64;
  QuantScheme scheme = QuantScheme::kAsymmetric;
  int kv_bits = 16;  // KV cache of decoders: 16 (fp16), 4 or 2 (kv_cache.hpp)

  // Bits for a weight of component c in block `layer` of a stack of `layers` blocks (layer is
  // ignored for kEmbedding and kHead). 0 = fp32.
  int bits_for(Component c, int layer, int layers) const;
};

}  // namespace ipfsa::engine
