// The campaign scheduler (M3) as a pure, deterministic state machine in the style of etcd's raft:
//
//   step(event)  -- feeds one input event; changes state, sends nothing, writes nothing.
//   ready()      -- the decisions accumulated since the last advance(): assignments to send and
//                   results to record. The shell MUST record `records` (durably, in order) and
//                   send `assignments`; the order between the two does not matter for one run.
//   advance()    -- acknowledges that ready() was handled; clears it.
//
// No clock, no MPI, no I/O inside: the same sequence of events always produces the same
// decisions, so the HA quorum (issue 5) can replicate the events through its consensus log and
// every coordinator holds the same task state.
//
// Placement rules (docs/design.md §Scheduling):
//   1. a task needing CUDA runs only on a worker with a GPU; its memory_mb must fit the worker
//      (GPU memory for CUDA tasks, host memory otherwise);
//   2. priority tiers first: no task of a lower tier is assigned to a worker while a task of a
//      higher tier that fits that worker waits;
//   3. model affinity: within a tier, a worker gets a task of the model it ran last if one waits;
//   4. no worker has a free slot while a fitting task waits (each worker holds up to
//      `prefetch` outstanding tasks; it runs them one at a time);
//   5. a task that did not pass is retried up to its `retries`, on a worker it has not failed on
//      when a live fitting one exists;
//   6. a task whose worker is lost is re-queued (the lost attempt is recorded as non-final
//      `lost` and does not count against `retries`);
//   7. once all workers have joined (AllJoined), a task no live worker can fit is recorded as
//      final `skipped`.
// Postconditions: every task gets exactly one final record; duplicate or stale TaskFinished
// events (a result for an attempt not outstanding on that worker) are ignored and counted.
//
// Thread-safety: none; one owner.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/task.hpp"

namespace ipfsa::core {

// What a worker rank reports when it joins (M3).
struct WorkerInfo {
  std::int32_t rank = -1;
  std::string host;
  std::string cpu_model;
  std::vector<std::string> cpu_features;  // e.g. "avx2", "fma", "avx512f"
  std::uint32_t cores = 1;
  std::uint64_t memory_bytes = 0;  // usable host memory
  std::uint32_t gpus = 0;
  std::string gpu_name;
  std::int32_t gpu_cc = 0;  // compute capability * 10, e.g. 90
  std::uint64_t gpu_memory_bytes = 0;
  std::string gpu_driver;  // e.g. "550.54.15"; empty without a GPU or when unknown
};

// The worker's hardware fingerprint, recorded with every result it produces so trend series never
// mix machines: "cpu=CPU_MODEL;gpus=0", or with a GPU "cpu=CPU_MODEL;gpus=NxGPU_NAME;driver=D"
// (";driver=" only when known; CPU_MODEL "unknown" when the worker could not read it).
// Deterministic; `;` and `=` inside a name become spaces and runs of white space are collapsed,
// so the fields stay parseable. The node count is a run property that the trend analysis appends
// (";nodes=N"). Pure.
std::string hardware_fingerprint(const WorkerInfo& info);

struct WorkerJoined {
  WorkerInfo info;
};
struct AllJoined {};  // start-up is over: no more workers will join
struct WorkerLost {
  std::int32_t rank = -1;
};
struct TaskFinished {
  std::int32_t worker = -1;
  std::uint32_t task = 0;
  std::uint32_t attempt = 0;
  double started_unix = 0;
  double ended_unix = 0;
  TaskOutcome outcome;
};
struct Tick {
  double now_unix = 0;
};

using SchedulerEvent = std::variant<WorkerJoined, AllJoined, WorkerLost, TaskFinished, Tick>;

struct Assignment {
  std::int32_t worker = -1;
  std::uint32_t task = 0;
  std::uint32_t attempt = 0;
};

struct SchedulerReady {
  std::vector<TaskResult> records;      // to write to the store, in this order
  std::vector<Assignment> assignments;  // to send to workers
};

struct SchedulerOptions {
  std::uint32_t prefetch = 1;  // outstanding tasks per worker (>= 1)
};

struct SchedulerCounts {
  std::uint32_t total = 0;
  std::uint32_t finished = 0;                      // tasks with a final record
  std::uint32_t by_status[kTaskStatusCount] = {};  // final records by status
  std::uint32_t retried = 0;                       // tasks with more than one attempt
  std::uint32_t flaky = 0;
  std::uint32_t lost_attempts = 0;
  std::uint32_t ignored_events = 0;  // duplicate or stale TaskFinished
  std::uint32_t workers_joined = 0;
  std::uint32_t workers_lost = 0;
};

class Scheduler {
 public:
  // `tasks` must satisfy tasks[i].index == i and outlive the scheduler.
  Scheduler(std::span<const TaskSpec> tasks, SchedulerOptions options);
  ~Scheduler();
  Scheduler(Scheduler&&) noexcept;
  Scheduler& operator=(Scheduler&&) noexcept;

  void step(const SchedulerEvent& event);
  bool has_ready() const;
  const SchedulerReady& ready() const;
  void advance();

  bool finished() const;  // every task has its final record
  std::uint32_t live_workers() const;
  std::uint32_t outstanding(std::int32_t worker) const;  // tasks assigned, not yet finished
  // Every assignment not yet finished, per worker in assignment order (workers in join order): what
  // a coordinator that takes over as leader sends again (workers ignore attempts they already have).
  std::vector<Assignment> outstanding_assignments() const;
  const SchedulerCounts& counts() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace ipfsa::core
