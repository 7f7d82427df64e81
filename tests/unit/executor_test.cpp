// ExecutorClient against real executor processes (IPFSA_BINARY __executor): every selftest kind,
// crash recovery, timeouts, the memory limit, ordering, the executor's death with its parent, and
// a throughput measurement.
#include "exec/executor.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "test_binary.hpp"

namespace ipfsa::exec {
namespace {

using Clock = std::chrono::steady_clock;
using core::TaskStatus;

ExecutorOptions executor_options() {
  ExecutorOptions o;
  o.program = testing::binary_path();
  o.args = {"__executor"};
  return o;
}

core::TaskSpec make_task(std::uint32_t index, std::string kind) {
  core::TaskSpec t;
  t.index = index;
  t.id = kind + "#" + std::to_string(index);
  t.kind = std::move(kind);
  t.repeats = 3;
  t.warmup = 1;
  t.timeout_s = 30.0;
  t.memory_mb = 1024;
  return t;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Polls until `n` replies arrived or `max_s` passed; the caller checks the count.
std::vector<ExecReply> collect(ExecutorClient& client, std::size_t n, double max_s = 30.0) {
  std::vector<ExecReply> replies;
  const auto t0 = Clock::now();
  while (replies.size() < n && seconds_since(t0) < max_s)
    for (auto& r : client.poll(100)) replies.push_back(std::move(r));
  return replies;
}

// Runs one task on a started client and returns its reply.
ExecReply run_one(ExecutorClient& client, const core::TaskSpec& task, double max_s = 30.0) {
  client.submit(task, 0);
  auto replies = collect(client, 1, max_s);
  EXPECT_EQ(replies.size(), 1u) << "no reply for " << task.kind << " within " << max_s << " s";
  return replies.empty() ? ExecReply{} : replies.front();
}

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string pid_field, comm, state;
  stat >> pid_field >> comm >> state;  // comm has no spaces: it is our binary's name
  return state == "Z" || state == "X";
}

// AddressSanitizer's operator new reports and exits when the memory limit is hit instead of
// throwing std::bad_alloc, so an ASan build cannot report oom.
#if defined(__SANITIZE_ADDRESS__)
#define IPFSA_SKIP_WITHOUT_BAD_ALLOC() GTEST_SKIP() << "AddressSanitizer build: allocation failures abort"
#else
#define IPFSA_SKIP_WITHOUT_BAD_ALLOC() (void)0
#endif

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(client_.start().ok()); }
  ExecutorClient client_{executor_options()};
};

TEST_F(ExecutorTest, OkPassesWithOneSamplePerRepeat) {
  const core::TaskSpec task = make_task(7, "selftest.ok");
  const double before = wall_now();
  const pid_t pid = client_.pid();
  ASSERT_GT(pid, 0);
  client_.submit(task, 2);
  EXPECT_EQ(client_.queued(), 1u);
  const auto replies = collect(client_, 1);
  ASSERT_EQ(replies.size(), 1u);
  const ExecReply& r = replies[0];
  EXPECT_EQ(r.task, 7u);
  EXPECT_EQ(r.attempt, 2u);
  EXPECT_EQ(r.outcome.status, TaskStatus::kPassed) << r.outcome.error;
  EXPECT_EQ(r.outcome.samples_s.size(), 3u);
  for (double s : r.outcome.samples_s) EXPECT_GE(s, 0.0);
  EXPECT_GT(r.outcome.peak_memory_bytes, 0u);
  EXPECT_GE(r.started_unix, before - 1.0);
  EXPECT_LE(r.started_unix, r.ended_unix);
  EXPECT_LE(r.ended_unix, wall_now() + 1.0);
  EXPECT_EQ(client_.queued(), 0u);
  EXPECT_EQ(client_.pid(), pid);
  EXPECT_EQ(client_.restarts(), 0u);
}

TEST_F(ExecutorTest, FailIsFailedWithMessage) {
  const ExecReply r = run_one(client_, make_task(1, "selftest.fail"));
  EXPECT_EQ(r.outcome.status, TaskStatus::kFailed);
  EXPECT_NE(r.outcome.error.find("selftest.fail"), std::string::npos) << r.outcome.error;
  EXPECT_EQ(client_.restarts(), 0u);
}

TEST_F(ExecutorTest, UnknownKindFailsAndNamesIt) {
  const ExecReply r = run_one(client_, make_task(1, "no.such.kind"));
  EXPECT_EQ(r.outcome.status, TaskStatus::kFailed);
  EXPECT_NE(r.outcome.error.find("no.such.kind"), std::string::npos) << r.outcome.error;
}

TEST_F(ExecutorTest, SegfaultIsCrashedWithSignal11AndTheExecutorRestarts) {
  const pid_t first = client_.pid();
  const ExecReply r = run_one(client_, make_task(3, "selftest.segfault"));
  EXPECT_EQ(r.task, 3u);
  EXPECT_EQ(r.outcome.status, TaskStatus::kCrashed);
  EXPECT_EQ(r.outcome.signal, SIGSEGV);
  EXPECT_NE(r.outcome.error.find("signal 11 (SIGSEGV)"), std::string::npos) << r.outcome.error;
  EXPECT_LE(r.started_unix, r.ended_unix);

  const ExecReply ok = run_one(client_, make_task(4, "selftest.ok"));
  EXPECT_EQ(ok.outcome.status, TaskStatus::kPassed) << ok.outcome.error;
  EXPECT_EQ(client_.restarts(), 1u);
  EXPECT_GT(client_.pid(), 0);
  EXPECT_NE(client_.pid(), first);
}

TEST_F(ExecutorTest, AbortIsCrashedWithSigabrt) {
  const ExecReply r = run_one(client_, make_task(5, "selftest.abort"));
  EXPECT_EQ(r.outcome.status, TaskStatus::kCrashed);
  EXPECT_EQ(r.outcome.signal, SIGABRT);
  EXPECT_NE(r.outcome.error.find("SIGABRT"), std::string::npos) << r.outcome.error;
}

TEST_F(ExecutorTest, HangTimesOutWithinBoundAndTheNextTaskPasses) {
  core::TaskSpec hang = make_task(6, "selftest.hang");
  hang.timeout_s = 0.5;
  const auto t0 = Clock::now();
  const ExecReply r = run_one(client_, hang, 10.0);
  const double elapsed = seconds_since(t0);
  EXPECT_EQ(r.outcome.status, TaskStatus::kTimeout);
  EXPECT_EQ(r.outcome.error, "timed out after 0.5 s");
  EXPECT_GE(elapsed, 0.5);
  EXPECT_LT(elapsed, 5.0);
  EXPECT_GE(r.ended_unix - r.started_unix, 0.45);

  const ExecReply ok = run_one(client_, make_task(7, "selftest.ok"));
  EXPECT_EQ(ok.outcome.status, TaskStatus::kPassed) << ok.outcome.error;
  EXPECT_EQ(client_.restarts(), 1u);
}

TEST(ExecutorKillGrace, GraceIsAddedToTheTimeout) {
  ExecutorOptions options = executor_options();
  options.kill_grace_s = 0.4;
  ExecutorClient client(options);
  ASSERT_TRUE(client.start().ok());
  core::TaskSpec hang = make_task(1, "selftest.hang");
  hang.timeout_s = 0.2;
  const auto t0 = Clock::now();
  const ExecReply r = run_one(client, hang, 10.0);
  EXPECT_EQ(r.outcome.status, TaskStatus::kTimeout);
  EXPECT_GE(seconds_since(t0), 0.6);
}

TEST_F(ExecutorTest, ATaskThatFinishesInTimeIsNotKilled) {
  core::TaskSpec sleep = make_task(1, "selftest.sleep");
  sleep.params = {{"ms", "50"}};
  sleep.repeats = 2;
  sleep.timeout_s = 5.0;
  const ExecReply r = run_one(client_, sleep);
  EXPECT_EQ(r.outcome.status, TaskStatus::kPassed) << r.outcome.error;
  ASSERT_EQ(r.outcome.samples_s.size(), 2u);
  for (double s : r.outcome.samples_s) EXPECT_GE(s, 0.05);
  EXPECT_EQ(client_.restarts(), 0u);
}

TEST_F(ExecutorTest, OomUnderMemoryLimitIsOomAndTheNextTaskPasses) {
  IPFSA_SKIP_WITHOUT_BAD_ALLOC();
  core::TaskSpec oom = make_task(8, "selftest.oom");
  oom.memory_mb = 128;
  const ExecReply r = run_one(client_, oom);
  EXPECT_EQ(r.outcome.status, TaskStatus::kOom) << r.outcome.error;
  EXPECT_NE(r.outcome.error.find("128 MiB"), std::string::npos) << r.outcome.error;
  // It touched every chunk it got: the peak shows most of the 128 MiB, and not much more.
  EXPECT_GT(r.outcome.peak_memory_bytes, std::uint64_t{64} << 20);
  EXPECT_LT(r.outcome.peak_memory_bytes, std::uint64_t{128 + 64} << 20);

  const ExecReply ok = run_one(client_, make_task(9, "selftest.ok"));
  EXPECT_EQ(ok.outcome.status, TaskStatus::kPassed) << ok.outcome.error;
}

TEST_F(ExecutorTest, EachTaskGetsItsOwnMemoryLimit) {
  IPFSA_SKIP_WITHOUT_BAD_ALLOC();
  // gemm.eigen with m = k = 4500, n = 1 holds an 81 MiB matrix A and does little arithmetic.
  const auto gemm = [](std::uint32_t index, std::uint64_t memory_mb, const char* mk) {
    core::TaskSpec t = make_task(index, "gemm.eigen");
    t.memory_mb = memory_mb;
    t.repeats = 1;
    t.warmup = 0;
    t.params = {{"k", mk}, {"m", mk}, {"n", "1"}};
    return t;
  };
  const auto small = gemm(1, 32, "64");
  EXPECT_EQ(run_one(client_, small).outcome.status, TaskStatus::kPassed);
  // Would be oom if the 32 MiB limit of the previous task had stayed in force.
  const auto big = gemm(2, 256, "4500");
  const ExecReply r = run_one(client_, big);
  EXPECT_EQ(r.outcome.status, TaskStatus::kPassed) << r.outcome.error;
  EXPECT_GT(r.outcome.peak_memory_bytes, std::uint64_t{80} << 20);
  EXPECT_EQ(client_.restarts(), 0u);
  // The same task under 64 MiB does not fit.
  const auto tight = gemm(3, 64, "4500");
  const ExecReply o = run_one(client_, tight);
  EXPECT_EQ(o.outcome.status, TaskStatus::kOom) << o.outcome.error;
}

TEST_F(ExecutorTest, TasksQueuedBehindCrashesCompleteInSubmissionOrder) {
  const std::vector<std::pair<std::string, TaskStatus>> plan = {
      {"selftest.ok", TaskStatus::kPassed},        {"selftest.segfault", TaskStatus::kCrashed},
      {"selftest.ok", TaskStatus::kPassed},        {"selftest.ok", TaskStatus::kPassed},
      {"selftest.abort", TaskStatus::kCrashed},    {"selftest.fail", TaskStatus::kFailed},
      {"selftest.segfault", TaskStatus::kCrashed}, {"selftest.segfault", TaskStatus::kCrashed},
      {"selftest.ok", TaskStatus::kPassed},        {"selftest.hang", TaskStatus::kTimeout},
      {"selftest.ok", TaskStatus::kPassed},
  };
  std::vector<core::TaskSpec> tasks;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    tasks.push_back(make_task(static_cast<std::uint32_t>(100 + i), plan[i].first));
    tasks.back().timeout_s = 0.3;
  }
  for (const auto& t : tasks) client_.submit(t, 1);
  EXPECT_EQ(client_.queued(), tasks.size());
  const auto replies = collect(client_, tasks.size());
  ASSERT_EQ(replies.size(), tasks.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(replies[i].task, tasks[i].index) << "completion order differs at " << i;
    EXPECT_EQ(replies[i].attempt, 1u);
    EXPECT_EQ(replies[i].outcome.status, plan[i].second)
        << i << ": " << plan[i].first << ": " << replies[i].outcome.error;
  }
  EXPECT_EQ(client_.queued(), 0u);
  EXPECT_EQ(client_.restarts(), 5u);  // 3 segfaults, 1 abort, 1 timeout
}

TEST_F(ExecutorTest, ASigkillWeDidNotSendIsCrashedWithSigkill) {
  core::TaskSpec hang = make_task(1, "selftest.hang");
  client_.submit(hang, 0);
  // Let it start running, then kill the executor from outside (as an administrator would).
  const auto t0 = Clock::now();
  while (seconds_since(t0) < 0.2) ASSERT_TRUE(client_.poll(20).empty());
  ASSERT_EQ(::kill(client_.pid(), SIGKILL), 0);
  const auto replies = collect(client_, 1, 10.0);
  ASSERT_EQ(replies.size(), 1u);
  // oom only when the cgroup's OOM killer count shows the kernel did it; nothing here triggers it.
  EXPECT_EQ(replies[0].outcome.status, TaskStatus::kCrashed) << replies[0].outcome.error;
  EXPECT_EQ(replies[0].outcome.signal, SIGKILL);
}

TEST(ExecutorStart, AMissingProgramIsAnError) {
  ExecutorOptions options;
  options.program = "/nonexistent/ipfs-accelerate";
  ExecutorClient client(options);
  const auto started = client.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("/nonexistent/ipfs-accelerate"), std::string::npos);
  EXPECT_EQ(client.pid(), -1);
  // Tasks submitted anyway complete (as crashed) instead of waiting forever.
  const core::TaskSpec task = make_task(1, "selftest.ok");
  client.submit(task, 0);
  const auto replies = client.poll(100);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].outcome.status, TaskStatus::kCrashed);
  EXPECT_EQ(client.queued(), 0u);
}

// Issue 4: the worker hands its GPU to the executor through ExecutorOptions::env
// (IPFSA_CUDA_DEVICE); a cuda model task there names that device. GPU 97 exists nowhere, so the task
// fails on every machine (no CUDA build, no GPU, or no such device), the message saying which GPU.
TEST(ExecutorEnv, TheWorkersGpuReachesTheModelKind) {
  ExecutorOptions options = executor_options();
  options.env = {"IPFSA_CUDA_DEVICE=97"};
  ExecutorClient client(options);
  ASSERT_TRUE(client.start().ok());
  core::TaskSpec task = make_task(1, "model");
  task.model = "gpt2";
  task.hardware = "cuda";
  const ExecReply r = run_one(client, task);
  EXPECT_EQ(r.outcome.status, TaskStatus::kFailed) << r.outcome.error;
  EXPECT_NE(r.outcome.error.find("hardware cuda (GPU 97)"), std::string::npos) << r.outcome.error;
}

TEST(ExecutorStart, StartsOnFirstPollWhenNotStarted) {
  ExecutorClient client(executor_options());
  EXPECT_EQ(client.pid(), -1);
  const core::TaskSpec task = make_task(1, "selftest.ok");
  const ExecReply r = run_one(client, task);
  EXPECT_EQ(r.outcome.status, TaskStatus::kPassed) << r.outcome.error;
  EXPECT_EQ(client.restarts(), 0u);
}

TEST(ExecutorProtocol, AProgramThatIsNotAnExecutorIsAProtocolErrorNotAHang) {
  // cat echoes our requests back: no ready frame, and the "replies" are requests.
  ExecutorOptions options;
  options.program = "/bin/cat";
  options.args = {};
  ExecutorClient client(options);
  ASSERT_TRUE(client.start().ok());
  const core::TaskSpec a = make_task(1, "selftest.ok"), b = make_task(2, "selftest.ok");
  client.submit(a, 0);
  client.submit(b, 0);
  const auto replies = collect(client, 2, 10.0);
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.outcome.status, TaskStatus::kCrashed);
    EXPECT_NE(r.outcome.error.find("protocol error"), std::string::npos) << r.outcome.error;
  }
}

TEST(ExecutorProtocol, AnExecutorThatExitsAtOnceFailsEachTaskOnce) {
  ExecutorOptions options;
  options.program = "/bin/true";
  options.args = {};
  ExecutorClient client(options);
  ASSERT_TRUE(client.start().ok());
  const core::TaskSpec a = make_task(1, "selftest.ok"), b = make_task(2, "selftest.ok");
  client.submit(a, 0);
  client.submit(b, 0);
  const auto replies = collect(client, 2, 10.0);
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.outcome.status, TaskStatus::kCrashed);
    EXPECT_EQ(r.outcome.error, "executor exited with code 0");
  }
}

TEST(ExecutorLifetime, TheExecutorDiesWithItsWorker) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {  // the "worker": start an executor, report its pid, wait to be killed
    ::close(fds[0]);
    ExecutorClient client(executor_options());
    pid_t pid = client.start().ok() ? client.pid() : -1;
    if (::write(fds[1], &pid, sizeof(pid)) != sizeof(pid)) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  pid_t executor = -1;
  ASSERT_EQ(::read(fds[0], &executor, sizeof(executor)), static_cast<ssize_t>(sizeof(executor)));
  ::close(fds[0]);
  ASSERT_GT(executor, 0);
  EXPECT_FALSE(process_gone(executor));
  ::kill(worker, SIGKILL);
  ASSERT_EQ(::waitpid(worker, nullptr, 0), worker);
  const auto t0 = Clock::now();
  while (!process_gone(executor) && seconds_since(t0) < 5.0) ::usleep(10000);
  EXPECT_TRUE(process_gone(executor)) << "executor " << executor << " outlived its worker";
}

TEST(ExecutorThroughput, TwentyThousandTrivialTasks) {
  ExecutorClient client(executor_options());
  ASSERT_TRUE(client.start().ok());
  constexpr std::uint32_t kTasks = 20000;
  std::vector<core::TaskSpec> tasks(kTasks);
  for (std::uint32_t i = 0; i < kTasks; ++i) {
    tasks[i].index = i;
    tasks[i].id = "ok#" + std::to_string(i);
    tasks[i].kind = "selftest.ok";
    tasks[i].repeats = 1;
    tasks[i].warmup = 0;
  }
  const auto t0 = Clock::now();
  for (const auto& t : tasks) client.submit(t, 0);
  const auto replies = collect(client, kTasks, 120.0);
  const double elapsed = seconds_since(t0);
  ASSERT_EQ(replies.size(), kTasks);
  std::size_t passed = 0, in_order = 0;
  for (std::uint32_t i = 0; i < kTasks; ++i) {
    passed += replies[i].outcome.status == TaskStatus::kPassed && replies[i].outcome.samples_s.size() == 1;
    in_order += replies[i].task == i;
  }
  EXPECT_EQ(passed, kTasks);
  EXPECT_EQ(in_order, kTasks);
  std::printf("[ throughput ] %u selftest.ok tasks in %.3f s: %.0f tasks/s (one executor)\n", kTasks, elapsed,
              kTasks / elapsed);
}

}  // namespace
}  // namespace ipfsa::exec
