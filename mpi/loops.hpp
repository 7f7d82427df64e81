// The coordinator and worker loops: the I/O shell around the pure scheduler (../STYLE.md §1).
// They perform what core::Scheduler::ready() decides: send assignments, record results in the
// ResultSink, detect dead workers by heartbeat deadlines and feed WorkerLost back in.
//
// MPI contract: after the transport is constructed, no collective is made; every wait is bounded.
// Both loops work over any core::Transport (MPI in production, simulated in tests).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result_sink.hpp"
#include "core/scheduler.hpp"
#include "core/transport.hpp"
#include "exec/executor.hpp"

namespace ipfsa::mpi {

struct Timing {
  int heartbeat_ms = 200;              // both directions
  int worker_timeout_ms = 5000;        // coordinator declares a silent worker lost
  int coordinator_timeout_ms = 30000;  // a worker gives up on a silent coordinator (exit 3)
  int join_timeout_ms = 30000;         // ranks that have not said Hello by then are lost
  int startup_timeout_ms = 120000;     // MPI_Init + MPI_Comm_dup (collective) must finish by then
  int finalize_timeout_ms = 30000;     // MPI_Finalize (fences with peers) is abandoned after this
};

struct CoordinatorConfig {
  Timing timing;
  std::uint32_t prefetch = 2;  // outstanding tasks per worker
  int flush_ms = 100;          // store flush cadence (H5Fflush), and at the end
  std::size_t flush_rows = 8192;
};

struct WorkerHealthRow {
  std::int32_t rank = -1;
  std::string host;
  double last_heard_s = 0;
  double load1 = 0;
  std::uint64_t mem_available_bytes = 0, disk_free_bytes = 0, net_rx_bytes = 0, net_tx_bytes = 0;
  std::uint64_t gpu_mem_used_bytes = 0, gpu_mem_total_bytes = 0;
  std::uint32_t executor_restarts = 0;
  bool lost = false;
};

struct CoordinatorReport {
  core::SchedulerCounts counts;
  std::vector<core::TaskResult> finals;  // final record of each task, in completion order
  std::vector<WorkerHealthRow> workers;
  std::uint64_t results_written = 0;  // rows appended to the sink (final and non-final)
  std::uint64_t messages_rejected = 0;
  double wall_s = 0;
  double dispatch_s = 0;    // first assignment to last record
  std::string infra_error;  // non-empty: the campaign could not complete
};

// Runs the campaign to completion on the workers reachable through `transport`.
CoordinatorReport run_coordinator(core::Transport& transport, std::span<const core::TaskSpec> tasks,
                                  core::ResultSink& sink, const CoordinatorConfig& config);

struct WorkerConfig {
  Timing timing;
  exec::ExecutorOptions executor;
  std::string disk_path = ".";  // filesystem reported in health
  int gpu_device = -1;
};

// Serves the coordinator until Shutdown. Returns the rank's exit code: 0 after Shutdown,
// 3 when the coordinator went silent or the executor could not be started.
int run_worker(core::Transport& transport, const WorkerConfig& config);

}  // namespace ipfsa::mpi
