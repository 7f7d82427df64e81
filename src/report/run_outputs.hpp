// The files `run` leaves in its output folder: summary.json (counts, exit code, timings, workers)
// and results.csv (one row per task: its final result). Later: junit.xml, summary.md, report.html
// (issue "Trend analysis and dashboard").
// Thread-safety: pure functions of their arguments, plus file writes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/result_sink.hpp"
#include "core/scheduler.hpp"
#include "core/task.hpp"

namespace ipfsa::report {

struct WorkerSummary {
  std::int32_t rank = -1;
  std::string host;
  bool lost = false;
  std::uint32_t executor_restarts = 0;
  double load1 = 0;
  std::uint64_t mem_available_bytes = 0, disk_free_bytes = 0, gpu_mem_used_bytes = 0, gpu_mem_total_bytes = 0;
};

struct RunSummary {
  core::RunInfo run;
  std::string out_dir;
  std::string store_path;
  core::SchedulerCounts counts;
  std::uint64_t results_written = 0;
  std::uint64_t messages_rejected = 0;
  double wall_s = 0;
  double dispatch_s = 0;
  std::uint32_t prefetch = 0;
  std::vector<WorkerSummary> workers;
  std::string infra_error;
  int exit_code = 0;
  // `run --resume`: the run folder resumed (empty otherwise) and the tasks whose final result was
  // recorded before and kept (counted in `counts`, not rerun).
  std::string resumed_from;
  std::uint32_t results_kept = 0;
  // The HA quorum (docs/design.md §HA quorum): the rank that completed the run as leader, how
  // often the leader changed, and each failover's time from the old leader's last heartbeat to
  // the new leader's first assignment.
  std::int32_t leader = 0;
  std::uint32_t leader_changes = 0;
  std::vector<double> failover_ms;
};

// Exit code of a finished run: 3 on infrastructure failure, 1 when a task did not pass (skipped
// tasks do not fail a run), else 0.
int exit_code_for(const core::SchedulerCounts& counts, const std::string& infra_error);

Result<void> write_summary_json(const std::string& path, const RunSummary& summary);
Result<void> write_results_csv(const std::string& path, std::span<const core::TaskSpec> tasks,
                               std::span<const core::TaskResult> finals);

}  // namespace ipfsa::report
