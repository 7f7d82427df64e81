// Dispatch throughput of core::Scheduler (M3): TaskFinished events per second through
// step() + ready() + advance(), each followed by its replacement assignment, for a campaign of
// 100,000 tasks (8 models, 3 tiers, a quarter CUDA, 2% failing once) over 3 and 64 workers with
// prefetch 1 and 64. The coordinator's target is > 50,000 tasks/s on one core.
//
// BM_SchedulerBlackHole makes worker rank 2 fail every task at once and drain its whole queue on
// each turn (a broken node): its failures pile up as retries that must avoid it, the case where a
// plain retry list scanned on every pick would make dispatch quadratic.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/scheduler.hpp"

namespace {

using ipfsa::core::AllJoined;
using ipfsa::core::Assignment;
using ipfsa::core::Priority;
using ipfsa::core::Scheduler;
using ipfsa::core::SchedulerOptions;
using ipfsa::core::TaskFinished;
using ipfsa::core::TaskSpec;
using ipfsa::core::TaskStatus;
using ipfsa::core::WorkerInfo;
using ipfsa::core::WorkerJoined;

constexpr std::uint32_t kTasks = 100'000;

const std::vector<TaskSpec>& campaign() {
  static const std::vector<TaskSpec> tasks = [] {
    std::vector<TaskSpec> out(kTasks);
    for (std::uint32_t i = 0; i < kTasks; ++i) {
      TaskSpec& t = out[i];
      t.index = i;
      t.id = "task" + std::to_string(i);
      t.kind = "model";
      t.model = "model" + std::to_string((i * 7) % 8);
      t.priority = static_cast<Priority>(i % 5 == 0 ? 0 : i % 5 < 3 ? 1 : 2);
      t.hardware = i % 4 == 0 ? "cuda" : "cpu";
      t.memory_mb = 1024u << (i % 3);
      t.retries = 1;
    }
    return out;
  }();
  return tasks;
}

WorkerInfo worker(std::int32_t rank) {
  WorkerInfo w;
  w.rank = rank;
  w.host = "node" + std::to_string(rank);
  w.memory_bytes = 64ull << 30;
  w.gpus = rank % 2;  // half the workers have a GPU
  w.gpu_memory_bytes = w.gpus ? 80ull << 30 : 0;
  return w;
}

// Runs one campaign to the end; returns the number of TaskFinished events fed.
std::uint64_t run_campaign(benchmark::State& state, std::int32_t workers, std::uint32_t prefetch,
                           std::int32_t black_hole) {
  state.PauseTiming();
  Scheduler s(campaign(), SchedulerOptions{prefetch});
  std::vector<std::deque<Assignment>> queues(static_cast<std::size_t>(workers) + 1);  // by rank
  auto take = [&] {
    for (const Assignment& a : s.ready().assignments) queues[static_cast<std::size_t>(a.worker)].push_back(a);
    benchmark::DoNotOptimize(s.ready().records.data());
    s.advance();
  };
  state.ResumeTiming();

  for (std::int32_t r = 1; r <= workers; ++r) {
    s.step(WorkerJoined{worker(r)});
    take();
  }
  s.step(AllJoined{});
  take();

  TaskFinished f;
  f.outcome.samples_s = {0.010, 0.011, 0.010, 0.012, 0.010};
  std::uint64_t events = 0;
  std::uint32_t lcg = 12345;
  std::int32_t next = 1;
  while (!s.finished()) {
    // The next worker in rank order with work: workers finish their tasks in assignment order.
    while (queues[static_cast<std::size_t>(next)].empty()) next = next % workers + 1;
    auto& q = queues[static_cast<std::size_t>(next)];
    const Assignment a = q.front();
    q.pop_front();
    lcg = lcg * 1664525u + 1013904223u;
    const bool fail = a.worker == black_hole || (a.attempt == 0 && (lcg >> 16) % 50 == 0);
    f.worker = a.worker;
    f.task = a.task;
    f.attempt = a.attempt;
    f.outcome.status = fail ? TaskStatus::kFailed : TaskStatus::kPassed;
    s.step(f);
    take();
    ++events;
    if (a.worker != black_hole || q.empty()) next = next % workers + 1;  // a black hole never waits
  }
  return events;
}

void report(benchmark::State& state, std::uint64_t events) {
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}

void BM_SchedulerDispatch(benchmark::State& state) {
  const auto workers = static_cast<std::int32_t>(state.range(0));
  const auto prefetch = static_cast<std::uint32_t>(state.range(1));
  campaign();
  std::uint64_t events = 0;
  for (auto _ : state) events += run_campaign(state, workers, prefetch, -1);
  report(state, events);
}
BENCHMARK(BM_SchedulerDispatch)
    ->ArgsProduct({{3, 64}, {1, 64}})
    ->ArgNames({"workers", "prefetch"})
    ->Unit(benchmark::kMillisecond);

void BM_SchedulerBlackHole(benchmark::State& state) {
  const auto workers = static_cast<std::int32_t>(state.range(0));
  const auto prefetch = static_cast<std::uint32_t>(state.range(1));
  campaign();
  std::uint64_t events = 0;
  for (auto _ : state) events += run_campaign(state, workers, prefetch, /*black_hole=*/2);
  report(state, events);
}
BENCHMARK(BM_SchedulerBlackHole)
    ->ArgsProduct({{3, 64}, {1, 64}})
    ->ArgNames({"workers", "prefetch"})
    ->Unit(benchmark::kMillisecond);

}  // namespace
