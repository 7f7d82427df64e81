#include "core/resume.hpp"

#include <algorithm>

namespace ipfsa::core {

ResumePlan plan_resume(std::span<const TaskSpec> campaign, std::span<const std::uint32_t> final_indices) {
  ResumePlan plan;
  plan.done.assign(campaign.size(), false);
  for (std::uint32_t i : final_indices)
    if (i < campaign.size() && !plan.done[i]) {
      plan.done[i] = true;
      ++plan.kept;
    }
  for (std::size_t i = 0; i < campaign.size(); ++i) {
    if (plan.done[i]) continue;
    TaskSpec t = campaign[i];
    t.index = static_cast<std::uint32_t>(plan.tasks.size());
    plan.tasks.push_back(std::move(t));
    plan.original.push_back(static_cast<std::uint32_t>(i));
  }
  return plan;
}

std::optional<std::string> first_task_difference(std::span<const std::string> recorded,
                                                 std::span<const TaskSpec> campaign) {
  const std::size_t n = std::min(recorded.size(), campaign.size());
  for (std::size_t i = 0; i < n; ++i)
    if (recorded[i] != campaign[i].id)
      return "task " + std::to_string(i) + ": the run recorded '" + recorded[i] + "', the campaign has '" +
             campaign[i].id + "'";
  if (recorded.size() > n)
    return "the run recorded " + std::to_string(recorded.size()) + " tasks, the campaign has " +
           std::to_string(campaign.size()) + " (first missing: task " + std::to_string(n) + " '" +
           recorded[n] + "')";
  if (campaign.size() > n)
    return "the run recorded " + std::to_string(recorded.size()) + " tasks, the campaign has " +
           std::to_string(campaign.size()) + " (first extra: task " + std::to_string(n) + " '" +
           campaign[n].id + "')";
  return std::nullopt;
}

}  // namespace ipfsa::core
