// Seeded deterministic simulations of the consensus core (src/core/raft_sim.hpp): at least 5,000
// schedules in the normal run (`plan` below counts them per test), of 1, 3 and 5 nodes under
// message delay, reordering, drops, duplicates, partitions, crashes and restarts. Each schedule
// checks I1-I5 of raft_sim.hpp (one leader per term, log matching, leader completeness, state
// machine safety, no committed entry lost after healing). Campaign level (C1-C2 below): the
// applied entries drive a core::Scheduler replica on every node. The binary prints the number of
// schedules it ran (`RaftSim: N seeded schedules`) and each test records its own as the gtest
// property `schedules`.
//
// A failing schedule is reported as `seed=N nodes=K ...`. Replay exactly that schedule with
//     IPFSA_RAFT_SEED=N build/tests/ipfsa_unit_tests --gtest_filter='RaftSim.*'
// (each test then runs only seed N, at its own node counts, and prints the schedule's counters).
// The soak runs many more seeds (N each of 3 and 5 nodes, ordinary and chaos options) and is
// skipped unless asked for:
//     IPFSA_RAFT_SOAK_SEEDS=200000 build/tests/ipfsa_unit_tests --gtest_filter='RaftSim.Soak'
// (IPFSA_RAFT_SOAK_FIRST=S starts at seed S, to split a soak across machines.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "core/raft_sim.hpp"
#include "core/scheduler.hpp"

namespace ipfsa::core {
namespace {

std::optional<std::uint64_t> env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::strtoull(v, nullptr, 10);
}

// Schedules per test in the normal run: the issue asks for at least 5,000 seeded schedules in all,
// in this mix of scenarios. A test that runs all of its seeds checks it ran exactly its count.
namespace plan {
inline constexpr std::uint64_t kSingleNode = 90;
inline constexpr std::uint64_t kThreeNodes = 1800;
inline constexpr std::uint64_t kFiveNodes = 1080;
inline constexpr std::uint64_t kHarshNetwork = 360;
inline constexpr std::uint64_t kChaosPerSize = 540;  // 3 and 5 nodes
inline constexpr std::uint64_t kWithoutPreVote = 360;
inline constexpr std::uint64_t kCampaignPerSize = 180;  // 3 and 5 nodes
inline constexpr std::uint64_t kTotal = kSingleNode + kThreeNodes + kFiveNodes + kHarshNetwork +
                                        2 * kChaosPerSize + kWithoutPreVote + 2 * kCampaignPerSize;
static_assert(kTotal >= 5000, "the normal run must execute at least 5,000 seeded schedules");
}  // namespace plan

// Schedules run_seeds ran in this process (failed ones included), and the environment that prints
// their number once every test is done: `RaftSim: N seeded schedules`.
std::uint64_t g_schedules_run = 0;

class ScheduleCount : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_schedules_run > 0)
      std::printf("RaftSim: %llu seeded schedules (planned for the normal run: %llu)\n",
                  static_cast<unsigned long long>(g_schedules_run),
                  static_cast<unsigned long long>(plan::kTotal));
  }
};
[[maybe_unused]] const ::testing::Environment* const g_schedule_count =
    ::testing::AddGlobalTestEnvironment(new ScheduleCount);

struct Totals {
  SimStats sum;
  int schedules = 0;      // that held every invariant
  std::uint64_t ran = 0;  // all, failed ones included
  void add(const SimStats& s) {
    ++schedules;
    sum.committed += s.committed;
    sum.leaders += s.leaders;
    sum.crashes += s.crashes;
    sum.partitions += s.partitions;
    sum.dropped += s.dropped;
    sum.duplicated += s.duplicated;
    sum.snapshots_installed += s.snapshots_installed;
    sum.compactions += s.compactions;
  }
};

std::string describe(const SimStats& s) {
  return "ticks " + std::to_string(s.ticks) + ", messages " + std::to_string(s.messages) + " (dropped " +
         std::to_string(s.dropped) + ", duplicated " + std::to_string(s.duplicated) + "), partitions " +
         std::to_string(s.partitions) + ", crashes " + std::to_string(s.crashes) + ", leaders " +
         std::to_string(s.leaders) + ", proposals " + std::to_string(s.proposals) + ", committed " +
         std::to_string(s.committed) + ", compactions " + std::to_string(s.compactions) +
         ", snapshots installed " + std::to_string(s.snapshots_installed);
}

// Runs `count` schedules from seed `first` (or only IPFSA_RAFT_SEED) with `make_app` giving each its
// application (null for the default client) and `after` checking that application after a run
// that held I1-I5 (an empty string: fine). Stops after three failures.
using AfterRun = std::function<std::string(SimApplication*)>;
template <typename MakeApp>
Totals run_seeds(SimOptions base, std::uint64_t first, std::uint64_t count, MakeApp make_app,
                 const AfterRun& after = {}) {
  Totals totals;
  const std::optional<std::uint64_t> only = env_u64("IPFSA_RAFT_SEED");
  if (only) {
    first = *only;
    count = 1;
  }
  int failures = 0;
  for (std::uint64_t seed = first; seed < first + count && failures < 3; ++seed) {
    SimOptions o = base;
    o.seed = seed;
    ++totals.ran;
    ++g_schedules_run;
    auto app = make_app(o);
    SimCluster c(o, app.get());
    Result<void> r = c.run();
    if (r.ok() && after) {
      const std::string err = after(app.get());
      if (!err.empty())
        r = Error{ErrorCode::kInfra,
                  "seed=" + std::to_string(seed) + " nodes=" + std::to_string(o.nodes) + ": " + err};
    }
    if (!r.ok()) {
      ++failures;
      ADD_FAILURE() << r.error().message << "\n  replay: IPFSA_RAFT_SEED=" << seed << " --gtest_filter='"
                    << ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() << "."
                    << ::testing::UnitTest::GetInstance()->current_test_info()->name() << "'";
      continue;
    }
    if (only)
      std::printf("seed=%llu nodes=%d: %s\n", static_cast<unsigned long long>(seed), o.nodes,
                  describe(c.stats()).c_str());
    totals.add(c.stats());
  }
  return totals;
}

// The test ran `planned` schedules (`t` sums its run_seeds calls), unless it replays one seed or
// stopped early on failures; records the count as the test's `schedules` property (in the XML).
void expect_ran(const Totals& t, std::uint64_t planned) {
  ::testing::Test::RecordProperty("schedules", std::to_string(t.ran));
  if (env_u64("IPFSA_RAFT_SEED") || ::testing::Test::HasFailure()) return;
  EXPECT_EQ(t.ran, planned);
}

auto no_app = [](const SimOptions&) { return std::unique_ptr<SimApplication>(); };

SimOptions options(int nodes) {
  SimOptions o;
  o.nodes = nodes;
  return o;
}

// The faults must actually have happened, and the cluster must have made progress, or the
// invariants were checked on nothing.
void expect_coverage(const Totals& t, bool faults = true, std::uint64_t committed_per_schedule = 20) {
  if (env_u64("IPFSA_RAFT_SEED")) return;
  ASSERT_GT(t.schedules, 0);
  EXPECT_GT(t.sum.committed, static_cast<std::uint64_t>(t.schedules) * committed_per_schedule)
      << "too little progress";
  if (!faults) return;
  EXPECT_GT(t.sum.crashes, 0u);
  EXPECT_GT(t.sum.partitions, 0u);
  EXPECT_GT(t.sum.dropped, 0u);
  EXPECT_GT(t.sum.duplicated, 0u);
  EXPECT_GT(t.sum.snapshots_installed, 0u);
  EXPECT_GT(t.sum.leaders, static_cast<std::uint64_t>(t.schedules));
}

TEST(RaftSim, SingleNode) {
  Totals t = run_seeds(options(1), 1, plan::kSingleNode, no_app);
  expect_coverage(t, false);
  expect_ran(t, plan::kSingleNode);
}

TEST(RaftSim, ThreeNodes) {
  Totals t = run_seeds(options(3), 1000, plan::kThreeNodes, no_app);
  expect_coverage(t);
  expect_ran(t, plan::kThreeNodes);
}

TEST(RaftSim, FiveNodes) {
  Totals t = run_seeds(options(5), 5000, plan::kFiveNodes, no_app);
  expect_coverage(t);
  expect_ran(t, plan::kFiveNodes);
}

// Harsher: more loss, longer delays, frequent partitions and crashes.
TEST(RaftSim, HarshNetwork) {
  SimOptions o = options(5);
  o.drop = 0.2;
  o.duplicate = 0.1;
  o.max_delay = 8;
  o.partition_per_tick = 0.03;
  o.crash_per_tick = 0.02;
  Totals t = run_seeds(o, 9000, plan::kHarshNetwork, no_app);
  expect_coverage(t);
  expect_ran(t, plan::kHarshNetwork);
}

// Chaos: election timeouts barely above the message delay, so elections split and terms race
// (the regime of the paper's Figure 8), and nodes crash often and come back at once (so a vote or
// an entry that was not persisted would be missed). Without pre-vote and check quorum, which
// would otherwise calm the races down.
SimOptions chaos(int nodes) {
  SimOptions o = options(nodes);
  o.election_ticks_min = 4;
  o.election_ticks_max = 9;
  o.heartbeat_ticks = 2;
  o.max_delay = 4;
  o.drop = 0.1;
  o.duplicate = 0.05;
  o.crash_per_tick = 0.05;
  o.down_ticks_max = 6;
  o.partition_per_tick = 0.03;
  o.partition_ticks_max = 20;
  o.pre_vote = false;
  o.check_quorum = false;
  o.compact_every = 6;
  o.max_entries_per_append = 1;  // an append can carry an old entry without the new leader's no-op
  return o;
}

TEST(RaftSim, Chaos) {
  Totals t = run_seeds(chaos(3), 15000, plan::kChaosPerSize, no_app);
  expect_coverage(t, true, 5);
  Totals t5 = run_seeds(chaos(5), 16000, plan::kChaosPerSize, no_app);
  expect_coverage(t5, true, 5);
  t.ran += t5.ran;
  expect_ran(t, 2 * plan::kChaosPerSize);
}

// Plain Raft, without pre-vote and check quorum, must be just as safe (only less polite).
TEST(RaftSim, WithoutPreVoteOrCheckQuorum) {
  SimOptions o = options(3);
  o.pre_vote = false;
  o.check_quorum = false;
  Totals t = run_seeds(o, 12000, plan::kWithoutPreVote, no_app);
  expect_coverage(t);
  expect_ran(t, plan::kWithoutPreVote);
}

TEST(RaftSim, SameSeedSameSchedule) {
  SimOptions o = options(5);
  o.seed = 42;
  SimCluster a(o), b(o);
  ASSERT_TRUE(a.run().ok());
  ASSERT_TRUE(b.run().ok());
  EXPECT_EQ(describe(a.stats()), describe(b.stats()));
  EXPECT_EQ(a.applied(0), b.applied(0));
}

// ---- Campaign level: every coordinator replica runs core::Scheduler on the applied events. ----
//   C1. On every node, the scheduler's record stream gives every task exactly one final record,
//       although the client re-proposes events and some are committed twice (the scheduler
//       ignores stale TaskFinished events).
//   C2. All replicas produce the same record stream (the same events in the same order).

enum class Ev : std::uint8_t { kJoined = 1, kAllJoined = 2, kLost = 3, kFinished = 4 };

void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
}
std::uint32_t get32(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= static_cast<std::uint32_t>(b.at(at + k)) << (8 * k);
  return v;
}

// The tiny wire format of the events this test uses: a type byte, then 32-bit fields.
std::vector<std::uint8_t> encode_event(Ev type, std::uint32_t a = 0, std::uint32_t b = 0, std::uint32_t c = 0,
                                       std::uint32_t d = 0) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(type)};
  for (std::uint32_t v : {a, b, c, d}) put32(out, v);
  return out;
}

SchedulerEvent decode_event(const std::vector<std::uint8_t>& b) {
  const auto worker = static_cast<std::int32_t>(get32(b, 1));
  switch (static_cast<Ev>(b.at(0))) {
    case Ev::kJoined: {
      WorkerJoined j;
      j.info.rank = worker;
      j.info.host = "w" + std::to_string(worker);
      j.info.cores = 4;
      j.info.memory_bytes = 64ull << 30;
      return j;
    }
    case Ev::kAllJoined:
      return AllJoined{};
    case Ev::kLost:
      return WorkerLost{worker};
    case Ev::kFinished: {
      TaskFinished f;
      f.worker = worker;
      f.task = get32(b, 5);
      f.attempt = get32(b, 9);
      f.outcome.status = static_cast<TaskStatus>(get32(b, 13));
      return f;
    }
  }
  IPFSA_ASSERT(false);
  return AllJoined{};
}

class CampaignApp : public SimApplication {
 public:
  static constexpr std::uint32_t kWorkers = 3;

  CampaignApp(int nodes, std::uint32_t tasks) {
    for (std::uint32_t i = 0; i < tasks; ++i) {
      TaskSpec t;
      t.index = i;
      t.id = "t" + std::to_string(i);
      t.kind = "selftest.ok";
      t.model = i % 2 ? "a" : "b";
      t.priority = static_cast<Priority>(i % 3);
      t.retries = 1;
      t.memory_mb = 64;
      specs_.push_back(t);
    }
    for (int i = 0; i < nodes; ++i) replicas_.emplace_back(specs_);
  }

  void reset(int node, const std::vector<RaftEntry>& applied) override {
    replicas_[node] = Replica(specs_);
    for (const RaftEntry& e : applied) apply(node, e);
  }

  void apply(int node, const RaftEntry& e) override {
    Replica& r = replicas_[node];
    const SchedulerEvent ev = decode_event(e.data);
    if (std::holds_alternative<AllJoined>(ev)) r.all_joined = true;
    if (const auto* l = std::get_if<WorkerLost>(&ev)) r.lost.push_back(l->rank);
    r.sched.step(ev);
    if (!r.sched.has_ready()) return;
    const SchedulerReady& rd = r.sched.ready();
    for (const TaskResult& rec : rd.records) {
      r.records.push_back(rec);
      r.outstanding.erase({rec.worker, rec.task, rec.attempt});
    }
    for (const Assignment& a : rd.assignments) r.outstanding.insert({a.worker, a.task, a.attempt});
    r.sched.advance();
  }

  std::vector<std::uint8_t> next_proposal(int leader, bool quiet, std::mt19937_64& rng) override {
    ++calls_;
    const Replica& r = replicas_[leader];
    if (r.sched.counts().workers_joined < kWorkers)
      return encode_event(Ev::kJoined, r.sched.counts().workers_joined + 1);
    if (!r.all_joined) return encode_event(Ev::kAllJoined);
    if (!quiet && r.lost.empty() && rng() % 64 == 0) return encode_event(Ev::kLost, kWorkers);
    if (r.outstanding.empty() || rng() % 2 == 0) return {};
    auto it = r.outstanding.begin();
    std::advance(it, static_cast<long>(rng() % r.outstanding.size()));
    std::uint64_t& last = proposed_[*it];
    if (last != 0 && calls_ - last < 15) return {};  // already proposed; give it time to commit
    last = calls_;
    const auto [worker, task, attempt] = *it;
    const TaskStatus status = rng() % 4 == 0 ? TaskStatus::kFailed : TaskStatus::kPassed;
    return encode_event(Ev::kFinished, static_cast<std::uint32_t>(worker), task, attempt,
                        static_cast<std::uint32_t>(status));
  }

  bool done(int leader) const override { return replicas_[leader].sched.finished(); }

  // C1 and C2; an empty string when they hold.
  std::string check() const {
    for (std::size_t n = 0; n < replicas_.size(); ++n) {
      const Replica& r = replicas_[n];
      std::vector<int> finals(specs_.size(), 0);
      for (const TaskResult& rec : r.records) finals.at(rec.task) += rec.final ? 1 : 0;
      for (std::size_t t = 0; t < finals.size(); ++t) {
        if (finals[t] != 1)
          return "C1: node " + std::to_string(n) + ": task " + std::to_string(t) + " has " +
                 std::to_string(finals[t]) + " final records";
      }
      const Replica& r0 = replicas_[0];
      if (r.records.size() != r0.records.size())
        return "C2: nodes 0 and " + std::to_string(n) + " recorded " + std::to_string(r0.records.size()) +
               " and " + std::to_string(r.records.size()) + " results";
      for (std::size_t k = 0; k < r.records.size(); ++k) {
        const TaskResult& a = r0.records[k];
        const TaskResult& b = r.records[k];
        if (std::tie(a.task, a.attempt, a.final, a.flaky, a.worker, a.outcome.status, a.outcome.error) !=
            std::tie(b.task, b.attempt, b.final, b.flaky, b.worker, b.outcome.status, b.outcome.error))
          return "C2: nodes 0 and " + std::to_string(n) + " differ at record " + std::to_string(k);
      }
    }
    return {};
  }

  std::uint64_t lost_attempts() const { return replicas_[0].sched.counts().lost_attempts; }
  std::uint64_t ignored_events() const { return replicas_[0].sched.counts().ignored_events; }

 private:
  struct Replica {
    explicit Replica(const std::vector<TaskSpec>& specs) : sched(specs, SchedulerOptions{1}) {}
    Scheduler sched;
    bool all_joined = false;
    std::vector<std::int32_t> lost;
    std::vector<TaskResult> records;
    std::set<std::tuple<std::int32_t, std::uint32_t, std::uint32_t>> outstanding;
  };

  std::vector<TaskSpec> specs_;
  std::vector<Replica> replicas_;
  std::uint64_t calls_ = 0;
  std::map<std::tuple<std::int32_t, std::uint32_t, std::uint32_t>, std::uint64_t> proposed_;
};

TEST(RaftSim, CampaignEveryTaskOneFinalRecordOnEveryReplica) {
  std::uint64_t lost = 0, ignored = 0;
  Totals all;
  for (int nodes : {3, 5}) {
    SimOptions o = options(nodes);
    o.quiet_ticks = 800;
    auto make = [](const SimOptions& so) { return std::make_unique<CampaignApp>(so.nodes, 16); };
    Totals t = run_seeds(o, nodes == 3 ? 20000 : 30000, plan::kCampaignPerSize, make, [&](SimApplication* a) {
      const auto* app = static_cast<const CampaignApp*>(a);
      lost += app->lost_attempts();
      ignored += app->ignored_events();
      return app->check();
    });
    expect_coverage(t);
    all.ran += t.ran;
  }
  expect_ran(all, 2 * plan::kCampaignPerSize);
  if (!env_u64("IPFSA_RAFT_SEED")) {
    EXPECT_GT(lost, 0u) << "no schedule lost a worker while it ran a task";
    EXPECT_GT(ignored, 0u) << "no schedule committed a duplicate TaskFinished";
  }
}

TEST(RaftSim, Soak) {
  const std::optional<std::uint64_t> seeds = env_u64("IPFSA_RAFT_SOAK_SEEDS");
  if (!seeds) GTEST_SKIP() << "set IPFSA_RAFT_SOAK_SEEDS=N to run N schedules per cluster size";
  const std::uint64_t first = env_u64("IPFSA_RAFT_SOAK_FIRST").value_or(1000000);
  for (int nodes : {3, 5}) {
    Totals t = run_seeds(options(nodes), first, *seeds, no_app);
    expect_coverage(t);
    Totals c = run_seeds(chaos(nodes), first, *seeds, no_app);
    expect_coverage(c, true, 5);
  }
}

}  // namespace
}  // namespace ipfsa::core
