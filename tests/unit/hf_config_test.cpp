// HuggingFace config.json parsing and checkpoint loading (src/engine/model/hf_config.hpp,
// docs/engine.md §HuggingFace): every supported model_type from a tiny config.json written here,
// the error cases, and load_model_dir on folders laid out like HF checkpoints (HF tensor names,
// fused / transposed tensors) whose forward pass must equal the model built directly from the same
// canonical weights.
#include "engine/model/hf_config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/model/transformer.hpp"

namespace ipfsa::engine {
namespace {

namespace fs = std::filesystem;

HfConfig parse_ok(const std::string& json) {
  auto r = parse_hf_config(json, "config.json");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : HfConfig{};
}

void expect_error(const std::string& json, const std::string& what) {
  auto r = parse_hf_config(json, "cfg/config.json");
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << what;
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  EXPECT_EQ(r.error().message.rfind("cfg/config.json: ", 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
}

constexpr const char* kLlama = R"({
  "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 97, "hidden_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
  "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 128, "tie_word_embeddings": false})";

constexpr const char* kBert = R"({
  "model_type": "bert", "vocab_size": 90, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
  "intermediate_size": 64, "max_position_embeddings": 40, "type_vocab_size": 2, "hidden_act": "gelu",
  "layer_norm_eps": 1e-12})";

TEST(HfConfigTest, Llama) {
  const HfConfig h = parse_ok(kLlama);
  const ModelConfig& c = h.config;
  EXPECT_EQ(h.model_type, "llama");
  EXPECT_EQ(c.hf_class, "LlamaForCausalLM");
  EXPECT_EQ(c.family, Family::kDecoder);
  EXPECT_EQ(c.vocab, 97);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.decoder.layers, 2);
  EXPECT_EQ(c.decoder.hidden, 64);
  EXPECT_EQ(c.decoder.heads, 4);
  EXPECT_EQ(c.decoder.kv_heads, 2);
  EXPECT_EQ(c.decoder.ffn, 128);
  EXPECT_TRUE(c.decoder.causal);
  EXPECT_TRUE(c.decoder.gated_mlp);
  EXPECT_EQ(c.decoder.activation, Activation::kSilu);
  EXPECT_EQ(c.decoder.norm, NormKind::kRmsNorm);
  EXPECT_FLOAT_EQ(c.decoder.norm_eps, 1e-5f);
  EXPECT_EQ(c.decoder.position, PositionKind::kRope);
  EXPECT_FLOAT_EQ(c.decoder.rope_theta, 500000.0f);
  EXPECT_FALSE(c.decoder.qkv_bias);
  EXPECT_FALSE(c.decoder.mlp_bias);
  EXPECT_EQ(c.encoder.layers, 0);
}

TEST(HfConfigTest, LlamaFamilyVariants) {
  const std::string body = R"("vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 4, "intermediate_size": 64)";
  const HfConfig mistral = parse_ok(R"({"model_type": "mistral", "num_key_value_heads": 1, )" + body + "}");
  EXPECT_EQ(mistral.config.decoder.kv_heads, 1);
  const HfConfig qwen = parse_ok(R"({"model_type": "qwen2", )" + body + "}");
  EXPECT_TRUE(qwen.config.decoder.qkv_bias);
  EXPECT_FALSE(qwen.config.tie_embeddings);
  const HfConfig gemma = parse_ok(R"({"model_type": "gemma", "head_dim": 8, )" + body + "}");
  EXPECT_TRUE(gemma.config.tie_embeddings);
  EXPECT_EQ(gemma.config.decoder.activation, Activation::kGeluTanh);
  EXPECT_FLOAT_EQ(gemma.config.embed_scale, std::sqrt(32.0f));
  const HfConfig mixtral = parse_ok(
      R"({"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2, )" + body + "}");
  EXPECT_EQ(mixtral.config.family, Family::kMoe);
  EXPECT_EQ(mixtral.config.decoder.experts, 4);
  EXPECT_EQ(mixtral.config.decoder.experts_top_k, 2);
  const HfConfig phi3 = parse_ok(R"({"model_type": "phi3", )" + body + "}");
  EXPECT_EQ(phi3.config.family, Family::kDecoder);
  EXPECT_FLOAT_EQ(phi3.config.decoder.norm_eps, 1e-5f);
}

TEST(HfConfigTest, EncodersAndGpt2) {
  const HfConfig bert = parse_ok(kBert);
  EXPECT_EQ(bert.config.family, Family::kEncoder);
  EXPECT_FALSE(bert.config.encoder.pre_norm);
  EXPECT_FALSE(bert.config.encoder.causal);
  EXPECT_EQ(bert.config.encoder.position, PositionKind::kLearned);
  EXPECT_EQ(bert.config.encoder.max_positions, 40);
  EXPECT_FLOAT_EQ(bert.config.encoder.norm_eps, 1e-12f);
  EXPECT_EQ(bert.position_offset, 0);

  const HfConfig roberta = parse_ok(R"({"model_type": "roberta", "vocab_size": 90, "hidden_size": 32,
      "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 42,
      "pad_token_id": 1})");
  EXPECT_EQ(roberta.position_offset, 2);
  EXPECT_EQ(roberta.config.encoder.max_positions, 40);

  const HfConfig distil = parse_ok(R"({"model_type": "distilbert", "vocab_size": 90, "dim": 32, "n_layers": 2,
      "n_heads": 4, "hidden_dim": 64, "activation": "gelu"})");
  EXPECT_EQ(distil.config.family, Family::kEncoder);
  EXPECT_EQ(distil.config.encoder.ffn, 64);
  EXPECT_EQ(distil.config.encoder.max_positions, 512);

  const HfConfig gpt2 = parse_ok(R"({"model_type": "gpt2", "vocab_size": 70, "n_embd": 32, "n_layer": 2,
      "n_head": 4, "n_positions": 24, "n_inner": null, "activation_function": "gelu_new"})");
  const ModelConfig& g = gpt2.config;
  EXPECT_EQ(g.family, Family::kDecoder);
  EXPECT_EQ(g.decoder.ffn, 128);
  EXPECT_EQ(g.decoder.activation, Activation::kGeluTanh);
  EXPECT_TRUE(g.decoder.pre_norm);
  EXPECT_EQ(g.decoder.norm, NormKind::kLayerNorm);
  EXPECT_EQ(g.decoder.max_positions, 24);
  EXPECT_TRUE(g.tie_embeddings);
}

TEST(HfConfigTest, EncoderDecoders) {
  const HfConfig t5 = parse_ok(R"({"model_type": "t5", "vocab_size": 80, "d_model": 32, "d_kv": 8, "d_ff": 64,
      "num_layers": 2, "num_decoder_layers": 3, "num_heads": 4, "feed_forward_proj": "gated-gelu"})");
  const ModelConfig& c = t5.config;
  EXPECT_EQ(c.family, Family::kEncoderDecoder);
  EXPECT_EQ(c.frontend, Frontend::kTokens);
  EXPECT_EQ(c.encoder.layers, 2);
  EXPECT_EQ(c.decoder.layers, 3);
  EXPECT_TRUE(c.decoder.cross_attention);
  EXPECT_TRUE(c.decoder.causal);
  EXPECT_FALSE(c.encoder.causal);
  EXPECT_TRUE(c.decoder.gated_mlp);
  EXPECT_EQ(c.decoder.activation, Activation::kGeluTanh);
  EXPECT_EQ(c.encoder.norm, NormKind::kRmsNorm);
  EXPECT_FALSE(c.encoder.qkv_bias);

  const HfConfig bart =
      parse_ok(R"({"model_type": "bart", "vocab_size": 80, "d_model": 32, "encoder_layers": 2,
      "decoder_layers": 1, "encoder_attention_heads": 4, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
      "decoder_ffn_dim": 48, "max_position_embeddings": 30, "scale_embedding": true})");
  EXPECT_FALSE(bart.config.encoder.pre_norm);
  EXPECT_EQ(bart.config.decoder.heads, 2);
  EXPECT_EQ(bart.config.decoder.ffn, 48);
  EXPECT_EQ(bart.config.decoder.max_positions, 30);
  EXPECT_FLOAT_EQ(bart.config.embed_scale, std::sqrt(32.0f));

  const HfConfig whisper = parse_ok(R"({"model_type": "whisper", "vocab_size": 80, "d_model": 32,
      "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
      "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "num_mel_bins": 16, "max_source_positions": 20,
      "max_target_positions": 12})");
  const ModelConfig& w = whisper.config;
  EXPECT_EQ(w.frontend, Frontend::kAudioConv);
  EXPECT_EQ(w.mel_bins, 16);
  EXPECT_TRUE(w.encoder.pre_norm);
  EXPECT_EQ(w.encoder.max_positions, 20);
  EXPECT_EQ(w.decoder.max_positions, 12);
}

TEST(HfConfigTest, VisionAudioAndClip) {
  const HfConfig vit = parse_ok(R"({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 64, "image_size": 16, "patch_size": 4, "num_channels": 3,
      "id2label": {"0": "cat", "1": "dog", "2": "bird"}})");
  EXPECT_EQ(vit.config.family, Family::kVision);
  EXPECT_EQ(vit.config.num_labels, 3);
  EXPECT_EQ(vit.config.encoder.max_positions, 17);

  const HfConfig w2v = parse_ok(R"({"model_type": "wav2vec2", "vocab_size": 32, "hidden_size": 32,
      "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "do_stable_layer_norm": true})");
  EXPECT_EQ(w2v.config.family, Family::kAudio);
  EXPECT_EQ(w2v.config.frontend, Frontend::kAudioConv);
  EXPECT_TRUE(w2v.config.encoder.pre_norm);
  EXPECT_EQ(w2v.config.encoder.position, PositionKind::kNone);

  const HfConfig clip = parse_ok(R"({"model_type": "clip", "projection_dim": 16,
      "text_config": {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
                      "intermediate_size": 64, "max_position_embeddings": 16},
      "vision_config": {"hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4,
                        "intermediate_size": 96, "image_size": 16, "patch_size": 8}})");
  const ModelConfig& c = clip.config;
  EXPECT_EQ(c.family, Family::kDualEncoder);
  EXPECT_EQ(c.vocab, 100);
  EXPECT_TRUE(c.encoder.causal);
  EXPECT_EQ(c.vision.hidden, 48);
  EXPECT_EQ(c.vision.max_positions, 5);
  EXPECT_EQ(c.projection_dim, 16);
  // Omitted sub-config keys take CLIP's defaults (recent transformers write only what differs).
  const HfConfig defaults = parse_ok(R"({"model_type": "clip", "text_config": {}, "vision_config": {}})");
  EXPECT_EQ(defaults.config.encoder.hidden, 512);
  EXPECT_EQ(defaults.config.vision.hidden, 768);
  EXPECT_EQ(defaults.config.vision.max_positions, 50);
}

TEST(HfConfigTest, EveryListedTypeParses) {
  EXPECT_EQ(hf_model_types().size(), 16u);
  for (std::string_view t : hf_model_types()) {
    // Unknown types are rejected before key lookups, known ones complain about a missing key.
    auto r = parse_hf_config(R"({"model_type": ")" + std::string(t) + "\"}", "x");
    if (t == "clip") {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("missing key 'text_config'"), std::string::npos) << r.error().message;
    } else {
      ASSERT_FALSE(r.ok());
      EXPECT_NE(r.error().message.find("missing key"), std::string::npos) << t << ": " << r.error().message;
    }
  }
}

TEST(HfConfigTest, Errors) {
  expect_error("{\"model_type\": ", "invalid JSON");
  expect_error("[1]", "not a JSON object");
  expect_error(R"({"vocab_size": 3})", "missing key 'model_type'");
  expect_error(R"({"model_type": 3})", "key 'model_type' must be a string, got integer");
  expect_error(R"({"model_type": "falcon"})", "unsupported model_type 'falcon' (supported: bert, roberta");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "num_hidden_layers": 2})",
               "missing key 'num_attention_heads'");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": "64", "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 128})",
               "key 'hidden_size' must be an integer, got string");
  expect_error(R"({"model_type": "llama", "vocab_size": 97.5, "hidden_size": 64})",
               "key 'vocab_size' must be an integer, got number");
  expect_error(R"({"model_type": "llama", "vocab_size": -3, "hidden_size": 64})",
               "key 'vocab_size' = -3 is out of range");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 128, "rms_norm_eps": "small"})",
               "key 'rms_norm_eps' must be a number, got string");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 128, "tie_word_embeddings": 1})",
               "key 'tie_word_embeddings' must be a boolean, got integer");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 128, "hidden_act": "mish"})",
               "key 'hidden_act' names an unsupported activation 'mish'");
  expect_error(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 3, "intermediate_size": 128})",
               "decoder.kv_heads: 3 does not divide heads 4");
  expect_error(R"({"model_type": "gemma", "vocab_size": 97, "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 4, "intermediate_size": 128, "head_dim": 32})",
               "key 'head_dim' = 32 differs from hidden_size / num_attention_heads (16)");
  expect_error(R"({"model_type": "clip", "text_config": [], "vision_config": {}})",
               "key 'text_config' must be an object, got array");
  expect_error(R"({"model_type": "clip", "text_config": {"hidden_size": "x"}, "vision_config": {}})",
               "key 'text_config.hidden_size' must be an integer, got string");
  expect_error(R"({"model_type": "bert", "architectures": "BertModel", "vocab_size": 1})",
               "key 'architectures' must be an array of strings");
}

TEST(HfConfigTest, ReadsFileAndNamesIt) {
  std::string tmpl = ::testing::TempDir() + "ipfsa_hf_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir(tmpl);
  auto missing = read_hf_config(dir / "config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find((dir / "config.json").string() + ": cannot open"),
            std::string::npos);
  std::ofstream(dir / "config.json") << kLlama;
  auto r = read_hf_config(dir / "config.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->config.name, dir.filename().string());
  fs::remove_all(dir);
}

// ---- checkpoint folders with HF tensor names ----

class HfCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "ipfsa_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 public:
  // Writes config.json and the tensors, loads the folder, builds both models and checks that their
  // forward passes agree exactly.
  void expect_loads_like(const std::string& config_json, const TensorSet& hf_tensors,
                         const ModelConfig& config, const TensorSet& canonical, int shards = 1) {
    std::ofstream(dir_ / "config.json") << config_json;
    if (shards == 1)
      ASSERT_TRUE(write_safetensors(dir_ / "model.safetensors", hf_tensors).ok());
    else
      ASSERT_TRUE(write_safetensors_sharded(dir_, hf_tensors, shards).ok());
    auto loaded = load_model_dir(dir_);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    auto from_dir = Model::build(loaded->hf.config, loaded->weights, PrecisionPlan{});
    ASSERT_TRUE(from_dir.ok()) << from_dir.error().message;
    auto direct = Model::build(config, canonical, PrecisionPlan{});
    ASSERT_TRUE(direct.ok()) << direct.error().message;
    const ModelInput in = make_synthetic_input(config, 2, 5, 11);
    auto a = from_dir->forward(in);
    auto b = direct->forward(in);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(a->logits, b->logits);
    EXPECT_EQ(a->hidden, b->hidden);
  }

  fs::path dir_;
};

std::string layer(int i, const std::string& rest) {
  return "decoder.layers." + std::to_string(i) + "." + rest;
}

// Canonical llama-family weights under HF names (model.layers.N.self_attn.q_proj.weight, ...).
TensorSet to_hf_llama(const ModelConfig& c, const TensorSet& w, bool fused, bool gemma) {
  TensorSet hf;
  auto copy = [&](const std::string& from, const std::string& to) { hf.insert(to, *w.find(from)); };
  auto minus_one = [&](const std::string& from, const std::string& to) {
    Tensor t = *w.find(from);
    if (gemma)
      for (float& v : t.data) v -= 1.0f;
    hf.insert(to, t);
  };
  copy("embed_tokens.weight", "model.embed_tokens.weight");
  minus_one("decoder.final_norm.weight", "model.norm.weight");
  if (!c.tie_embeddings) copy("lm_head.weight", "lm_head.weight");
  for (int i = 0; i < c.decoder.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    minus_one(layer(i, "attn_norm.weight"), p + "input_layernorm.weight");
    minus_one(layer(i, "mlp_norm.weight"), p + "post_attention_layernorm.weight");
    if (fused) {
      Tensor qkv = *w.find(layer(i, "attn.q.weight"));
      for (const char* m : {"attn.k.weight", "attn.v.weight"}) {
        const Tensor& t = *w.find(layer(i, m));
        qkv.data.insert(qkv.data.end(), t.data.begin(), t.data.end());
        qkv.shape[0] += t.shape[0];
      }
      hf.insert(p + "self_attn.qkv_proj.weight", qkv);
      Tensor gu = *w.find(layer(i, "mlp.gate.weight"));
      const Tensor& up = *w.find(layer(i, "mlp.up.weight"));
      gu.data.insert(gu.data.end(), up.data.begin(), up.data.end());
      gu.shape[0] *= 2;
      hf.insert(p + "mlp.gate_up_proj.weight", gu);
      copy(layer(i, "attn.o.weight"), p + "self_attn.o_proj.weight");
      copy(layer(i, "mlp.down.weight"), p + "mlp.down_proj.weight");
    } else {
      for (const char* m : {"q", "k", "v", "o"}) {
        copy(layer(i, std::string("attn.") + m + ".weight"), p + "self_attn." + m + "_proj.weight");
        // Qwen2 stores q/k/v biases but no o bias; the mapping fills it with zeros.
        if (c.decoder.qkv_bias && std::string(m) != "o")
          copy(layer(i, std::string("attn.") + m + ".bias"), p + "self_attn." + m + "_proj.bias");
      }
      if (c.decoder.experts > 0) {
        copy(layer(i, "moe.router.weight"), p + "block_sparse_moe.gate.weight");
        for (int e = 0; e < c.decoder.experts; ++e) {
          const std::string ex = "moe.experts." + std::to_string(e) + ".";
          const std::string hx = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
          copy(layer(i, ex + "gate.weight"), hx + "w1.weight");
          copy(layer(i, ex + "down.weight"), hx + "w2.weight");
          copy(layer(i, ex + "up.weight"), hx + "w3.weight");
        }
      } else {
        for (const char* m : {"gate", "up", "down"})
          copy(layer(i, std::string("mlp.") + m + ".weight"), p + "mlp." + m + "_proj.weight");
      }
    }
    hf.insert(p + "self_attn.rotary_emb.inv_freq", Tensor{{4}, {1, 2, 3, 4}});  // dropped by the mapping
  }
  return hf;
}

TEST_F(HfCheckpointTest, TinyLlamaLoadsLikeDirectModel) {
  const HfConfig h = parse_ok(kLlama);
  const TensorSet w = synthetic_weights(h.config, 3);
  expect_loads_like(kLlama, to_hf_llama(h.config, w, false, false), h.config, w);
}

TEST_F(HfCheckpointTest, ShardedLlamaLoads) {
  const HfConfig h = parse_ok(kLlama);
  const TensorSet w = synthetic_weights(h.config, 4);
  expect_loads_like(kLlama, to_hf_llama(h.config, w, false, false), h.config, w, 3);
}

TEST_F(HfCheckpointTest, Qwen2GemmaPhi3MixtralLoad) {
  const std::string body = R"("vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64)";
  struct Case {
    std::string json;
    bool fused, gemma;
  };
  const Case cases[] = {
      {R"({"model_type": "qwen2", )" + body + "}", false, false},
      {R"({"model_type": "gemma", )" + body + "}", false, true},
      {R"({"model_type": "phi3", )" + body + "}", true, false},
      {R"({"model_type": "mixtral", "num_local_experts": 3, "num_experts_per_tok": 2, )" + body + "}", false,
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    const HfConfig h = parse_ok(c.json);
    TensorSet w = synthetic_weights(h.config, 5);
    if (h.config.decoder.qkv_bias)  // Qwen2 has no o bias: the loaded model's is zero
      for (int i = 0; i < h.config.decoder.layers; ++i)
        std::fill_n(w.find(layer(i, "attn.o.bias"))->data.begin(), h.config.decoder.hidden, 0.0f);
    expect_loads_like(c.json, to_hf_llama(h.config, w, c.fused, c.gemma), h.config, w);
    fs::remove(dir_ / "model.safetensors");
  }
}

TEST_F(HfCheckpointTest, Gpt2LoadsWithTransposedConv1D) {
  const std::string json =
      R"({"model_type": "gpt2", "vocab_size": 70, "n_embd": 32, "n_layer": 2, "n_head": 4,
      "n_positions": 24})";
  const HfConfig h = parse_ok(json);
  const TensorSet w = synthetic_weights(h.config, 6);
  auto t = [](const Tensor& x) {  // (out, in) -> (in, out)
    Tensor y{{x.shape[1], x.shape[0]}, std::vector<float>(x.data.size())};
    for (std::int64_t r = 0; r < x.shape[0]; ++r)
      for (std::int64_t c = 0; c < x.shape[1]; ++c) y.data[c * x.shape[0] + r] = x.data[r * x.shape[1] + c];
    return y;
  };
  TensorSet hf;
  hf.insert("transformer.wte.weight", *w.find("embed_tokens.weight"));
  hf.insert("transformer.wpe.weight", *w.find("decoder.embed_positions.weight"));
  hf.insert("transformer.ln_f.weight", *w.find("decoder.final_norm.weight"));
  hf.insert("transformer.ln_f.bias", *w.find("decoder.final_norm.bias"));
  for (int i = 0; i < 2; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    for (const char* s : {"weight", "bias"}) {
      hf.insert(p + "ln_1." + s, *w.find(layer(i, std::string("attn_norm.") + s)));
      hf.insert(p + "ln_2." + s, *w.find(layer(i, std::string("mlp_norm.") + s)));
    }
    Tensor qkv = *w.find(layer(i, "attn.q.weight")), qkv_b = *w.find(layer(i, "attn.q.bias"));
    for (const char* m : {"k", "v"}) {
      const Tensor& x = *w.find(layer(i, std::string("attn.") + m + ".weight"));
      qkv.data.insert(qkv.data.end(), x.data.begin(), x.data.end());
      qkv.shape[0] += x.shape[0];
      const Tensor& b = *w.find(layer(i, std::string("attn.") + m + ".bias"));
      qkv_b.data.insert(qkv_b.data.end(), b.data.begin(), b.data.end());
      qkv_b.shape[0] += b.shape[0];
    }
    hf.insert(p + "attn.c_attn.weight", t(qkv));
    hf.insert(p + "attn.c_attn.bias", qkv_b);
    hf.insert(p + "attn.c_proj.weight", t(*w.find(layer(i, "attn.o.weight"))));
    hf.insert(p + "attn.c_proj.bias", *w.find(layer(i, "attn.o.bias")));
    hf.insert(p + "mlp.c_fc.weight", t(*w.find(layer(i, "mlp.up.weight"))));
    hf.insert(p + "mlp.c_fc.bias", *w.find(layer(i, "mlp.up.bias")));
    hf.insert(p + "mlp.c_proj.weight", t(*w.find(layer(i, "mlp.down.weight"))));
    hf.insert(p + "mlp.c_proj.bias", *w.find(layer(i, "mlp.down.bias")));
    hf.insert(p + "attn.bias", Tensor{{1}, {1.0f}});  // the causal-mask buffer, dropped
  }
  expect_loads_like(json, hf, h.config, w);
}

// A tiny BERT (or RoBERTa) under HF names; the direct model's positions are the HF positions (minus
// RoBERTa's padding rows) plus the token-type-0 embedding, which the mapping folds in.
void bert_case(const std::string& json, const std::string& prefix, int offset, const fs::path& dir,
               HfCheckpointTest& test) {
  const HfConfig h = parse_ok(json);
  const ModelConfig& c = h.config;
  const TensorSet w = synthetic_weights(c, 8);
  const std::int64_t hidden = c.encoder.hidden;
  TensorSet hf;
  hf.insert(prefix + "embeddings.word_embeddings.weight", *w.find("embed_tokens.weight"));
  Tensor pos = *w.find("encoder.embed_positions.weight");
  Tensor hf_pos{{pos.shape[0] + offset, hidden},
                std::vector<float>(static_cast<std::size_t>(offset * hidden), 9.0f)};
  hf_pos.data.insert(hf_pos.data.end(), pos.data.begin(), pos.data.end());
  hf.insert(prefix + "embeddings.position_embeddings.weight", hf_pos);
  Tensor types{{2, hidden}, std::vector<float>(static_cast<std::size_t>(2 * hidden))};
  for (std::size_t i = 0; i < types.data.size(); ++i)
    types.data[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  hf.insert(prefix + "embeddings.token_type_embeddings.weight", types);
  hf.insert(prefix + "embeddings.LayerNorm.gamma", *w.find("encoder.embed_norm.weight"));  // old-style names
  hf.insert(prefix + "embeddings.LayerNorm.beta", *w.find("encoder.embed_norm.bias"));
  const std::pair<const char*, const char*> names[] = {{"attn.q", "attention.self.query"},
                                                       {"attn.k", "attention.self.key"},
                                                       {"attn.v", "attention.self.value"},
                                                       {"attn.o", "attention.output.dense"},
                                                       {"attn_norm", "attention.output.LayerNorm"},
                                                       {"mlp.up", "intermediate.dense"},
                                                       {"mlp.down", "output.dense"},
                                                       {"mlp_norm", "output.LayerNorm"}};
  for (int i = 0; i < c.encoder.layers; ++i)
    for (const auto& [ours, theirs] : names)
      for (const char* s : {".weight", ".bias"})
        hf.insert(prefix + "encoder.layer." + std::to_string(i) + "." + theirs + s,
                  *w.find("encoder.layers." + std::to_string(i) + "." + ours + s));
  hf.insert(prefix + "pooler.dense.weight",
            Tensor{{hidden, hidden}, std::vector<float>(hidden * hidden, 0.5f)});
  hf.insert("cls.predictions.bias", Tensor{{c.vocab}, std::vector<float>(c.vocab, 0.0f)});

  TensorSet direct = w;
  for (std::size_t r = 0; r < pos.data.size(); r += hidden)
    for (std::int64_t k = 0; k < hidden; ++k) pos.data[r + k] += types.data[k];
  direct.insert("encoder.embed_positions.weight", pos);
  (void)dir;
  test.expect_loads_like(json, hf, c, direct);
}

TEST_F(HfCheckpointTest, TinyBertLoadsLikeDirectModel) {
  bert_case(kBert, "bert.", 0, dir_, *this);
}

TEST_F(HfCheckpointTest, TinyRobertaDropsPaddingPositions) {
  bert_case(R"({"model_type": "roberta", "vocab_size": 90, "hidden_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 42})",
            "roberta.", 2, dir_, *this);
}

TEST_F(HfCheckpointTest, CanonicalNamesLoadForAnyFamily) {
  const std::string json = R"({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 4, "intermediate_size": 64, "image_size": 16, "patch_size": 8, "num_labels": 5})";
  const HfConfig h = parse_ok(json);
  const TensorSet w = synthetic_weights(h.config, 9);
  expect_loads_like(json, w, h.config, w);
}

TEST_F(HfCheckpointTest, Errors) {
  std::ofstream(dir_ / "config.json") << kLlama;
  auto none = load_model_dir(dir_);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no *.safetensors file"), std::string::npos) << none.error().message;

  // HF names with one projection missing: the error names the canonical tensor.
  const HfConfig h = parse_ok(kLlama);
  TensorSet hf = to_hf_llama(h.config, synthetic_weights(h.config, 1), false, false);
  hf.erase("model.layers.1.mlp.up_proj.weight");
  ASSERT_TRUE(write_safetensors(dir_ / "model.safetensors", hf).ok());
  auto r = load_model_dir(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().message.find("tensor 'decoder.layers.1.mlp.up.weight' is missing after mapping the HF names "
                             "of model_type 'llama'"),
      std::string::npos)
      << r.error().message;

  // A fused tensor of the wrong size is an error, not a crash.
  const std::string phi3 =
      R"({"model_type": "phi3", "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 4, "intermediate_size": 64})";
  const HfConfig p = parse_ok(phi3);
  TensorSet fused = to_hf_llama(p.config, synthetic_weights(p.config, 1), true, false);
  fused.insert("model.layers.0.self_attn.qkv_proj.weight", Tensor{{10, 32}, std::vector<float>(320, 0.0f)});
  auto m = map_hf_tensors(p, fused, "ckpt");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find(
                "tensor 'model.layers.0.self_attn.qkv_proj.weight' has shape [10, 32], expected 96 "
                "rows to split"),
            std::string::npos)
      << m.error().message;

  // A family without a mapping needs canonical names.
  const HfConfig t5 = parse_ok(R"({"model_type": "t5", "vocab_size": 80, "d_model": 32, "d_ff": 64,
      "num_layers": 1, "num_heads": 4})");
  TensorSet odd;
  odd.insert("shared.weight", Tensor{{80, 32}, std::vector<float>(80 * 32, 0.0f)});
  auto u = map_hf_tensors(t5, odd, "ckpt");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("there is no HF tensor-name mapping for model_type 't5'"),
            std::string::npos)
      << u.error().message;
}

}  // namespace
}  // namespace ipfsa::engine
