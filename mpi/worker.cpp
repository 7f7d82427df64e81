// Worker loop. See mpi/loops.hpp for the contract and docs/design.md §Worker.
#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>

#include "mpi/loops.hpp"
#include "mpi/messages.hpp"
#include "sys/health.hpp"

namespace ipfsa::mpi {

namespace {

double mono_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int kCoordinator = 0;  // issue 5 replaces this with the current leader

}  // namespace

int run_worker(core::Transport& t, const WorkerConfig& cfg) {
  exec::ExecutorClient executor(cfg.executor);
  if (auto started = executor.start(); !started) {
    spdlog::error("worker rank {}: cannot start executor: {}", t.rank(), started.error().message);
    return 3;
  }
  HelloMsg hello{sys::probe_worker_info(t.rank(), cfg.gpu_device)};
  t.send(kCoordinator, tag(MsgType::kHello), wire::encode(hello));

  // Tasks received and not yet reported; the executor holds references into these.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::unique_ptr<core::TaskSpec>> inflight;
  double last_heard = mono_s();
  double next_beat = 0;
  for (;;) {
    const double now = mono_s();
    // Messages first: never wait on the network while the executor has work to report.
    const bool busy = executor.queued() > 0;
    for (int i = 0; i < 256; ++i) {
      auto m = t.receive(i == 0 && !busy ? 1 : 0);
      if (!m) break;
      if (m->from != kCoordinator) continue;
      last_heard = mono_s();
      switch (static_cast<MsgType>(m->type)) {
        case MsgType::kAssign: {
          auto assign = wire::decode<AssignMsg>(m->body);
          if (!assign) {
            spdlog::warn("worker rank {}: bad Assign: {}", t.rank(), assign.error().message);
            break;
          }
          for (auto& item : assign->items) {
            auto key = std::make_pair(item.task.index, item.attempt);
            auto spec = std::make_unique<core::TaskSpec>(std::move(item.task));
            executor.submit(*spec, item.attempt);
            inflight[key] = std::move(spec);
          }
          break;
        }
        case MsgType::kShutdown: {
          ByeMsg bye{executor.restarts()};
          t.send(kCoordinator, tag(MsgType::kBye), wire::encode(bye));
          t.drain(2000);
          return 0;
        }
        default:
          break;  // coordinator heartbeat: liveness only
      }
    }
    if (executor.queued() > 0) {
      auto done = executor.poll(1);
      if (!done.empty()) {
        ResultsMsg results;
        results.items.reserve(done.size());
        for (auto& r : done) {
          inflight.erase({r.task, r.attempt});
          results.items.push_back(std::move(r));
        }
        t.send(kCoordinator, tag(MsgType::kResults), wire::encode(results));
      }
    }
    if (now >= next_beat) {
      next_beat = now + cfg.timing.heartbeat_ms / 1000.0;
      HeartbeatMsg hb{sys::probe_health(cfg.disk_path, cfg.gpu_device),
                      static_cast<std::uint32_t>(executor.queued()), executor.restarts()};
      t.send(kCoordinator, tag(MsgType::kHeartbeat), wire::encode(hb));
    }
    if (now - last_heard > cfg.timing.coordinator_timeout_ms / 1000.0) {
      spdlog::error("worker rank {}: no word from the coordinator for {} ms; giving up", t.rank(),
                    cfg.timing.coordinator_timeout_ms);
      return 3;
    }
  }
}

}  // namespace ipfsa::mpi
