// The deterministic Raft cluster simulation. Contract and invariants: raft_sim.hpp.
#include "core/raft_sim.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <utility>

#include "core/mix.hpp"

namespace ipfsa::core {
namespace {

bool chance(std::mt19937_64& rng, double p) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53 < p;
}

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
}

std::uint64_t get_u64(const std::vector<std::uint8_t>& in, std::size_t& pos) {
  IPFSA_EXPECTS(pos + 8 <= in.size(), "truncated simulated snapshot");
  std::uint64_t v = 0;
  for (int k = 0; k < 8; ++k) v |= static_cast<std::uint64_t>(in[pos + k]) << (8 * k);
  pos += 8;
  return v;
}

std::string describe(const RaftEntry& e) {
  std::ostringstream os;
  os << "(index " << e.index << ", term " << e.term << ", " << e.data.size() << " bytes)";
  return os.str();
}

}  // namespace

struct SimCluster::Node {
  std::unique_ptr<RaftNode> raft;  // null while down
  RaftPersistent storage;          // survives crashes
  std::vector<RaftEntry> applied;  // the state machine; lost in a crash
  std::uint64_t restart_at = 0;
  std::uint64_t incarnation = 0;
  bool up() const { return raft != nullptr; }
};

SimCluster::SimCluster(SimOptions options, SimApplication* app)
    : opt_(options), app_(app), rng_(options.seed), group_(static_cast<std::size_t>(options.nodes), 0) {
  IPFSA_EXPECTS(opt_.nodes >= 1, "SimCluster needs a node");
  for (int i = 0; i < opt_.nodes; ++i) nodes_.push_back(std::make_unique<Node>());
}

SimCluster::~SimCluster() = default;

const std::vector<RaftEntry>& SimCluster::applied(int node) const {
  return nodes_[node]->applied;
}

std::vector<std::uint8_t> SimCluster::encode(const std::vector<RaftEntry>& applied) {
  std::vector<std::uint8_t> out;
  put_u64(out, applied.size());
  for (const RaftEntry& e : applied) {
    put_u64(out, e.index);
    put_u64(out, e.term);
    put_u64(out, e.data.size());
    out.insert(out.end(), e.data.begin(), e.data.end());
  }
  return out;
}

std::vector<RaftEntry> SimCluster::decode(const std::vector<std::uint8_t>& bytes) {
  std::vector<RaftEntry> out;
  if (bytes.empty()) return out;
  std::size_t pos = 0;
  const std::uint64_t n = get_u64(bytes, pos);
  for (std::uint64_t k = 0; k < n; ++k) {
    RaftEntry e;
    e.index = get_u64(bytes, pos);
    e.term = get_u64(bytes, pos);
    const std::uint64_t len = get_u64(bytes, pos);
    IPFSA_EXPECTS(pos + len <= bytes.size(), "truncated simulated snapshot");
    e.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(pos),
                  bytes.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    out.push_back(std::move(e));
  }
  return out;
}

bool SimCluster::fail(std::string what) {
  if (error_.empty()) {
    std::ostringstream os;
    os << "seed=" << opt_.seed << " nodes=" << opt_.nodes << " tick=" << now_ << ": " << what;
    error_ = os.str();
  }
  return false;
}

int SimCluster::leader() const {
  int best = -1;
  for (int i = 0; i < opt_.nodes; ++i) {
    const Node& n = *nodes_[i];
    if (!n.up() || n.raft->role() != RaftRole::kLeader) continue;
    if (best < 0 || n.raft->term() > nodes_[best]->raft->term()) best = i;
  }
  return best;
}

void SimCluster::start(int i) {
  Node& n = *nodes_[i];
  RaftConfig cfg;
  cfg.id = i;
  for (int p = 0; p < opt_.nodes; ++p) cfg.peers.push_back(p);
  cfg.election_ticks_min = opt_.election_ticks_min;
  cfg.election_ticks_max = opt_.election_ticks_max;
  cfg.heartbeat_ticks = opt_.heartbeat_ticks;
  cfg.pre_vote = opt_.pre_vote;
  cfg.check_quorum = opt_.check_quorum;
  cfg.max_entries_per_append = opt_.max_entries_per_append;
  cfg.seed = splitmix64(opt_.seed ^ splitmix64(static_cast<std::uint64_t>(i) * 1000003 + n.incarnation++));
  n.raft = std::make_unique<RaftNode>(cfg, n.storage);
  n.applied = decode(n.storage.snapshot.data);
  for (const RaftEntry& e : n.applied) {
    if (e.index > committed_.size() || committed_[e.index - 1] != e)
      fail("I4: node " + std::to_string(i) + " restored " + describe(e) +
           " from its snapshot, never committed");
  }
  if (app_ != nullptr) app_->reset(i, n.applied);
  handle_ready(i);
}

void SimCluster::crash(int i) {
  Node& n = *nodes_[i];
  n.raft.reset();
  n.applied.clear();
  n.restart_at = now_ + 1 + rng_() % static_cast<std::uint64_t>(opt_.down_ticks_max);
  ++stats_.crashes;
}

void SimCluster::observe_leader(int i) {
  const RaftNode& r = *nodes_[i]->raft;
  if (r.role() != RaftRole::kLeader) return;
  auto [it, fresh] = leader_of_term_.emplace(r.term(), i);
  if (!fresh) {
    if (it->second != i)
      fail("I1: nodes " + std::to_string(it->second) + " and " + std::to_string(i) + " both lead term " +
           std::to_string(r.term()));
    return;
  }
  ++stats_.leaders;
  for (const RaftEntry& c : committed_) {  // I3
    // Only entries committed in an earlier term: a candidate of a stale term may still win it
    // with delayed votes after a later leader committed more.
    if (c.term == 0 || commit_term_[c.index - 1] >= r.term() || c.index <= r.snapshot().index) continue;
    const RaftEntry* e = r.entry(c.index);
    if (e == nullptr || *e != c)
      fail("I3: node " + std::to_string(i) + " leads term " + std::to_string(r.term()) +
           " without committed " + describe(c));
  }
}

void SimCluster::handle_ready(int i) {
  Node& n = *nodes_[i];
  RaftNode& r = *n.raft;
  observe_leader(i);
  while (error_.empty() && r.has_ready()) {
    const RaftReady& rd = r.ready();
    // 1-3: stable storage.
    if (rd.hard_state) n.storage.hard_state = *rd.hard_state;
    if (rd.snapshot) {
      n.storage.snapshot = *rd.snapshot;
      n.storage.entries.clear();
    }
    if (!rd.entries.empty()) {
      for (const RaftEntry& e : rd.entries) {  // I2
        const std::uint64_t prev_term = r.term_at(e.index - 1).value_or(~0ull);
        auto [it, fresh] = persisted_[e.index].emplace(e.term, Seen{e.data, prev_term});
        if (!fresh && (it->second.data != e.data || it->second.prev_term != prev_term))
          fail("I2: node " + std::to_string(i) + " persisted " + describe(e) +
               " differing from another log's entry with the same index and term");
      }
      std::vector<RaftEntry>& st = n.storage.entries;
      const std::uint64_t base = n.storage.snapshot.index;
      const std::uint64_t first = rd.entries.front().index;
      if (first <= base || first > base + st.size() + 1) {
        fail("storage: entries from " + std::to_string(first) + " do not follow the stored log");
        return;
      }
      st.resize(first - base - 1);
      st.insert(st.end(), rd.entries.begin(), rd.entries.end());
    }
    // 4: the network, only now.
    for (const RaftMessage& m : rd.messages) send(m);
    // 5: the state machine.
    if (rd.snapshot) {
      n.applied = decode(rd.snapshot->data);
      for (const RaftEntry& e : n.applied) {
        if (e.index > committed_.size() || committed_[e.index - 1] != e)
          fail("I4: node " + std::to_string(i) + " installed a snapshot holding uncommitted " + describe(e));
      }
      if (app_ != nullptr) app_->reset(i, n.applied);
      ++stats_.snapshots_installed;
    }
    for (const RaftEntry& e : rd.committed) {
      if (e.index > committed_.size()) {
        committed_.resize(e.index);
        commit_term_.resize(e.index);
      }
      RaftEntry& c = committed_[e.index - 1];
      if (c.term == 0) {
        c = e;
        // The first node to hand it out is the leader that committed it: it does so in the
        // handle_ready() of the very step that moved its commit index, before any follower hears.
        commit_term_[e.index - 1] = r.term();
        ++stats_.committed;
      } else if (c != e) {
        fail("I4: node " + std::to_string(i) + " applies " + describe(e) + " where another node applied " +
             describe(c));
      }
      if (e.data.empty()) continue;
      n.applied.push_back(e);
      if (app_ != nullptr) app_->apply(i, e);
    }
    r.advance();
    // The application snapshots its state now and then (§7).
    if (r.applied() >= r.snapshot().index + opt_.compact_every) {
      const std::uint64_t idx = r.applied();
      RaftSnapshot s{idx, *r.term_at(idx), encode(n.applied)};
      std::vector<RaftEntry>& st = n.storage.entries;
      st.erase(st.begin(), st.begin() + static_cast<std::ptrdiff_t>(idx - n.storage.snapshot.index));
      n.storage.snapshot = s;
      r.compact(idx, std::move(s.data));
      ++stats_.compactions;
    }
    observe_leader(i);
  }
}

void SimCluster::send(const RaftMessage& m) {
  ++stats_.messages;
  if (!quiet_ && chance(rng_, opt_.drop)) {
    ++stats_.dropped;
    return;
  }
  int copies = 1;
  if (!quiet_ && chance(rng_, opt_.duplicate)) {
    ++copies;
    ++stats_.duplicated;
  }
  for (int c = 0; c < copies; ++c) {
    // After healing the network is prompt too, so that any timeout configuration converges.
    const std::uint64_t delay = quiet_ ? 1 : 1 + rng_() % static_cast<std::uint64_t>(opt_.max_delay + 1);
    net_.push_back(InFlight{now_ + delay, m});
  }
}

void SimCluster::deliver() {
  std::vector<RaftMessage> due;
  std::vector<InFlight> later;
  for (InFlight& f : net_) {
    if (f.at <= now_) {
      due.push_back(std::move(f.msg));
    } else {
      later.push_back(std::move(f));
    }
  }
  net_.swap(later);
  for (std::size_t k = due.size(); k > 1; --k) std::swap(due[k - 1], due[rng_() % k]);
  for (const RaftMessage& m : due) {
    if (!error_.empty()) return;
    Node& to = *nodes_[m.to];
    if (!to.up() || group_[m.from] != group_[m.to]) continue;
    to.raft->step(m);
    handle_ready(m.to);
  }
}

void SimCluster::client() {
  Node& t = *nodes_[client_target_];
  if (!t.up()) {
    client_target_ = static_cast<int>(rng_() % static_cast<std::uint64_t>(opt_.nodes));
    return;
  }
  std::vector<std::uint8_t> data;
  if (app_ != nullptr) {
    if (t.raft->role() == RaftRole::kLeader) data = app_->next_proposal(client_target_, quiet_, rng_);
  } else if (!quiet_ && chance(rng_, opt_.propose_per_tick)) {
    put_u64(data, next_payload_++);
  }
  if (data.empty() && t.raft->role() == RaftRole::kLeader) return;
  if (data.empty()) data.push_back(0);  // probe: a follower refuses it and names the leader
  Result<std::uint64_t> r = t.raft->propose(std::move(data));
  if (r.ok()) {
    ++stats_.proposals;
    handle_ready(client_target_);
    return;
  }
  const std::int32_t hint = t.raft->leader();  // the error names it too; a real client parses neither
  client_target_ =
      hint != kRaftNone ? hint : static_cast<int>(rng_() % static_cast<std::uint64_t>(opt_.nodes));
}

bool SimCluster::converged() const {
  const int l = leader();
  if (l < 0) return false;
  const RaftNode& lr = *nodes_[l]->raft;
  if (lr.commit() != lr.last_index()) return false;
  for (const auto& n : nodes_) {
    if (!n->up() || n->raft->applied() != lr.last_index() || n->raft->term() != lr.term()) return false;
  }
  return app_ == nullptr || app_->done(l);
}

void SimCluster::final_checks() {
  if (!converged()) {
    std::ostringstream os;
    os << "I5: no convergence " << opt_.quiet_ticks << " ticks after healing; leader " << leader();
    for (int i = 0; i < opt_.nodes; ++i) {
      const Node& n = *nodes_[i];
      if (!n.up()) {
        os << "; node " << i << " down";
        continue;
      }
      os << "; node " << i << " " << to_string(n.raft->role()) << " term " << n.raft->term() << " last "
         << n.raft->last_index() << " commit " << n.raft->commit() << " applied " << n.raft->applied();
    }
    if (app_ != nullptr && leader() >= 0) os << "; application done: " << app_->done(leader());
    fail(os.str());
    return;
  }
  const std::vector<RaftEntry>& a0 = nodes_[0]->applied;
  for (int i = 1; i < opt_.nodes; ++i) {
    if (nodes_[i]->applied != a0)
      fail("I5: nodes 0 and " + std::to_string(i) + " applied different sequences (" +
           std::to_string(a0.size()) + " and " + std::to_string(nodes_[i]->applied.size()) + " entries)");
  }
  std::size_t k = 0;
  for (const RaftEntry& c : committed_) {
    if (c.term == 0 || c.data.empty()) continue;
    while (k < a0.size() && a0[k].index < c.index) ++k;
    if (k == a0.size() || a0[k] != c) {
      fail("I5: committed " + describe(c) + " was lost: not in the applied sequence");
      return;
    }
  }
  // I2 once more, directly: every log agrees with the leader's wherever both hold an entry.
  const RaftNode& lr = *nodes_[leader()]->raft;
  for (int i = 0; i < opt_.nodes; ++i) {
    const RaftNode& r = *nodes_[i]->raft;
    for (std::uint64_t idx = r.first_index(); idx <= r.last_index(); ++idx) {
      const RaftEntry* le = lr.entry(idx);
      if (le != nullptr && *le != *r.entry(idx))
        fail("I2: node " + std::to_string(i) + " and the leader differ at index " + std::to_string(idx));
    }
  }
}

Result<void> SimCluster::run() {
  for (int i = 0; i < opt_.nodes; ++i) start(i);
  const auto total = static_cast<std::uint64_t>(opt_.fault_ticks + opt_.quiet_ticks);
  for (now_ = 0; now_ < total && error_.empty(); ++now_) {
    if (now_ == static_cast<std::uint64_t>(opt_.fault_ticks)) {
      quiet_ = true;
      std::fill(group_.begin(), group_.end(), 0);
      for (int i = 0; i < opt_.nodes; ++i)
        if (!nodes_[i]->up()) start(i);
    }
    if (!quiet_) {
      if (heal_at_ != 0 && now_ >= heal_at_) {
        std::fill(group_.begin(), group_.end(), 0);
        heal_at_ = 0;
      } else if (heal_at_ == 0 && chance(rng_, opt_.partition_per_tick)) {
        for (int& g : group_) g = static_cast<int>(rng_() % 2);
        heal_at_ = now_ + 1 + rng_() % static_cast<std::uint64_t>(opt_.partition_ticks_max);
        ++stats_.partitions;
      }
      for (int i = 0; i < opt_.nodes; ++i)
        if (!nodes_[i]->up() && now_ >= nodes_[i]->restart_at) start(i);
      if (chance(rng_, opt_.crash_per_tick)) {
        const int i = static_cast<int>(rng_() % static_cast<std::uint64_t>(opt_.nodes));
        if (nodes_[i]->up()) crash(i);
      }
    }
    for (int i = 0; i < opt_.nodes && error_.empty(); ++i) {
      if (!nodes_[i]->up()) continue;
      nodes_[i]->raft->tick();
      handle_ready(i);
    }
    deliver();
    if (error_.empty()) client();
    ++stats_.ticks;
    if (quiet_ && converged()) break;
  }
  if (error_.empty()) final_checks();
  if (!error_.empty()) return Error{ErrorCode::kInfra, error_};
  return {};
}

}  // namespace ipfsa::core
