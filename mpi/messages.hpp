// Messages between the ranks, and their order (docs/design.md §Messages). Coordinator ranks are
// 0..N-1 (`--coordinators N`); "leader" is the one the quorum elected (mpi/quorum.hpp).
//
//   rank 0  -> coords: Setup (once, at start: the run every replica schedules)
//   coord  <-> coord : Raft (consensus messages: votes, log entries, heartbeats)
//   leader  -> worker: LeaderBeat every heartbeat_ms (term, committed results); a worker follows
//                      the sender of the highest term
//   worker  -> leader: Hello (when it learns of a leader: capabilities), then Heartbeat every
//                      heartbeat_ms (health)
//   leader  -> worker: Assign (batches of tasks; the worker queues them, runs them in order and
//                      ignores an attempt it already has)
//   worker  -> leader: Results (batches of finished attempts); kept and resent to each new leader
//                      until acknowledged
//   leader  -> worker: Ack (results committed by the quorum and flushed to the store)
//   leader  -> all   : Shutdown (campaign over, or aborted); a worker answers Bye and exits.
//
// A worker that hears no leader for coordinator_timeout_ms exits with code 3.
// Bodies are wire::encode'd structs below; every message travels in a checksummed wire::Envelope.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result_sink.hpp"
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
  kBye = 6,
  kRaft = 7,  // body: core::RaftMessage
  kAck = 8,
  kSetup = 9,
  kLeaderBeat = 10,
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

// The leader's heartbeat to workers: who leads (the sender), in which term, and how many final
// results the quorum has committed (workers use it for `--chaos kill-rank=R@N`).
struct LeaderBeatMsg {
  std::uint64_t term = 0;
  std::uint64_t committed_results = 0;
  template <class A>
  void serialize(A& a) {
    a(term, committed_results);
  }
};

// Attempts (task, attempt) whose results are committed and durable in the store.
struct AckMsg {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> items;
  template <class A>
  void serialize(A& a) {
    a(items);
  }
};

// What rank 0 decided at start-up and every coordinator needs to build the same scheduler replica:
// the run, where its outputs go, and (on --resume) the campaign tasks whose final results are kept.
struct SetupMsg {
  core::RunInfo info;
  std::string out_dir;
  std::string store_path;
  std::uint64_t job_first_row = 0;     // /results rows from here on were written by this job
  std::vector<core::TaskResult> kept;  // final results recorded before (--resume), campaign indices
  template <class A>
  void serialize(A& a) {
    a(info.run_id, info.campaign, info.campaign_source, info.version, info.git_commit, info.hosts,
      info.status, info.started_unix, info.ended_unix, info.ranks, info.coordinators, info.workers,
      info.tasks_total, out_dir, store_path, job_first_row, kept);
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
