// The `model` kind and its accuracy measure (issue 3 item 7), and every tiny model of the catalog
// running through it (issue 3 acceptance: "each tiny model runs in a test").
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../test_helpers.hpp"
#include "engine/kinds.hpp"
#include "engine/model/accuracy.hpp"
#include "engine/model/catalog.hpp"

namespace ipfsa::engine {
namespace {

using ::ipfsa::testing::metric;

using core::TaskStatus;

core::TaskSpec model_task(std::string model, std::string precision, std::string scenario = "latency",
                          std::vector<std::pair<std::string, std::string>> params = {}) {
  core::TaskSpec t;
  t.kind = "model";
  t.model = std::move(model);
  t.precision = std::move(precision);
  t.scenario = std::move(scenario);
  t.batch = 2;
  t.seq_len = 6;
  t.repeats = 2;
  t.warmup = 1;
  t.params = std::move(params);
  return t;
}

core::TaskOutcome run(const core::TaskSpec& t) {
  const Kind* k = find_kind("model");
  EXPECT_NE(k, nullptr);
  return k ? k->run(t) : core::TaskOutcome{};
}

ModelOutput output(std::vector<float> hidden, int hidden_size, std::vector<float> logits, int width) {
  ModelOutput o;
  o.batch = 1;
  o.hidden_size = hidden_size;
  o.seq = static_cast<int>(hidden.size()) / hidden_size;
  o.hidden = std::move(hidden);
  o.logits_shape = {static_cast<std::int64_t>(logits.size()) / width, width};
  o.logits = std::move(logits);
  return o;
}

TEST(Accuracy, IdenticalOutputsAgreeExactly) {
  const auto a = output({1, 2, 3, 4, -1, 0.5f}, 3, {0.1f, 2.0f, -1.0f, 3.0f, 0.0f, 1.0f}, 3);
  auto acc = compare_outputs(a, a);
  ASSERT_TRUE(acc.ok()) << acc.error().message;
  EXPECT_DOUBLE_EQ(acc->cosine, 1.0);
  EXPECT_DOUBLE_EQ(acc->rel_error, 0.0);
  EXPECT_NEAR(acc->kl, 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(acc->top1, 1.0);
}

TEST(Accuracy, MatchesHandComputedValues) {
  // Row 0 identical, row 1 orthogonal: mean cosine 0.5. Logit row 0 same argmax, row 1 flipped.
  const auto ref = output({1, 0, 0, 1}, 2, {0.0f, 1.0f, 1.0f, 0.0f}, 2);
  const auto out = output({1, 0, 1, 0}, 2, {0.0f, 1.0f, 0.0f, 1.0f}, 2);
  auto acc = compare_outputs(ref, out);
  ASSERT_TRUE(acc.ok());
  EXPECT_DOUBLE_EQ(acc->cosine, 0.5);
  EXPECT_NEAR(acc->rel_error, 1.0, 1e-12);  // |(0, 0, -1, 1)| / |(1, 0, 0, 1)|
  // KL(p||q) for p = softmax(1, 0), q = softmax(0, 1), averaged with 0 for the equal row.
  const double p1 = std::exp(1.0) / (1.0 + std::exp(1.0)), p0 = 1.0 - p1;
  const double kl = p1 * std::log(p1 / p0) + p0 * std::log(p0 / p1);
  EXPECT_NEAR(acc->kl, kl / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(acc->top1, 0.5);
}

TEST(Accuracy, ShapeMismatchIsAnError) {
  const auto a = output({1, 2, 3, 4}, 2, {0, 1}, 2);
  const auto b = output({1, 2, 3, 4, 5, 6}, 2, {0, 1}, 2);
  auto acc = compare_outputs(a, b);
  ASSERT_FALSE(acc.ok());
  EXPECT_NE(acc.error().message.find("shape"), std::string::npos);
}

// Every tiny model of the catalog, fp32 and 4-bit, through the kind as an executor runs it.
class EveryTinyModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryTinyModel, RunsAtFp32AndInt4WithAccuracy) {
  const auto fp32 = run(model_task(GetParam(), "fp32"));
  ASSERT_EQ(fp32.status, TaskStatus::kPassed) << fp32.error;
  EXPECT_EQ(fp32.samples_s.size(), 2u);
  EXPECT_GT(fp32.throughput, 0.0);
  EXPECT_DOUBLE_EQ(fp32.acc_cosine, 1.0);
  EXPECT_DOUBLE_EQ(fp32.acc_top1, 1.0);
  EXPECT_GT(metric(fp32, "parameters"), 0.0);
  EXPECT_EQ(metric(fp32, "quantized_matrices"), 0.0);

  const auto q4 = run(model_task(GetParam(), "int4"));
  ASSERT_EQ(q4.status, TaskStatus::kPassed) << q4.error;
  EXPECT_GT(metric(q4, "quantized_matrices"), 0.0);
  EXPECT_LT(metric(q4, "weight_bytes"), metric(fp32, "weight_bytes"));
  EXPECT_LT(q4.acc_cosine, 1.0);  // quantization changed something...
  EXPECT_GT(q4.acc_cosine, 0.9);  // ...but not much at 4 bits
  EXPECT_GT(q4.acc_rel_error, 0.0);
  EXPECT_GE(q4.acc_kl, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Catalog, EveryTinyModel, ::testing::ValuesIn(model_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

TEST(ModelKind, AccuracyFallsAsBitsFall) {
  for (const char* model : {"llama", "bert", "vit"}) {
    double last_cos = 1.0, last_err = 0.0;
    for (const char* precision : {"int8", "int4", "int3", "int2"}) {
      const auto o = run(model_task(model, precision));
      ASSERT_EQ(o.status, TaskStatus::kPassed) << model << " " << precision << ": " << o.error;
      EXPECT_LT(o.acc_cosine, last_cos) << model << " " << precision;
      EXPECT_GT(o.acc_rel_error, last_err) << model << " " << precision;
      last_cos = o.acc_cosine;
      last_err = o.acc_rel_error;
    }
  }
}

TEST(ModelKind, DecoderScenariosReportPrefillAndDecode) {
  for (const char* scenario : {"prefill", "decode"}) {
    const auto o = run(model_task("llama", "int4", scenario, {{"decode_tokens", "3"}}));
    ASSERT_EQ(o.status, TaskStatus::kPassed) << o.error;
    EXPECT_GT(o.throughput, 0.0);
    EXPECT_GT(metric(o, "prefill_s"), 0.0);
    EXPECT_GT(metric(o, "decode_tokens_per_s"), 0.0);
    EXPECT_GT(metric(o, "kv_cache_bytes"), 0.0);
    EXPECT_EQ(o.samples_s.size(), std::string(scenario) == "decode" ? 2u * 3u : 2u);
  }
}

TEST(ModelKind, BadTasksFailWithAMessage) {
  struct Case {
    core::TaskSpec task;
    const char* message;
  };
  const Case cases[] = {
      {model_task("no-such-model", "fp32"), "unknown model 'no-such-model'"},
      {model_task("llama", "int5"), "int5"},
      {model_task("bert", "fp32", "decode"), "needs a decoder"},
      {model_task("bert", "fp32", "soak"), "unknown scenario 'soak'"},
      {model_task("bert", "fp32", "latency", {{"size", "huge"}}), "size='huge'"},
      {model_task("bert", "fp32", "latency", {{"threads", "0"}}), "threads"},
  };
  for (const auto& c : cases) {
    const auto o = run(c.task);
    EXPECT_EQ(o.status, TaskStatus::kFailed) << c.message;
    EXPECT_NE(o.error.find(c.message), std::string::npos) << o.error;
  }
}

}  // namespace
}  // namespace ipfsa::engine
