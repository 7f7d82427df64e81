// Trend analysis of metric series (M11, issue 6): change points, newest-point anomaly and a
// verdict per series, either from a CSV of (series, run, value) rows or from the HDF5 trend store
// (docs/trends.md). In store mode a series is one metric of one configuration (task id) on one
// hardware fingerprint (plus the run's node count) over runs, and latency verdicts test the raw
// samples of the newest run against those of its baseline.
// Thread-safety: pure functions, plus reading the CSV file or the store (one Hdf5Reader per call;
// HDF5 is not thread-safe, see store/hdf5_store.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/changepoint.hpp"
#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::report {

struct TrendOptions {
  // Minimum effect for a regression/improvement verdict: CSV series, and in store mode latency
  // (p50/p90/p99) and peak memory. The campaign's `thresholds.latency_pct`.
  double threshold_pct = 10.0;
  // Store mode: throughput's minimum effect in percent (`thresholds.throughput_pct`) and
  // accuracy's (cosine against fp32) as an absolute drop (`thresholds.accuracy_abs`).
  double throughput_pct = 10.0;
  double accuracy_abs = 0.01;
  bool higher_is_better = false;  // CSV mode: latency-like (default), higher is a regression
  core::ChangePointOptions change_points;
  core::AnomalyOptions anomaly;
  // Store mode, latency metrics: significance level of the raw-sample test, and how many of the
  // baseline's newest runs pool their samples for it (the anomaly window, by default).
  double sample_alpha = 0.01;
  std::size_t sample_baseline_runs = 30;
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

  // Both modes.
  double baseline_value = core::kNaN;   // median of the baseline segment (newest point excluded)
  std::string verdict_test;             // what backs the verdict: robust-z, mann-whitney, quantile-exceedance
  double verdict_p_value = core::kNaN;  // p-value of the raw-sample test (store mode, latency); NaN otherwise
  bool higher_is_better = false;        // the direction the verdict used

  // Store mode only (empty in CSV mode).
  std::string metric;  // metric_name(): latency_p50, latency_p90, latency_p99, throughput, ...
  // "kind=K model=M hardware=H precision=P batch=B seq_len=S scenario=X", plus " task=TASK_ID" when
  // a run measured this configuration with several tasks (a sweep over params, names, copies).
  std::string config;
  std::string task_id;  // the task id of the newest point
  std::string kind, model, hardware, precision, scenario;
  std::uint32_t batch = 0, seq_len = 0;
  std::string fingerprint;  // the worker's hardware fingerprint + ";nodes=N" (the run's host count)
  std::string judged_run;   // the run judged: the store's newest, or --run
  // runs.back(). A verdict needs it to be judged_run: a configuration the judged run did not
  // measure (or measured on other hardware) gets "none" and anomaly false.
  std::string newest_run;
};

// Store-mode metrics. Latency quantiles come from the raw samples; the rest from their columns.
enum class Metric : std::uint8_t {
  kLatencyP50 = 0,
  kLatencyP90 = 1,
  kLatencyP99 = 2,
  kThroughput = 3,  // items/s, higher is better
  kPeakMemory = 4,  // bytes, lower is better
  kAccuracy = 5,    // acc_cosine against fp32, higher is better
};
inline constexpr int kMetricCount = 6;
std::string_view metric_name(Metric m);
bool metric_higher_is_better(Metric m);

// Verdict for the newest point: its baseline is the segment since the last change point (the
// newest point excluded); a regression needs both an anomaly (robust z beyond the threshold) in
// the bad direction and an effect of at least threshold_pct.
SeriesTrend analyse_series(std::string key, std::vector<std::string> runs, std::vector<double> values,
                           const TrendOptions& options);

// Reads `series,run,value` rows (header required, columns in any order, extra columns ignored).
// Errors (kInput) name FILE:LINE.
Result<std::vector<SeriesTrend>> analyse_csv(const std::string& path, const TrendOptions& options);

// One latency quantile (`quantile` in (0, 1): 0.5, 0.9, 0.99) over runs, from each run's raw
// samples (oldest first; `samples[i]` belongs to `runs[i]`, none empty). values[i] is the
// quantile of samples[i] (linear interpolation, as core::summarize). Change points, anomaly,
// baseline and effect as analyse_series. The verdict needs both an effect of at least
// threshold_pct and a raw-sample test with p < sample_alpha between the newest run's samples and
// the pooled samples of the baseline's newest sample_baseline_runs runs: Mann-Whitney U for the
// median (quantile <= 0.5); for a tail quantile, exceedance_p over the median of those runs' own
// quantiles, so a tail that grew is caught even when the median did not move. At least 2 points.
SeriesTrend analyse_latency_series(std::string key, std::vector<std::string> runs,
                                   std::span<const std::vector<double>> samples, double quantile,
                                   const TrendOptions& options);

// Two-sided p-value of Fisher's exact test that the `newest` samples lie above `threshold` as
// often as the `baseline` samples do (and below it likewise; the smaller tail, doubled). 1 when
// either is empty. Pure.
double exceedance_p(std::span<const double> baseline, std::span<const double> newest, double threshold);

// Trends over the HDF5 trend store `path` (docs/trends.md §Store mode). Runs are taken in the
// order they were begun, up to and including `run_id` (all when empty); that last run is judged.
// Each final, passed result of a run is one point of the series of each metric it has, keyed by
// (metric, configuration, hardware fingerprint + ";nodes=N"): series never mix fingerprints. The
// configuration is (kind, model, hardware, precision, batch, seq_len, scenario); one that some
// run measured with several tasks (differing in params, name or copy) is split by task id, so a
// sweep is never merged, while a task whose params change keeps its series. Series are ordered by
// the first appearance of their configuration, then by metric. Single-valued metrics
// (throughput, peak memory, accuracy) get analyse_series' verdict with their own direction;
// latency quantiles analyse_latency_series'. The store is read once (linear in its size).
// Errors (kInput): the store's (missing, not a store, corrupt: the message names the file), or
// "PATH: no run 'ID' in the store".
Result<std::vector<SeriesTrend>> analyse_store(const std::string& path, const std::string& run_id,
                                               const TrendOptions& options);

// `{"series": [...]}` (docs/trends.md); store-mode series carry their extra fields too.
std::string trends_json(const std::vector<SeriesTrend>& trends);
// The "series" array of trends_json, as a value (for documents that embed it).
nlohmann::json trends_series_json(std::span<const SeriesTrend> trends);
// One line per series (verdict, key, points, anomaly, change points; in store mode also newest
// value, baseline, effect and the test's p-value), then a count line.
std::string trends_text(const std::vector<SeriesTrend>& trends);

}  // namespace ipfsa::report
