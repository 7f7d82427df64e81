// The consensus core (issue 5). Contract and invariants: raft.hpp. Decisions the header leaves
// open:
//   * Flow control is the simplest that is correct under loss: a follower's `next` moves only on
//     responses (never optimistically at send time). Every append (proposal, heartbeat, commit
//     advance) carries the entries from `next`, at most max_entries_per_append, so a lost append
//     is repaired by the next heartbeat. A reject moves `next` back to min(rejected index, the
//     follower's last index + 1), never below match + 1; only the reject of the current probe
//     (reject_index == next - 1) moves it, so duplicated or reordered rejects do no harm.
//   * A follower acknowledges an append whose prev index is below its commit index with its commit
//     index (those entries are committed, so they match the leader's: §5.4 Log Matching).
//   * Election timeouts are drawn as min + rng() % (max - min) from std::mt19937_64, whose output
//     the standard fixes, so a seed gives the same run with any standard library.
#include "core/raft.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace ipfsa::core {

std::string_view to_string(RaftRole r) {
  switch (r) {
    case RaftRole::kFollower:
      return "follower";
    case RaftRole::kPreCandidate:
      return "pre-candidate";
    case RaftRole::kCandidate:
      return "candidate";
    case RaftRole::kLeader:
      return "leader";
  }
  return "?";
}

std::string_view to_string(RaftMessageType t) {
  switch (t) {
    case RaftMessageType::kRequestVote:
      return "RequestVote";
    case RaftMessageType::kRequestVoteResponse:
      return "RequestVoteResponse";
    case RaftMessageType::kAppendEntries:
      return "AppendEntries";
    case RaftMessageType::kAppendEntriesResponse:
      return "AppendEntriesResponse";
    case RaftMessageType::kInstallSnapshot:
      return "InstallSnapshot";
    case RaftMessageType::kInstallSnapshotResponse:
      return "InstallSnapshotResponse";
  }
  return "?";
}

RaftNode::RaftNode(RaftConfig config, const RaftPersistent& restored)
    : cfg_(std::move(config)), rng_(cfg_.seed) {
  IPFSA_EXPECTS(std::find(cfg_.peers.begin(), cfg_.peers.end(), cfg_.id) != cfg_.peers.end(),
                "RaftConfig::peers must contain id");
  IPFSA_EXPECTS(cfg_.election_ticks_min > 0 && cfg_.election_ticks_max > cfg_.election_ticks_min,
                "need 0 < election_ticks_min < election_ticks_max");
  IPFSA_EXPECTS(cfg_.heartbeat_ticks > 0 && cfg_.heartbeat_ticks < cfg_.election_ticks_min,
                "need 0 < heartbeat_ticks < election_ticks_min");
  IPFSA_EXPECTS(cfg_.max_entries_per_append > 0, "max_entries_per_append must be positive");

  const RaftHardState& hs = restored.hard_state;
  term_ = hs.term;
  voted_for_ = hs.voted_for;
  snap_ = restored.snapshot;
  log_ = restored.entries;
  std::uint64_t prev_term = snap_.term;
  for (std::size_t k = 0; k < log_.size(); ++k) {
    IPFSA_EXPECTS(log_[k].index == snap_.index + 1 + k, "restored entries must follow the snapshot");
    IPFSA_EXPECTS(log_[k].term >= prev_term && log_[k].term <= term_, "restored entry terms out of order");
    prev_term = log_[k].term;
  }
  // A crash between writing the hard state and the entries of one Ready may leave a commit index
  // past the stored log; those entries were never acknowledged nor applied, so clamping is safe.
  commit_ = std::min(std::max(hs.commit, snap_.index), last_index());
  applied_ = snap_.index;
  persisted_hs_ = hs;
  unstable_from_ = last_index() + 1;
  become_follower(term_, kRaftNone);
  refresh_ready();
}

std::optional<std::uint64_t> RaftNode::term_at(std::uint64_t i) const {
  if (i == snap_.index) return snap_.term;
  if (i < snap_.index || i > last_index()) return std::nullopt;
  return log_[i - snap_.index - 1].term;
}

const RaftEntry* RaftNode::entry(std::uint64_t i) const {
  if (i <= snap_.index || i > last_index()) return nullptr;
  return &log_[i - snap_.index - 1];
}

bool RaftNode::in_lease() const {
  if (!cfg_.pre_vote && !cfg_.check_quorum) return false;
  return leader_ != kRaftNone && (role_ == RaftRole::kLeader || election_elapsed_ < cfg_.election_ticks_min);
}

void RaftNode::reset_election_timer() {
  election_elapsed_ = 0;
  const auto span = static_cast<std::uint64_t>(cfg_.election_ticks_max - cfg_.election_ticks_min);
  randomized_timeout_ = cfg_.election_ticks_min + static_cast<int>(rng_() % span);
}

void RaftNode::become_follower(std::uint64_t term, std::int32_t leader) {
  if (term != term_) {
    IPFSA_ASSERT(term > term_);
    term_ = term;
    voted_for_ = kRaftNone;
  }
  role_ = RaftRole::kFollower;
  leader_ = leader;
  progress_.clear();
  votes_for_.clear();
  votes_against_.clear();
  reset_election_timer();
}

void RaftNode::campaign(bool pre) {
  reset_election_timer();
  votes_for_.clear();
  votes_against_.clear();
  progress_.clear();
  leader_ = kRaftNone;
  if (pre) {
    role_ = RaftRole::kPreCandidate;  // §9.6: no term bump, no vote cast, until a majority agrees
  } else {
    role_ = RaftRole::kCandidate;  // §5.2
    ++term_;
    voted_for_ = cfg_.id;
  }
  count_vote(cfg_.id, true);
  if (role_ != (pre ? RaftRole::kPreCandidate : RaftRole::kCandidate)) return;  // won alone
  for (std::int32_t peer : cfg_.peers) {
    if (peer == cfg_.id) continue;
    RaftMessage m;
    m.type = RaftMessageType::kRequestVote;
    m.to = peer;
    m.term = pre ? term_ + 1 : term_;
    m.pre_vote = pre;
    m.log_index = last_index();
    m.log_term = last_term();
    send(std::move(m));
  }
}

void RaftNode::count_vote(std::int32_t from, bool granted) {
  auto seen = [from](const std::vector<std::int32_t>& v) {
    return std::find(v.begin(), v.end(), from) != v.end();
  };
  if (seen(votes_for_) || seen(votes_against_)) return;
  (granted ? votes_for_ : votes_against_).push_back(from);
  if (votes_for_.size() >= quorum()) {
    if (role_ == RaftRole::kPreCandidate) {
      campaign(false);
    } else {
      become_leader();
    }
  } else if (votes_against_.size() >= quorum()) {
    become_follower(term_, kRaftNone);
  }
}

void RaftNode::become_leader() {
  IPFSA_ASSERT(role_ == RaftRole::kCandidate);
  role_ = RaftRole::kLeader;
  leader_ = cfg_.id;
  heartbeat_elapsed_ = 0;
  quorum_elapsed_ = 0;
  progress_.clear();
  for (std::int32_t peer : cfg_.peers) {
    if (peer == cfg_.id) continue;
    progress_.push_back(Progress{peer, 0, last_index() + 1, true});
  }
  // §5.4.2 / §8: an entry of the new term, so that earlier entries can be committed with it.
  log_.push_back(RaftEntry{term_, last_index() + 1, {}});
  maybe_commit();
  broadcast_append();
}

void RaftNode::send(RaftMessage m) {
  m.from = cfg_.id;
  ready_.messages.push_back(std::move(m));
}

void RaftNode::send_append(Progress& p) {
  RaftMessage m;
  m.to = p.id;
  m.term = term_;
  if (p.next <= snap_.index) {  // §7: what it needs was compacted away
    m.type = RaftMessageType::kInstallSnapshot;
    m.snapshot = snap_;
    send(std::move(m));
    return;
  }
  m.type = RaftMessageType::kAppendEntries;
  m.log_index = p.next - 1;
  m.log_term = *term_at(m.log_index);
  const std::uint64_t end = std::min(last_index(), m.log_index + cfg_.max_entries_per_append);
  for (std::uint64_t i = p.next; i <= end; ++i) m.entries.push_back(*entry(i));
  m.commit = commit_;
  send(std::move(m));
}

void RaftNode::broadcast_append() {
  for (Progress& p : progress_) send_append(p);
}

bool RaftNode::maybe_commit() {
  std::vector<std::uint64_t> match;
  match.push_back(last_index());
  for (const Progress& p : progress_) match.push_back(p.match);
  std::sort(match.begin(), match.end(), std::greater<>());
  const std::uint64_t n = match[quorum() - 1];
  // §5.4.2: only an entry of the current term is committed by counting replicas.
  if (n > commit_ && term_at(n) == term_) {
    commit_ = n;
    return true;
  }
  return false;
}

RaftNode::Progress* RaftNode::progress(std::int32_t id) {
  for (Progress& p : progress_)
    if (p.id == id) return &p;
  return nullptr;
}

void RaftNode::tick() {
  IPFSA_EXPECTS(!ready_out_, "tick() between ready() and advance()");
  if (role_ == RaftRole::kLeader) {
    ++heartbeat_elapsed_;
    ++quorum_elapsed_;
    if (cfg_.check_quorum && quorum_elapsed_ >= cfg_.election_ticks_min) {
      quorum_elapsed_ = 0;
      std::size_t active = 1;
      for (Progress& p : progress_) {
        if (p.recent_active) ++active;
        p.recent_active = false;
      }
      if (active < quorum()) {  // thesis §6.2: stranded in a minority
        become_follower(term_, kRaftNone);
        refresh_ready();
        return;
      }
    }
    if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      broadcast_append();
    }
  } else if (++election_elapsed_ >= randomized_timeout_) {
    campaign(cfg_.pre_vote);  // §5.2
  }
  refresh_ready();
}

void RaftNode::step(const RaftMessage& m) {
  IPFSA_EXPECTS(!ready_out_, "step() between ready() and advance()");
  IPFSA_EXPECTS(m.to == cfg_.id, "message for another node");
  if (m.from == cfg_.id || std::find(cfg_.peers.begin(), cfg_.peers.end(), m.from) == cfg_.peers.end()) {
    refresh_ready();
    return;  // not a voter of this cluster: it must not count toward any quorum
  }
  const bool is_leader_msg =
      m.type == RaftMessageType::kAppendEntries || m.type == RaftMessageType::kInstallSnapshot;
  if (m.term > term_) {
    if (m.type == RaftMessageType::kRequestVote) {
      // Thesis §4.2.3: within the lease of a live leader, vote requests are ignored, so a node
      // that was cut off cannot depose it.
      if (in_lease()) {
        refresh_ready();
        return;
      }
      if (!m.pre_vote) become_follower(m.term, kRaftNone);  // §9.6: a pre-vote bumps nothing
    } else if (m.type == RaftMessageType::kRequestVoteResponse && m.pre_vote && m.success) {
      // A granted pre-vote carries the term we would campaign in: not a newer term.
    } else {
      become_follower(m.term, is_leader_msg ? m.from : kRaftNone);  // §5.1
    }
  } else if (m.term < term_) {
    // §5.1: stale. Tell a stale leader or pre-candidate the current term so it steps down; a
    // pre-vote at term <= ours must be answered, or a lone pre-candidate would never learn it.
    if (is_leader_msg) {
      RaftMessage r;
      r.type = RaftMessageType::kAppendEntriesResponse;
      r.to = m.from;
      r.term = term_;
      send(std::move(r));
    } else if (m.type == RaftMessageType::kRequestVote && m.pre_vote) {
      RaftMessage r;
      r.type = RaftMessageType::kRequestVoteResponse;
      r.to = m.from;
      r.term = term_;
      r.pre_vote = true;
      send(std::move(r));
    }
    refresh_ready();
    return;
  }

  switch (m.type) {
    case RaftMessageType::kRequestVote:
      handle_vote_request(m);
      break;
    case RaftMessageType::kRequestVoteResponse:
      handle_vote_response(m);
      break;
    case RaftMessageType::kAppendEntries:
      handle_append(m);
      break;
    case RaftMessageType::kAppendEntriesResponse:
      handle_append_response(m);
      break;
    case RaftMessageType::kInstallSnapshot:
      handle_snapshot(m);
      break;
    case RaftMessageType::kInstallSnapshotResponse:
      handle_snapshot_response(m);
      break;
  }
  refresh_ready();
}

void RaftNode::handle_vote_request(const RaftMessage& m) {
  // §5.2: one vote per term; a pre-vote for a later term does not spend it.
  const bool can_vote = voted_for_ == m.from || (voted_for_ == kRaftNone && leader_ == kRaftNone) ||
                        (m.pre_vote && m.term > term_);
  // §5.4.1: the candidate's log is at least as up to date as ours.
  const bool up_to_date =
      m.log_term > last_term() || (m.log_term == last_term() && m.log_index >= last_index());
  RaftMessage r;
  r.type = RaftMessageType::kRequestVoteResponse;
  r.to = m.from;
  r.pre_vote = m.pre_vote;
  if (can_vote && up_to_date) {
    r.term = m.term;
    r.success = true;
    if (!m.pre_vote) {
      voted_for_ = m.from;  // persisted (ready().hard_state) before the response is sent
      election_elapsed_ = 0;
    }
  } else {
    r.term = term_;
  }
  send(std::move(r));
}

void RaftNode::handle_vote_response(const RaftMessage& m) {
  if (role_ == RaftRole::kPreCandidate && m.pre_vote) {
    if (m.success && m.term == term_ + 1) count_vote(m.from, true);
    if (!m.success && m.term == term_) count_vote(m.from, false);
  } else if (role_ == RaftRole::kCandidate && !m.pre_vote && m.term == term_) {
    count_vote(m.from, m.success);
  }
}

void RaftNode::handle_append(const RaftMessage& m) {
  IPFSA_ASSERT(role_ != RaftRole::kLeader);  // §5.2 Election Safety: one leader per term
  if (role_ != RaftRole::kFollower) become_follower(term_, m.from);
  leader_ = m.from;
  election_elapsed_ = 0;

  RaftMessage r;
  r.type = RaftMessageType::kAppendEntriesResponse;
  r.to = m.from;
  r.term = term_;
  if (m.log_index < commit_) {
    r.success = true;
    r.match_index = commit_;
    send(std::move(r));
    return;
  }
  if (term_at(m.log_index) != m.log_term) {  // §5.3 consistency check failed
    r.reject_index = m.log_index;
    r.hint_index = std::min(m.log_index - 1, last_index());
    send(std::move(r));
    return;
  }
  for (const RaftEntry& e : m.entries) {
    if (e.index <= last_index()) {
      if (term_at(e.index) == e.term) continue;
      IPFSA_ASSERT(e.index > commit_);  // §5.3: a committed entry is never overwritten
      log_.resize(e.index - first_index());
      unstable_from_ = std::min(unstable_from_, e.index);
    }
    IPFSA_ASSERT(e.index == last_index() + 1);
    log_.push_back(e);
  }
  const std::uint64_t last_new = m.log_index + m.entries.size();
  commit_ = std::max(commit_, std::min(m.commit, last_new));
  r.success = true;
  r.match_index = last_new;
  send(std::move(r));
}

void RaftNode::handle_append_response(const RaftMessage& m) {
  if (role_ != RaftRole::kLeader) return;
  Progress* p = progress(m.from);
  if (p == nullptr) return;
  p->recent_active = true;
  if (m.success) {
    p->match = std::max(p->match, m.match_index);
    p->next = std::max(p->next, p->match + 1);
    if (maybe_commit()) {
      broadcast_append();  // tell everyone the new commit index
    } else if (p->next <= last_index()) {
      send_append(*p);  // more to send (a catch-up in chunks)
    }
  } else if (m.reject_index != 0 && m.reject_index + 1 == p->next) {
    p->next = std::max(p->match + 1, std::min(m.reject_index, m.hint_index + 1));
    send_append(*p);
  }
}

void RaftNode::handle_snapshot(const RaftMessage& m) {
  IPFSA_ASSERT(role_ != RaftRole::kLeader);
  if (role_ != RaftRole::kFollower) become_follower(term_, m.from);
  leader_ = m.from;
  election_elapsed_ = 0;

  const RaftSnapshot& s = m.snapshot;
  RaftMessage r;
  r.type = RaftMessageType::kInstallSnapshotResponse;
  r.to = m.from;
  r.term = term_;
  r.success = true;
  if (s.index <= commit_) {
    r.match_index = commit_;
  } else if (term_at(s.index) == s.term) {
    commit_ = s.index;  // our log holds it: only the commit index moves (§7)
    r.match_index = s.index;
  } else {
    // §7: discard the whole log; the state machine restores from the snapshot.
    snap_ = s;
    log_.clear();
    commit_ = s.index;
    applied_ = s.index;
    unstable_from_ = s.index + 1;
    snapshot_pending_ = true;
    r.match_index = s.index;
  }
  send(std::move(r));
}

void RaftNode::handle_snapshot_response(const RaftMessage& m) {
  if (role_ != RaftRole::kLeader) return;
  Progress* p = progress(m.from);
  if (p == nullptr) return;
  p->recent_active = true;
  if (!m.success) return;
  p->match = std::max(p->match, m.match_index);
  p->next = std::max(p->next, p->match + 1);
  if (maybe_commit()) {
    broadcast_append();
  } else if (p->next <= last_index()) {
    send_append(*p);
  }
}

Result<std::uint64_t> RaftNode::propose(std::vector<std::uint8_t> data) {
  IPFSA_EXPECTS(!ready_out_, "propose() between ready() and advance()");
  if (role_ != RaftRole::kLeader) {
    if (leader_ == kRaftNone) return infra_error("not the leader; no leader known");
    return infra_error("not the leader; the leader is node " + std::to_string(leader_));
  }
  if (data.empty()) return input_error("empty proposal (empty entries are the leader's no-ops)");
  log_.push_back(RaftEntry{term_, last_index() + 1, std::move(data)});
  const std::uint64_t index = last_index();
  maybe_commit();  // a single voter commits at once
  broadcast_append();
  refresh_ready();
  return index;
}

void RaftNode::compact(std::uint64_t index, std::vector<std::uint8_t> snapshot) {
  IPFSA_EXPECTS(!ready_out_, "compact() between ready() and advance()");
  if (index <= snap_.index) return;
  IPFSA_EXPECTS(index <= applied_, "compact() beyond the applied index");
  const std::uint64_t term = *term_at(index);
  log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(index - snap_.index));
  snap_ = RaftSnapshot{index, term, std::move(snapshot)};
  refresh_ready();
}

// Only the cheap parts: the entries to persist and to apply are copied when ready() is called, so
// that k proposals between two ready() calls cost O(k), not O(k^2).
void RaftNode::refresh_ready() {
  const RaftHardState hs = hard_state();
  ready_.hard_state.reset();
  if (hs != persisted_hs_) ready_.hard_state = hs;
  ready_.snapshot.reset();
  if (snapshot_pending_) ready_.snapshot = snap_;
  IPFSA_ASSERT(applied_ >= snap_.index && applied_ <= commit_);
}

bool RaftNode::has_ready() const {
  return ready_.hard_state || ready_.snapshot || unstable_from_ <= last_index() || !ready_.messages.empty() ||
         applied_ < commit_;
}

const RaftReady& RaftNode::ready() const {
  if (!ready_out_) {
    ready_.entries.clear();
    for (std::uint64_t i = unstable_from_; i <= last_index(); ++i) ready_.entries.push_back(*entry(i));
    ready_.committed.clear();
    for (std::uint64_t i = applied_ + 1; i <= commit_; ++i) ready_.committed.push_back(*entry(i));
  }
  ready_out_ = true;
  return ready_;
}

void RaftNode::advance() {
  IPFSA_EXPECTS(ready_out_, "advance() without ready()");
  if (ready_.hard_state) persisted_hs_ = *ready_.hard_state;
  snapshot_pending_ = false;
  if (!ready_.entries.empty()) unstable_from_ = ready_.entries.back().index + 1;
  if (!ready_.committed.empty()) applied_ = ready_.committed.back().index;
  ready_ = RaftReady{};
  ready_out_ = false;
}

}  // namespace ipfsa::core
