// The selftest.* kinds: tasks that pass, fail, crash, hang or run out of memory on purpose, so the
// executor, the scheduler's retries and the whole pipeline can be tested against real failures.
// Every one except selftest.ok, selftest.fail and selftest.sleep ends the process that runs it (or
// never returns): run them only inside an executor.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/kind_util.hpp"

namespace ipfsa::engine {

namespace {

using Clock = std::chrono::steady_clock;

core::TaskOutcome passed_outcome() {
  core::TaskOutcome o;
  o.status = core::TaskStatus::kPassed;
  return o;
}

// One sample per repeat, each timing a trivial operation: the cheapest kind that exercises the
// whole pipeline (the executor throughput test runs tens of thousands of these).
core::TaskOutcome run_ok(const core::TaskSpec& task) {
  volatile std::uint64_t sink = 0;
  for (std::uint32_t i = 0; i < task.warmup; ++i) sink = sink + i;
  core::TaskOutcome o = passed_outcome();
  o.samples_s.reserve(task.repeats);
  for (std::uint32_t i = 0; i < task.repeats; ++i) {
    const auto t0 = Clock::now();
    sink = sink + i;
    o.samples_s.push_back(seconds_between(t0, Clock::now()));
  }
  return o;
}

core::TaskOutcome run_fail(const core::TaskSpec&) {
  return failed_outcome("selftest.fail: failing on purpose");
}

core::TaskOutcome run_segfault(const core::TaskSpec&) {
  // The pointer is read from a volatile object, so the compiler cannot prove it null and replace
  // the store with a trap instruction (SIGILL): this is a real write to address 0.
  int* volatile target = nullptr;
  *static_cast<volatile int*>(target) = 42;
  return failed_outcome("selftest.segfault: the write through a null pointer did not fault");
}

core::TaskOutcome run_abort(const core::TaskSpec&) {
  std::abort();
}

core::TaskOutcome run_hang(const core::TaskSpec&) {
  for (;;) ::pause();  // returns only when a signal handler ran; keep hanging
}

// Allocates and touches memory in 16 MiB chunks until an allocation fails. Under the executor's
// RLIMIT_AS (memory_mb above its size) that happens after about memory_mb MiB and surfaces as
// std::bad_alloc, which the executor records as oom; the chunks are freed while it propagates.
// Should the limit not be in force (run outside an executor), it gives up once it holds
// memory_mb + 64 MiB and reports failure rather than consuming the machine.
core::TaskOutcome run_oom(const core::TaskSpec& task) {
  constexpr std::size_t kChunk = std::size_t{16} << 20;
  const std::uint64_t cap_mb = (task.memory_mb == 0 ? 1024 : task.memory_mb) + 64;
  std::vector<std::unique_ptr<char[]>> chunks;
  while (chunks.size() * 16 < cap_mb) {
    chunks.emplace_back(new char[kChunk]);        // throws std::bad_alloc at the limit
    std::memset(chunks.back().get(), 1, kChunk);  // touch every page: count as resident too
  }
  return failed_outcome("selftest.oom: allocated " + std::to_string(chunks.size() * 16) +
                        " MiB without reaching the memory limit of " + std::to_string(task.memory_mb) +
                        " MiB (is RLIMIT_AS enforced?)");
}

// Sleeps `ms` (default 100) per repeat; the samples are the measured sleeps. Warm-up runs are
// skipped: there is nothing to warm up, and callers size timeouts as repeats * ms.
core::TaskOutcome run_sleep(const core::TaskSpec& task) {
  const auto ms = real_param(task, "ms", 100.0, 0.0, 86400e3);
  if (!ms) return failed_outcome(ms.error().message);
  core::TaskOutcome o = passed_outcome();
  o.samples_s.reserve(task.repeats);
  for (std::uint32_t i = 0; i < task.repeats; ++i) {
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(*ms));
    o.samples_s.push_back(seconds_between(t0, Clock::now()));
  }
  return o;
}

constexpr Kind kSelftestKinds[] = {
    {"selftest.ok", "passes; one sample per repeat timing a trivial operation", &run_ok},
    {"selftest.fail", "reports failure", &run_fail},
    {"selftest.segfault", "writes through a null pointer (SIGSEGV)", &run_segfault},
    {"selftest.abort", "calls std::abort (SIGABRT)", &run_abort},
    {"selftest.hang", "never returns (exercises timeout_s)", &run_hang},
    {"selftest.oom", "allocates 16 MiB chunks until allocation fails (exercises memory_mb)", &run_oom},
    {"selftest.sleep", "sleeps params.ms (default 100) per repeat; samples are the sleeps", &run_sleep},
};

}  // namespace

std::span<const Kind> selftest_kinds() {
  return kSelftestKinds;
}

}  // namespace ipfsa::engine
