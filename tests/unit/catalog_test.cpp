// The model catalog (engine/model/catalog.hpp, configs/models/*.yaml). Postconditions for the
// embedded catalog, which the binary cannot run without (a malformed one is a build bug):
//   1. it parses, and every entry's real and tiny architectures pass ModelConfig::validate;
//   2. it maps at least 30 distinct HuggingFace classes onto all 7 families, in all 3 tiers;
//   3. every tiny architecture keeps the features of its real one (family, frontend, stacks, GQA
//      ratio, MLP kind, activation, norm, position, biases, cross-attention, experts), is small,
//      and has widths every precision profile's group divides;
//   4. the real architectures' parameter counts match the published sizes of their checkpoints;
//   5. the embedded text is the text of configs/models/ (the build embedded the current files).
// Every malformed catalog is rejected with "FILE:LINE:COLUMN: message" pointing at the mistake.
#include "engine/model/catalog.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/model/embedded_configs.hpp"
#include "engine/model/precision.hpp"

namespace ipfsa::engine {
namespace {

const std::string kModelsDir = std::string(IPFSA_SOURCE_DIR) + "/configs/models";

const CatalogEntry& entry(std::string_view name) {
  const CatalogEntry* e = find_model(name);
  EXPECT_NE(e, nullptr) << name;
  static const CatalogEntry kNone;
  return e ? *e : kNone;
}

// Postcondition 1.
TEST(Catalog, EmbeddedCatalogParsesAndEveryEntryValidates) {
  auto parsed = parse_embedded_catalog();
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), model_catalog().size());
  for (const CatalogEntry& e : model_catalog()) {
    SCOPED_TRACE(e.name + " (" + e.file + ":" + std::to_string(e.line) + ")");
    auto real = e.real.validate(e.name + " real");
    EXPECT_TRUE(real.ok()) << real.error().message;
    auto tiny = e.tiny.validate(e.name + " tiny");
    EXPECT_TRUE(tiny.ok()) << tiny.error().message;
    EXPECT_EQ(e.real.name, e.name);
    EXPECT_EQ(e.real.hf_class, e.hf_class);
    EXPECT_EQ(e.real.family, e.family);
    EXPECT_EQ(e.tiny.name, e.name);
    EXPECT_FALSE(e.checkpoint.empty());
    EXPECT_TRUE(e.file.rfind("configs/models/", 0) == 0) << e.file;
  }
}

// Postcondition 2.
TEST(Catalog, CoversThirtyClassesAllFamiliesAndTiers) {
  std::set<std::string> classes, names;
  std::set<Family> families;
  std::set<core::Priority> tiers;
  for (const CatalogEntry& e : model_catalog()) {
    classes.insert(e.hf_class);
    EXPECT_TRUE(names.insert(e.name).second) << "duplicate name " << e.name;
    families.insert(e.family);
    tiers.insert(e.tier);
  }
  EXPECT_GE(classes.size(), 30u);
  EXPECT_EQ(families.size(), 7u);
  EXPECT_EQ(tiers.size(), 3u);
  for (const char* critical : {"llama", "bert", "gpt2"})
    EXPECT_EQ(entry(critical).tier, core::Priority::kCritical);
  EXPECT_EQ(model_names().size(), model_catalog().size());
}

TEST(Catalog, FindModel) {
  const CatalogEntry* llama = find_model("llama");
  ASSERT_NE(llama, nullptr);
  EXPECT_EQ(llama->hf_class, "LlamaForCausalLM");
  EXPECT_EQ(llama->family, Family::kDecoder);
  EXPECT_EQ(llama->checkpoint, "meta-llama/Llama-2-7b-hf");
  EXPECT_EQ(llama->file, "configs/models/decoder.yaml");
  EXPECT_EQ(find_model("gpt5"), nullptr);
  EXPECT_EQ(find_model(""), nullptr);
}

void expect_same_features(const StackConfig& real, const StackConfig& tiny) {
  EXPECT_EQ(tiny.layers > 0, real.layers > 0);
  if (real.layers == 0) return;
  EXPECT_EQ(tiny.causal, real.causal);
  EXPECT_EQ(tiny.gated_mlp, real.gated_mlp);
  EXPECT_EQ(tiny.activation, real.activation);
  EXPECT_EQ(tiny.norm, real.norm);
  EXPECT_EQ(tiny.pre_norm, real.pre_norm);
  EXPECT_EQ(tiny.norm_eps, real.norm_eps);
  EXPECT_EQ(tiny.position, real.position);
  EXPECT_EQ(tiny.rope_theta, real.rope_theta);
  EXPECT_EQ(tiny.qkv_bias, real.qkv_bias);
  EXPECT_EQ(tiny.mlp_bias, real.mlp_bias);
  EXPECT_EQ(tiny.cross_attention, real.cross_attention);
  EXPECT_EQ(tiny.experts, real.experts);
  EXPECT_EQ(tiny.experts_top_k, real.experts_top_k);
  // Same attention kind: multi-query stays multi-query, otherwise the same heads / KV-heads ratio.
  EXPECT_EQ(tiny.kv_heads == 1, real.kv_heads == 1);
  if (real.kv_heads > 1) {
    EXPECT_EQ(tiny.heads / tiny.kv_heads, real.heads / real.kv_heads);
  }
  // Small enough to run in milliseconds (Qwen2's 14:2 heads at a width divisible by 64 need 448).
  EXPECT_LE(tiny.layers, 2);
  EXPECT_LE(tiny.hidden, 448);
  EXPECT_LE(tiny.ffn, 512);
  EXPECT_LE(tiny.max_positions, 128);
  // Every precision profile can quantize it: the group divides every matrix's input width.
  for (const PrecisionProfile& p : precision_profiles()) {
    EXPECT_EQ(tiny.hidden % p.plan.group, 0) << p.plan.name;
    EXPECT_EQ(tiny.ffn % p.plan.group, 0) << p.plan.name;
  }
}

// Postcondition 3.
TEST(Catalog, TinyKeepsTheFeaturesOfReal) {
  for (const CatalogEntry& e : model_catalog()) {
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.tiny.family, e.real.family);
    EXPECT_EQ(e.tiny.frontend, e.real.frontend);
    EXPECT_EQ(e.tiny.tie_embeddings, e.real.tie_embeddings);
    EXPECT_EQ(e.tiny.channels, e.real.channels);
    EXPECT_EQ(e.tiny.embed_scale != 1.0f, e.real.embed_scale != 1.0f);
    EXPECT_EQ(e.tiny.mel_bins > 0, e.real.mel_bins > 0);
    EXPECT_LE(e.tiny.vocab, 512);
    EXPECT_LE(e.tiny.image_size, 32);
    EXPECT_LE(e.tiny.mel_bins, 16);
    expect_same_features(e.real.encoder, e.tiny.encoder);
    expect_same_features(e.real.decoder, e.tiny.decoder);
    expect_same_features(e.real.vision, e.tiny.vision);
    EXPECT_LT(e.tiny.parameters(), 4'000'000) << "tiny is not tiny";
  }
}

// Postcondition 4: published sizes of the checkpoints, within 2% (what the engine leaves out,
// e.g. BERT's pooler and token types, is well below that).
TEST(Catalog, RealParameterCountsMatchPublishedSizes) {
  const std::map<std::string, double> published = {
      {"gpt2", 124.44e6}, {"llama", 6.738e9},     {"mistral", 7.242e9}, {"mixtral", 46.70e9},
      {"qwen2", 7.616e9}, {"phi3", 3.821e9},      {"gemma", 2.506e9},   {"t5", 60.51e6},
      {"bart", 139.4e6},  {"vit", 86.57e6},       {"clip", 151.3e6},    {"whisper", 72.59e6},
      {"opt", 125.2e6},   {"bloom", 559.2e6},     {"dbrx", 131.6e9},    {"olmoe", 6.919e9},
      {"bert", 109.5e6},  {"distilbert", 66.4e6}, {"falcon", 6.92e9},   {"gpt-neox", 405.3e6},
  };
  for (const auto& [name, count] : published) {
    const double n = static_cast<double>(entry(name).real.parameters());
    EXPECT_NEAR(n / count, 1.0, 0.02) << name << ": " << n;
  }
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Postcondition 5.
TEST(Catalog, EmbeddedFilesAreTheFilesOfConfigsModels) {
  std::set<std::string> on_disk;
  for (const auto& f : std::filesystem::directory_iterator(kModelsDir))
    if (f.path().extension() == ".yaml") on_disk.insert("configs/models/" + f.path().filename().string());
  std::set<std::string> embedded;
  for (const EmbeddedFile& f : embedded_model_files()) {
    embedded.insert(std::string(f.path));
    EXPECT_EQ(std::string(f.text), read(std::string(IPFSA_SOURCE_DIR) + "/" + std::string(f.path)))
        << f.path << " changed since the build; rebuild";
  }
  EXPECT_EQ(embedded, on_disk);
}

// ---- parse_catalog errors ----

// A valid one-entry catalog; each error test changes one line of it. Lines (1-based):
//  1 models:
//  2   - name: m
//  3     hf_class: MForCausalLM
//  4     family: decoder
//  5     tier: high
//  6     checkpoint: org/m
//  7     real:
//  8       vocab: 100
//  9       decoder: {layers: 2, hidden: 64, heads: 8, kv_heads: 2, ffn: 128, position: rope}
// 10     tiny:
// 11       decoder: {layers: 1}
const std::vector<std::string> kValid = {
    "models:",
    "  - name: m",
    "    hf_class: MForCausalLM",
    "    family: decoder",
    "    tier: high",
    "    checkpoint: org/m",
    "    real:",
    "      vocab: 100",
    "      decoder: {layers: 2, hidden: 64, heads: 8, kv_heads: 2, ffn: 128, position: rope}",
    "    tiny:",
    "      decoder: {layers: 1}",
};

std::string text_of(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

// kValid with line `line` (1-based) replaced; an empty replacement removes the line.
std::string with_line(int line, const std::string& replacement) {
  std::vector<std::string> lines = kValid;
  if (replacement.empty())
    lines.erase(lines.begin() + (line - 1));
  else
    lines[line - 1] = replacement;
  return text_of(lines);
}

// The 1-based column of `token` in line `line` of `text`.
int column_of(const std::string& text, int line, std::string_view token) {
  std::istringstream in(text);
  std::string l;
  for (int i = 0; i < line; ++i) std::getline(in, l);
  const auto at = l.find(token);
  EXPECT_NE(at, std::string::npos) << "'" << token << "' not on line " << line;
  return static_cast<int>(at) + 1;
}

void expect_error(const std::string& text, int line, int column, const std::vector<std::string>& fragments) {
  auto r = parse_catalog(text, "cat.yaml");
  ASSERT_FALSE(r.ok()) << "parsed:\n" << text;
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  const std::string& m = r.error().message;
  const std::string where = "cat.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  EXPECT_EQ(m.rfind(where, 0), 0u) << "expected " << where << "... got: " << m;
  for (const std::string& f : fragments)
    EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
}

// The error is at `token` on line `line`.
void expect_error(const std::string& text, int line, const char* token,
                  const std::vector<std::string>& fragments) {
  expect_error(text, line, column_of(text, line, token), fragments);
}

TEST(CatalogParse, ValidEntryAndDefaults) {
  auto r = parse_catalog(text_of(kValid), "cat.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const CatalogEntry& e = r->front();
  EXPECT_EQ(e.name, "m");
  EXPECT_EQ(e.tier, core::Priority::kHigh);
  EXPECT_EQ(e.file, "cat.yaml");
  EXPECT_EQ(e.line, 2);
  EXPECT_TRUE(e.real.decoder.causal);            // a decoder stack is causal by default
  EXPECT_FALSE(e.real.decoder.cross_attention);  // only in encoder_decoder models
  EXPECT_EQ(e.real.decoder.layers, 2);
  EXPECT_EQ(e.tiny.decoder.layers, 1);  // tiny overrides real field by field
  EXPECT_EQ(e.tiny.decoder.hidden, 64);
  EXPECT_EQ(e.tiny.decoder.kv_heads, 2);
  EXPECT_EQ(e.tiny.vocab, 100);
  EXPECT_EQ(e.real.frontend, Frontend::kTokens);
}

TEST(CatalogParse, KvHeadsDefaultToHeads) {
  auto r =
      parse_catalog(with_line(9, "      decoder: {layers: 2, hidden: 64, heads: 8, ffn: 128}"), "cat.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->front().real.decoder.kv_heads, 8);
  EXPECT_EQ(r->front().tiny.decoder.kv_heads, 8);
}

TEST(CatalogParse, UnknownKeys) {
  expect_error(with_line(5, "    tier: high\n    license: mit"), 6, "license",
               {"unknown key 'license' in a model entry", "allowed keys: name, hf_class"});
  expect_error(with_line(8, "      vocabulary: 100"), 8, "vocabulary", {"unknown key 'vocabulary' in real"});
  expect_error(with_line(11, "      decoder: {layers: 1, window: 4096}"), 11, "window",
               {"unknown key 'window' in tiny.decoder", "experts_top_k"});
  expect_error(with_line(1, "modles:"), 1, "modles", {"unknown key 'modles' in a catalog file"});
}

TEST(CatalogParse, DuplicateKey) {
  expect_error(with_line(5, "    tier: high\n    tier: medium"), 6, "tier",
               {"duplicate key 'tier'", "cat.yaml:5:5"});
}

TEST(CatalogParse, WrongTypes) {
  expect_error(with_line(8, "      vocab: lots"), 8, "lots", {"vocab must be an integer", "'lots'"});
  expect_error(with_line(8, "      vocab: 1.5"), 8, "1.5", {"vocab must be an integer"});
  expect_error(with_line(8, "      vocab: -3"), 8, "-3", {"vocab must be an integer from 1"});
  expect_error(with_line(11, "      decoder: 5"), 11, "5", {"tiny.decoder must be a mapping"});
  expect_error(with_line(11, "      decoder: {layers: 1, causal: yes}"), 11, "yes",
               {"causal must be true or false"});
  expect_error(with_line(11, "      decoder: {layers: 1, norm_eps: 0}"), 11, "0}",
               {"norm_eps must be a number > 0"});
  expect_error(with_line(3, "    hf_class: [A, B]"), 3, "[", {"hf_class must be", "got a list"});
  std::vector<std::string> scalar_real = kValid;
  scalar_real.erase(scalar_real.begin() + 7, scalar_real.begin() + 9);  // lines 8 and 9
  scalar_real[6] = "    real: 3";
  expect_error(text_of(scalar_real), 7, "3", {"real must be a mapping"});
  expect_error(text_of({"models: 3"}), 1, "3", {"models must be a non-empty list"});
}

TEST(CatalogParse, UnknownNames) {
  expect_error(with_line(4, "    family: transformer"), 4, "transformer",
               {"unknown family 'transformer'",
                "encoder, decoder, encoder_decoder, vision, audio, dual_encoder, moe"});
  expect_error(with_line(5, "    tier: low"), 5, "low", {"unknown tier 'low'", "critical, high, medium"});
  expect_error(with_line(11, "      decoder: {activation: swish}"), 11, "swish",
               {"unknown activation 'swish'", "gelu, gelu_tanh, silu, relu"});
  expect_error(with_line(11, "      decoder: {norm: batch_norm}"), 11, "batch_norm",
               {"unknown norm 'batch_norm'"});
  expect_error(with_line(11, "      decoder: {position: sinusoidal}"), 11, "sinusoidal",
               {"unknown position 'sinusoidal'"});
  expect_error(with_line(8, "      frontend: pixels"), 8, "pixels", {"unknown frontend 'pixels'"});
  expect_error(with_line(2, "  - name: Llama 2"), 2, "Llama", {"bad model name 'Llama 2'"});
}

TEST(CatalogParse, MissingFields) {
  expect_error(with_line(3, ""), 2, 5, {"model 'm' is missing key `hf_class`"});
  expect_error(with_line(6, ""), 2, 5, {"model 'm' is missing key `checkpoint`"});
  std::vector<std::string> no_tiny(kValid.begin(), kValid.begin() + 9);
  expect_error(text_of(no_tiny), 2, 5, {"missing key `tiny`"});
  expect_error(with_line(2, "  - notes: x"), 2, "notes", {"a model entry is missing key `name`"});
  expect_error(text_of({"# nothing"}), 1, 1, {"the file is empty"});
  expect_error(text_of({"other: 1"}), 1, "other", {"unknown key 'other'"});
}

TEST(CatalogParse, DuplicateNames) {
  std::vector<std::string> two = kValid;
  two.insert(two.end(), kValid.begin() + 1, kValid.end());  // lines 12..21 repeat the entry
  expect_error(text_of(two), 12, 5, {"duplicate model name 'm'", "first at cat.yaml:2:5"});
}

TEST(CatalogParse, InvalidArchitectureIsReportedAtRealOrTiny) {
  expect_error(with_line(9, "      decoder: {layers: 2, hidden: 64, heads: 8, kv_heads: 3, ffn: 128}"), 7, 5,
               {"model 'm' real", "decoder.kv_heads", "does not divide heads 8"});
  expect_error(with_line(11, "      decoder: {layers: 1, heads: 4, kv_heads: 3}"), 10, 5,
               {"model 'm' tiny", "decoder.kv_heads"});
  expect_error(with_line(8, "      vocab: 100\n      encoder: {layers: 1, hidden: 64, heads: 8, ffn: 128}"),
               7, 5, {"encoder.layers", "decoder model"});
}

TEST(CatalogParse, YamlSyntaxError) {
  // yaml-cpp notices the unclosed flow mapping at the next key.
  expect_error(with_line(9, "      decoder: {layers: 2, hidden: 64"), 10, 9, {"YAML syntax error"});
}

}  // namespace
}  // namespace ipfsa::engine
