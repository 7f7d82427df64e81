// Small helpers shared by the test binaries (tests/unit, tests/gpu): seeded data and reading
// metrics off an outcome. Header-only; no GoogleTest dependency.
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/task.hpp"

namespace ipfsa::testing {

// n floats from N(0, sigma^2), std::mt19937_64(seed): the same numbers for the same seed.
inline std::vector<float> normal(std::size_t n, std::uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// The metric `name` of an outcome; NaN when it has none.
inline double metric(const core::TaskOutcome& o, const std::string& name) {
  for (const auto& [k, v] : o.metrics)
    if (k == name) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace ipfsa::testing
