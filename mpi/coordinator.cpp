// Coordinator loop. See mpi/loops.hpp for the contract and docs/design.md §Coordinator.
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>

#include "mpi/loops.hpp"
#include "mpi/messages.hpp"

namespace ipfsa::mpi {

namespace {

double mono_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double unix_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Coordinator {
 public:
  Coordinator(core::Transport& t, std::span<const core::TaskSpec> tasks, core::ResultSink& sink,
              const CoordinatorConfig& cfg)
      : t_(t),
        tasks_(tasks),
        sink_(sink),
        cfg_(cfg),
        sched_(tasks, core::SchedulerOptions{std::max<std::uint32_t>(1, cfg.prefetch)}) {}

  CoordinatorReport run() {
    const double start = mono_s();
    const double join_deadline = start + cfg_.timing.join_timeout_ms / 1000.0;
    double next_beat = start;
    last_flush_ = start;
    for (int r = 0; r < t_.size(); ++r)
      if (r != t_.rank()) awaited_.insert(r);

    while (!sched_.finished() && report_.infra_error.empty()) {
      const double now = mono_s();
      // Bring in everything that has arrived; wait briefly only when nothing is ready to do.
      bool any = false;
      for (int i = 0; i < 4096; ++i) {
        auto m = t_.receive(any ? 0 : 1);
        if (!m) break;
        any = true;
        handle(*m, mono_s());
      }
      if (!all_joined_ && (awaited_.empty() || now >= join_deadline)) {
        for (int r : awaited_) {
          spdlog::warn("coordinator: rank {} never joined; counted as lost", r);
          lose(r, "never joined");
        }
        awaited_.clear();
        all_joined_ = true;
        sched_.step(core::AllJoined{});
      }
      if (now >= next_beat) {
        next_beat = now + cfg_.timing.heartbeat_ms / 1000.0;
        beat(now);
      }
      perform(now);
      if (all_joined_ && sched_.live_workers() == 0 && !sched_.finished())
        report_.infra_error = "all worker ranks are lost; " +
                              std::to_string(sched_.counts().total - sched_.counts().finished) +
                              " tasks have no result";
    }
    perform(mono_s());
    flush_store(true);
    shutdown();
    report_.counts = sched_.counts();
    report_.wall_s = mono_s() - start;
    report_.messages_rejected = t_.counters().rejected;
    report_.dispatch_s = first_assign_ > 0 ? last_record_ - first_assign_ : 0;
    for (auto& [rank, w] : workers_) report_.workers.push_back(w);
    return std::move(report_);
  }

 private:
  void handle(const core::Message& m, double now) {
    auto it = workers_.find(m.from);
    if (it != workers_.end()) {
      if (it->second.lost) return;  // a lost worker stays lost: its tasks were re-queued
      it->second.last_heard_s = now;
    }
    switch (static_cast<MsgType>(m.type)) {
      case MsgType::kHello: {
        auto hello = wire::decode<HelloMsg>(m.body);
        if (!hello) return reject(m, hello.error().message);
        if (it != workers_.end() || !awaited_.count(m.from)) return;  // duplicate or late
        awaited_.erase(m.from);
        WorkerHealthRow row;
        row.rank = m.from;
        row.host = hello->info.host;
        row.last_heard_s = now;
        workers_[m.from] = row;
        hello->info.rank = m.from;
        spdlog::info("coordinator: worker rank {} joined ({}, {} cores, {} MiB{})", m.from, hello->info.host,
                     hello->info.cores, hello->info.memory_bytes >> 20,
                     hello->info.gpus ? ", GPU " + hello->info.gpu_name : "");
        sched_.step(core::WorkerJoined{std::move(hello->info)});
        return;
      }
      case MsgType::kResults: {
        auto res = wire::decode<ResultsMsg>(m.body);
        if (!res) return reject(m, res.error().message);
        for (auto& item : res->items) {
          sched_.step(core::TaskFinished{m.from, item.task, item.attempt, item.started_unix, item.ended_unix,
                                         std::move(item.outcome)});
        }
        return;
      }
      case MsgType::kHeartbeat: {
        auto hb = wire::decode<HeartbeatMsg>(m.body);
        if (!hb) return reject(m, hb.error().message);
        if (it == workers_.end()) return;
        auto& w = it->second;
        w.load1 = hb->health.load1;
        w.mem_available_bytes = hb->health.mem_available_bytes;
        w.disk_free_bytes = hb->health.disk_free_bytes;
        w.net_rx_bytes = hb->health.net_rx_bytes;
        w.net_tx_bytes = hb->health.net_tx_bytes;
        w.gpu_mem_used_bytes = hb->health.gpu_mem_used_bytes;
        w.gpu_mem_total_bytes = hb->health.gpu_mem_total_bytes;
        w.executor_restarts = hb->executor_restarts;
        return;
      }
      case MsgType::kBye:
        return;
      default:
        return reject(m, "unexpected message type " + std::to_string(m.type));
    }
  }

  void reject(const core::Message& m, const std::string& why) {
    ++report_.messages_rejected;
    spdlog::warn("coordinator: rejected message type {} from rank {}: {}", m.type, m.from, why);
  }

  void lose(int rank, const char* why) {
    auto& w = workers_[rank];
    w.rank = rank;
    w.lost = true;
    t_.forget(rank);
    sched_.step(core::WorkerLost{rank});
    spdlog::warn("coordinator: worker rank {} lost ({})", rank, why);
  }

  void beat(double now) {
    const double timeout = cfg_.timing.worker_timeout_ms / 1000.0;
    std::vector<int> dead;
    for (auto& [rank, w] : workers_)
      if (!w.lost && now - w.last_heard_s > timeout) dead.push_back(rank);
    for (int r : dead) lose(r, "no heartbeat");
    for (auto& [rank, w] : workers_)
      if (!w.lost) t_.send(rank, tag(MsgType::kHeartbeat), {});
    sched_.step(core::Tick{unix_s()});
  }

  // Performs the scheduler's decisions: records first (so a result is in the store before the
  // worker gets more work), then one Assign message per worker.
  void perform(double now) {
    if (sched_.has_ready()) {
      const auto& ready = sched_.ready();
      if (!ready.records.empty()) {
        last_record_ = now;
        auto appended = sink_.append(ready.records);
        if (!appended) {
          report_.infra_error = "store: " + appended.error().message;
        } else {
          report_.results_written += ready.records.size();
          unflushed_ += ready.records.size();
          for (const auto& r : ready.records)
            if (r.final) report_.finals.push_back(r);
        }
      }
      if (!ready.assignments.empty()) {
        if (first_assign_ == 0) first_assign_ = now;
        std::map<int, AssignMsg> batches;
        for (const auto& a : ready.assignments)
          batches[a.worker].items.push_back(AssignItem{tasks_[a.task], a.attempt});
        for (auto& [rank, msg] : batches) t_.send(rank, tag(MsgType::kAssign), wire::encode(msg));
      }
      sched_.advance();
    }
    flush_store(false);
  }

  void flush_store(bool force) {
    const double now = mono_s();
    if (unflushed_ == 0 && !force) return;
    if (!force && unflushed_ < cfg_.flush_rows && now - last_flush_ < cfg_.flush_ms / 1000.0) return;
    auto flushed = sink_.flush();
    if (!flushed && report_.infra_error.empty()) report_.infra_error = "store: " + flushed.error().message;
    unflushed_ = 0;
    last_flush_ = now;
  }

  void shutdown() {
    ShutdownMsg bye{report_.infra_error.empty() ? "campaign complete" : report_.infra_error};
    const auto body = wire::encode(bye);
    std::set<int> waiting;
    for (auto& [rank, w] : workers_)
      if (!w.lost) waiting.insert(rank);
    // Every other rank is told, not only live workers: a rank declared lost may be alive but slow,
    // and one that never joined may still be starting. A send to a dead rank is small and never
    // waited for; only live workers' Byes are awaited (bounded).
    for (int r = 0; r < t_.size(); ++r)
      if (r != t_.rank()) t_.send(r, tag(MsgType::kShutdown), body);
    const double deadline = mono_s() + 5.0;
    while (!waiting.empty() && mono_s() < deadline) {
      auto m = t_.receive(5);
      if (m && static_cast<MsgType>(m->type) == MsgType::kBye) {
        waiting.erase(m->from);
        if (auto b = wire::decode<ByeMsg>(m->body); b && workers_.count(m->from))
          workers_[m->from].executor_restarts = b->executor_restarts;
      }
    }
    for (int r : waiting) t_.forget(r);
    t_.drain(1000);
  }

  core::Transport& t_;
  std::span<const core::TaskSpec> tasks_;
  core::ResultSink& sink_;
  const CoordinatorConfig& cfg_;
  core::Scheduler sched_;
  std::map<int, WorkerHealthRow> workers_;
  std::set<int> awaited_;
  bool all_joined_ = false;
  CoordinatorReport report_;
  std::size_t unflushed_ = 0;
  double last_flush_ = 0, first_assign_ = 0, last_record_ = 0;
};

}  // namespace

CoordinatorReport run_coordinator(core::Transport& transport, std::span<const core::TaskSpec> tasks,
                                  core::ResultSink& sink, const CoordinatorConfig& config) {
  Coordinator c(transport, tasks, sink, config);
  return c.run();
}

}  // namespace ipfsa::mpi
