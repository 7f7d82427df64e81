// Trend analysis of metric series (M11): change points, newest-point anomaly and a verdict per
// series, from a CSV of (series, run, value) rows. The store-backed analysis (raw samples,
// Mann-Whitney on samples, hardware fingerprints) is the next step of the trend-analysis issue.
// Thread-safety: pure functions, plus reading the CSV file.
#pragma once

#include <string>
#include <vector>

#include "core/changepoint.hpp"
#include "core/error.hpp"

namespace ipfsa::report {

struct TrendOptions {
  double threshold_pct = 10.0;    // minimum effect for a regression/improvement verdict
  bool higher_is_better = false;  // latency-like metrics (default): higher is a regression
  core::ChangePointOptions change_points;
  core::AnomalyOptions anomaly;
};

struct SeriesTrend {
  std::string key;
  std::vector<std::string> runs;
  std::vector<double> values;
  std::vector<core::ChangePoint> change_points;
  double newest_z = 0;
  bool anomaly = false;
  double newest_effect_pct = 0;  // newest value against the median of its baseline segment
  std::string verdict = "none";  // regression | improvement | none
};

// Verdict for the newest point: its baseline is the segment since the last change point (the
// newest point excluded); a regression needs both an anomaly (robust z beyond the threshold) in
// the bad direction and an effect of at least threshold_pct.
SeriesTrend analyse_series(std::string key, std::vector<std::string> runs, std::vector<double> values,
                           const TrendOptions& options);

// Reads `series,run,value` rows (header required, columns in any order, extra columns ignored).
// Errors (kInput) name FILE:LINE.
Result<std::vector<SeriesTrend>> analyse_csv(const std::string& path, const TrendOptions& options);

std::string trends_json(const std::vector<SeriesTrend>& trends);
std::string trends_text(const std::vector<SeriesTrend>& trends);

}  // namespace ipfsa::report
