// Change-point + anomaly analysis throughput: 1,000 series x 500 points (issue "Trend analysis":
// under 10 s on the 2-core development machine). Series: Gaussian noise, a few level shifts, 1%
// outliers, seeded.
#include <benchmark/benchmark.h>

#include <random>

#include "core/changepoint.hpp"

namespace {

std::vector<std::vector<double>> make(std::size_t series, std::size_t points) {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<std::vector<double>> out(series);
  for (auto& s : out) {
    double level = 100;
    for (std::size_t i = 0; i < points; ++i) {
      if (unit(rng) < 0.006) level += 5 * (unit(rng) < 0.5 ? -1 : 1);
      s.push_back(level + noise(rng) + (unit(rng) < 0.01 ? 12.0 : 0.0));
    }
  }
  return out;
}

void BM_AnalyseSeries(benchmark::State& state) {
  const auto data = make(static_cast<std::size_t>(state.range(0)), static_cast<std::size_t>(state.range(1)));
  for (auto _ : state) {
    std::size_t found = 0;
    for (const auto& s : data) {
      found += ipfsa::core::detect_change_points(s).size();
      found += ipfsa::core::newest_is_anomaly(s) ? 1 : 0;
    }
    benchmark::DoNotOptimize(found);
  }
  state.counters["series/s"] =
      benchmark::Counter(static_cast<double>(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AnalyseSeries)->Args({1000, 500})->Unit(benchmark::kMillisecond);

}  // namespace
