// Precision profiles (engine/model/precision.hpp, configs/precision/profiles.yaml) and the
// campaign loader's check of the precision of `model` tasks. Postconditions:
//   1. the embedded profiles parse, hold the built-ins, and are the text of the file on disk;
//   2. every profile's bits_for gives the bits its description promises, per component and layer;
//   3. an unknown name is an error that lists the known ones;
//   4. a campaign whose model task names an unknown precision is rejected at the value
//      ("FILE:LINE:COLUMN: unknown precision ..."); other kinds are not checked.
#include "engine/model/precision.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/campaign_loader.hpp"
#include "core/campaign_expand.hpp"
#include "engine/model/catalog.hpp"
#include "engine/model/embedded_configs.hpp"

namespace ipfsa::engine {
namespace {

PrecisionPlan plan(std::string_view name) {
  auto r = resolve_precision(name);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : PrecisionPlan{};
}

// bits_for(c, layer, 12) for every layer of a 12-block stack.
std::vector<int> per_layer(const PrecisionPlan& p, Component c) {
  std::vector<int> out;
  for (int layer = 0; layer < 12; ++layer) out.push_back(p.bits_for(c, layer, 12));
  return out;
}

std::vector<int> uniform(int bits) {
  return std::vector<int>(12, bits);
}

// Postcondition 1.
TEST(Precision, EmbeddedProfilesParseAndHoldTheBuiltins) {
  const EmbeddedFile f = embedded_precision_profiles();
  auto parsed = parse_precision_profiles(f.text, std::string(f.path));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto names = precision_names();
  for (const char* builtin :
       {"fp32", "int8", "int4", "int3", "int2", "mixed-a4f2", "mixed-a8f4", "int4-kv2", "int2-g32"})
    EXPECT_NE(std::find(names.begin(), names.end(), builtin), names.end()) << builtin;
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  for (const PrecisionProfile& p : precision_profiles()) {
    EXPECT_TRUE(core::is_valid_precision(p.plan.name)) << p.plan.name;  // a campaign can write it
    EXPECT_FALSE(p.description.empty()) << p.plan.name;
    EXPECT_EQ(p.plan.embedding_bits, 0) << p.plan.name;  // embeddings stay fp32 everywhere
  }
  std::ifstream in(std::string(IPFSA_SOURCE_DIR) + "/" + std::string(f.path), std::ios::binary);
  std::ostringstream disk;
  disk << in.rdbuf();
  EXPECT_EQ(std::string(f.text), disk.str()) << f.path << " changed since the build; rebuild";
}

// Postcondition 2.
TEST(Precision, UniformProfiles) {
  const PrecisionPlan fp32 = plan("fp32");
  for (Component c : {Component::kAttention, Component::kFeedForward})
    EXPECT_EQ(per_layer(fp32, c), uniform(0));
  EXPECT_EQ(fp32.bits_for(Component::kHead, 0, 12), 0);
  EXPECT_EQ(fp32.bits_for(Component::kEmbedding, 0, 12), 0);
  EXPECT_EQ(fp32.kv_bits, 16);
  for (int bits : {8, 4, 3, 2}) {
    SCOPED_TRACE(bits);
    const PrecisionPlan p = plan("int" + std::to_string(bits));
    EXPECT_EQ(per_layer(p, Component::kAttention), uniform(bits));
    EXPECT_EQ(per_layer(p, Component::kFeedForward), uniform(bits));
    EXPECT_EQ(p.bits_for(Component::kHead, 0, 12), bits);
    EXPECT_EQ(p.bits_for(Component::kEmbedding, 0, 12), 0);
    EXPECT_EQ(p.group, 64);
    EXPECT_EQ(p.scheme, QuantScheme::kAsymmetric);
    EXPECT_EQ(p.kv_bits, 16);
  }
}

TEST(Precision, MixedProfiles) {
  const PrecisionPlan a4f2 = plan("mixed-a4f2");
  std::vector<int> attention = uniform(4), ffn = uniform(2);
  attention.front() = attention.back() = ffn.front() = ffn.back() = 8;  // first and last block
  EXPECT_EQ(per_layer(a4f2, Component::kAttention), attention);
  EXPECT_EQ(per_layer(a4f2, Component::kFeedForward), ffn);
  EXPECT_EQ(a4f2.bits_for(Component::kHead, 0, 12), 8);
  EXPECT_EQ(a4f2.bits_for(Component::kEmbedding, 0, 12), 0);
  // A one-block stack is all edge.
  EXPECT_EQ(a4f2.bits_for(Component::kFeedForward, 0, 1), 8);

  const PrecisionPlan a8f4 = plan("mixed-a8f4");
  EXPECT_EQ(per_layer(a8f4, Component::kAttention), uniform(8));
  EXPECT_EQ(per_layer(a8f4, Component::kFeedForward), uniform(4));
  EXPECT_EQ(a8f4.bits_for(Component::kHead, 0, 12), 8);

  const PrecisionPlan edge = plan("int2-edge8");
  std::vector<int> two = uniform(2);
  two[0] = two[1] = two[10] = two[11] = 8;
  EXPECT_EQ(per_layer(edge, Component::kAttention), two);
  EXPECT_EQ(per_layer(edge, Component::kFeedForward), two);

  const PrecisionPlan kv2 = plan("int4-kv2");
  EXPECT_EQ(per_layer(kv2, Component::kAttention), uniform(4));
  EXPECT_EQ(kv2.kv_bits, 2);
  EXPECT_EQ(plan("int4-kv4").kv_bits, 4);

  const PrecisionPlan g32 = plan("int2-g32");
  EXPECT_EQ(per_layer(g32, Component::kFeedForward), uniform(2));
  EXPECT_EQ(g32.group, 32);
  EXPECT_EQ(plan("int4-sym").scheme, QuantScheme::kSymmetric);
}

TEST(Precision, Summary) {
  EXPECT_EQ(summarize(plan("mixed-a4f2")),
            "attention 4, ffn 2, head 8, embedding fp32, edge 8 (1 block), g64 asymmetric, kv 16");
  EXPECT_EQ(summarize(plan("fp32")), "attention fp32, ffn fp32, head fp32, embedding fp32, kv 16");
}

// Postcondition 3.
TEST(Precision, UnknownNameListsTheKnownOnes) {
  auto r = resolve_precision("int5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  EXPECT_NE(r.error().message.find("unknown precision 'int5'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("known precisions: fp32, int8, int4"), std::string::npos)
      << r.error().message;
}

void expect_profile_error(const std::string& text, int line, int column, const std::string& fragment) {
  auto r = parse_precision_profiles(text, "p.yaml");
  ASSERT_FALSE(r.ok()) << text;
  const std::string where = "p.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  EXPECT_EQ(r.error().message.rfind(where, 0), 0u)
      << "expected " << where << "... got: " << r.error().message;
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

TEST(PrecisionParse, Errors) {
  const std::string head = "profiles:\n  - name: p\n    description: d\n";
  auto ok = parse_precision_profiles(head + "    attention_bits: 4\n", "p.yaml");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->front().plan.attention_bits, 4);
  EXPECT_EQ(ok->front().plan.ffn_bits, 0);
  EXPECT_EQ(ok->front().line, 2);

  expect_profile_error(head + "    attention_bits: 5\n", 4, 21,
                       "attention_bits must be one of 0, 2, 3, 4, 8, got '5'");
  expect_profile_error(head + "    group: 48\n", 4, 12, "group must be one of 32, 64, 128");
  expect_profile_error(head + "    kv_bits: 8\n", 4, 14, "kv_bits must be one of 16, 4, 2");
  expect_profile_error(head + "    ffn_bits: four\n", 4, 15, "ffn_bits must be an integer");
  expect_profile_error(head + "    scheme: nf4\n", 4, 13,
                       "unknown scheme 'nf4'; expected one of asymmetric, symmetric");
  expect_profile_error(head + "    bits: 4\n", 4, 5, "unknown key 'bits' in a precision profile");
  expect_profile_error("profiles:\n  - name: p\n", 2, 5,
                       "precision profile 'p' is missing key `description`");
  expect_profile_error("profiles:\n  - description: d\n", 2, 5, "missing key `name`");
  expect_profile_error("profiles:\n  - {name: Int4, description: d}\n", 2, 12, "bad precision name 'Int4'");
  expect_profile_error(head + "  - {name: p, description: again}\n", 4, 5,
                       "duplicate precision 'p' (first at p.yaml:2:5)");
  expect_profile_error("precisions: []\n", 1, 1, "unknown key 'precisions'");
}

// ---- postcondition 4: the campaign loader ----

config::LoadContext context() {
  return config::LoadContext{{"model", "gemm.eigen"}, model_names(), precision_names()};
}

Result<core::Campaign> load(const std::string& yaml) {
  return config::load_campaign_text(yaml, "c.yaml", "", context());
}

TEST(CampaignPrecision, KnownPrecisionsAndCatalogModelsLoad) {
  auto r =
      load("name: c\nmatrix:\n  - {model: [llama, bert], precision: [fp32, int4, mixed-a4f2, int4-kv2]}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tasks.size(), 8u);
  EXPECT_EQ(r->tasks[0].kind, "model");
}

TEST(CampaignPrecision, UnknownPrecisionOfAModelTaskIsAnError) {
  auto r = load("name: c\ntasks:\n  - {model: llama, precision: int5}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInput);
  EXPECT_EQ(r.error().message.rfind(
                "c.yaml:3:31: unknown precision 'int5' for a model task; known precisions: fp32", 0),
            0u)
      << r.error().message;
  auto m = load("name: c\nmatrix:\n  - kind: model\n    model: gpt2\n    precision: [int8, fp16]\n");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message.rfind("c.yaml:5:23: unknown precision 'fp16'", 0), 0u) << m.error().message;
}

TEST(CampaignPrecision, OtherKindsAndExcludedCombinationsAreNotChecked) {
  auto gemm = load("name: c\ntasks:\n  - {kind: gemm.eigen, precision: fp16}\n");
  EXPECT_TRUE(gemm.ok()) << gemm.error().message;
  auto excluded = load(
      "name: c\nmatrix:\n  - kind: [model, gemm.eigen]\n    model: gpt2\n    precision: [fp32, fp16]\n"
      "    exclude:\n      - {kind: model, precision: fp16}\n");
  ASSERT_TRUE(excluded.ok()) << excluded.error().message;
  EXPECT_EQ(excluded->tasks.size(), 3u);
  // Without known_precisions nothing is checked (tools that load campaigns without the engine).
  auto ctx = context();
  ctx.known_precisions.clear();
  EXPECT_TRUE(
      config::load_campaign_text("name: c\ntasks:\n  - {model: llama, precision: int5}\n", "c.yaml", "", ctx)
          .ok());
}

TEST(CampaignPrecision, UnknownModelNamesTheCatalog) {
  auto r = load("name: c\ntasks:\n  - {model: gpt5, precision: int4}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("c.yaml:3:13: unknown model 'gpt5'", 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find("llama"), std::string::npos);
}

}  // namespace
}  // namespace ipfsa::engine
