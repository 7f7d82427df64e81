// core::plan_resume and core::first_task_difference (run --resume).
#include <gtest/gtest.h>

#include "core/resume.hpp"

namespace ipfsa::core {
namespace {

std::vector<TaskSpec> tasks(std::uint32_t n) {
  std::vector<TaskSpec> out(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    out[i].index = i;
    out[i].id = "selftest.sleep/" + std::to_string(i);
  }
  return out;
}

TEST(PlanResume, KeepsFinishedTasksAndRenumbersTheRest) {
  const auto all = tasks(6);
  const std::vector<std::uint32_t> finals = {4, 0, 4, 99, 2};  // duplicate and out of range ignored
  const ResumePlan p = plan_resume(all, finals);
  EXPECT_EQ(p.kept, 3u);
  ASSERT_EQ(p.tasks.size(), 3u);
  EXPECT_EQ(p.original, (std::vector<std::uint32_t>{1, 3, 5}));
  for (std::uint32_t i = 0; i < p.tasks.size(); ++i) {
    EXPECT_EQ(p.tasks[i].index, i);  // what the scheduler requires
    EXPECT_EQ(p.tasks[i].id, all[p.original[i]].id);
  }
  EXPECT_EQ(p.done, (std::vector<bool>{true, false, true, false, true, false}));
}

TEST(PlanResume, NothingDoneRunsEverythingAllDoneRunsNothing) {
  const auto all = tasks(3);
  const ResumePlan none = plan_resume(all, {});
  EXPECT_EQ(none.kept, 0u);
  EXPECT_EQ(none.original, (std::vector<std::uint32_t>{0, 1, 2}));
  const std::vector<std::uint32_t> finals = {2, 1, 0};
  const ResumePlan done = plan_resume(all, finals);
  EXPECT_EQ(done.kept, 3u);
  EXPECT_TRUE(done.tasks.empty());
}

TEST(FirstTaskDifference, NamesTheFirstDifferingTask) {
  const auto all = tasks(3);
  std::vector<std::string> same = {all[0].id, all[1].id, all[2].id};
  EXPECT_FALSE(first_task_difference(same, all).has_value());
  auto changed = same;
  changed[1] = "gemm.eigen/m64";
  auto d = first_task_difference(changed, all);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->find("task 1"), std::string::npos) << *d;
  EXPECT_NE(d->find("gemm.eigen/m64"), std::string::npos) << *d;
  EXPECT_NE(d->find(all[1].id), std::string::npos) << *d;
  auto shorter = same;
  shorter.pop_back();
  d = first_task_difference(shorter, all);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->find("task 2"), std::string::npos) << *d;
  same.push_back("extra");
  d = first_task_difference(same, all);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->find("'extra'"), std::string::npos) << *d;
}

}  // namespace
}  // namespace ipfsa::core
