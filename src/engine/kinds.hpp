// The task kind registry (M4): every kind a campaign may name, with the function that runs one
// task of it inside the executor process. Thread-safe (immutable after static initialisation).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/task.hpp"

namespace ipfsa::engine {

// Runs one task: warm-up runs, then `repeats` timed runs; returns the samples and metrics.
// Runs inside the executor process, which may die under it (that is the point of the executor).
// May throw std::bad_alloc (recorded as oom) or another std::exception (recorded as failed).
using KindFn = core::TaskOutcome (*)(const core::TaskSpec& task);

struct Kind {
  std::string_view name;
  std::string_view description;
  KindFn run = nullptr;
};

std::span<const Kind> builtin_kinds();
const Kind* find_kind(std::string_view name);   // nullptr when unknown
std::vector<std::string> kind_names();

}  // namespace ipfsa::engine
