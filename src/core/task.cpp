#include "core/task.hpp"

#include <array>

namespace ipfsa::core {

namespace {
constexpr std::array<std::string_view, kPriorityTiers> kPriorityNames = {"critical", "high", "medium"};
constexpr std::array<std::string_view, kTaskStatusCount> kStatusNames = {
    "passed", "failed", "crashed", "timeout", "oom", "skipped", "lost"};
}  // namespace

std::string_view to_string(Priority p) {
  return kPriorityNames[static_cast<int>(p)];
}

std::optional<Priority> parse_priority(std::string_view s) {
  for (int i = 0; i < kPriorityTiers; ++i)
    if (kPriorityNames[i] == s) return static_cast<Priority>(i);
  return std::nullopt;
}

std::string_view to_string(TaskStatus s) {
  return kStatusNames[static_cast<int>(s)];
}

std::optional<TaskStatus> parse_task_status(std::string_view s) {
  for (int i = 0; i < kTaskStatusCount; ++i)
    if (kStatusNames[i] == s) return static_cast<TaskStatus>(i);
  return std::nullopt;
}

std::string TaskSpec::param(std::string_view key, std::string_view fallback) const {
  for (const auto& [k, v] : params)
    if (k == key) return v;
  return std::string(fallback);
}

}  // namespace ipfsa::core
