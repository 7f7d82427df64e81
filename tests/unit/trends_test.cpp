// Verdicts of `trends --csv`: a 20% slowdown in one series is a regression (exit 1 in the CLI),
// the same data without it gives none; a step in the past is a change point, not a verdict;
// malformed CSV names FILE:LINE.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "report/trends.hpp"

namespace ipfsa::report {
namespace {

std::vector<double> noisy(std::size_t n, double level, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.01 * level);
  std::vector<double> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(level + noise(rng));
  return v;
}

std::vector<std::string> runs(std::size_t n) {
  std::vector<std::string> r;
  for (std::size_t i = 0; i < n; ++i) r.push_back("r" + std::to_string(i));
  return r;
}

TEST(Trends, TwentyPercentSlowdownOfTheNewestRunIsARegression) {
  auto v = noisy(30, 10.0, 1);
  EXPECT_EQ(analyse_series("k", runs(30), v, {}).verdict, "none");
  v.back() *= 1.2;
  const auto t = analyse_series("k", runs(30), v, {});
  EXPECT_EQ(t.verdict, "regression");
  EXPECT_TRUE(t.anomaly);
  EXPECT_NEAR(t.newest_effect_pct, 20.0, 3.0);
}

TEST(Trends, DirectionFollowsTheMetric) {
  auto v = noisy(30, 100.0, 2);
  v.back() *= 0.8;  // throughput fell by 20%
  TrendOptions throughput;
  throughput.higher_is_better = true;
  EXPECT_EQ(analyse_series("k", runs(30), v, throughput).verdict, "regression");
  EXPECT_EQ(analyse_series("k", runs(30), v, {}).verdict, "improvement");  // as a latency
}

TEST(Trends, SmallEffectsAreNotVerdictsEvenWhenSignificant) {
  auto v = noisy(30, 10.0, 3);
  v.back() *= 1.07;  // ~7 sigma outside the noise, but under the 10% threshold
  const auto t = analyse_series("k", runs(30), v, {});
  EXPECT_TRUE(t.anomaly);
  EXPECT_EQ(t.verdict, "none");
}

TEST(Trends, BaselineStartsAtTheLastChangePoint) {
  auto v = noisy(20, 10.0, 4);
  const auto later = noisy(20, 12.0, 5);  // an accepted step 20 runs ago
  v.insert(v.end(), later.begin(), later.end());
  const auto t = analyse_series("k", runs(40), v, {});
  ASSERT_EQ(t.change_points.size(), 1u);
  EXPECT_EQ(t.verdict, "none");
}

TEST(Trends, CsvErrorsNameFileAndLine) {
  const auto path = ::testing::TempDir() + "/trends_bad.csv";
  std::ofstream(path) << "series,run,value\na,1,1.5\na,2,oops\n";
  auto r = analyse_csv(path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("trends_bad.csv:3:"), std::string::npos) << r.error().message;
  std::ofstream(path) << "name,value\n";
  r = analyse_csv(path, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(":1:"), std::string::npos);
  EXPECT_FALSE(analyse_csv(path + ".missing", {}).ok());
}

TEST(Trends, CsvKeepsSeriesOrderAndRuns) {
  const auto path = ::testing::TempDir() + "/trends_ok.csv";
  std::ofstream(path) << "run,value,series,extra\n1,2.0,b,x\n1,3.0,\"a,1\",y\n2,2.1,b,z\n";
  auto r = analyse_csv(path, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].key, "b");
  EXPECT_EQ((*r)[0].values, (std::vector<double>{2.0, 2.1}));
  EXPECT_EQ((*r)[1].key, "a,1");
  EXPECT_NE(trends_json(*r).find("\"verdict\""), std::string::npos);
}

}  // namespace
}  // namespace ipfsa::report
