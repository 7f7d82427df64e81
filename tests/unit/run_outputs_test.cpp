// summary.json and results.csv as `run` writes them; the exit-code rule.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "report/run_outputs.hpp"

namespace ipfsa {
namespace {

using core::TaskStatus;

core::SchedulerCounts counts_with(TaskStatus s, std::uint32_t n, std::uint32_t passed) {
  core::SchedulerCounts c;
  c.total = c.finished = n + passed;
  c.by_status[static_cast<int>(TaskStatus::kPassed)] = passed;
  c.by_status[static_cast<int>(s)] += n;
  return c;
}

TEST(ExitCode, FollowsTheContract) {
  EXPECT_EQ(report::exit_code_for(counts_with(TaskStatus::kPassed, 0, 5), ""), 0);
  EXPECT_EQ(report::exit_code_for(counts_with(TaskStatus::kSkipped, 2, 5), ""), 0);
  for (auto s : {TaskStatus::kFailed, TaskStatus::kCrashed, TaskStatus::kTimeout, TaskStatus::kOom})
    EXPECT_EQ(report::exit_code_for(counts_with(s, 1, 5), ""), 1) << core::to_string(s);
  EXPECT_EQ(report::exit_code_for(counts_with(TaskStatus::kPassed, 0, 5), "all workers lost"), 3);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RunOutputs, SummaryHasTheRequiredFields) {
  report::RunSummary s;
  s.run.run_id = "r1";
  s.counts = counts_with(TaskStatus::kCrashed, 2, 3);
  s.counts.retried = 2;
  s.counts.workers_joined = 3;
  s.results_written = 7;
  s.wall_s = 1.5;
  s.dispatch_s = 1.0;
  s.exit_code = 1;
  const auto path = ::testing::TempDir() + "/summary.json";
  ASSERT_TRUE(report::write_summary_json(path, s).ok());
  auto j = nlohmann::json::parse(slurp(path));
  for (const char* key :
       {"run_id", "tasks_total", "tasks_passed", "tasks_failed", "tasks_crashed", "tasks_timeout",
        "tasks_oom", "tasks_retried", "results_written", "workers", "wall_s", "exit_code"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["tasks_total"], 5);
  EXPECT_EQ(j["tasks_crashed"], 2);
  EXPECT_EQ(j["tasks_passed"], 3);
  EXPECT_EQ(j["tasks_retried"], 2);
  EXPECT_EQ(j["results_written"], 7);
  EXPECT_DOUBLE_EQ(j["tasks_per_s"].get<double>(), 5.0);
}

TEST(RunOutputs, CsvQuotesAndOrdersByTask) {
  std::vector<core::TaskSpec> tasks(2);
  tasks[0].index = 0;
  tasks[0].id = "a";
  tasks[0].kind = "selftest.fail";
  tasks[1].index = 1;
  tasks[1].id = "b";
  tasks[1].kind = "selftest.ok";
  std::vector<core::TaskResult> finals(2);
  finals[0].task = 1;
  finals[0].outcome.status = TaskStatus::kPassed;
  finals[0].outcome.samples_s = {1.0, 3.0};
  finals[0].outcome.acc_cosine = 0.25;
  finals[0].outcome.acc_top1 = 0.5;
  finals[1].task = 0;
  finals[1].outcome.status = TaskStatus::kFailed;
  finals[1].outcome.error = "bad, \"really\"\nbad";
  const auto path = ::testing::TempDir() + "/results.csv";
  ASSERT_TRUE(report::write_results_csv(path, tasks, finals).ok());
  const auto text = slurp(path);
  const auto first_row = text.find('\n') + 1;
  EXPECT_EQ(text.compare(first_row, 2, "0,"), 0) << text;
  EXPECT_NE(text.find("\"bad, \"\"really\"\"\nbad\""), std::string::npos) << text;
  EXPECT_NE(text.find(",2,2,2.8,"), std::string::npos) << "mean and p50 of {1,3} are 2, p90 2.8";
  EXPECT_NE(text.find("acc_cosine,acc_rel_error,acc_kl,acc_top1,signal"), std::string::npos) << text;
  EXPECT_NE(text.find(",0.25,,,0.5,"), std::string::npos)
      << "accuracy columns; NaN is an empty field: " << text;
}

}  // namespace
}  // namespace ipfsa
