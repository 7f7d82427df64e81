// Change-point detection, anomaly detection and a regression verdict for one metric series
// (M11, issue "Trend analysis"). Pure and deterministic; thread-safe (no shared state).
//
// Method (docs/trends.md):
//   1. Isolated outliers are replaced by a running median (window 7) when they sit more than
//      kOutlierSigmas robust sigmas away from it, so one wild run cannot create a change.
//   2. PELT (Killick et al. 2012) with the Gaussian mean-change cost, noise sigma estimated
//      robustly from first differences (MAD / sqrt(2)), penalty penalty_factor * sigma^2 * ln(n),
//      and a minimum segment length, finds the optimal segmentation.
//   3. Every candidate is tested: Mann-Whitney U between the segments on each side (normal
//      approximation with tie correction); candidates with p >= alpha are dropped and the
//      neighbouring segments merged, until all remaining change points are significant.
//   4. Anomaly: the newest point's robust z-score against the trailing window (median, MAD).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace ipfsa::core {

struct ChangePoint {
  std::size_t index = 0;     // 0-based position of the first point after the change
  double magnitude_pct = 0;  // (median after - median before) / |median before| * 100
  double p_value = 1;        // Mann-Whitney U, two-sided
};

struct ChangePointOptions {
  double penalty_factor = 3.0;
  std::size_t min_segment = 5;
  double alpha = 0.001;
};

std::vector<ChangePoint> detect_change_points(std::span<const double> series,
                                              const ChangePointOptions& options = {});

struct AnomalyOptions {
  std::size_t window = 30;  // trailing points the newest one is compared with
  double z_threshold = 4.0;
};

// Robust z-score of the newest point against the `window` points before it (0 when too short).
double newest_robust_z(std::span<const double> series, const AnomalyOptions& options = {});
bool newest_is_anomaly(std::span<const double> series, const AnomalyOptions& options = {});

// Two-sided Mann-Whitney U test p-value (normal approximation, tie-corrected); 1 when either
// sample is empty.
double mann_whitney_p(std::span<const double> a, std::span<const double> b);

double median(std::span<const double> values);
// Median absolute deviation scaled to sigma for normal data (1.4826 * MAD).
double robust_sigma(std::span<const double> values);

}  // namespace ipfsa::core
