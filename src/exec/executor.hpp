// Isolated execution (M4). A worker rank supervises one long-lived executor process (this same
// binary, `ipfs-accelerate __executor`, started with posix_spawn) that runs its tasks one at a
// time. A task that segfaults, aborts, hangs past timeout_s or exceeds memory_mb takes down the
// executor, never the worker: the client records crashed (with the signal) / timeout / oom,
// restarts the executor and carries on with the tasks still queued.
//
// Protocol (pipes, worker -> executor on the child's stdin, executor -> worker on its stdout):
// each frame is a little-endian uint32 length followed by a wire::encode'd body. Requests are
// ExecRequest, replies ExecReply, in FIFO order.
//
// Memory limit: before each task the executor sets its own RLIMIT_AS soft limit to its current
// virtual size + memory_mb, so an allocation past the limit fails (std::bad_alloc -> oom) instead
// of taking the node down. Timeout: the client starts a task's clock when the previous reply
// arrives (or at submission when idle) and SIGKILLs the executor when it runs past timeout_s.
//
// Thread-safety: ExecutorClient is not thread-safe; it belongs to the worker loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::exec {

struct ExecRequest {
  core::TaskSpec task;
  std::uint32_t attempt = 0;
};

struct ExecReply {
  std::uint32_t task = 0;
  std::uint32_t attempt = 0;
  double started_unix = 0;
  double ended_unix = 0;
  core::TaskOutcome outcome;
};

struct ExecutorOptions {
  std::string program = "/proc/self/exe";  // binary to spawn
  std::vector<std::string> args = {"__executor"};
  double kill_grace_s = 0.0;  // extra time past timeout_s before SIGKILL
  // NAME=VALUE pairs set in the executor's environment (replacing inherited ones of the same
  // name), e.g. the GPU the worker binds: IPFSA_CUDA_DEVICE (engine/model_kind.hpp).
  std::vector<std::string> env;
};

class ExecutorClient {
 public:
  explicit ExecutorClient(ExecutorOptions options = {});
  ~ExecutorClient();  // kills and reaps the executor
  ExecutorClient(const ExecutorClient&) = delete;
  ExecutorClient& operator=(const ExecutorClient&) = delete;

  // Spawns the executor. Error when the program cannot be started.
  Result<void> start();
  // Queues a task; it runs after those already queued. `task` must outlive its completion.
  void submit(const core::TaskSpec& task, std::uint32_t attempt);
  // Writes pending requests, reads replies, enforces timeouts, detects a dead executor and
  // restarts it (re-sending the tasks still queued). Waits at most timeout_ms for progress.
  // Returns the tasks completed during this call, in completion order.
  std::vector<ExecReply> poll(int timeout_ms);

  std::size_t queued() const;      // submitted, not yet completed
  pid_t pid() const;               // current executor pid, -1 when not running
  std::uint32_t restarts() const;  // executors started after the first

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Entry point of the executor process (`ipfs-accelerate __executor`): serves requests from fd 0
// until EOF. Returns the process exit code.
int executor_main();

}  // namespace ipfsa::exec
