// The kind registry and the kinds that can run inside the test process (the crashing selftest
// kinds run only through an executor, in executor_test.cpp).
#include "engine/kinds.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/gemm_eigen.hpp"

namespace ipfsa::engine {
namespace {

using core::TaskStatus;

core::TaskSpec make_task(std::string kind, std::vector<std::pair<std::string, std::string>> params = {}) {
  core::TaskSpec t;
  t.kind = std::move(kind);
  t.repeats = 3;
  t.warmup = 1;
  t.params = std::move(params);
  return t;
}

double metric(const core::TaskOutcome& o, const std::string& name) {
  for (const auto& [k, v] : o.metrics)
    if (k == name) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

TEST(KindRegistry, NamesContainEveryBuiltinKind) {
  const auto names = kind_names();
  for (const char* expected : {"selftest.ok", "selftest.fail", "selftest.segfault", "selftest.abort",
                               "selftest.hang", "selftest.oom", "selftest.sleep", "gemm.eigen"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  EXPECT_EQ(names.size(), builtin_kinds().size());
  auto sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "duplicate kind name";
}

TEST(KindRegistry, FindKindReturnsTheEntryOrNull) {
  for (const Kind& k : builtin_kinds()) {
    const Kind* found = find_kind(k.name);
    ASSERT_NE(found, nullptr) << k.name;
    EXPECT_EQ(found->name, k.name);
    EXPECT_NE(found->run, nullptr) << k.name;
    EXPECT_FALSE(found->description.empty()) << k.name;
  }
  EXPECT_EQ(find_kind("no.such.kind"), nullptr);
  EXPECT_EQ(find_kind(""), nullptr);
  EXPECT_EQ(find_kind("selftest"), nullptr);
}

TEST(SelftestKinds, OkPassesWithOneSamplePerRepeat) {
  auto task = make_task("selftest.ok");
  task.repeats = 4;
  const auto o = find_kind("selftest.ok")->run(task);
  EXPECT_EQ(o.status, TaskStatus::kPassed);
  EXPECT_EQ(o.samples_s.size(), 4u);
}

TEST(SelftestKinds, FailFailsWithAMessage) {
  const auto o = find_kind("selftest.fail")->run(make_task("selftest.fail"));
  EXPECT_EQ(o.status, TaskStatus::kFailed);
  EXPECT_FALSE(o.error.empty());
}

TEST(SelftestKinds, SleepSamplesAreTheSleeps) {
  const auto o = find_kind("selftest.sleep")->run(make_task("selftest.sleep", {{"ms", "5"}}));
  EXPECT_EQ(o.status, TaskStatus::kPassed) << o.error;
  ASSERT_EQ(o.samples_s.size(), 3u);
  for (double s : o.samples_s) {
    EXPECT_GE(s, 0.005);
    EXPECT_LT(s, 1.0);
  }
}

TEST(SelftestKinds, SleepRejectsABadDuration) {
  for (const char* bad : {"abc", "-1", "5ms", "nan"}) {
    const auto o = find_kind("selftest.sleep")->run(make_task("selftest.sleep", {{"ms", bad}}));
    EXPECT_EQ(o.status, TaskStatus::kFailed) << bad;
    EXPECT_NE(o.error.find("ms"), std::string::npos) << o.error;
  }
}

TEST(GemmEigen, MeasuresAndChecksAProduct) {
  const auto o =
      find_kind("gemm.eigen")->run(make_task("gemm.eigen", {{"k", "64"}, {"m", "64"}, {"n", "64"}}));
  ASSERT_EQ(o.status, TaskStatus::kPassed) << o.error;
  ASSERT_EQ(o.samples_s.size(), 3u);
  for (double s : o.samples_s) EXPECT_GT(s, 0.0);
  const double mean = (o.samples_s[0] + o.samples_s[1] + o.samples_s[2]) / 3.0;
  EXPECT_NEAR(o.throughput, 1.0 / mean, 1e-6 / mean);
  EXPECT_NEAR(metric(o, "gflops"), 2.0 * 64 * 64 * 64 / mean / 1e9, 1e-9 / mean);
  EXPECT_GT(metric(o, "gflops"), 0.0);
  EXPECT_EQ(metric(o, "threads"), 1.0);
  EXPECT_LE(metric(o, "check_max_rel_error"), 2.0 * 64 * 0x1p-24);
}

TEST(GemmEigen, OddShapesPass) {
  auto task = make_task("gemm.eigen", {{"k", "29"}, {"m", "33"}, {"n", "17"}, {"seed", "7"}});
  task.repeats = 1;
  task.warmup = 0;
  const auto o = run_gemm_eigen(task);
  EXPECT_EQ(o.status, TaskStatus::kPassed) << o.error;
  EXPECT_EQ(o.samples_s.size(), 1u);
  // Smaller than a check block in every dimension.
  const auto tiny = run_gemm_eigen(make_task("gemm.eigen", {{"k", "1"}, {"m", "3"}, {"n", "2"}}));
  EXPECT_EQ(tiny.status, TaskStatus::kPassed) << tiny.error;
}

TEST(GemmEigen, FailsItsSelfCheckOnAWrongResult) {
  const auto task = make_task("gemm.eigen", {{"k", "48"}, {"m", "40"}, {"n", "24"}});
  const auto top_left = run_gemm_eigen(task, [](float* c, std::int64_t, std::int64_t) { c[0] += 0.5f; });
  EXPECT_EQ(top_left.status, TaskStatus::kFailed);
  EXPECT_NE(top_left.error.find("self-check failed: C(0,0)"), std::string::npos) << top_left.error;
  EXPECT_TRUE(std::isnan(top_left.throughput));
  const auto bottom_right = run_gemm_eigen(
      task, [](float* c, std::int64_t rows, std::int64_t cols) { c[rows * cols - 1] = -c[rows * cols - 1]; });
  EXPECT_EQ(bottom_right.status, TaskStatus::kFailed);
  EXPECT_NE(bottom_right.error.find("C(39,23)"), std::string::npos) << bottom_right.error;
  const auto nan = run_gemm_eigen(task, [](float* c, std::int64_t rows, std::int64_t) {
    c[rows + 1] = std::numeric_limits<float>::quiet_NaN();
  });
  EXPECT_EQ(nan.status, TaskStatus::kFailed);
}

TEST(GemmEigen, RejectsBadParameters) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"m", "0"}, {"n", "-3"}, {"k", "12x"}, {"m", "abc"}, {"threads", "0"}, {"k", "99999999999"}}) {
    const auto o = run_gemm_eigen(make_task("gemm.eigen", {{key, value}}));
    EXPECT_EQ(o.status, TaskStatus::kFailed) << key << "=" << value;
    const std::string quoted = "parameter " + key + "='" + value + "'";  // NOLINT(performance-*)
    EXPECT_NE(o.error.find(quoted), std::string::npos) << o.error;
  }
}

// verify_gemm on its own against products computed here.
class VerifyGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (auto* v : {&a_, &b_}) {
      v->resize(v == &a_ ? kM * kK : kK * kN);
      for (float& x : *v) x = d(rng);
    }
    c_.assign(kM * kN, 0.0f);
    for (std::size_t j = 0; j < kN; ++j)
      for (std::size_t i = 0; i < kM; ++i) {
        double s = 0;
        for (std::size_t l = 0; l < kK; ++l) s += double{a_[l * kM + i]} * double{b_[j * kK + l]};
        c_[j * kM + i] = static_cast<float>(s);
      }
  }
  GemmCheck check() const { return verify_gemm(ref(a_, kM, kK), ref(b_, kK, kN), ref(c_, kM, kN)); }
  static MatrixRef ref(const std::vector<float>& v, std::size_t rows, std::size_t cols) {
    return {v.data(), static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
  }

  static constexpr std::size_t kM = 20, kN = 12, kK = 100;
  std::vector<float> a_, b_, c_;
};

TEST_F(VerifyGemm, AcceptsTheProductAndRoundingNoise) {
  EXPECT_TRUE(check().ok) << check().message;
  EXPECT_LT(check().max_rel_error, 1e-7);
  c_[0] = std::nextafter(c_[0], 2.0f);  // one ulp
  EXPECT_TRUE(check().ok) << check().message;
}

TEST_F(VerifyGemm, RejectsAWrongEntryInEitherCorner) {
  c_[3 * kM + 2] += 0.01f;
  auto r = check();
  EXPECT_FALSE(r.ok);
  EXPECT_GT(r.max_rel_error, r.tolerance);
  EXPECT_NE(r.message.find("C(2,3)"), std::string::npos) << r.message;
  SetUp();
  c_[kN * kM - 1] *= 1.5f;
  EXPECT_FALSE(check().ok);
  SetUp();
  c_[2 * kM + 10] += 1.0f;  // (10, 2) is outside both 8x8 corners of a 20x12 result: unchecked
  EXPECT_TRUE(check().ok);
}

TEST_F(VerifyGemm, RejectsNonFiniteAndMismatchedShapes) {
  c_[1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(check().ok);
  EXPECT_FALSE(verify_gemm(ref(a_, kM, kK), ref(b_, kK - 1, kN), ref(c_, kM, kN)).ok);
}

}  // namespace
}  // namespace ipfsa::engine
