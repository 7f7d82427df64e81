// Unit tests of single behaviours of the consensus core (src/core/raft.hpp). The seeded
// whole-cluster simulations are in raft_sim_test.cpp.
//
// Behaviours checked (Raft paper sections; "thesis" = Ongaro's dissertation):
//   B1. §5.2   a lone voter elects itself and commits its proposals; three voters elect exactly one
//              leader, and pre-vote spends no term on the way (term 1).
//   B2. §5.2   one vote per term; stale-term requests are refused; §5.4.1 a candidate whose log is
//              behind is refused.
//   B3. §5.2   the vote is in ready().hard_state together with the response that announces it,
//              and a node restarted from what it persisted does not vote twice in that term.
//   B4. §5.1   a higher term makes a leader step down.
//   B5. §5.3   AppendEntries deletes a conflicting suffix and appends; a gap is refused with the
//              follower's last index as hint; commit is min(leader commit, last new entry).
//   B6. §5.4.2 a leader does not commit an entry of an earlier term by counting replicas, only
//              with an entry of its own term.
//   B7. §9.6   a partitioned follower keeps its term (pre-vote) and after healing does not disrupt
//              a healthy leader; without pre-vote and check quorum it does (the guard matters).
//   B8. §7     a leader that compacted its log brings a lagging follower up with InstallSnapshot;
//              the follower's ready() carries the snapshot, then the later entries.
//   B9.        propose() on a follower fails naming the leader; empty proposals are refused.
//   B10. thesis §6.2 check quorum: a leader cut off from the majority steps down.
//   B11.       a restarted node re-delivers the committed entries after its snapshot.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/raft.hpp"

namespace ipfsa::core {
namespace {

RaftConfig config(int id, int n, bool pre_vote = true, bool check_quorum = true) {
  RaftConfig c;
  c.id = id;
  for (int p = 0; p < n; ++p) c.peers.push_back(p);
  c.election_ticks_min = 10;
  c.election_ticks_max = 20;
  c.heartbeat_ticks = 2;
  c.pre_vote = pre_vote;
  c.check_quorum = check_quorum;
  c.max_entries_per_append = 4;
  c.seed = 100 + static_cast<std::uint64_t>(id);
  return c;
}

std::vector<std::uint8_t> bytes(std::uint8_t v) {
  return {v};
}

// A tiny shell: instant delivery, a set of isolated nodes, storage as in raft.hpp's Ready contract.
struct Cluster {
  std::vector<std::unique_ptr<RaftNode>> nodes;
  std::vector<RaftPersistent> storage;
  std::vector<std::vector<RaftEntry>> applied;
  std::vector<RaftMessage> pending;
  std::set<int> isolated;
  int snapshots_received = 0;

  explicit Cluster(int n, bool pre_vote = true, bool check_quorum = true) : storage(n), applied(n) {
    for (int i = 0; i < n; ++i)
      nodes.push_back(std::make_unique<RaftNode>(config(i, n, pre_vote, check_quorum)));
  }

  void drain(int i) {
    RaftNode& r = *nodes[i];
    while (r.has_ready()) {
      const RaftReady& rd = r.ready();
      RaftPersistent& st = storage[i];
      if (rd.hard_state) st.hard_state = *rd.hard_state;
      if (rd.snapshot) {
        st.snapshot = *rd.snapshot;
        st.entries.clear();
        applied[i].clear();
        ++snapshots_received;
      }
      if (!rd.entries.empty()) {
        st.entries.resize(rd.entries.front().index - st.snapshot.index - 1);
        st.entries.insert(st.entries.end(), rd.entries.begin(), rd.entries.end());
      }
      pending.insert(pending.end(), rd.messages.begin(), rd.messages.end());
      for (const RaftEntry& e : rd.committed)
        if (!e.data.empty()) applied[i].push_back(e);
      r.advance();
    }
  }

  void deliver() {
    for (int rounds = 0; !pending.empty() && rounds < 1000; ++rounds) {
      std::vector<RaftMessage> now;
      now.swap(pending);
      for (const RaftMessage& m : now) {
        if (isolated.count(m.from) || isolated.count(m.to)) continue;
        nodes[m.to]->step(m);
        drain(m.to);
      }
    }
  }

  void tick(int times = 1) {
    for (int t = 0; t < times; ++t) {
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        nodes[i]->tick();
        drain(static_cast<int>(i));
      }
      deliver();
    }
  }

  int leader() const {
    int l = -1;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i]->role() != RaftRole::kLeader || isolated.count(static_cast<int>(i))) continue;
      EXPECT_EQ(l, -1) << "two leaders";
      l = static_cast<int>(i);
    }
    return l;
  }

  int elect() {
    for (int t = 0; t < 100 && leader() < 0; ++t) tick();
    return leader();
  }
};

TEST(Raft, SingleVoterElectsItselfAndCommits) {  // B1
  Cluster c(1);
  ASSERT_EQ(c.elect(), 0);
  EXPECT_EQ(c.nodes[0]->term(), 1u);
  Result<std::uint64_t> idx = c.nodes[0]->propose(bytes(7));
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ(*idx, 2u);  // after the leader's no-op
  c.drain(0);
  ASSERT_EQ(c.applied[0].size(), 1u);
  EXPECT_EQ(c.applied[0][0].data, bytes(7));
}

TEST(Raft, ThreeVotersElectOneLeaderWithoutWastingTerms) {  // B1
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  for (const auto& n : c.nodes) {
    EXPECT_EQ(n->term(), 1u) << "pre-vote must not spend terms";
    EXPECT_EQ(n->leader(), l);
  }
  ASSERT_TRUE(c.nodes[l]->propose(bytes(1)).ok());
  c.deliver();
  c.tick(2);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.applied[i].size(), 1u) << "node " << i;
}

RaftMessage vote_request(int from, int to, std::uint64_t term, std::uint64_t last_index,
                         std::uint64_t last_term) {
  RaftMessage m;
  m.type = RaftMessageType::kRequestVote;
  m.from = from;
  m.to = to;
  m.term = term;
  m.log_index = last_index;
  m.log_term = last_term;
  return m;
}

const RaftMessage* only_message(const RaftReady& rd) {
  return rd.messages.size() == 1 ? &rd.messages[0] : nullptr;
}

TEST(Raft, OneVotePerTermAndElectionRestriction) {  // B2, B3
  RaftPersistent st;
  st.hard_state.term = 2;
  st.entries = {RaftEntry{1, 1, bytes(1)}, RaftEntry{2, 2, bytes(2)}};
  RaftNode n(config(0, 3, false, false), st);

  // §5.4.1: a log ending in an older term is behind, whatever its length.
  n.step(vote_request(1, 0, 3, 5, 1));
  const RaftMessage* r = only_message(n.ready());
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->success);
  EXPECT_EQ(r->term, 3u);
  n.advance();

  // Up to date: granted, and the vote travels in the same Ready as the response (B3).
  n.step(vote_request(2, 0, 3, 2, 2));
  const RaftReady& rd = n.ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->voted_for, 2);
  EXPECT_EQ(rd.hard_state->term, 3u);
  ASSERT_NE(only_message(rd), nullptr);
  EXPECT_TRUE(rd.messages[0].success);
  const RaftHardState persisted = *rd.hard_state;
  n.advance();

  // A second candidate in the same term is refused; the first one again is granted (idempotent).
  n.step(vote_request(1, 0, 3, 2, 2));
  EXPECT_FALSE(n.ready().messages.at(0).success);
  n.advance();
  n.step(vote_request(2, 0, 3, 2, 2));
  EXPECT_TRUE(n.ready().messages.at(0).success);
  n.advance();

  // Stale term: refused, nothing changes.
  n.step(vote_request(1, 0, 2, 9, 9));
  EXPECT_FALSE(n.has_ready() && !n.ready().messages.empty() && n.ready().messages[0].success);
  if (n.has_ready()) {
    n.ready();
    n.advance();
  }
  EXPECT_EQ(n.term(), 3u);

  // B3: restarted from what it persisted, it still will not vote for node 1 in term 3.
  st.hard_state = persisted;
  RaftNode restarted(config(0, 3, false, false), st);
  restarted.step(vote_request(1, 0, 3, 2, 2));
  EXPECT_FALSE(restarted.ready().messages.at(0).success);
}

TEST(Raft, HigherTermMakesLeaderStepDown) {  // B4
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  RaftMessage m;
  m.type = RaftMessageType::kAppendEntriesResponse;
  m.from = (l + 1) % 3;
  m.to = l;
  m.term = c.nodes[l]->term() + 5;
  c.nodes[l]->step(m);
  EXPECT_EQ(c.nodes[l]->role(), RaftRole::kFollower);
  EXPECT_EQ(c.nodes[l]->term(), m.term);
  EXPECT_EQ(c.nodes[l]->ready().hard_state->term, m.term);
}

TEST(Raft, AppendDeletesConflictingSuffix) {  // B5
  RaftPersistent st;
  st.hard_state = {2, kRaftNone, 2};
  st.entries = {RaftEntry{1, 1, bytes(1)}, RaftEntry{1, 2, bytes(2)}, RaftEntry{2, 3, bytes(3)},
                RaftEntry{2, 4, bytes(4)}};
  RaftNode n(config(0, 3), st);
  n.ready();
  n.advance();  // re-delivers the committed entries 1..2

  RaftMessage a;
  a.type = RaftMessageType::kAppendEntries;
  a.from = 1;
  a.to = 0;
  a.term = 3;
  a.log_index = 2;
  a.log_term = 1;
  a.entries = {RaftEntry{3, 3, bytes(30)}};
  a.commit = 9;
  n.step(a);
  const RaftReady& rd = n.ready();
  ASSERT_EQ(rd.entries.size(), 1u);  // the shell deletes its stored 3..4, then appends
  EXPECT_EQ(rd.entries[0], (RaftEntry{3, 3, bytes(30)}));
  EXPECT_EQ(n.last_index(), 3u);
  EXPECT_EQ(n.commit(), 3u);  // min(leader commit 9, last new entry 3)
  ASSERT_EQ(rd.committed.size(), 1u);
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.messages[0].success);
  EXPECT_EQ(rd.messages[0].match_index, 3u);
  n.advance();

  // A gap: refused, hinting at our last index.
  a.log_index = 7;
  a.log_term = 3;
  a.entries.clear();
  n.step(a);
  const RaftMessage& r = n.ready().messages.at(0);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.reject_index, 7u);
  EXPECT_EQ(r.hint_index, 3u);
  n.advance();
}

TEST(Raft, FollowerCommitsOnlyUpToTheLastNewEntry) {  // B5: Figure 2, AppendEntries step 5
  RaftPersistent st;
  st.hard_state = {2, kRaftNone, 1};
  st.entries = {RaftEntry{1, 1, bytes(1)}, RaftEntry{1, 2, bytes(2)}, RaftEntry{2, 3, bytes(3)},
                RaftEntry{2, 4, bytes(4)}};
  RaftNode n(config(0, 3), st);
  n.ready();
  n.advance();
  // A heartbeat of a term-3 leader whose log matches ours only up to 2: entries 3..4 of term 2
  // may be stale, so its commit index 4 commits only up to 2 here.
  RaftMessage a;
  a.type = RaftMessageType::kAppendEntries;
  a.from = 1;
  a.to = 0;
  a.term = 3;
  a.log_index = 2;
  a.log_term = 1;
  a.commit = 4;
  n.step(a);
  EXPECT_EQ(n.commit(), 2u);
  EXPECT_EQ(n.last_index(), 4u) << "an append without entries deletes nothing";
}

TEST(Raft, CommitsEarlierTermEntriesOnlyWithCurrentTermOne) {  // B6 (paper Figure 8)
  RaftPersistent st;
  st.hard_state = {2, kRaftNone, 1};
  st.entries = {RaftEntry{1, 1, bytes(1)}, RaftEntry{2, 2, bytes(2)}};
  RaftNode n(config(0, 3, false, false), st);
  n.ready();
  n.advance();
  while (n.role() != RaftRole::kCandidate) n.tick();
  ASSERT_EQ(n.term(), 3u);
  n.ready();
  n.advance();
  RaftMessage v;
  v.type = RaftMessageType::kRequestVoteResponse;
  v.from = 1;
  v.to = 0;
  v.term = 3;
  v.success = true;
  n.step(v);
  ASSERT_EQ(n.role(), RaftRole::kLeader);
  ASSERT_EQ(n.last_index(), 3u);  // the no-op of term 3
  n.ready();
  n.advance();

  RaftMessage ack;
  ack.type = RaftMessageType::kAppendEntriesResponse;
  ack.from = 1;
  ack.to = 0;
  ack.term = 3;
  ack.success = true;
  ack.match_index = 2;  // a majority holds entry 2 (term 2) ...
  n.step(ack);
  EXPECT_EQ(n.commit(), 1u);  // ... but counting replicas never commits an earlier term's entry
  n.ready();
  n.advance();
  ack.match_index = 3;
  n.step(ack);
  EXPECT_EQ(n.commit(), 3u);  // committing the term-3 entry commits entry 2 with it
}

TEST(Raft, PreVoteKeepsPartitionedFollowerFromDisruptingLeader) {  // B7
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  const std::uint64_t term = c.nodes[l]->term();
  const int cut = (l + 1) % 3;
  c.isolated.insert(cut);
  c.tick(200);
  EXPECT_EQ(c.nodes[cut]->term(), term) << "pre-vote: a node without a majority does not bump its term";
  EXPECT_NE(c.nodes[cut]->role(), RaftRole::kLeader);
  // Heal so that its next pre-vote request reaches the others before the leader's heartbeat
  // reaches it: its log is as up to date as theirs, so only the lease (thesis §4.2.3) refuses it.
  c.isolated.clear();
  c.pending.clear();
  bool asked = false;
  for (int t = 0; t < 50 && !asked; ++t) {
    c.nodes[cut]->tick();
    c.drain(cut);
    for (const RaftMessage& m : c.pending)
      asked = asked || (m.type == RaftMessageType::kRequestVote && m.pre_vote);
    if (!asked) c.pending.clear();
  }
  ASSERT_TRUE(asked);
  c.deliver();
  c.tick(100);
  EXPECT_EQ(c.leader(), l);
  EXPECT_EQ(c.nodes[l]->term(), term);
  EXPECT_EQ(c.nodes[cut]->leader(), l);
  EXPECT_EQ(c.nodes[cut]->term(), term);
}

TEST(Raft, WithoutPreVoteAPartitionedFollowerDisruptsTheLeader) {  // B7, the contrast
  Cluster c(3, /*pre_vote=*/false, /*check_quorum=*/false);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  const std::uint64_t term = c.nodes[l]->term();
  const int cut = (l + 1) % 3;
  c.isolated.insert(cut);
  c.tick(200);
  EXPECT_GT(c.nodes[cut]->term(), term);
  c.isolated.clear();
  c.tick(100);
  ASSERT_GE(c.leader(), 0);
  EXPECT_GT(c.nodes[c.leader()]->term(), term) << "the old leader was deposed";
}

TEST(Raft, CompactedLeaderSendsSnapshotToLaggingFollower) {  // B8
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  const int cut = (l + 1) % 3;
  c.isolated.insert(cut);
  for (int k = 0; k < 20; ++k) {
    ASSERT_TRUE(c.nodes[l]->propose(bytes(static_cast<std::uint8_t>(k + 1))).ok());
    c.drain(l);
    c.deliver();
  }
  c.tick(2);
  RaftNode& leader = *c.nodes[l];
  ASSERT_EQ(leader.applied(), leader.last_index());
  const std::uint64_t at = leader.applied();
  leader.compact(at, {0xAB});
  EXPECT_EQ(leader.first_index(), at + 1);
  EXPECT_EQ(leader.term_at(at), leader.term());
  EXPECT_EQ(leader.entry(at), nullptr);
  ASSERT_TRUE(leader.propose(bytes(99)).ok());
  c.drain(l);
  c.deliver();
  c.isolated.clear();
  c.tick(5);
  EXPECT_EQ(c.snapshots_received, 1);
  EXPECT_EQ(c.storage[cut].snapshot.index, at);
  EXPECT_EQ(c.storage[cut].snapshot.data, std::vector<std::uint8_t>{0xAB});
  EXPECT_EQ(c.nodes[cut]->last_index(), leader.last_index());
  EXPECT_EQ(c.nodes[cut]->applied(), leader.last_index());
  ASSERT_EQ(c.applied[cut].size(), 1u);  // only what follows the snapshot is applied as entries
  EXPECT_EQ(c.applied[cut][0].data, bytes(99));
}

TEST(Raft, ProposeOnFollowerNamesTheLeader) {  // B9
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  const int f = (l + 1) % 3;
  Result<std::uint64_t> r = c.nodes[f]->propose(bytes(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("node " + std::to_string(l)), std::string::npos) << r.error().message;
  Result<std::uint64_t> e = c.nodes[l]->propose({});
  EXPECT_FALSE(e.ok());
}

TEST(Raft, CheckQuorumStepsDownStrandedLeader) {  // B10
  Cluster c(3);
  const int l = c.elect();
  ASSERT_GE(l, 0);
  c.isolated.insert(l);
  c.tick(25);
  EXPECT_EQ(c.nodes[l]->role(), RaftRole::kFollower);
  EXPECT_EQ(c.nodes[l]->leader(), kRaftNone);
}

TEST(Raft, RestartRedeliversCommittedEntriesAfterSnapshot) {  // B11
  Cluster c(1);
  ASSERT_EQ(c.elect(), 0);
  for (std::uint8_t k = 1; k <= 5; ++k) {
    ASSERT_TRUE(c.nodes[0]->propose(bytes(k)).ok());
    c.drain(0);
  }
  c.nodes[0]->compact(3, {0x33});  // entries 1 (no-op), 2, 3 (data 1, 2)
  c.storage[0].snapshot = c.nodes[0]->snapshot();
  c.storage[0].entries.erase(c.storage[0].entries.begin(), c.storage[0].entries.begin() + 3);
  RaftNode restarted(config(0, 1), c.storage[0]);
  EXPECT_EQ(restarted.applied(), 3u);
  const RaftReady& rd = restarted.ready();
  ASSERT_EQ(rd.committed.size(), 3u);
  EXPECT_EQ(rd.committed.front().index, 4u);
  EXPECT_EQ(rd.committed.back().data, bytes(5));
  EXPECT_FALSE(rd.snapshot.has_value()) << "the shell restores its own stored snapshot";
}

}  // namespace
}  // namespace ipfsa::core
