// The consensus core of the HA coordinator quorum (issue 5): Raft as a pure state machine in the
// style of etcd-io/raft (../../../shared/STYLE.md §1, docs/design.md §Consensus core).
//
//   tick()        -- one unit of logical time passed; drives election timeouts and heartbeats.
//   step(msg)     -- one message from a peer; changes state, sends nothing, writes nothing.
//   propose(data) -- the leader appends `data` (opaque bytes: an encoded scheduler event).
//   ready()       -- what the shell must do now, as data (RaftReady, field order = handling order).
//   advance()     -- acknowledges that ready() was handled; clears it.
//   compact(i, s) -- the application snapshotted its state at applied index i; drops the log <= i.
//
// No clock, no MPI, no I/O, no thread: the same ticks and messages always give the same output,
// so the deterministic simulation (raft_sim.hpp) can explore millions of interleavings.
//
// Invariants (Raft paper, Ongaro & Ousterhout 2014; "thesis" = Ongaro's dissertation):
//   §5.1   a message with a higher term makes the receiver a follower of that term before it is
//          handled (except a pre-vote request and a granted pre-vote response, §9.6); a message
//          with a lower term is never acted on (stale appends are answered so the old leader
//          learns the new term; everything else stale is dropped).
//   §5.2   election: a follower that hears nothing for its randomized election timeout (drawn
//          uniformly in [election_ticks_min, election_ticks_max) from the seeded RNG at every
//          reset) campaigns; a node votes at most once per term (voted_for is in the hard state
//          and must be durable before the vote is sent: RaftReady order).
//   §5.3   log replication: AppendEntries carries (prev index, prev term); a follower accepts only
//          if its log holds that entry, deletes a conflicting suffix (never a committed entry:
//          asserted), and commits min(leader commit, index of the last new entry).
//   §5.4.1 election restriction: a vote (or pre-vote) is granted only to a candidate whose log is
//          at least as up to date (last term, then last index).
//   §5.4.2 a leader commits only entries of its own term by counting replicas; earlier entries are
//          committed with them. A new leader appends an empty entry (the no-op of §8) at once.
//   §7     log compaction: compact() replaces the log prefix by a snapshot of the application's
//          state; a follower whose next entry was compacted away gets InstallSnapshot.
//   §9.6   pre-vote (thesis): before bumping its term a node asks for pre-votes at term + 1; a
//          node grants one only if the log is up to date and it has not heard from a leader for
//          election_ticks_min ticks (thesis §4.2.3), so a partitioned node that rejoins cannot
//          disrupt a healthy leader. Vote requests arriving inside that lease are ignored.
//   Check quorum (thesis §6.2): a leader that has not heard from a majority during
//          election_ticks_min ticks steps down, so clients stop talking to a stranded leader.
//
// Entries with empty data are the leader's no-ops; propose() refuses empty data, and the shell
// skips empty entries when applying. Membership is fixed (1, 3 or 5 voters); no read index/lease.
//
// Thread-safety: none; one owner. Between ready() and advance() the owner must not call tick(),
// step(), propose() or compact() (asserted).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace ipfsa::core {

enum class RaftRole : std::uint8_t { kFollower = 0, kPreCandidate = 1, kCandidate = 2, kLeader = 3 };
std::string_view to_string(RaftRole r);

inline constexpr std::int32_t kRaftNone = -1;  // no node (no vote, no known leader)

struct RaftEntry {
  std::uint64_t term = 0;
  std::uint64_t index = 0;
  std::vector<std::uint8_t> data;  // opaque to the core; empty: a leader's no-op

  bool operator==(const RaftEntry&) const = default;
};

// What must be durable before any message that depends on it is sent (§5.2, Figure 2 "Persistent
// state on all servers"). `commit` is persisted too so that a restart re-applies at most what was
// committed.
struct RaftHardState {
  std::uint64_t term = 0;
  std::int32_t voted_for = kRaftNone;
  std::uint64_t commit = 0;

  bool operator==(const RaftHardState&) const = default;
};

// The application's state after applying every entry up to `index` (§7). index 0: none.
struct RaftSnapshot {
  std::uint64_t index = 0;
  std::uint64_t term = 0;  // term of the entry at `index`
  std::vector<std::uint8_t> data;

  bool empty() const { return index == 0; }
  bool operator==(const RaftSnapshot&) const = default;
};

// Everything a node persisted; a restart constructs a new RaftNode from it. `entries` are the
// stored log entries, contiguous from snapshot.index + 1.
struct RaftPersistent {
  RaftHardState hard_state;
  RaftSnapshot snapshot;
  std::vector<RaftEntry> entries;
};

enum class RaftMessageType : std::uint8_t {
  kRequestVote = 0,  // also the pre-vote request (pre_vote = true)
  kRequestVoteResponse = 1,
  kAppendEntries = 2,  // also the heartbeat (entries may be empty)
  kAppendEntriesResponse = 3,
  kInstallSnapshot = 4,
  kInstallSnapshotResponse = 5,
};
std::string_view to_string(RaftMessageType t);

// One message between nodes: a tagged plain struct with public fields, so that src/wire can give
// it a serializer. Which fields each type uses is written next to them; the rest stay default.
struct RaftMessage {
  RaftMessageType type = RaftMessageType::kAppendEntries;
  std::int32_t from = kRaftNone;
  std::int32_t to = kRaftNone;
  std::uint64_t term = 0;  // the sender's term (a pre-vote request: the term it would campaign in)

  // kRequestVote: the candidate's last log entry. kAppendEntries: the entry preceding `entries`.
  std::uint64_t log_index = 0;
  std::uint64_t log_term = 0;
  std::vector<RaftEntry> entries;  // kAppendEntries
  std::uint64_t commit = 0;        // kAppendEntries: the leader's commit index
  RaftSnapshot snapshot;           // kInstallSnapshot

  bool pre_vote = false;  // kRequestVote, kRequestVoteResponse
  bool success = false;   // responses: vote granted / entries accepted / snapshot installed
  // kAppendEntriesResponse, kInstallSnapshotResponse on success: the follower's log equals the
  // leader's up to this index.
  std::uint64_t match_index = 0;
  // kAppendEntriesResponse on reject: the log_index that did not match, and the follower's last
  // index (a hint where the leader should resume).
  std::uint64_t reject_index = 0;
  std::uint64_t hint_index = 0;
};

// What the shell must do, as data. Handle the fields in this order, then call advance():
struct RaftReady {
  // 1. Persist when set (the term or vote changed, or the commit index moved).
  std::optional<RaftHardState> hard_state;
  // 2. Persist when set, replacing the stored snapshot and every stored entry (the node's log now
  //    starts after it). Set only when a leader's snapshot was installed.
  std::optional<RaftSnapshot> snapshot;
  // 3. Append to the stored log, first deleting every stored entry with index >=
  //    entries.front().index (a conflicting suffix the leader overwrote).
  std::vector<RaftEntry> entries;
  //    (1-3 need not be one atomic write: a restart clamps a commit index past the stored log.)
  // 4. Send, ONLY after 1-3 are durable: a vote or an acknowledgement promises what was persisted.
  std::vector<RaftMessage> messages;
  // 5. Apply to the state machine in order, skipping empty (no-op) entries. When `snapshot` is set,
  //    first restore the state machine from it: `committed` then continues after snapshot.index.
  std::vector<RaftEntry> committed;
};

struct RaftConfig {
  std::int32_t id = 0;
  std::vector<std::int32_t> peers;  // every voter, including id; 1, 3 or 5 in practice
  int election_ticks_min = 10;
  int election_ticks_max = 20;  // exclusive
  int heartbeat_ticks = 1;      // < election_ticks_min
  bool pre_vote = true;         // §9.6; with it a rejoining node cannot disrupt a healthy leader
  bool check_quorum = true;     // a leader without a majority for election_ticks_min ticks steps down
  std::size_t max_entries_per_append = 64;
  std::uint64_t seed = 0;  // randomizes the election timeouts (deterministic per seed)
};

class RaftNode {
 public:
  // A fresh node (restored empty) or a restarted one (restored from what it persisted): the
  // application restores its own state from restored.snapshot; the first ready() then re-delivers
  // the committed entries after it.
  explicit RaftNode(RaftConfig config, const RaftPersistent& restored = {});

  void tick();
  void step(const RaftMessage& m);
  // On the leader: appends data and returns its index (committed later, or lost if leadership is
  // lost first: a client re-proposes what it does not see applied). Elsewhere: an error naming
  // the leader this node knows of. Empty data is refused (empty entries are no-ops).
  Result<std::uint64_t> propose(std::vector<std::uint8_t> data);

  bool has_ready() const;
  const RaftReady& ready() const;
  void advance();

  // The application saved a snapshot of its state after applying index (<= applied()); the log up
  // to index is dropped and the snapshot is kept to send to followers that lag behind it. The
  // shell persists `snapshot` and may drop its stored entries <= index. No-op if index is not
  // beyond the current snapshot.
  void compact(std::uint64_t index, std::vector<std::uint8_t> snapshot);

  std::int32_t id() const { return cfg_.id; }
  std::int32_t leader() const { return leader_; }
  std::uint64_t term() const { return term_; }
  RaftRole role() const { return role_; }
  RaftHardState hard_state() const { return {term_, voted_for_, commit_}; }
  std::uint64_t commit() const { return commit_; }
  std::uint64_t applied() const { return applied_; }
  std::uint64_t first_index() const { return snap_.index + 1; }
  std::uint64_t last_index() const { return snap_.index + log_.size(); }
  // The term of the entry at i: i == snapshot index gives its term; nullopt when compacted or past
  // the end.
  std::optional<std::uint64_t> term_at(std::uint64_t i) const;
  // The entry at i, or nullptr when compacted or past the end.
  const RaftEntry* entry(std::uint64_t i) const;
  const RaftSnapshot& snapshot() const { return snap_; }

 private:
  struct Progress {
    std::int32_t id = kRaftNone;
    std::uint64_t match = 0;
    std::uint64_t next = 1;
    bool recent_active = false;
  };

  std::size_t quorum() const { return cfg_.peers.size() / 2 + 1; }
  std::uint64_t last_term() const { return *term_at(last_index()); }
  bool in_lease() const;
  void reset_election_timer();
  void become_follower(std::uint64_t term, std::int32_t leader);
  void campaign(bool pre);
  void become_leader();
  void send(RaftMessage m);
  void send_append(Progress& p);
  void broadcast_append();
  bool maybe_commit();
  void count_vote(std::int32_t from, bool granted);
  void handle_vote_request(const RaftMessage& m);
  void handle_vote_response(const RaftMessage& m);
  void handle_append(const RaftMessage& m);
  void handle_append_response(const RaftMessage& m);
  void handle_snapshot(const RaftMessage& m);
  void handle_snapshot_response(const RaftMessage& m);
  Progress* progress(std::int32_t id);
  void refresh_ready();

  RaftConfig cfg_;
  std::mt19937_64 rng_;
  std::uint64_t term_ = 0;
  std::int32_t voted_for_ = kRaftNone;
  std::uint64_t commit_ = 0;
  std::uint64_t applied_ = 0;  // last index handed out in ready().committed and advanced
  RaftRole role_ = RaftRole::kFollower;
  std::int32_t leader_ = kRaftNone;

  RaftSnapshot snap_;           // log entries <= snap_.index are compacted
  std::vector<RaftEntry> log_;  // log_[k].index == snap_.index + 1 + k

  int election_elapsed_ = 0;
  int randomized_timeout_ = 0;
  int heartbeat_elapsed_ = 0;
  int quorum_elapsed_ = 0;
  std::vector<Progress> progress_;       // leader: one per peer other than self
  std::vector<std::int32_t> votes_for_;  // (pre-)candidate: peers that granted
  std::vector<std::int32_t> votes_against_;

  // The shell's view: what it has persisted and what it is yet to be told.
  RaftHardState persisted_hs_;
  std::uint64_t unstable_from_ = 1;  // first log index not yet handed out in ready().entries
  bool snapshot_pending_ = false;    // snap_ was installed from a leader, not yet handed out
  // Messages accumulate here; hard state and snapshot are refresh_ready()'s; entries and committed
  // are filled by ready() (mutable: a lazily built view of the state above).
  mutable RaftReady ready_;
  mutable bool ready_out_ = false;  // ready() was called; advance() not yet
};

}  // namespace ipfsa::core
