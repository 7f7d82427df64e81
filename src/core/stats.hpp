// Summary statistics of latency samples. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <span>

namespace ipfsa::core {

struct SampleSummary {
  std::size_t count = 0;
  double mean = 0, stddev = 0, min = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;  // NaN when count == 0
};

// Percentiles use linear interpolation between closest ranks (numpy's default, "linear").
SampleSummary summarize(std::span<const double> samples);
double percentile(std::span<const double> sorted, double q);  // q in [0, 100]; sorted ascending

}  // namespace ipfsa::core
