// Resuming a run (`run --resume RUN_DIR`, docs/design.md §Resume): which tasks of a run are left
// once the final results already recorded for it are kept. Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/task.hpp"

namespace ipfsa::core {

// The tasks a resumed run still has to run. `tasks` are renumbered 0..n-1 (the scheduler and the
// wire need tasks[i].index == i); `original[i]` is the index of tasks[i] in the campaign's list.
struct ResumePlan {
  std::vector<TaskSpec> tasks;
  std::vector<std::uint32_t> original;
  std::vector<bool> done;  // by campaign index: a final result is already recorded
  std::uint32_t kept = 0;  // tasks with a final result already recorded
};

// `campaign`: the expanded task list (campaign[i].index == i). `final_indices`: task indices of
// the final results recorded for the run (any order; duplicates and out-of-range indices are
// ignored). Every other task is left to run, keeping its id and its campaign order.
ResumePlan plan_resume(std::span<const TaskSpec> campaign, std::span<const std::uint32_t> final_indices);

// Compares the task ids the run recorded with the campaign's expanded list. nullopt when they are
// the same; otherwise a description of the first difference ("task 3: recorded 'a', campaign
// 'b'", or a count mismatch naming the first task only one side has).
std::optional<std::string> first_task_difference(std::span<const std::string> recorded,
                                                 std::span<const TaskSpec> campaign);

}  // namespace ipfsa::core
