// The coordinator and worker loops: the I/O shell around the pure scheduler and consensus core
// (../STYLE.md §1). Every coordinator drives a core::RaftNode and a core::Scheduler replica fed
// with the committed log; the leader performs what the scheduler decides: sends assignments,
// records results in the store, detects dead workers by heartbeat deadlines and proposes
// WorkerLost (docs/design.md §HA quorum).
//
// MPI contract: after the transport is constructed, no collective is made; every wait is bounded.
// Both loops work over any core::Transport (MPI in production, simulated in tests).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/chaos.hpp"
#include "core/result_sink.hpp"
#include "core/scheduler.hpp"
#include "core/transport.hpp"
#include "exec/executor.hpp"

namespace ipfsa::mpi {

struct Timing {
  int heartbeat_ms = 200;              // worker <-> leader, both directions
  int worker_timeout_ms = 5000;        // the leader declares a silent worker lost
  int coordinator_timeout_ms = 30000;  // a worker gives up when no leader is heard for this long (exit 3)
  int join_timeout_ms = 30000;         // ranks that have not said Hello by then are lost
  int startup_timeout_ms = 120000;     // MPI_Init + MPI_Comm_dup (collective) must finish by then
  int finalize_timeout_ms = 30000;     // MPI_Finalize (fences with peers) is abandoned after this
  // The HA quorum (docs/design.md §HA quorum). A follower that hears no leader for a random time in
  // [election_timeout_ms, 2 * election_timeout_ms) campaigns; the leader sends Raft heartbeats every
  // raft_heartbeat_ms. Raft's logical clock ticks every raft_tick_ms.
  int election_timeout_ms = 250;
  int raft_heartbeat_ms = 50;
  int raft_tick_ms = 10;
  int quorum_timeout_ms = 10000;  // a coordinator with no leader for this long gives up (exit 3)
};

using Chaos = core::Chaos;  // `run --chaos` (core/chaos.hpp)

struct CoordinatorConfig {
  Timing timing;
  Chaos chaos;
  std::int32_t coordinators = 1;  // ranks 0..coordinators-1 form the quorum
  std::uint32_t prefetch = 2;     // outstanding tasks per worker
  int flush_ms = 100;             // store flush cadence (H5Fflush), and at the end
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

// The leader's door to the store. A coordinator opens it when it becomes leader (after its replica
// holds every committed entry) and closes it when it steps down, so that one process writes at a
// time (the store's writer lock also keeps a deposed leader that is still alive out).
class LeaderStore {
 public:
  virtual ~LeaderStore() = default;
  // Opens the store for writing with the run current. `written` receives the (task, attempt) of
  // every row this job already wrote (by any leader), in the scheduler's task indices. Errors:
  // kInfra may be transient (the previous leader still holds the store): the caller retries;
  // kInput is not.
  virtual Result<core::ResultSink*> open(std::vector<std::pair<std::uint32_t, std::uint32_t>>* written) = 0;
  virtual void close() = 0;
};

struct CoordinatorReport {
  core::SchedulerCounts counts;
  std::vector<core::TaskResult> finals;  // final record of each task, in commit order
  std::vector<WorkerHealthRow> workers;
  std::uint64_t results_written = 0;  // rows appended to the sink by this coordinator
  std::uint64_t messages_rejected = 0;
  double wall_s = 0;
  double dispatch_s = 0;    // first assignment to last record (as this coordinator saw them)
  std::string infra_error;  // non-empty: the campaign could not complete (or no quorum)
  // True on the coordinator that completed the campaign as leader: it holds the store open and
  // must record the run's end and the outputs (then call finish()). A follower told by the leader
  // that the campaign is over returns false with no infra_error.
  bool final_leader = false;
  std::uint32_t leader_changes = 0;  // elections won by a different rank than the previous leader
  double failover_ms_max = 0;        // see docs/design.md §HA quorum
  std::vector<double> failover_ms;   // each failover, in order
  std::int32_t leader = -1;          // the final leader's rank
};

// Runs the campaign as one member of the coordinator quorum (ranks 0..config.coordinators-1; one
// coordinator is a quorum of one) until it is complete, this rank is told to stop, or no quorum
// is left. On the final leader, `on_complete` runs before the other ranks are told to shut down
// (so the outputs exist before anyone leaves) and returns the run's exit code, sent to every rank.
CoordinatorReport run_coordinator(core::Transport& transport, std::span<const core::TaskSpec> tasks,
                                  LeaderStore& store, const CoordinatorConfig& config,
                                  const std::function<int(CoordinatorReport&)>& on_complete);

struct WorkerConfig {
  Timing timing;
  Chaos chaos;
  std::int32_t coordinators = 1;
  exec::ExecutorOptions executor;
  std::string disk_path = ".";  // filesystem reported in health
  int gpu_device = -1;
};

// Serves the leader until Shutdown. Returns the rank's exit code: 0 after Shutdown, 3 when no
// leader was heard for coordinator_timeout_ms or the executor could not be started.
int run_worker(core::Transport& transport, const WorkerConfig& config);

}  // namespace ipfsa::mpi
