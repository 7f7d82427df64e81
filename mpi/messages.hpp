// Messages between the coordinator and workers, and their order (docs/design.md §Messages):
//
//   worker  -> coord : Hello (once, at start: capabilities)
//   coord   -> worker: Assign (batches of tasks; the worker queues them, runs them in order)
//   worker  -> coord : Results (batches of finished attempts, in completion order)
//   both directions  : Heartbeat every heartbeat_ms (worker: health; coord: liveness only)
//   coord   -> worker: Shutdown (campaign over, or aborted); the worker answers Bye and exits.
//
// A worker that hears nothing from the coordinator for coordinator_timeout_ms exits with code 3.
// Bodies are wire::encode'd structs below; every message travels in a checksummed wire::Envelope.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/scheduler.hpp"
#include "core/task.hpp"
#include "exec/exec_wire.hpp"
#include "sys/health.hpp"
#include "wire/serialize.hpp"

namespace ipfsa::mpi {

enum class MsgType : std::uint8_t {
  kHello = 1,
  kAssign = 2,
  kResults = 3,
  kHeartbeat = 4,
  kShutdown = 5,
  kBye = 6
};

struct HelloMsg {
  core::WorkerInfo info;
  template <class A>
  void serialize(A& a) {
    a(info);
  }
};

struct AssignItem {
  core::TaskSpec task;
  std::uint32_t attempt = 0;
  template <class A>
  void serialize(A& a) {
    a(task, attempt);
  }
};
struct AssignMsg {
  std::vector<AssignItem> items;
  template <class A>
  void serialize(A& a) {
    a(items);
  }
};

// Finished attempts exactly as the executor reported them.
struct ResultsMsg {
  std::vector<exec::ExecReply> items;
  template <class A>
  void serialize(A& a) {
    a(items);
  }
};

struct HeartbeatMsg {
  sys::Health health;
  std::uint32_t queued = 0;  // tasks assigned to this worker, not yet reported
  std::uint32_t executor_restarts = 0;
  template <class A>
  void serialize(A& a) {
    a(health.load1, health.mem_total_bytes, health.mem_available_bytes, health.disk_free_bytes,
      health.net_rx_bytes, health.net_tx_bytes, health.gpu_mem_used_bytes, health.gpu_mem_total_bytes,
      health.rss_bytes, queued, executor_restarts);
  }
};

struct ShutdownMsg {
  std::string reason;
  template <class A>
  void serialize(A& a) {
    a(reason);
  }
};

struct ByeMsg {
  std::uint32_t executor_restarts = 0;
  template <class A>
  void serialize(A& a) {
    a(executor_restarts);
  }
};

inline std::uint8_t tag(MsgType t) {
  return static_cast<std::uint8_t>(t);
}

}  // namespace ipfsa::mpi
