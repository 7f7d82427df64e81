// Worker loop. See mpi/loops.hpp for the contract and docs/design.md §Worker and §HA quorum.
//
// The worker follows the coordinator whose LeaderBeat carries the highest term. When the leader
// changes it says Hello to the new one and resends every result not yet acknowledged; a result is
// dropped only when the leader acknowledges it (committed by the quorum and flushed to the store).
// An assignment it already holds or has finished (a new leader resends what is outstanding) is
// ignored.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "mpi/loops.hpp"
#include "mpi/messages.hpp"
#include "sys/health.hpp"

namespace ipfsa::mpi {

namespace {

double mono_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

using Key = std::pair<std::uint32_t, std::uint32_t>;  // (task, attempt)

}  // namespace

int run_worker(core::Transport& t, const WorkerConfig& cfg) {
  exec::ExecutorClient executor(cfg.executor);
  if (auto started = executor.start(); !started) {
    spdlog::error("worker rank {}: cannot start executor: {}", t.rank(), started.error().message);
    return 3;
  }
  const HelloMsg hello{sys::probe_worker_info(t.rank(), cfg.gpu_device)};
  const auto hello_body = wire::encode(hello);

  std::int32_t leader = -1;
  std::uint64_t leader_term = 0;
  std::uint64_t committed_seen = 0;
  // Tasks received and not yet reported; the executor holds references into these.
  std::map<Key, std::unique_ptr<core::TaskSpec>> inflight;
  std::set<Key> accepted;                  // every attempt ever queued here
  std::map<Key, exec::ExecReply> unacked;  // reported, not yet acknowledged
  double last_heard = mono_s();
  double next_beat = 0;

  auto send_results = [&](std::vector<exec::ExecReply> items) {
    if (leader < 0 || items.empty()) return;
    ResultsMsg results;
    results.items = std::move(items);
    t.send(leader, tag(MsgType::kResults), wire::encode(results));
  };

  for (;;) {
    const double now = mono_s();
    // Messages first: never wait on the network while the executor has work to report.
    const bool busy = executor.queued() > 0;
    for (int i = 0; i < 256; ++i) {
      auto m = t.receive(i == 0 && !busy ? 1 : 0);
      if (!m) break;
      if (m->from < 0 || m->from >= cfg.coordinators) continue;
      switch (static_cast<MsgType>(m->type)) {
        case MsgType::kLeaderBeat: {
          auto beat = wire::decode<LeaderBeatMsg>(m->body);
          if (!beat) {
            spdlog::warn("worker rank {}: bad LeaderBeat: {}", t.rank(), beat.error().message);
            break;
          }
          if (beat->term < leader_term) break;  // a deposed leader
          last_heard = mono_s();
          if (beat->term != leader_term || m->from != leader) {
            if (leader >= 0)
              spdlog::info("worker rank {}: leader is now rank {} (term {})", t.rank(), m->from, beat->term);
            leader = m->from;
            leader_term = beat->term;
            t.send(leader, tag(MsgType::kHello), hello_body);
            std::vector<exec::ExecReply> again;
            for (const auto& [key, reply] : unacked) again.push_back(reply);
            send_results(std::move(again));
          }
          committed_seen = std::max(committed_seen, beat->committed_results);
          for (const auto& [rank, n] : cfg.chaos.kill_rank)
            if (rank == t.rank() && committed_seen >= n) {
              spdlog::warn("chaos: kill-rank={}@{}; SIGKILL to self (pid {})", rank, n, ::getpid());
              spdlog::default_logger()->flush();
              ::kill(::getpid(), SIGKILL);
            }
          break;
        }
        case MsgType::kAssign: {
          // Any coordinator's assignment is a committed decision of the quorum; duplicates are
          // ignored.
          auto assign = wire::decode<AssignMsg>(m->body);
          if (!assign) {
            spdlog::warn("worker rank {}: bad Assign: {}", t.rank(), assign.error().message);
            break;
          }
          for (auto& item : assign->items) {
            const Key key{item.task.index, item.attempt};
            if (!accepted.insert(key).second) continue;
            auto spec = std::make_unique<core::TaskSpec>(std::move(item.task));
            executor.submit(*spec, item.attempt);
            inflight[key] = std::move(spec);
          }
          break;
        }
        case MsgType::kAck: {
          auto ack = wire::decode<AckMsg>(m->body);
          if (!ack) {
            spdlog::warn("worker rank {}: bad Ack: {}", t.rank(), ack.error().message);
            break;
          }
          for (const auto& key : ack->items) unacked.erase(key);
          break;
        }
        case MsgType::kShutdown: {
          // From the leader (campaign over), or from a coordinator that found no quorum.
          auto why = wire::decode<ShutdownMsg>(m->body);
          if (why && !unacked.empty())
            spdlog::warn("worker rank {}: shut down with {} results not acknowledged: {}", t.rank(),
                         unacked.size(), why->reason);
          ByeMsg bye{executor.restarts()};
          t.send(m->from, tag(MsgType::kBye), wire::encode(bye));
          t.drain(2000);
          return 0;
        }
        default:
          break;
      }
    }
    if (executor.queued() > 0) {
      auto done = executor.poll(1);
      if (!done.empty()) {
        for (auto& r : done) {
          inflight.erase({r.task, r.attempt});
          unacked[{r.task, r.attempt}] = r;
        }
        send_results(std::move(done));
      }
    }
    if (now >= next_beat && leader >= 0) {
      next_beat = now + cfg.timing.heartbeat_ms / 1000.0;
      HeartbeatMsg hb{sys::probe_health(cfg.disk_path, cfg.gpu_device),
                      static_cast<std::uint32_t>(executor.queued()), executor.restarts()};
      t.send(leader, tag(MsgType::kHeartbeat), wire::encode(hb));
    }
    if (now - last_heard > cfg.timing.coordinator_timeout_ms / 1000.0) {
      spdlog::error("worker rank {}: no word from a leader for {} ms; giving up", t.rank(),
                    cfg.timing.coordinator_timeout_ms);
      return 3;
    }
  }
}

}  // namespace ipfsa::mpi
