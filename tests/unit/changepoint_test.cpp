// Change-point and anomaly detection on seeded synthetic series (issue "Trend analysis"
// acceptance): planted level shifts of 3-6 sigma in Gaussian noise with 1% outliers of 8-15
// sigma; a detection counts when within 5 points of a planted shift. Checked: F1 >= 0.9 over 200
// series, and at most 1 false change point over 100 series without a shift. Prints precision and
// recall.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/changepoint.hpp"

namespace ipfsa::core {
namespace {

struct Synthetic {
  std::vector<double> values;
  std::vector<std::size_t> shifts;
};

Synthetic make_series(std::mt19937_64& rng, std::size_t n, int max_shifts) {
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Synthetic s;
  const int shifts = max_shifts == 0 ? 0 : 1 + static_cast<int>(rng() % max_shifts);
  // Shifts at least 25 points apart and 20 from either end.
  for (int tries = 0; static_cast<int>(s.shifts.size()) < shifts && tries < 1000; ++tries) {
    const std::size_t at = 20 + rng() % (n - 40);
    bool ok = true;
    for (auto other : s.shifts) ok &= (at > other ? at - other : other - at) >= 25;
    if (ok) s.shifts.push_back(at);
  }
  std::sort(s.shifts.begin(), s.shifts.end());
  double level = 100.0;
  std::size_t next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (next < s.shifts.size() && i == s.shifts[next]) {
      const double size = 3.0 + 3.0 * unit(rng);
      level += (rng() % 2 ? size : -size);
      ++next;
    }
    double v = level + noise(rng);
    if (unit(rng) < 0.01) v += (rng() % 2 ? 1 : -1) * (8.0 + 7.0 * unit(rng));
    s.values.push_back(v);
  }
  return s;
}

TEST(ChangePoint, PlantedShiftsAreFoundWithF1AtLeast09) {
  std::mt19937_64 rng(20261127);
  std::size_t tp = 0, fp = 0, fn = 0;
  for (int i = 0; i < 200; ++i) {
    const auto s = make_series(rng, 200, 3);
    const auto found = detect_change_points(s.values);
    std::vector<bool> used(found.size(), false);
    for (auto planted : s.shifts) {
      bool hit = false;
      for (std::size_t k = 0; k < found.size() && !hit; ++k) {
        const auto d = found[k].index > planted ? found[k].index - planted : planted - found[k].index;
        if (!used[k] && d <= 5) used[k] = hit = true;
      }
      hit ? ++tp : ++fn;
    }
    for (bool u : used) fp += u ? 0 : 1;
  }
  const double precision = static_cast<double>(tp) / static_cast<double>(tp + fp);
  const double recall = static_cast<double>(tp) / static_cast<double>(tp + fn);
  const double f1 = 2 * precision * recall / (precision + recall);
  std::printf("[ changepoint ] precision %.3f recall %.3f F1 %.3f (tp %zu fp %zu fn %zu)\n", precision,
              recall, f1, tp, fp, fn);
  EXPECT_GE(f1, 0.9);
}

TEST(ChangePoint, NoShiftMeansAtMostOneFalsePositivePerHundredSeries) {
  std::mt19937_64 rng(7);
  std::size_t false_positives = 0;
  for (int i = 0; i < 100; ++i)
    false_positives += detect_change_points(make_series(rng, 200, 0).values).size();
  std::printf("[ changepoint ] false positives on 100 flat series: %zu\n", false_positives);
  EXPECT_LE(false_positives, 1u);
}

TEST(ChangePoint, ReportsIndexMagnitudeAndPValue) {
  std::vector<double> v;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0.0, 0.5);
  for (int i = 0; i < 60; ++i) v.push_back((i < 40 ? 10.0 : 12.0) + noise(rng));
  const auto cps = detect_change_points(v);
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_NEAR(static_cast<double>(cps[0].index), 40.0, 2.0);
  EXPECT_NEAR(cps[0].magnitude_pct, 20.0, 4.0);
  EXPECT_LT(cps[0].p_value, 1e-6);
}

TEST(ChangePoint, ShortAndConstantSeriesHaveNoChange) {
  EXPECT_TRUE(detect_change_points(std::vector<double>{}).empty());
  EXPECT_TRUE(detect_change_points(std::vector<double>{1, 2, 3}).empty());
  EXPECT_TRUE(detect_change_points(std::vector<double>(50, 4.0)).empty());
}

TEST(ChangePoint, AStepInAnOtherwiseConstantSeriesIsFound) {
  std::vector<double> v(30, 1.0);
  v.insert(v.end(), 30, 2.0);
  const auto cps = detect_change_points(v);
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps[0].index, 30u);
  EXPECT_NEAR(cps[0].magnitude_pct, 100.0, 1e-9);
}

TEST(MannWhitney, MatchesTheNormalApproximation) {
  // U = 0 for n1 = n2 = 3: z = (4.5 - 0.5) / sqrt(5.25), p = erfc(z / sqrt 2) = 0.0809 (scipy,
  // asymptotic with continuity correction).
  EXPECT_NEAR(mann_whitney_p(std::vector<double>{1, 2, 3}, std::vector<double>{4, 5, 6}), 0.0809, 5e-4);
  EXPECT_NEAR(mann_whitney_p(std::vector<double>{1, 2, 3}, std::vector<double>{1, 2, 3}), 1.0, 1e-12);
  EXPECT_EQ(mann_whitney_p(std::vector<double>{}, std::vector<double>{1}), 1.0);
}

TEST(Anomaly, NewestPointAgainstTrailingWindow) {
  std::vector<double> v;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (int i = 0; i < 40; ++i) v.push_back(50 + noise(rng));
  EXPECT_FALSE(newest_is_anomaly(v));
  v.push_back(58);
  EXPECT_TRUE(newest_is_anomaly(v));
  EXPECT_GT(newest_robust_z(v), 4.0);
}

// Quantised history (a timer that resolves 10 ns): most points equal, so the MAD is 0. One more
// point a step away is within the history's own spread, not an anomaly; a constant history still
// flags any change.
TEST(Anomaly, QuantisedHistoryIsNotNoiseless) {
  std::vector<double> v;
  for (int i = 0; i < 30; ++i) v.push_back(i % 3 == 0 ? 40e-9 : 30e-9);
  v.push_back(40e-9);
  EXPECT_FALSE(newest_is_anomaly(v)) << newest_robust_z(v);
  v.back() = 200e-9;
  EXPECT_TRUE(newest_is_anomaly(v));
  std::vector<double> flat(30, 30e-9);
  flat.push_back(31e-9);
  EXPECT_TRUE(std::isinf(newest_robust_z(flat)));
  flat.back() = 30e-9;
  EXPECT_EQ(newest_robust_z(flat), 0.0);
}

TEST(RobustStats, MedianAndSigma) {
  EXPECT_EQ(median(std::vector<double>{3, 1, 2}), 2.0);
  EXPECT_EQ(median(std::vector<double>{4, 1, 3, 2}), 2.5);
  EXPECT_NEAR(robust_sigma(std::vector<double>{1, 2, 3, 4, 100}), 1.4826, 1e-12);
}

}  // namespace
}  // namespace ipfsa::core
