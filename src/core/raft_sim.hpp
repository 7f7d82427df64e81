// A deterministic simulation of a cluster of RaftNodes (raft.hpp) for tests and soak runs
// (../../../shared/STYLE.md §6 "Deterministic simulation"; docs/design.md §Consensus core).
//
// One seed fixes everything: a std::mt19937_64 drives message delays (which reorder), drops,
// duplicates, partitions (random two-sided splits, healed later), crashes and restarts, the
// nodes' election timeouts and the client's proposals. The same SimOptions always give the same
// run, so a failing schedule is replayed from its seed alone.
//
// The simulated shell performs every RaftReady exactly as raft.hpp requires: hard state,
// snapshot and entries go to the node's simulated stable storage before its messages enter the
// network, then committed entries are applied. Each node's state machine is the list of the
// non-empty entries it applied (which an application, SimApplication, may mirror into a richer
// replica); a node compacts its log every `compact_every` applied entries, its snapshot being that
// list. A crash drops the node and everything not in its storage; a restart builds a new RaftNode
// from storage alone, and the state machine from the stored snapshot.
//
// Invariants checked while the schedule runs (Raft paper Figure 3):
//   I1. Election Safety: at most one leader per term (every (term, leader) pair is recorded).
//   I2. Log Matching: two logs holding an entry with the same index and term hold the same data
//       there and agree on the preceding entry's term (so, by induction, on the whole prefix);
//       checked for every entry any node persists, against every entry persisted before.
//   I3. Leader Completeness: a node that becomes leader of term T holds every entry committed in
//       a term below T (or has it in its snapshot).
//   I4. State Machine Safety: no two nodes apply different entries at the same index (also after
//       a restart re-applies, or a snapshot is installed).
// and at the end, after healing every partition, restarting every node and a quiet period:
//   I5. Every node is up, one leader leads, and every node has applied the same sequence, which
//       contains every entry any node ever reported committed (no committed entry is lost).
//
// Thread-safety: none; one owner. Pure: no clock, no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/raft.hpp"

namespace ipfsa::core {

struct SimOptions {
  int nodes = 3;
  std::uint64_t seed = 1;
  int fault_ticks = 300;    // ticks with faults
  int quiet_ticks = 400;    // then at most this many without faults, to converge (I5)
  double drop = 0.05;       // per message
  double duplicate = 0.03;  // per message
  int max_delay = 3;        // a message arrives 1 + [0, max_delay] ticks after it was sent (1 when quiet)
  double partition_per_tick = 0.01;
  int partition_ticks_max = 60;
  double crash_per_tick = 0.006;
  int down_ticks_max = 50;
  double propose_per_tick = 0.4;  // the default client's proposal rate while faults run
  std::uint64_t compact_every = 12;
  std::size_t max_entries_per_append = 8;
  int election_ticks_min = 10;  // RaftConfig of every node
  int election_ticks_max = 20;
  int heartbeat_ticks = 2;
  bool pre_vote = true;
  bool check_quorum = true;
};

// The application on top of the log: one replica per node, driven by what that node applies.
class SimApplication {
 public:
  virtual ~SimApplication() = default;
  // Node `node` restarted or installed a snapshot: its replica is rebuilt from exactly `applied`
  // (every non-empty entry up to its snapshot, in order).
  virtual void reset(int node, const std::vector<RaftEntry>& applied) = 0;
  virtual void apply(int node, const RaftEntry& e) = 0;
  // What the client proposes this tick to `leader` (a node that believes it leads), or empty for
  // nothing. `quiet`: the faults are over.
  virtual std::vector<std::uint8_t> next_proposal(int leader, bool quiet, std::mt19937_64& rng) = 0;
  // True when the client has nothing more to do (checked only in the quiet period).
  virtual bool done(int leader) const = 0;
};

struct SimStats {
  std::uint64_t ticks = 0;
  std::uint64_t messages = 0;
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t partitions = 0;
  std::uint64_t crashes = 0;
  std::uint64_t leaders = 0;  // distinct (term, leader) pairs
  std::uint64_t proposals = 0;
  std::uint64_t committed = 0;  // distinct committed indices
  std::uint64_t snapshots_installed = 0;
  std::uint64_t compactions = 0;
};

class SimCluster {
 public:
  // `app` may be null: the client then proposes unique 8-byte payloads. It must outlive run().
  explicit SimCluster(SimOptions options, SimApplication* app = nullptr);
  ~SimCluster();

  // Runs the schedule. On success every invariant held; the error names the first violation,
  // prefixed with "seed=N nodes=K tick=T:".
  Result<void> run();

  const SimStats& stats() const { return stats_; }
  const std::vector<RaftEntry>& applied(int node) const;
  int leader() const;  // the up node that leads in the highest term, or -1

  // The snapshot format of the simulated state machine (the applied list), exposed for tests.
  static std::vector<std::uint8_t> encode(const std::vector<RaftEntry>& applied);
  static std::vector<RaftEntry> decode(const std::vector<std::uint8_t>& bytes);

 private:
  struct Node;
  struct InFlight {
    std::uint64_t at = 0;
    RaftMessage msg;
  };

  bool fail(std::string what);
  void start(int i);
  void crash(int i);
  void handle_ready(int i);
  void send(const RaftMessage& m);
  void deliver();
  void client();
  void observe_leader(int i);
  bool converged() const;
  void final_checks();

  SimOptions opt_;
  SimApplication* app_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<InFlight> net_;
  std::vector<int> group_;  // partition side per node; messages cross only within a side
  std::uint64_t heal_at_ = 0;
  std::uint64_t now_ = 0;
  bool quiet_ = false;
  int client_target_ = 0;
  std::uint64_t next_payload_ = 1;
  std::string error_;

  std::unordered_map<std::uint64_t, std::int32_t> leader_of_term_;  // I1
  struct Seen {
    std::vector<std::uint8_t> data;
    std::uint64_t prev_term = 0;
  };
  std::unordered_map<std::uint64_t, std::unordered_map<std::uint64_t, Seen>> persisted_;  // I2
  std::vector<RaftEntry> committed_;        // I4, I5: by index - 1 (term 0: not yet seen)
  std::vector<std::uint64_t> commit_term_;  // I3: the term in which committed_[k] was committed
  SimStats stats_;
};

}  // namespace ipfsa::core
