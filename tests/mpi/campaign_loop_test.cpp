// The coordinator and worker loops over real MPI (CTest label `mpi`, np 1, 2, 4), with real
// executor processes and an in-memory result sink:
//   1. every task gets exactly one final result, failures are retried once, nothing is lost;
//   2. a coordinator without workers reports an infrastructure error instead of hanging;
//   3. a store that fails mid-campaign stops the run with an infrastructure error, keeps every
//      row flushed before the failure, and still shuts every worker down.
#include <gtest/gtest.h>
#include <mpi.h>

#include "mpi_gtest_main.hpp"

#include <map>

#include "core/memory_sink.hpp"
#include "mpi/loops.hpp"
#include "mpi/transport.hpp"

namespace {

using namespace ipfsa;

int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::vector<core::TaskSpec> make_tasks(int ok, int fail) {
  std::vector<core::TaskSpec> tasks;
  for (int i = 0; i < ok + fail; ++i) {
    core::TaskSpec t;
    t.index = static_cast<std::uint32_t>(i);
    t.kind = i < ok ? "selftest.ok" : "selftest.fail";
    t.model = t.kind;
    t.id = t.kind + "#" + std::to_string(i);
    t.repeats = 1;
    t.warmup = 0;
    t.retries = 1;
    t.memory_mb = 512;
    tasks.push_back(t);
  }
  return tasks;
}

mpi::Timing fast_timing() {
  mpi::Timing t;
  t.heartbeat_ms = 50;
  t.worker_timeout_ms = 3000;
  t.coordinator_timeout_ms = 10000;
  t.join_timeout_ms = 10000;
  return t;
}

// A quorum of one writing to one in-memory sink: opening it finds nothing written by this job.
class SinkStore final : public mpi::LeaderStore {
 public:
  explicit SinkStore(core::ResultSink& sink) : sink_(sink) {}
  Result<core::ResultSink*> open(std::vector<std::pair<std::uint32_t, std::uint32_t>>* written) override {
    written->clear();
    return &sink_;
  }
  void close() override {}

 private:
  core::ResultSink& sink_;
};

// Runs the campaign on every rank; returns the coordinator's report on rank 0.
mpi::CoordinatorReport run_everywhere(mpi::MpiTransport& t, const std::vector<core::TaskSpec>& tasks,
                                      core::ResultSink& sink, mpi::Timing timing, std::uint32_t prefetch) {
  if (t.rank() == 0) {
    mpi::CoordinatorConfig cfg;
    cfg.timing = timing;
    cfg.prefetch = prefetch;
    SinkStore store(sink);
    return mpi::run_coordinator(t, tasks, store, cfg, [](mpi::CoordinatorReport& r) {
      EXPECT_TRUE(r.final_leader);
      return 0;
    });
  }
  mpi::WorkerConfig cfg;
  cfg.timing = timing;
  cfg.executor.program = IPFSA_BINARY;
  EXPECT_EQ(mpi::run_worker(t, cfg), 0);
  return {};
}

TEST(CampaignLoop, EveryTaskGetsExactlyOneFinalResult) {
  if (world_size() < 2) GTEST_SKIP() << "needs a worker rank";
  mpi::MpiTransport t;
  const auto tasks = make_tasks(300, 5);
  core::MemorySink sink;
  core::RunInfo run;
  run.run_id = "loop-test";
  ASSERT_TRUE(sink.begin_run(run, tasks).ok());
  const auto rep = run_everywhere(t, tasks, sink, fast_timing(), 8);
  if (t.rank() != 0) return;
  EXPECT_TRUE(rep.infra_error.empty()) << rep.infra_error;
  EXPECT_EQ(rep.counts.finished, tasks.size());
  EXPECT_EQ(rep.counts.workers_joined, static_cast<std::uint32_t>(t.size() - 1));
  std::map<std::uint32_t, int> finals;
  for (const auto& row : sink.rows())
    if (row.result.final) ++finals[row.result.task];
  ASSERT_EQ(finals.size(), tasks.size());
  for (const auto& [task, n] : finals) EXPECT_EQ(n, 1) << "task " << task;
  EXPECT_TRUE(sink.pending().empty()) << "rows appended but never flushed";
  EXPECT_EQ(rep.results_written, sink.rows().size());
  EXPECT_EQ(sink.rows().size(), 300u + 5u * 2u) << "each failing task: one retry";
  for (const auto& r : rep.finals) {
    const bool ok = tasks[r.task].kind == "selftest.ok";
    EXPECT_EQ(r.outcome.status, ok ? core::TaskStatus::kPassed : core::TaskStatus::kFailed);
    if (!ok) {
      EXPECT_EQ(r.attempt, 1u);
    }
  }
  EXPECT_EQ(rep.messages_rejected, 0u);
}

TEST(CampaignLoop, CoordinatorAloneReportsInfrastructureFailure) {
  if (world_size() != 1) GTEST_SKIP() << "only meaningful with a single rank";
  mpi::MpiTransport t;
  const auto tasks = make_tasks(3, 0);
  core::MemorySink sink;
  core::RunInfo run;
  run.run_id = "alone";
  ASSERT_TRUE(sink.begin_run(run, tasks).ok());
  auto timing = fast_timing();
  timing.join_timeout_ms = 200;
  const auto rep = run_everywhere(t, tasks, sink, timing, 1);
  EXPECT_FALSE(rep.infra_error.empty());
  EXPECT_EQ(rep.counts.finished, 0u);
  EXPECT_LT(rep.wall_s, 10.0);
}

TEST(CampaignLoop, FailingStoreStopsTheRunAndKeepsWhatWasFlushed) {
  if (world_size() < 2) GTEST_SKIP() << "needs a worker rank";
  mpi::MpiTransport t;
  const auto tasks = make_tasks(400, 0);
  core::MemorySink memory;
  core::FaultySink sink(memory);
  sink.fail_append(20);    // the 20th batch of records cannot be written
  sink.set_sticky(false);  // later calls succeed: the final flush must still save earlier rows
  core::RunInfo run;
  run.run_id = "faulty";
  ASSERT_TRUE(sink.begin_run(run, tasks).ok());
  auto timing = fast_timing();
  const auto rep = run_everywhere(t, tasks, sink, timing, 1);  // workers must still exit 0
  if (t.rank() != 0) return;
  EXPECT_NE(rep.infra_error.find("store"), std::string::npos) << rep.infra_error;
  EXPECT_LT(rep.counts.finished, tasks.size());
  // Rows written before the failure are intact and durable: each is a distinct final result.
  EXPECT_GE(memory.rows().size(), 19u);
  EXPECT_TRUE(memory.pending().empty());
  std::map<std::uint32_t, int> finals;
  for (const auto& row : memory.rows()) ++finals[row.result.task];
  for (const auto& [task, n] : finals) EXPECT_EQ(n, 1) << "task " << task;
}

}  // namespace

int main(int argc, char** argv) {
  return run_mpi_gtest(argc, argv);
}
