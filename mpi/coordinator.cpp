// Coordinator loop: one member of the HA quorum. See mpi/loops.hpp for the contract and
// docs/design.md §HA quorum for the protocol and the argument that every task gets exactly one
// final row in the store across failovers.
//
// Every coordinator runs a core::RaftNode and a core::Scheduler replica. The leader turns what it
// hears from workers (Hello, Results, silence) into scheduler events and proposes them; every
// coordinator applies committed events to its replica in log order, so all replicas hold the same
// task state. Only the leader acts on the replica's decisions: it sends assignments, appends the
// records to the store, and acknowledges results once they are committed and flushed. A new
// leader first catches up (its no-op committed and applied), then opens the store (whose writer
// lock keeps a deposed leader out), writes the committed records the store lacks, resends every
// outstanding assignment and announces itself to the workers, who resend their unacknowledged
// results to it.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <variant>

#include "core/mix.hpp"
#include "core/raft.hpp"
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

// A new leader's note in the log: the leader changes and failover times every replica reports.
struct LeaderNote {
  std::int32_t rank = -1;
  std::uint64_t term = 0;
  double failover_ms = -1;  // < 0: no previous leader was heard (the first election)
  template <class A>
  void serialize(A& a) {
    a(rank, term, failover_ms);
  }
};

using Event =
    std::variant<core::WorkerJoined, core::AllJoined, core::WorkerLost, core::TaskFinished, LeaderNote>;

// One entry of the replicated log: scheduler events (or a note) and the leader that proposed
// them. A worker's Results message becomes one entry, however many results it carries.
struct Command {
  std::int32_t proposer = -1;
  std::vector<Event> events;
  template <class A>
  void serialize(A& a) {
    a(proposer, events);
  }
};

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

using Key = std::pair<std::uint32_t, std::uint32_t>;  // (task, attempt)

[[noreturn]] void kill_self(const std::string& why) {
  spdlog::warn("chaos: {}; SIGKILL to self (pid {})", why, ::getpid());
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
  for (;;) ::pause();
}

core::RaftConfig raft_config(const core::Transport& t, const CoordinatorConfig& cfg) {
  core::RaftConfig rc;
  rc.id = t.rank();
  for (std::int32_t r = 0; r < cfg.coordinators; ++r) rc.peers.push_back(r);
  const int tick = std::max(1, cfg.timing.raft_tick_ms);
  rc.election_ticks_min = std::max(3, cfg.timing.election_timeout_ms / tick);
  rc.election_ticks_max = 2 * rc.election_ticks_min;
  rc.heartbeat_ticks = std::clamp(cfg.timing.raft_heartbeat_ms / tick, 1, rc.election_ticks_min - 1);
  rc.max_entries_per_append = 64;
  rc.seed = core::splitmix64(static_cast<std::uint64_t>(::getpid()) * 1000003u +
                             static_cast<std::uint64_t>(t.rank()));
  return rc;
}

class Coordinator {
 public:
  Coordinator(core::Transport& t, std::span<const core::TaskSpec> tasks, LeaderStore& store,
              const CoordinatorConfig& cfg, const std::function<int(CoordinatorReport&)>& on_complete)
      : t_(t),
        tasks_(tasks),
        store_(store),
        cfg_(cfg),
        on_complete_(on_complete),
        node_(raft_config(t, cfg)),
        sched_(tasks, core::SchedulerOptions{std::max<std::uint32_t>(1, cfg.prefetch)}),
        tick_s_(std::max(1, cfg.timing.raft_tick_ms) / 1000.0) {}

  CoordinatorReport run() {
    start_ = mono_s();
    join_deadline_ = start_ + cfg_.timing.join_timeout_ms / 1000.0;
    next_tick_ = start_;
    last_leader_seen_ = start_;
    spdlog::info("coordinator rank {}: quorum of {} (ranks 0..{}), election timeout {}-{} ms", t_.rank(),
                 cfg_.coordinators, cfg_.coordinators - 1, cfg_.timing.election_timeout_ms,
                 2 * cfg_.timing.election_timeout_ms);
    // Rank 0 stands at once, so the first leader is elected in one round trip instead of after an
    // election timeout; any rank may win later elections.
    if (t_.rank() == 0)
      for (int i = 0; i < 1000 && node_.role() == core::RaftRole::kFollower; ++i) node_.tick();

    while (!done_) {
      bool any = false;
      for (int i = 0; i < 4096 && !done_; ++i) {
        auto m = t_.receive(any ? 0 : 1);
        if (!m) break;
        any = true;
        handle(*m);
      }
      if (done_) break;
      const double now = mono_s();
      // Raft's logical clock. A process that was descheduled does not catch up in a burst (that
      // would start an election the moment it runs again): at most a few ticks per pass.
      for (int n = 0; now >= next_tick_ && n < 4; ++n) {
        node_.tick();
        next_tick_ += tick_s_;
      }
      if (now >= next_tick_) next_tick_ = now + tick_s_;
      process_ready();
      update_leadership(now);
      if (leading_)
        lead(now);
      else
        follow(now);
    }
    return std::move(report_);
  }

 private:
  bool is_coordinator(std::int32_t rank) const { return rank >= 0 && rank < cfg_.coordinators; }

  // ---- Messages ----

  void handle(const core::Message& m) {
    if (is_coordinator(m.from)) return handle_peer(m);
    if (!leading_) return;  // workers talk to the leader they learn from its LeaderBeat
    const double now = mono_s();
    auto it = workers_.find(m.from);
    if (it != workers_.end()) {
      if (lost_.count(m.from) || proposed_lost_.count(m.from)) return;  // a lost worker stays lost
      it->second.last_heard_s = now;
    }
    switch (static_cast<MsgType>(m.type)) {
      case MsgType::kHello: {
        auto hello = wire::decode<HelloMsg>(m.body);
        if (!hello) return reject(m, hello.error().message);
        if (lost_.count(m.from) || joined_.count(m.from) || proposed_join_.count(m.from)) return;
        hello->info.rank = m.from;
        auto& row = workers_[m.from];
        row.rank = m.from;
        row.host = hello->info.host;
        row.last_heard_s = now;
        spdlog::info("coordinator: worker rank {} joined ({}, {} cores, {} MiB{})", m.from, hello->info.host,
                     hello->info.cores, hello->info.memory_bytes >> 20,
                     hello->info.gpus ? ", GPU " + hello->info.gpu_name : "");
        proposed_join_.insert(m.from);
        propose(core::WorkerJoined{std::move(hello->info)});
        return;
      }
      case MsgType::kResults: {
        auto res = wire::decode<ResultsMsg>(m.body);
        if (!res) return reject(m, res.error().message);
        Command c;
        c.proposer = t_.rank();
        for (auto& item : res->items)
          c.events.emplace_back(core::TaskFinished{m.from, item.task, item.attempt, item.started_unix,
                                                   item.ended_unix, std::move(item.outcome)});
        if (!c.events.empty()) propose_command(c);
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

  void handle_peer(const core::Message& m) {
    const double now = mono_s();
    peer_heard_[m.from] = now;
    switch (static_cast<MsgType>(m.type)) {
      case MsgType::kRaft: {
        auto msg = wire::decode<core::RaftMessage>(m.body);
        if (!msg) return reject(m, msg.error().message);
        if (msg->from != m.from || msg->to != t_.rank()) return reject(m, "Raft message with wrong from/to");
        const bool from_leader = msg->type == core::RaftMessageType::kAppendEntries ||
                                 msg->type == core::RaftMessageType::kInstallSnapshot;
        if (from_leader && msg->term >= node_.term()) {
          last_leader_rank_ = m.from;
          last_leader_unix_ = unix_s();
        }
        node_.step(*msg);
        return;
      }
      case MsgType::kShutdown: {
        // The leader completed the campaign (it has recorded everything and written the outputs).
        auto bye = wire::decode<ShutdownMsg>(m.body);
        spdlog::info("coordinator rank {}: leader rank {} ends the run: {}", t_.rank(), m.from,
                     bye ? bye->reason : std::string("?"));
        if (leading_) step_down();
        report_.leader = m.from;
        fill_report();
        done_ = true;
        return;
      }
      default:
        return reject(m, "unexpected message type " + std::to_string(m.type) + " from a coordinator");
    }
  }

  void reject(const core::Message& m, const std::string& why) {
    ++rejected_;
    spdlog::warn("coordinator rank {}: rejected message type {} from rank {}: {}", t_.rank(), m.type, m.from,
                 why);
  }

  template <class E>
  void propose(E ev) {
    Command c;
    c.proposer = t_.rank();
    c.events.emplace_back(std::move(ev));
    propose_command(c);
  }

  void propose_command(const Command& c) {
    const std::string bytes = wire::encode(c);
    // Not the leader any more: dropped; the worker resends to the next leader.
    (void)node_.propose(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  }

  void send_raft(const core::RaftMessage& m) {
    // Entries for a peer silent for long are not sent: it is most likely dead, and large sends to
    // a dead rank never complete (they would pile up). Heartbeats still go; when it answers, the
    // leader sends what it lacks.
    const double silent = mono_s() - peer_heard(m.to);
    if (!m.entries.empty() && silent > 4.0 * cfg_.timing.election_timeout_ms / 1000.0) return;
    t_.send(m.to, tag(MsgType::kRaft), wire::encode(m));
  }

  double peer_heard(std::int32_t r) const {
    auto it = peer_heard_.find(r);
    return it == peer_heard_.end() ? start_ : it->second;
  }

  // ---- The replicated log ----

  // Performs the Raft node's output. What RaftReady asks to persist stays in the node's memory: a
  // coordinator that dies never rejoins this job (a later job starts from the store with
  // --resume), so its memory is the stable storage that the safety argument needs.
  void process_ready() {
    while (node_.has_ready()) {
      const core::RaftReady& rd = node_.ready();
      for (const auto& m : rd.messages) send_raft(m);
      for (const auto& e : rd.committed)
        if (!e.data.empty()) apply(e);
      node_.advance();
    }
  }

  void apply(const core::RaftEntry& e) {
    auto cmd =
        wire::decode<Command>(std::string_view(reinterpret_cast<const char*>(e.data.data()), e.data.size()));
    if (!cmd) {  // only our own encoding enters the log: a bug, but every replica skips it alike
      spdlog::error("coordinator rank {}: log entry {} does not decode: {}", t_.rank(), e.index,
                    cmd.error().message);
      return;
    }
    for (auto& event : cmd->events) {
      const std::uint64_t before = finals_committed_;
      std::visit(Overload{[&](core::WorkerJoined& j) {
                            joined_.insert(j.info.rank);
                            hosts_[j.info.rank] = j.info.host;
                            proposed_join_.erase(j.info.rank);
                            sched_.step(j);
                          },
                          [&](core::AllJoined& a) {
                            all_joined_ = true;
                            sched_.step(a);
                          },
                          [&](core::WorkerLost& l) {
                            lost_.insert(l.rank);
                            sched_.step(l);
                          },
                          [&](core::TaskFinished& f) {
                            const Key key{f.task, f.attempt};
                            const std::int32_t worker = f.worker;
                            sched_.step(f);
                            if (leading_) acks_[worker].push_back(key);
                          },
                          [&](LeaderNote& n) { notes_.push_back(n); }},
                 event);
      collect();
      chaos(before, cmd->proposer);
    }
  }

  // Takes the replica's decisions: every coordinator keeps the records; the leader also sends the
  // assignments (the records go to the store in lead()).
  void collect() {
    if (!sched_.has_ready()) return;
    const auto& ready = sched_.ready();
    for (const auto& r : ready.records) {
      records_.push_back(r);
      if (r.final) ++finals_committed_;
    }
    if (leading_) send_assignments(ready.assignments);
    sched_.advance();
  }

  void send_assignments(std::span<const core::Assignment> assignments) {
    if (assignments.empty()) return;
    if (first_assign_ == 0) first_assign_ = mono_s();
    std::map<int, AssignMsg> batches;
    for (const auto& a : assignments)
      batches[a.worker].items.push_back(AssignItem{tasks_[a.task], a.attempt});
    for (auto& [rank, msg] : batches) t_.send(rank, tag(MsgType::kAssign), wire::encode(msg));
  }

  void chaos(std::uint64_t before, std::int32_t proposer) {
    const std::uint64_t now = finals_committed_;
    const std::uint64_t k = cfg_.chaos.kill_leader_after;
    if (k > 0 && before < k && now >= k && proposer == t_.rank() && node_.role() == core::RaftRole::kLeader)
      kill_self("kill-leader-after=" + std::to_string(k) + ": the leader (rank " + std::to_string(t_.rank()) +
                ") committed result " + std::to_string(k));
    for (const auto& [rank, n] : cfg_.chaos.kill_rank)
      if (rank == t_.rank() && before < n && now >= n)
        kill_self("kill-rank=" + std::to_string(rank) + "@" + std::to_string(n));
  }

  // ---- Leadership ----

  void update_leadership(double now) {
    const bool raft_leader = node_.role() == core::RaftRole::kLeader;
    if (node_.leader() != core::kRaftNone) last_leader_seen_ = now;
    if (leading_ && (!raft_leader || node_.term() != lead_term_)) step_down();
    if (leading_ || !raft_leader || now < next_takeover_try_) return;
    // Caught up: this term's no-op is committed and applied, so the replica holds every committed
    // entry (Leader Completeness) and the scheduler state is the quorum's.
    const std::uint64_t c = node_.commit();
    if (node_.term_at(c) != node_.term() || node_.applied() < c) return;
    take_over(now);
  }

  void take_over(double now) {
    if (takeover_since_ == 0) takeover_since_ = now;
    std::vector<Key> written;
    auto sink = store_.open(&written);
    if (!sink) {
      const bool transient = sink.error().code == ErrorCode::kInfra && now - takeover_since_ < 30.0;
      if (transient) {
        if (!takeover_warned_)
          spdlog::warn("coordinator rank {}: leader, waiting for the store: {}", t_.rank(),
                       sink.error().message);
        takeover_warned_ = true;
        next_takeover_try_ = now + 0.1;
        return;
      }
      report_.infra_error = "store: " + sink.error().message;
      leading_ = true;  // lead only to end the run: the outputs say why
      lead_term_ = node_.term();
      complete();
      return;
    }
    sink_ = *sink;
    takeover_since_ = 0;
    takeover_warned_ = false;
    leading_ = true;
    lead_term_ = node_.term();

    // The committed records that no leader wrote yet (the previous leader died before its flush).
    std::set<Key> have(written.begin(), written.end());
    std::vector<core::TaskResult> missing;
    for (const auto& r : records_)
      if (!have.count({r.task, r.attempt})) missing.push_back(r);
    next_write_ = records_.size();
    if (!missing.empty()) {
      spdlog::info("coordinator rank {}: writing {} committed results the previous leader had not written",
                   t_.rank(), missing.size());
      append(missing);
    }
    flush(true);

    // Fresh deadlines for every worker: the previous leader's view of liveness is gone.
    for (std::int32_t r = cfg_.coordinators; r < t_.size(); ++r) {
      auto& row = workers_[r];
      row.rank = r;
      if (auto h = hosts_.find(r); h != hosts_.end()) row.host = h->second;
      row.last_heard_s = now;
      row.lost = lost_.count(r) > 0;
    }
    beat(now);
    const auto outstanding = sched_.outstanding_assignments();
    send_assignments(outstanding);

    const bool failover = last_leader_rank_ != core::kRaftNone && last_leader_rank_ != t_.rank();
    const double failover_ms = failover ? (unix_s() - last_leader_unix_) * 1000.0 : -1.0;
    spdlog::info(
        "coordinator rank {}: leader of term {}{}; {} results committed, {} assignments outstanding",
        t_.rank(), node_.term(),
        failover ? fmt::format(" (rank {} last heard {:.0f} ms ago)", last_leader_rank_, failover_ms) : "",
        finals_committed_, outstanding.size());
    last_leader_rank_ = t_.rank();
    propose(LeaderNote{t_.rank(), node_.term(), failover_ms});
  }

  void step_down() {
    spdlog::warn("coordinator rank {}: no longer the leader (term {}); closing the store", t_.rank(),
                 node_.term());
    if (sink_) {
      write_records();
      (void)sink_->flush();  // committed records: correct whoever writes them; the next leader checks
    }
    store_.close();
    sink_ = nullptr;
    leading_ = false;
    acks_.clear();
  }

  // ---- Leader duties ----

  void lead(double now) {
    if (done_) return;
    if (!all_joined_ && all_joined_term_ != lead_term_) {
      std::vector<std::int32_t> awaited;
      for (std::int32_t r = cfg_.coordinators; r < t_.size(); ++r)
        if (!joined_.count(r) && !lost_.count(r) && !proposed_join_.count(r)) awaited.push_back(r);
      const bool pending_joins = !proposed_join_.empty();
      if ((awaited.empty() && !pending_joins) || now >= join_deadline_) {
        for (std::int32_t r : awaited) {
          spdlog::warn("coordinator: rank {} never joined; counted as lost", r);
          proposed_lost_.insert(r);
          workers_[r].lost = true;
          propose(core::WorkerLost{r});
        }
        propose(core::AllJoined{});
        all_joined_term_ = lead_term_;
      }
    }
    if (now >= next_beat_) {
      const double timeout = cfg_.timing.worker_timeout_ms / 1000.0;
      for (std::int32_t r : joined_) {
        if (lost_.count(r) || proposed_lost_.count(r)) continue;
        if (now - workers_[r].last_heard_s <= timeout) continue;
        spdlog::warn("coordinator: worker rank {} lost (no heartbeat)", r);
        proposed_lost_.insert(r);
        workers_[r].lost = true;
        t_.forget(r);
        propose(core::WorkerLost{r});
      }
      beat(now);
    }
    write_records();
    flush(false);
    if (!report_.infra_error.empty()) return complete();
    if (sched_.finished()) return complete();
    if (all_joined_ && sched_.live_workers() == 0)
      report_.infra_error = "all worker ranks are lost; " +
                            std::to_string(sched_.counts().total - sched_.counts().finished) +
                            " tasks have no result";
    if (!report_.infra_error.empty()) complete();
  }

  // LeaderBeat to every worker that is not lost: it tells who leads (a worker that has not joined
  // yet learns where to say Hello).
  void beat(double now) {
    next_beat_ = now + cfg_.timing.heartbeat_ms / 1000.0;
    const auto body = wire::encode(LeaderBeatMsg{node_.term(), finals_committed_});
    for (std::int32_t r = cfg_.coordinators; r < t_.size(); ++r)
      if (!lost_.count(r) && !proposed_lost_.count(r)) t_.send(r, tag(MsgType::kLeaderBeat), body);
  }

  void write_records() {
    if (!sink_ || next_write_ >= records_.size()) return;
    std::span<const core::TaskResult> fresh(records_.data() + next_write_, records_.size() - next_write_);
    next_write_ = records_.size();
    append(fresh);
  }

  void append(std::span<const core::TaskResult> rows) {
    last_record_ = mono_s();
    if (auto ok = sink_->append(rows); !ok) {
      if (report_.infra_error.empty()) report_.infra_error = "store: " + ok.error().message;
      return;
    }
    report_.results_written += rows.size();
    unflushed_ += rows.size();
  }

  // Flushes at the store's cadence, then acknowledges the results it made durable.
  void flush(bool force) {
    if (!sink_) return;
    const double now = mono_s();
    if (unflushed_ == 0 && acks_.empty() && !force) return;
    if (!force && unflushed_ < cfg_.flush_rows && now - last_flush_ < cfg_.flush_ms / 1000.0) return;
    if (auto ok = sink_->flush(); !ok) {
      if (report_.infra_error.empty()) report_.infra_error = "store: " + ok.error().message;
      return;
    }
    unflushed_ = 0;
    last_flush_ = now;
    for (auto& [rank, items] : acks_)
      if (!lost_.count(rank)) t_.send(rank, tag(MsgType::kAck), wire::encode(AckMsg{std::move(items)}));
    acks_.clear();
  }

  // The campaign is over (or cannot go on): record everything, let the caller write the outputs,
  // then tell every rank.
  void complete() {
    write_records();
    flush(true);
    fill_report();
    report_.final_leader = true;
    report_.leader = t_.rank();
    const int code = on_complete_(report_);
    ShutdownMsg bye{report_.infra_error.empty() ? "campaign complete (exit code " + std::to_string(code) + ")"
                                                : report_.infra_error};
    shutdown(wire::encode(bye));
    done_ = true;
  }

  void fill_report() {
    report_.wall_s = mono_s() - start_;
    report_.counts = sched_.counts();
    report_.finals.clear();
    for (const auto& r : records_)
      if (r.final) report_.finals.push_back(r);
    report_.workers.clear();
    for (auto& [rank, w] : workers_) {
      WorkerHealthRow row = w;
      row.lost = row.lost || lost_.count(rank) > 0;
      if (row.host.empty())
        if (auto h = hosts_.find(rank); h != hosts_.end()) row.host = h->second;
      if (joined_.count(rank) || row.lost) report_.workers.push_back(row);
    }
    report_.messages_rejected = t_.counters().rejected + rejected_;
    report_.dispatch_s = first_assign_ > 0 && last_record_ > first_assign_ ? last_record_ - first_assign_ : 0;
    report_.leader_changes = 0;
    report_.failover_ms.clear();
    report_.failover_ms_max = 0;
    for (std::size_t i = 1; i < notes_.size(); ++i) {
      if (notes_[i].rank == notes_[i - 1].rank) continue;
      ++report_.leader_changes;
      if (notes_[i].failover_ms >= 0) {
        report_.failover_ms.push_back(notes_[i].failover_ms);
        report_.failover_ms_max = std::max(report_.failover_ms_max, notes_[i].failover_ms);
      }
    }
  }

  void shutdown(const std::string& body) {
    std::set<int> waiting;
    for (std::int32_t r : joined_)
      if (!lost_.count(r) && !proposed_lost_.count(r)) waiting.insert(r);
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

  // ---- Followers ----

  // A coordinator that hears of no leader for quorum_timeout_ms gives up: a majority of the
  // quorum is gone, so nothing can be committed. Results acknowledged so far are in the store;
  // `run --resume` continues the run.
  void follow(double now) {
    if (node_.role() == core::RaftRole::kLeader) return;  // catching up or waiting for the store
    if (now - last_leader_seen_ < cfg_.timing.quorum_timeout_ms / 1000.0) return;
    std::string silent;
    for (std::int32_t r = 0; r < cfg_.coordinators; ++r)
      if (r != t_.rank() && now - peer_heard(r) > cfg_.timing.election_timeout_ms / 1000.0)
        silent += (silent.empty() ? "" : ", ") + std::to_string(r);
    report_.infra_error = "no quorum: no leader for " + std::to_string(cfg_.timing.quorum_timeout_ms) +
                          " ms (silent coordinator ranks: " + (silent.empty() ? "none" : silent) +
                          "); the results acknowledged so far are in the store: continue with run --resume";
    fill_report();
    // Workers would wait coordinator_timeout_ms for a leader; tell them now.
    const auto body = wire::encode(ShutdownMsg{report_.infra_error});
    for (std::int32_t r = cfg_.coordinators; r < t_.size(); ++r) t_.send(r, tag(MsgType::kShutdown), body);
    t_.drain(1000);
    done_ = true;
  }

  core::Transport& t_;
  std::span<const core::TaskSpec> tasks_;
  LeaderStore& store_;
  const CoordinatorConfig& cfg_;
  const std::function<int(CoordinatorReport&)>& on_complete_;
  core::RaftNode node_;
  core::Scheduler sched_;
  const double tick_s_;

  // Replicated state (from applied entries; identical on every coordinator).
  std::vector<core::TaskResult> records_;  // every record the scheduler made, in log order
  std::uint64_t finals_committed_ = 0;
  std::set<std::int32_t> joined_, lost_;
  std::map<std::int32_t, std::string> hosts_;
  bool all_joined_ = false;
  std::vector<LeaderNote> notes_;

  // Leader-local state.
  bool leading_ = false;
  std::uint64_t lead_term_ = 0;
  std::uint64_t all_joined_term_ = 0;  // the term in which this leader proposed AllJoined
  core::ResultSink* sink_ = nullptr;
  std::size_t next_write_ = 0;  // records_[next_write_..] are not appended yet
  std::size_t unflushed_ = 0;
  std::map<std::int32_t, std::vector<Key>> acks_;  // applied results to acknowledge after the next flush
  std::set<std::int32_t> proposed_join_, proposed_lost_;
  std::map<std::int32_t, WorkerHealthRow> workers_;
  double takeover_since_ = 0, next_takeover_try_ = 0;
  bool takeover_warned_ = false;

  // Local observations.
  std::map<std::int32_t, double> peer_heard_;
  std::int32_t last_leader_rank_ = core::kRaftNone;
  double last_leader_unix_ = 0;
  double last_leader_seen_ = 0;
  double start_ = 0, join_deadline_ = 0, next_tick_ = 0, next_beat_ = 0, last_flush_ = 0;
  double first_assign_ = 0, last_record_ = 0;
  std::uint64_t rejected_ = 0;
  bool done_ = false;
  CoordinatorReport report_;
};

}  // namespace

CoordinatorReport run_coordinator(core::Transport& transport, std::span<const core::TaskSpec> tasks,
                                  LeaderStore& store, const CoordinatorConfig& config,
                                  const std::function<int(CoordinatorReport&)>& on_complete) {
  Coordinator c(transport, tasks, store, config, on_complete);
  return c.run();
}

}  // namespace ipfsa::mpi
