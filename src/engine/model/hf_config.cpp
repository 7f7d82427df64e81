// HuggingFace config.json and tensor-name mapping (hf_config.hpp, docs/engine.md §HuggingFace).
#include "engine/model/hf_config.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace ipfsa::engine {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr std::array<std::string_view, 16> kModelTypes{
    "bert",    "roberta", "distilbert", "gpt2", "llama",   "mistral", "qwen2",    "gemma",
    "mixtral", "phi3",    "t5",         "bart", "whisper", "vit",     "wav2vec2", "clip"};

// Thrown by the accessors below and turned into a Result by parse_hf_config: the one place this
// file uses an exception, to keep dozens of key reads readable (../STYLE.md §4: at the edge of a
// library wrapper, never escaping it).
struct ConfigError {
  std::string message;
};

std::string_view type_name(const Json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number_float()) return "number";
  return j.type_name();
}

// Typed access to one JSON object; `path` prefixes key names of nested objects ("text_config.").
class Keys {
 public:
  Keys(const Json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  bool has(std::string_view key) const {
    const auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }
  int integer(std::string_view key) const { return to_int(key, require(key)); }
  int integer(std::string_view key, int fallback) const {
    return has(key) ? to_int(key, *obj_.find(key)) : fallback;
  }
  double number(std::string_view key, double fallback) const {
    if (!has(key)) return fallback;
    const Json& j = *obj_.find(key);
    if (!j.is_number()) wrong(key, "a number", j);
    return j.get<double>();
  }
  bool boolean(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    const Json& j = *obj_.find(key);
    if (!j.is_boolean()) wrong(key, "a boolean", j);
    return j.get<bool>();
  }
  std::string string(std::string_view key) const {
    const Json& j = require(key);
    if (!j.is_string()) wrong(key, "a string", j);
    return j.get<std::string>();
  }
  std::string string(std::string_view key, std::string_view fallback) const {
    return has(key) ? string(key) : std::string(fallback);
  }
  // A nested object (text_config); fallback to an empty object when absent and not required.
  Keys object(std::string_view key, bool required) const {
    static const Json kEmpty = Json::object();
    if (!has(key)) {
      if (required) missing(key);
      return Keys(kEmpty, path_ + std::string(key) + ".");
    }
    const Json& j = *obj_.find(key);
    if (!j.is_object()) wrong(key, "an object", j);
    return Keys(j, path_ + std::string(key) + ".");
  }
  const Json* raw(std::string_view key) const { return has(key) ? &*obj_.find(key) : nullptr; }
  std::string name(std::string_view key) const { return path_ + std::string(key); }

  [[noreturn]] void fail(std::string_view key, const std::string& msg) const {
    throw ConfigError{"key '" + name(key) + "' " + msg};
  }

 private:
  const Json& require(std::string_view key) const {
    if (!has(key)) missing(key);
    return *obj_.find(key);
  }
  [[noreturn]] void missing(std::string_view key) const {
    throw ConfigError{"missing key '" + name(key) + "'"};
  }
  [[noreturn]] void wrong(std::string_view key, std::string_view want, const Json& got) const {
    throw ConfigError{"key '" + name(key) + "' must be " + std::string(want) + ", got " +
                      std::string(type_name(got))};
  }
  int to_int(std::string_view key, const Json& j) const {
    if (!j.is_number_integer()) wrong(key, "an integer", j);
    constexpr std::int64_t kMax = 1'000'000'000;
    const bool ok = j.is_number_unsigned() ? j.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMax)
                                           : j.get<std::int64_t>() >= 0 && j.get<std::int64_t>() <= kMax;
    if (!ok) fail(key, "= " + j.dump() + " is out of range [0, " + std::to_string(kMax) + "]");
    return static_cast<int>(j.get<std::int64_t>());
  }

  const Json& obj_;
  std::string path_;
};

Activation activation(const Keys& k, std::string_view key, std::string_view fallback) {
  const std::string a = k.string(key, fallback);
  if (a == "gelu" || a == "quick_gelu")
    return Activation::kGelu;  // quick_gelu: approximated (docs/engine.md)
  if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast" || a == "gelu_python")
    return Activation::kGeluTanh;
  if (a == "silu" || a == "swish") return Activation::kSilu;
  if (a == "relu") return Activation::kRelu;
  k.fail(key, "names an unsupported activation '" + a +
                  "' (supported: gelu, gelu_new, gelu_pytorch_tanh, "
                  "quick_gelu, silu, swish, relu)");
}

StackConfig mha(int layers, int hidden, int heads, int ffn) {
  StackConfig s;
  s.layers = layers;
  s.hidden = hidden;
  s.heads = heads;
  s.kv_heads = heads;
  s.ffn = ffn;
  return s;
}

// bert, roberta: post-norm encoder, learned positions, token types folded into the positions.
void bert_like(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kEncoder;
  c.vocab = k.integer("vocab_size");
  StackConfig s = mha(k.integer("num_hidden_layers"), k.integer("hidden_size"),
                      k.integer("num_attention_heads"), k.integer("intermediate_size"));
  s.activation = activation(k, "hidden_act", "gelu");
  s.pre_norm = false;
  s.norm_eps = static_cast<float>(k.number("layer_norm_eps", 1e-12));
  s.max_positions = k.integer("max_position_embeddings", 512);
  if (h.model_type == "roberta") {
    h.position_offset = k.integer("pad_token_id", 1) + 1;
    if (s.max_positions <= h.position_offset)
      k.fail("max_position_embeddings", "= " + std::to_string(s.max_positions) +
                                            " leaves no position after the " +
                                            std::to_string(h.position_offset) + " padding rows");
    s.max_positions -= h.position_offset;
  }
  c.tie_embeddings = k.boolean("tie_word_embeddings", true);
  c.encoder = s;
}

void distilbert(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kEncoder;
  c.vocab = k.integer("vocab_size");
  StackConfig s = mha(k.integer("n_layers"), k.integer("dim"), k.integer("n_heads"), k.integer("hidden_dim"));
  s.activation = activation(k, "activation", "gelu");
  s.pre_norm = false;
  s.norm_eps = 1e-12f;
  s.max_positions = k.integer("max_position_embeddings", 512);
  c.tie_embeddings = k.boolean("tie_word_embeddings", true);
  c.encoder = s;
}

void gpt2(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kDecoder;
  c.vocab = k.integer("vocab_size");
  const int hidden = k.integer("n_embd");
  StackConfig s = mha(k.integer("n_layer"), hidden, k.integer("n_head"), k.integer("n_inner", 4 * hidden));
  s.causal = true;
  s.activation = activation(k, "activation_function", "gelu_new");
  s.norm_eps = static_cast<float>(k.number("layer_norm_epsilon", 1e-5));
  s.max_positions = k.integer("n_positions", 1024);
  c.tie_embeddings = k.boolean("tie_word_embeddings", true);
  c.decoder = s;
}

// llama, mistral, qwen2, gemma, mixtral, phi3: pre-norm RMSNorm decoders with RoPE and a gated MLP.
void llama_like(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  const std::string& t = h.model_type;
  c.family = t == "mixtral" ? Family::kMoe : Family::kDecoder;
  c.vocab = k.integer("vocab_size");
  const int heads = k.integer("num_attention_heads");
  StackConfig s =
      mha(k.integer("num_hidden_layers"), k.integer("hidden_size"), heads, k.integer("intermediate_size"));
  s.kv_heads = k.integer("num_key_value_heads", heads);
  s.causal = true;
  s.gated_mlp = true;
  s.activation = t == "gemma" ? activation(k, k.has("hidden_activation") ? "hidden_activation" : "hidden_act",
                                           "gelu_pytorch_tanh")
                              : activation(k, "hidden_act", "silu");
  s.norm = NormKind::kRmsNorm;
  s.norm_eps = static_cast<float>(k.number("rms_norm_eps", t == "mixtral" || t == "phi3" ? 1e-5 : 1e-6));
  s.position = PositionKind::kRope;
  s.rope_theta = static_cast<float>(k.number("rope_theta", t == "mixtral" ? 1e6 : 10000.0));
  s.max_positions = k.integer("max_position_embeddings", 2048);
  s.qkv_bias = t == "qwen2" ? true : k.boolean("attention_bias", false);
  s.mlp_bias = k.boolean("mlp_bias", false);
  if (k.has("head_dim") && heads > 0 && k.integer("head_dim") * heads != s.hidden)
    k.fail("head_dim", "= " + std::to_string(k.integer("head_dim")) +
                           " differs from hidden_size / num_attention_heads (" +
                           std::to_string(s.hidden / heads) + "): not supported by the engine");
  if (k.number("partial_rotary_factor", 1.0) != 1.0) k.fail("partial_rotary_factor", "!= 1 is not supported");
  if (t == "mixtral") {
    s.experts = k.integer("num_local_experts", 8);
    s.experts_top_k = k.integer("num_experts_per_tok", 2);
  }
  c.tie_embeddings = k.boolean("tie_word_embeddings", t == "gemma");
  if (t == "gemma") c.embed_scale = std::sqrt(static_cast<float>(s.hidden));
  c.decoder = s;
}

void t5(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kEncoderDecoder;
  c.vocab = k.integer("vocab_size");
  const int hidden = k.integer("d_model"), heads = k.integer("num_heads");
  const int layers = k.integer("num_layers");
  if (k.has("d_kv") && k.integer("d_kv") * heads != hidden)
    k.fail("d_kv", "= " + std::to_string(k.integer("d_kv")) + " times num_heads differs from d_model " +
                       std::to_string(hidden) + ": not supported by the engine");
  StackConfig s = mha(layers, hidden, heads, k.integer("d_ff"));
  std::string proj = k.string("feed_forward_proj", "relu");
  if (proj.starts_with("gated-")) {
    s.gated_mlp = true;
    proj = proj.substr(6);
  }
  if (proj == "gelu") proj = "gelu_new";  // T5 maps gated-gelu onto gelu_new
  if (proj == "relu")
    s.activation = Activation::kRelu;
  else if (proj == "gelu_new")
    s.activation = Activation::kGeluTanh;
  else if (proj == "silu" || proj == "swish")
    s.activation = Activation::kSilu;
  else
    k.fail("feed_forward_proj", "names an unsupported activation '" + k.string("feed_forward_proj") + "'");
  s.norm = NormKind::kRmsNorm;
  s.norm_eps = static_cast<float>(k.number("layer_norm_epsilon", 1e-6));
  s.position = PositionKind::kNone;  // T5's learned relative bias is not modelled (docs/engine.md)
  s.qkv_bias = false;
  s.mlp_bias = false;
  c.encoder = s;
  c.decoder = s;
  c.decoder.layers = k.integer("num_decoder_layers", layers);
  c.decoder.causal = true;
  c.decoder.cross_attention = true;
  c.tie_embeddings = k.boolean("tie_word_embeddings", true);
}

// bart (post-norm) and whisper (pre-norm, audio frontend): same key names.
void bart_like(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  const bool whisper = h.model_type == "whisper";
  c.family = Family::kEncoderDecoder;
  c.vocab = k.integer("vocab_size");
  const int hidden = k.integer("d_model");
  const Activation act = activation(k, "activation_function", "gelu");
  StackConfig e = mha(k.integer("encoder_layers"), hidden, k.integer("encoder_attention_heads"),
                      k.integer("encoder_ffn_dim"));
  StackConfig d = mha(k.integer("decoder_layers"), hidden, k.integer("decoder_attention_heads"),
                      k.integer("decoder_ffn_dim"));
  for (StackConfig* s : {&e, &d}) {
    s->activation = act;
    s->pre_norm = whisper;
    s->norm_eps = 1e-5f;
  }
  if (whisper) {
    c.frontend = Frontend::kAudioConv;
    c.mel_bins = k.integer("num_mel_bins", 80);
    e.max_positions = k.integer("max_source_positions", 1500);
    d.max_positions = k.integer("max_target_positions", 448);
  } else {
    e.max_positions = d.max_positions = k.integer("max_position_embeddings", 1024);
  }
  d.causal = true;
  d.cross_attention = true;
  if (k.boolean("scale_embedding", false)) c.embed_scale = std::sqrt(static_cast<float>(hidden));
  c.tie_embeddings = k.boolean("tie_word_embeddings", true);
  c.encoder = e;
  c.decoder = d;
}

int count_labels(const Keys& k, int fallback) {
  if (k.has("num_labels")) return k.integer("num_labels");
  if (const Json* j = k.raw("id2label")) {
    if (!j->is_object()) k.fail("id2label", "must be an object");
    return static_cast<int>(j->size());
  }
  return fallback;
}

void vit(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kVision;
  c.frontend = Frontend::kPatches;
  StackConfig s = mha(k.integer("num_hidden_layers"), k.integer("hidden_size"),
                      k.integer("num_attention_heads"), k.integer("intermediate_size"));
  s.activation = activation(k, "hidden_act", "gelu");
  s.norm_eps = static_cast<float>(k.number("layer_norm_eps", 1e-12));
  s.qkv_bias = k.boolean("qkv_bias", true);
  c.image_size = k.integer("image_size", 224);
  c.patch_size = k.integer("patch_size", 16);
  c.channels = k.integer("num_channels", 3);
  if (c.patch_size > 0) s.max_positions = (c.image_size / c.patch_size) * (c.image_size / c.patch_size) + 1;
  c.num_labels = count_labels(k, 2);
  c.tie_embeddings = false;
  c.encoder = s;
}

void wav2vec2(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kAudio;
  c.frontend = Frontend::kAudioConv;
  c.vocab = k.integer("vocab_size");
  c.mel_bins = 80;  // the engine's log-mel stand-in for the waveform CNN (docs/engine.md)
  StackConfig s = mha(k.integer("num_hidden_layers"), k.integer("hidden_size"),
                      k.integer("num_attention_heads"), k.integer("intermediate_size"));
  s.activation = activation(k, "hidden_act", "gelu");
  s.norm_eps = static_cast<float>(k.number("layer_norm_eps", 1e-5));
  s.pre_norm = k.boolean("do_stable_layer_norm", false);
  s.position = PositionKind::kNone;  // the positional convolution is not modelled
  c.tie_embeddings = false;
  c.encoder = s;
}

void clip(const Keys& k, HfConfig& h) {
  ModelConfig& c = h.config;
  c.family = Family::kDualEncoder;
  c.frontend = Frontend::kTokens;
  c.projection_dim = k.integer("projection_dim", 512);
  const Keys t = k.object("text_config", true);
  const Keys v = k.object("vision_config", true);
  // Defaults of CLIPTextConfig / CLIPVisionConfig: recent transformers write only what differs.
  c.vocab = t.integer("vocab_size", 49408);
  StackConfig ts = mha(t.integer("num_hidden_layers", 12), t.integer("hidden_size", 512),
                       t.integer("num_attention_heads", 8), t.integer("intermediate_size", 2048));
  ts.causal = true;
  ts.activation = activation(t, "hidden_act", "quick_gelu");
  ts.norm_eps = static_cast<float>(t.number("layer_norm_eps", 1e-5));
  ts.max_positions = t.integer("max_position_embeddings", 77);
  StackConfig vs = mha(v.integer("num_hidden_layers", 12), v.integer("hidden_size", 768),
                       v.integer("num_attention_heads", 12), v.integer("intermediate_size", 3072));
  vs.activation = activation(v, "hidden_act", "quick_gelu");
  vs.norm_eps = static_cast<float>(v.number("layer_norm_eps", 1e-5));
  c.image_size = v.integer("image_size", 224);
  c.patch_size = v.integer("patch_size", 32);
  c.channels = v.integer("num_channels", 3);
  if (c.patch_size > 0) vs.max_positions = (c.image_size / c.patch_size) * (c.image_size / c.patch_size) + 1;
  c.tie_embeddings = false;
  c.encoder = ts;
  c.vision = vs;
}

}  // namespace

std::span<const std::string_view> hf_model_types() {
  return kModelTypes;
}

Result<HfConfig> parse_hf_config(std::string_view json_text, std::string_view where) {
  const std::string w = std::string(where) + ": ";
  const Json json = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return input_error(w + "invalid JSON");
  if (!json.is_object()) return input_error(w + "not a JSON object");
  HfConfig h;
  try {
    const Keys k(json, "");
    h.model_type = k.string("model_type");
    h.config.name = h.model_type;
    if (const Json* arch = k.raw("architectures")) {
      if (!arch->is_array()) k.fail("architectures", "must be an array of strings");
      if (!arch->empty()) {
        if (!(*arch)[0].is_string()) k.fail("architectures", "must be an array of strings");
        h.config.hf_class = (*arch)[0].get<std::string>();
      }
    }
    const std::string& t = h.model_type;
    if (t == "bert" || t == "roberta")
      bert_like(k, h);
    else if (t == "distilbert")
      distilbert(k, h);
    else if (t == "gpt2")
      gpt2(k, h);
    else if (t == "llama" || t == "mistral" || t == "qwen2" || t == "gemma" || t == "mixtral" || t == "phi3")
      llama_like(k, h);
    else if (t == "t5")
      t5(k, h);
    else if (t == "bart" || t == "whisper")
      bart_like(k, h);
    else if (t == "vit")
      vit(k, h);
    else if (t == "wav2vec2")
      wav2vec2(k, h);
    else if (t == "clip")
      clip(k, h);
    else {
      std::string list;
      for (auto m : kModelTypes) list += (list.empty() ? "" : ", ") + std::string(m);
      return input_error(w + "unsupported model_type '" + t + "' (supported: " + list + ")");
    }
  } catch (const ConfigError& e) {
    return input_error(w + e.message);
  }
  auto ok = h.config.validate(where);
  if (!ok) return ok.error();
  return h;
}

Result<HfConfig> read_hf_config(const fs::path& config_json) {
  std::ifstream in(config_json, std::ios::binary);
  if (!in) return input_error(config_json.string() + ": cannot open for reading");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto h = parse_hf_config(text, config_json.string());
  if (!h) return h;
  const fs::path dir = config_json.parent_path();
  if (!dir.filename().empty()) h->config.name = dir.filename().string();
  return h;
}

// ---- tensor names ----

namespace {

// "layers.12.self_attn.q_proj.weight" with prefix "layers." -> (12, "self_attn.q_proj.weight").
bool split_layer(std::string_view name, std::string_view prefix, int* layer, std::string_view* rest) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const auto dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const auto [p, ec] = std::from_chars(name.data(), name.data() + dot, *layer);
  if (ec != std::errc() || p != name.data() + dot) return false;
  *rest = name.substr(dot + 1);
  return true;
}

std::string_view strip(std::string_view name, std::initializer_list<std::string_view> prefixes) {
  for (auto p : prefixes)
    if (name.starts_with(p)) return name.substr(p.size());
  return name;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Splits t along dim 0 into parts of `rows` rows each (sum == shape[0]).
Result<std::vector<Tensor>> split_rows(const std::string& name, const Tensor& t,
                                       const std::vector<std::int64_t>& rows) {
  std::int64_t total = 0;
  for (auto r : rows) total += r;
  if (t.shape.empty() || t.shape[0] != total)
    return input_error("tensor '" + name + "' has shape " + shape_string(t.shape) + ", expected " +
                       std::to_string(total) + " rows to split");
  const std::int64_t inner = total > 0 ? t.numel() / total : 0;
  std::vector<Tensor> out;
  std::int64_t at = 0;
  for (auto r : rows) {
    Tensor p;
    p.shape = t.shape;
    p.shape[0] = r;
    p.data.assign(t.data.begin() + at * inner, t.data.begin() + (at + r) * inner);
    out.push_back(std::move(p));
    at += r;
  }
  return out;
}

// A 2-D transpose (GPT-2's Conv1D stores weights as (in, out)).
Result<Tensor> transposed(const std::string& name, const Tensor& t, std::int64_t rows, std::int64_t cols) {
  if (t.shape != std::vector<std::int64_t>{rows, cols})
    return input_error("tensor '" + name + "' has shape " + shape_string(t.shape) + ", expected [" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "]");
  Tensor o;
  o.shape = {cols, rows};
  o.data.resize(t.data.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) o.data[c * rows + r] = t.data[r * cols + c];
  return o;
}

std::string layer_name(const char* stack, int i, std::string_view rest) {
  return std::string(stack) + ".layers." + std::to_string(i) + "." + std::string(rest);
}

Result<void> map_llama(const HfConfig& h, TensorSet& in, TensorSet& out) {
  const StackConfig& s = h.config.decoder;
  const bool gemma = h.model_type == "gemma";
  const std::vector<std::int64_t> qkv_rows = {static_cast<std::int64_t>(s.heads) * s.head_dim(),
                                              static_cast<std::int64_t>(s.kv_heads) * s.head_dim(),
                                              static_cast<std::int64_t>(s.kv_heads) * s.head_dim()};
  auto norm = [gemma](Tensor t) {
    if (gemma)
      for (float& v : t.data) v += 1.0f;  // Gemma's RMSNorm scales by (1 + weight)
    return t;
  };
  std::vector<std::string> names;
  for (const auto& [name, t] : in) names.push_back(name);
  static const std::pair<std::string_view, std::string_view> kLayer[] = {
      {"self_attn.q_proj.", "attn.q."}, {"self_attn.k_proj.", "attn.k."},
      {"self_attn.v_proj.", "attn.v."}, {"self_attn.o_proj.", "attn.o."},
      {"mlp.gate_proj.", "mlp.gate."},  {"mlp.up_proj.", "mlp.up."},
      {"mlp.down_proj.", "mlp.down."},  {"block_sparse_moe.gate.", "moe.router."}};
  for (const std::string& full : names) {
    const std::string_view n = strip(full, {"model."});
    int i = 0;
    std::string_view rest;
    if (n == "embed_tokens.weight") {
      out.insert("embed_tokens.weight", in.take(full));
    } else if (n == "norm.weight") {
      out.insert("decoder.final_norm.weight", norm(in.take(full)));
    } else if (full == "lm_head.weight") {
      if (!h.config.tie_embeddings) out.insert("lm_head.weight", in.take(full));
    } else if (split_layer(n, "layers.", &i, &rest)) {
      if (rest == "input_layernorm.weight") {
        out.insert(layer_name("decoder", i, "attn_norm.weight"), norm(in.take(full)));
      } else if (rest == "post_attention_layernorm.weight") {
        out.insert(layer_name("decoder", i, "mlp_norm.weight"), norm(in.take(full)));
      } else if (rest == "self_attn.qkv_proj.weight" || rest == "self_attn.qkv_proj.bias") {
        auto parts = split_rows(full, in.take(full), qkv_rows);
        if (!parts) return parts.error();
        const std::string_view suffix = rest.substr(rest.rfind('.') + 1);
        const char* dst[] = {"attn.q.", "attn.k.", "attn.v."};
        for (int j = 0; j < 3; ++j)
          out.insert(layer_name("decoder", i, std::string(dst[j]) + std::string(suffix)),
                     std::move((*parts)[j]));
      } else if (rest == "mlp.gate_up_proj.weight") {
        auto parts = split_rows(full, in.take(full), {s.ffn, s.ffn});
        if (!parts) return parts.error();
        out.insert(layer_name("decoder", i, "mlp.gate.weight"), std::move((*parts)[0]));
        out.insert(layer_name("decoder", i, "mlp.up.weight"), std::move((*parts)[1]));
      } else if (int e = 0; split_layer(rest, "block_sparse_moe.experts.", &e, &rest)) {
        static const std::pair<std::string_view, std::string_view> kExpert[] = {
            {"w1.", "gate."}, {"w3.", "up."}, {"w2.", "down."}};
        for (const auto& [from, to] : kExpert)
          if (rest.starts_with(from))
            out.insert(layer_name("decoder", i,
                                  "moe.experts." + std::to_string(e) + "." + std::string(to) +
                                      std::string(rest.substr(from.size()))),
                       in.take(full));
      } else {
        for (const auto& [from, to] : kLayer)
          if (rest.starts_with(from)) {
            out.insert(layer_name("decoder", i, std::string(to) + std::string(rest.substr(from.size()))),
                       in.take(full));
            break;
          }
      }
    }
  }
  // Qwen2 has biases on q, k and v but not on o: the canonical o bias is zero.
  if (s.qkv_bias)
    for (int i = 0; i < s.layers; ++i)
      for (const char* p : {"attn.q.bias", "attn.k.bias", "attn.v.bias", "attn.o.bias"}) {
        const std::string name = layer_name("decoder", i, p);
        if (out.contains(name)) continue;
        const std::int64_t rows = p[5] == 'o' ? s.hidden : (p[5] == 'q' ? qkv_rows[0] : qkv_rows[1]);
        out.insert(name, Tensor{{rows}, std::vector<float>(static_cast<std::size_t>(rows), 0.0f)});
      }
  return {};
}

Result<void> map_gpt2(const HfConfig& h, TensorSet& in, TensorSet& out) {
  const StackConfig& s = h.config.decoder;
  const std::int64_t hd = s.hidden, ffn = s.ffn;
  std::vector<std::string> names;
  for (const auto& [name, t] : in) names.push_back(name);
  for (const std::string& full : names) {
    const std::string_view n = strip(full, {"transformer."});
    int i = 0;
    std::string_view rest;
    if (n == "wte.weight") {
      out.insert("embed_tokens.weight", in.take(full));
    } else if (n == "wpe.weight") {
      out.insert("decoder.embed_positions.weight", in.take(full));
    } else if (n == "ln_f.weight" || n == "ln_f.bias") {
      out.insert("decoder.final_norm." + std::string(n.substr(5)), in.take(full));
    } else if (split_layer(n, "h.", &i, &rest)) {
      if (rest.starts_with("ln_1.")) {
        out.insert(layer_name("decoder", i, "attn_norm." + std::string(rest.substr(5))), in.take(full));
      } else if (rest.starts_with("ln_2.")) {
        out.insert(layer_name("decoder", i, "mlp_norm." + std::string(rest.substr(5))), in.take(full));
      } else if (rest == "attn.c_attn.weight") {
        auto t = transposed(full, in.take(full), hd, 3 * hd);
        if (!t) return t.error();
        auto parts = split_rows(full, *t, {hd, hd, hd});
        if (!parts) return parts.error();
        for (int j = 0; j < 3; ++j)
          out.insert(layer_name("decoder", i, std::string("attn.") + "qkv"[j] + ".weight"),
                     std::move((*parts)[j]));
      } else if (rest == "attn.c_attn.bias") {
        auto parts = split_rows(full, in.take(full), {hd, hd, hd});
        if (!parts) return parts.error();
        for (int j = 0; j < 3; ++j)
          out.insert(layer_name("decoder", i, std::string("attn.") + "qkv"[j] + ".bias"),
                     std::move((*parts)[j]));
      } else if (rest == "attn.c_proj.weight" || rest == "mlp.c_fc.weight" || rest == "mlp.c_proj.weight") {
        const bool fc = rest == "mlp.c_fc.weight", proj = rest == "mlp.c_proj.weight";
        auto t = transposed(full, in.take(full), proj ? ffn : hd, fc ? ffn : hd);
        if (!t) return t.error();
        out.insert(layer_name("decoder", i,
                              fc     ? "mlp.up.weight"
                              : proj ? "mlp.down.weight"
                                     : "attn.o.weight"),
                   std::move(t).value());
      } else if (rest == "attn.c_proj.bias") {
        out.insert(layer_name("decoder", i, "attn.o.bias"), in.take(full));
      } else if (rest == "mlp.c_fc.bias") {
        out.insert(layer_name("decoder", i, "mlp.up.bias"), in.take(full));
      } else if (rest == "mlp.c_proj.bias") {
        out.insert(layer_name("decoder", i, "mlp.down.bias"), in.take(full));
      }
    }
  }
  return {};
}

// bert, roberta (prefix "bert." / "roberta." or none) and distilbert ("distilbert.").
Result<void> map_bert(const HfConfig& h, TensorSet& in, TensorSet& out) {
  const bool distil = h.model_type == "distilbert";
  std::vector<std::string> names;
  for (const auto& [name, t] : in) names.push_back(name);
  // Old checkpoints name LayerNorm parameters gamma / beta.
  auto param = [](std::string_view p) {
    if (p == "gamma") return std::string("weight");
    if (p == "beta") return std::string("bias");
    return std::string(p);
  };
  static const std::pair<std::string_view, std::string_view> kBert[] = {
      {"attention.self.query.", "attn.q."},
      {"attention.self.key.", "attn.k."},
      {"attention.self.value.", "attn.v."},
      {"attention.output.dense.", "attn.o."},
      {"attention.output.LayerNorm.", "attn_norm."},
      {"intermediate.dense.", "mlp.up."},
      {"output.dense.", "mlp.down."},
      {"output.LayerNorm.", "mlp_norm."}};
  static const std::pair<std::string_view, std::string_view> kDistil[] = {
      {"attention.q_lin.", "attn.q."},   {"attention.k_lin.", "attn.k."},    {"attention.v_lin.", "attn.v."},
      {"attention.out_lin.", "attn.o."}, {"sa_layer_norm.", "attn_norm."},   {"ffn.lin1.", "mlp.up."},
      {"ffn.lin2.", "mlp.down."},        {"output_layer_norm.", "mlp_norm."}};
  Tensor positions, token_types;
  for (const std::string& full : names) {
    const std::string_view n = strip(full, {"bert.", "roberta.", "distilbert."});
    int i = 0;
    std::string_view rest;
    if (n == "embeddings.word_embeddings.weight") {
      out.insert("embed_tokens.weight", in.take(full));
    } else if (n == "embeddings.position_embeddings.weight") {
      positions = in.take(full);
    } else if (n == "embeddings.token_type_embeddings.weight") {
      token_types = in.take(full);
    } else if (n.starts_with("embeddings.LayerNorm.")) {
      out.insert("encoder.embed_norm." + param(n.substr(21)), in.take(full));
    } else if (split_layer(n, distil ? "transformer.layer." : "encoder.layer.", &i, &rest)) {
      for (const auto& [from, to] : distil ? std::span(kDistil) : std::span(kBert))
        if (rest.starts_with(from)) {
          out.insert(layer_name("encoder", i, std::string(to) + param(rest.substr(from.size()))),
                     in.take(full));
          break;
        }
    }
  }
  if (!positions.data.empty()) {
    const std::int64_t hidden = h.config.encoder.hidden, off = h.position_offset;
    if (positions.shape.size() != 2 || positions.shape[1] != hidden || positions.shape[0] < off)
      return input_error("tensor 'embeddings.position_embeddings.weight' has shape " +
                         shape_string(positions.shape) + ", expected [positions, " + std::to_string(hidden) +
                         "]");
    // RoBERTa: drop the padding rows before position 0.
    positions.data.erase(positions.data.begin(), positions.data.begin() + off * hidden);
    positions.shape[0] -= off;
    // Every token has type 0: its embedding is a constant added to every position.
    if (!token_types.data.empty()) {
      if (token_types.shape.size() != 2 || token_types.shape[1] != hidden || token_types.shape[0] < 1)
        return input_error("tensor 'embeddings.token_type_embeddings.weight' has shape " +
                           shape_string(token_types.shape) + ", expected [types, " + std::to_string(hidden) +
                           "]");
      for (std::size_t r = 0; r < positions.data.size(); r += hidden)
        for (std::int64_t c = 0; c < hidden; ++c) positions.data[r + c] += token_types.data[c];
    }
    out.insert("encoder.embed_positions.weight", std::move(positions));
  }
  return {};
}

}  // namespace

Result<TensorSet> map_hf_tensors(const HfConfig& hf, TensorSet tensors, std::string_view where) {
  const std::string w = std::string(where) + ": ";
  const std::vector<TensorSpec> specs = canonical_tensors(hf.config);
  const TensorSpec* missing = nullptr;
  for (const TensorSpec& s : specs)
    if (!tensors.contains(s.name)) {
      missing = &s;
      break;
    }
  if (missing == nullptr) return tensors;  // canonical names already

  const std::string& t = hf.model_type;
  TensorSet out;
  Result<void> ok;
  if (t == "llama" || t == "mistral" || t == "qwen2" || t == "gemma" || t == "mixtral" || t == "phi3")
    ok = map_llama(hf, tensors, out);
  else if (t == "gpt2")
    ok = map_gpt2(hf, tensors, out);
  else if (t == "bert" || t == "roberta" || t == "distilbert")
    ok = map_bert(hf, tensors, out);
  else
    return input_error(
        w + "tensor '" + missing->name +
        "' is missing, and there is no HF tensor-name mapping for model_type '" + t +
        "' (mapped: llama, mistral, qwen2, gemma, mixtral, phi3, gpt2, bert, roberta, distilbert)");
  if (!ok) return input_error(w + ok.error().message);
  for (const TensorSpec& s : specs)
    if (!out.contains(s.name))
      return input_error(w + "tensor '" + s.name + "' is missing after mapping the HF names of model_type '" +
                         t + "'");
  return out;
}

Result<LoadedModel> load_model_dir(const fs::path& dir) {
  auto hf = read_hf_config(dir / "config.json");
  if (!hf) return hf.error();
  auto tensors = read_safetensors_dir(dir);
  if (!tensors) return tensors.error();
  auto mapped = map_hf_tensors(*hf, std::move(tensors).value(), dir.string());
  if (!mapped) return mapped.error();
  return LoadedModel{std::move(hf).value(), std::move(mapped).value()};
}

}  // namespace ipfsa::engine
