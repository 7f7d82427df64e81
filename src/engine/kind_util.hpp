// Private to src/engine: the kind sets the registry (kinds.cpp) is assembled from, and the helpers
// kinds share to read their parameters and clocks. Not part of the engine's public interface.
// Thread-safety: pure functions and immutable tables.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/task.hpp"
#include "engine/kinds.hpp"

namespace ipfsa::engine {

// Each kind set is a static table; the registry concatenates them in this order.
std::span<const Kind> selftest_kinds();  // selftest_kinds.cpp
std::span<const Kind> gemm_kinds();      // gemm_eigen.cpp
std::span<const Kind> model_kinds();     // model_kind.cpp

// A failed outcome carrying `message`: what a kind returns for bad parameters or a failed check.
inline core::TaskOutcome failed_outcome(std::string message) {
  core::TaskOutcome o;
  o.status = core::TaskStatus::kFailed;
  o.error = std::move(message);
  return o;
}

// Integer parameter `key` of `task` in [lo, hi], or `fallback` when absent. Error (input) when it
// is not a whole decimal number or out of range; the message names the kind and the key.
Result<std::int64_t> int_param(const core::TaskSpec& task, std::string_view key, std::int64_t fallback,
                               std::int64_t lo, std::int64_t hi);
// Same for a real-valued parameter.
Result<double> real_param(const core::TaskSpec& task, std::string_view key, double fallback, double lo,
                          double hi);

// Seconds between two steady_clock points.
inline double seconds_between(std::chrono::steady_clock::time_point a,
                              std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace ipfsa::engine
