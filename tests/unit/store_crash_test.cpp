// The store survives a crash of its writer at any instant (issue 5, docs/design.md §Resume, "Crash
// safety of the store"): a forked writer appends and flushes batches as fast as it can and is
// SIGKILLed after a random delay (seeded), 24 times on the same file. After every kill a reader
// opens the file and reads every run without an error, each row it returns is complete, nothing
// flushed before the previous kills is lost, and a new writer recovers the file and appends.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/hdf5_store.hpp"

namespace {

using namespace ipfsa;
namespace fs = std::filesystem;

constexpr std::uint32_t kTasks = 1000;
constexpr std::size_t kSamples = 5;

std::vector<core::TaskSpec> tasks() {
  std::vector<core::TaskSpec> out(kTasks);
  for (std::uint32_t i = 0; i < kTasks; ++i) {
    out[i].index = i;
    out[i].id = "crash#" + std::to_string(i);
    out[i].kind = "selftest.ok";
    out[i].model = "m";
  }
  return out;
}

core::RunInfo run(const std::string& id) {
  core::RunInfo r;
  r.run_id = id;
  r.campaign = "crash";
  r.tasks_total = kTasks;
  r.started_unix = 1.7e9;
  return r;
}

core::TaskResult row(std::uint32_t task) {
  core::TaskResult r;
  r.task = task;
  r.final = true;
  r.worker = 1;
  r.host = "h";
  r.outcome.status = core::TaskStatus::kPassed;
  for (std::size_t k = 0; k < kSamples; ++k) r.outcome.samples_s.push_back(0.001 * (task + 1) + 1e-6 * k);
  r.outcome.metrics = {{"a", 1.0 * task}, {"b", 2.0}};
  return r;
}

TEST(StoreCrash, ReadsNeverFailAfterTheWriterIsKilledAtRandomMoments) {
  std::string tmpl = ::testing::TempDir() + "ipfsa_crash_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string path = (fs::path(tmpl) / "trends.h5").string();
  const auto specs = tasks();
  std::mt19937_64 rng(20261127);
  std::uniform_int_distribution<int> delay_us(0, 60000);
  std::size_t durable = 0;  // rows of earlier runs: never lost
  {  // The file exists from the start, so every kill lands in an open, a recovery, an append or a flush.
    auto store = store::Hdf5Store::open_for_write(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->close().ok());
  }

  constexpr int kTrials = 24;
  int landed = 0;  // trials killed while appending and flushing (the rest: while opening)
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::string id = "crash-" + std::to_string(trial);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = store::Hdf5Store::open_for_write(path);
      if (!store || !(*store)->begin_run(run(id), specs)) _exit(10);
      for (std::uint32_t t = 0;; t = (t + 7) % kTasks) {
        const core::TaskResult r = row(t);
        if (!(*store)->append(std::span(&r, 1)) || !(*store)->flush()) _exit(11);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_FALSE(WIFEXITED(status)) << "trial " << trial << ": writer exited with " << WEXITSTATUS(status);

    {
      auto reader = store::Hdf5Reader::open(path);
      ASSERT_TRUE(reader.ok()) << "trial " << trial << ": " << reader.error().message;
      auto runs = reader->runs();
      ASSERT_TRUE(runs.ok()) << "trial " << trial << ": " << runs.error().message;
      auto rows = reader->results({}, true);
      ASSERT_TRUE(rows.ok()) << "trial " << trial << ": " << rows.error().message;
      std::size_t earlier = 0;
      for (const auto& r : *rows) {
        ASSERT_LT(r.task_index, kTasks) << "trial " << trial << ": row " << r.row;
        ASSERT_EQ(r.status, "passed") << "trial " << trial << ": row " << r.row;
        ASSERT_EQ(r.task_id, "crash#" + std::to_string(r.task_index)) << "trial " << trial;
        ASSERT_EQ(r.samples.size(), kSamples) << "trial " << trial << ": row " << r.row << " incomplete";
        ASSERT_DOUBLE_EQ(r.samples[0], 0.001 * (r.task_index + 1));
        ASSERT_EQ(r.metrics.size(), 2u) << "trial " << trial << ": row " << r.row;
        if (r.run_id != id) ++earlier;
      }
      EXPECT_EQ(earlier, durable) << "trial " << trial << ": rows of earlier runs lost or gained";
      if (rows->size() > earlier) ++landed;
      durable = rows->size();
    }
    // The next writer recovers the file (crash flags, orphaned run) before the next trial.
    auto store = store::Hdf5Store::open_for_write(path);
    ASSERT_TRUE(store.ok()) << "trial " << trial << ": " << store.error().message;
    ASSERT_TRUE((*store)->close().ok());
  }
  std::cout << "StoreCrash: " << kTrials << " kills, " << landed << " while writing rows, " << durable
            << " rows survived\n";
  EXPECT_GE(landed, kTrials / 3) << "too few kills landed while rows were written: the test proves little";
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
