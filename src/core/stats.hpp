// Summary statistics of latency samples. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ipfsa::core {

struct SampleSummary {
  std::size_t count = 0;
  double mean = 0, stddev = 0, min = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;  // NaN when count == 0
};

// Percentiles use linear interpolation between closest ranks (numpy's default, "linear").
SampleSummary summarize(std::span<const double> samples);
double percentile(std::span<const double> sorted, double q);  // q in [0, 100]; sorted ascending

// Copies `s` into a row type with the latency_{mean,p50,p90,p99,min,max,stddev}_s and
// sample_count fields (the store's row, the exports' row).
template <class Row>
void copy_latency_summary(const SampleSummary& s, Row& row) {
  row.sample_count = static_cast<std::uint32_t>(s.count);
  row.latency_mean_s = s.mean;
  row.latency_p50_s = s.p50;
  row.latency_p90_s = s.p90;
  row.latency_p99_s = s.p99;
  row.latency_min_s = s.min;
  row.latency_max_s = s.max;
  row.latency_stddev_s = s.stddev;
}

}  // namespace ipfsa::core
