// Tests of the campaign scheduler (src/core/scheduler.hpp, M3).
//
// Postconditions checked here (numbered as the failures refer to them):
//   P1. WorkerJoined registers a worker with a new rank >= 0 and fills its free slots; a join of
//       a known rank (live, or lost: a lost rank stays lost) is ignored.
//   P2. After AllJoined, while at least one worker is live, a pending task that no live worker fits
//       gets a final `skipped` record (worker -1) whose error names the reason: "no live worker can
//       run it: needs cuda (0 GPU workers)", "... needs N MiB, largest worker has M MiB" or "...
//       needs N MiB of GPU memory, largest GPU worker has M MiB". With no live worker nothing is
//       skipped: the campaign cannot progress and finished() stays false (until a late join).
//   P3. TaskFinished is ignored (counts().ignored_events) unless that (task, attempt) is
//       outstanding on that live worker. Passed -> final record. Not passed -> non-final record and
//       a retry with attempt + 1 while the task's non-passing attempts <= retries; else final.
//       A final pass after a non-passing attempt (lost ones excluded) is `flaky`. A reported status
//       of `lost`, `skipped` or an unknown value counts as `failed`.
//   P4. WorkerLost: each outstanding task of the worker gets a non-final `lost` record ("worker
//       rank R lost") and goes to the front of its queue with attempt + 1, not consuming retries.
//   P5. Every task gets exactly one final record; attempts of a task are numbered 0, 1, 2, ... with
//       exactly one record per attempt (run result, `lost` or `skipped`).
//   P6. A CUDA task runs only on a GPU worker; memory_mb always fits the worker (GPU memory for
//       CUDA tasks, host memory otherwise).
//   P7. Priority: no task is assigned to a worker while an eligible task of a higher tier waits.
//       (Eligible: fits, and not a worker the task failed on unless no other live worker fits it.)
//   P8. Affinity: within a tier, a worker gets a task of the model it was last assigned if an
//       eligible one waits.
//   P9. No live worker has a free slot while an eligible task waits; none has more than
//       `prefetch` outstanding.
//   P10. A retried task goes to a worker it has not failed on when a live one fits it.
//   P11. Determinism: the same events give the same ready() output; identical to the naive
//        reference model below after every step (which also fixes queue order: lost tasks to the
//        front, retries first within a tier, slots filled round-robin in rank order).
//   P12. Tick changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/scheduler.hpp"
#include "sys/health.hpp"

namespace ipfsa::core {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

bool fits(const TaskSpec& t, const WorkerInfo& w) {
  if (t.needs_cuda()) return w.gpus > 0 && t.memory_mb * kMiB <= w.gpu_memory_bytes;
  return t.memory_mb * kMiB <= w.memory_bytes;
}

std::string skip_reason(const TaskSpec& t, const std::vector<const WorkerInfo*>& live) {
  std::uint64_t largest = 0;
  int capable = 0;
  for (const WorkerInfo* w : live) {
    if (t.needs_cuda() && w->gpus == 0) continue;
    ++capable;
    largest = std::max(largest, (t.needs_cuda() ? w->gpu_memory_bytes : w->memory_bytes) / kMiB);
  }
  std::ostringstream os;
  os << "no live worker can run it: ";
  if (t.needs_cuda() && capable == 0) {
    os << "needs cuda (0 GPU workers)";
  } else if (t.needs_cuda()) {
    os << "needs " << t.memory_mb << " MiB of GPU memory, largest GPU worker has " << largest << " MiB";
  } else {
    os << "needs " << t.memory_mb << " MiB, largest worker has " << largest << " MiB";
  }
  return os.str();
}

// ---- The reference model: the same rules, written the obvious way, O(tasks) per free slot. ----
class ReferenceScheduler {
 public:
  ReferenceScheduler(std::span<const TaskSpec> specs, std::uint32_t prefetch)
      : specs_(specs), prefetch_(prefetch), tasks_(specs.size()) {
    counts_.total = static_cast<std::uint32_t>(specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) tasks_[i].seq = static_cast<std::int64_t>(i);
  }

  void step(const SchedulerEvent& event) {
    if (auto* e = std::get_if<WorkerJoined>(&event)) {
      if (e->info.rank >= 0 && !workers_.count(e->info.rank)) {
        workers_[e->info.rank].info = e->info;
        ++counts_.workers_joined;
        skip();
      }
    } else if (std::get_if<AllJoined>(&event)) {
      all_joined_ = true;
      skip();
    } else if (auto* e = std::get_if<WorkerLost>(&event)) {
      lose(e->rank);
    } else if (auto* e = std::get_if<TaskFinished>(&event)) {
      finish(*e);
    }
    distribute();  // always: the real scheduler may only skip it when it would assign nothing
  }

  const SchedulerReady& ready() const { return ready_; }
  void advance() { ready_ = {}; }
  bool finished() const { return counts_.finished == counts_.total; }
  const SchedulerCounts& counts() const { return counts_; }
  std::uint32_t live_workers() const { return static_cast<std::uint32_t>(live().size()); }
  std::uint32_t outstanding(std::int32_t rank) const {
    auto it = workers_.find(rank);
    return it == workers_.end() ? 0 : static_cast<std::uint32_t>(it->second.outstanding.size());
  }

 private:
  enum class Phase { kPending, kOutstanding, kDone };
  struct T {
    Phase phase = Phase::kPending;
    std::uint32_t attempt = 0, failures = 0;
    bool requeued = false;
    std::int32_t worker = -1;
    std::set<std::int32_t> avoid;
    std::int64_t seq = 0;
  };
  struct W {
    WorkerInfo info;
    bool live = true;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> outstanding;
    std::optional<std::string> last_model;
  };

  std::vector<const WorkerInfo*> live() const {
    std::vector<const WorkerInfo*> out;
    for (const auto& [rank, w] : workers_)
      if (w.live) out.push_back(&w.info);
    return out;
  }

  bool eligible(std::uint32_t i, const WorkerInfo& w) const {
    if (tasks_[i].phase != Phase::kPending || !fits(specs_[i], w)) return false;
    if (!tasks_[i].avoid.count(w.rank)) return true;
    for (const WorkerInfo* o : live())
      if (!tasks_[i].avoid.count(o->rank) && fits(specs_[i], *o)) return false;
    return true;
  }

  void distribute() {
    for (bool progress = true; progress;) {
      progress = false;
      for (auto& [rank, w] : workers_) {
        if (!w.live || w.outstanding.size() >= prefetch_) continue;
        std::optional<std::uint32_t> best;
        std::tuple<int, bool, bool, std::int64_t> best_key;
        for (std::uint32_t i = 0; i < tasks_.size(); ++i) {
          if (!eligible(i, w.info)) continue;
          auto key = std::make_tuple(static_cast<int>(specs_[i].priority), w.last_model != specs_[i].model,
                                     tasks_[i].avoid.empty(), tasks_[i].seq);
          if (!best || key < best_key) best = i, best_key = key;
        }
        if (!best) continue;
        T& t = tasks_[*best];
        t.phase = Phase::kOutstanding;
        t.worker = rank;
        w.outstanding.emplace_back(*best, t.attempt);
        w.last_model = specs_[*best].model;
        ready_.assignments.push_back({rank, *best, t.attempt});
        progress = true;
      }
    }
  }

  void skip() {
    const auto alive = live();
    if (!all_joined_ || alive.empty()) return;
    for (std::uint32_t i = 0; i < tasks_.size(); ++i) {
      if (tasks_[i].phase != Phase::kPending) continue;
      bool runnable = false;
      for (const WorkerInfo* w : alive) runnable = runnable || fits(specs_[i], *w);
      if (runnable) continue;
      TaskResult r;
      r.task = i;
      r.attempt = tasks_[i].attempt;
      r.outcome.status = TaskStatus::kSkipped;
      r.outcome.error = skip_reason(specs_[i], alive);
      final_record(std::move(r));
    }
  }

  void final_record(TaskResult r) {
    r.final = true;
    tasks_[r.task].phase = Phase::kDone;
    ++counts_.finished;
    ++counts_.by_status[static_cast<int>(r.outcome.status)];
    counts_.flaky += r.flaky;
    ready_.records.push_back(std::move(r));
  }

  void requeue(T& t) {
    t.phase = Phase::kPending;
    ++t.attempt;
    counts_.retried += !t.requeued;
    t.requeued = true;
  }

  void lose(std::int32_t rank) {
    auto it = workers_.find(rank);
    if (it == workers_.end() || !it->second.live) return;
    W& w = it->second;
    w.live = false;
    ++counts_.workers_lost;
    next_front_ -= static_cast<std::int64_t>(w.outstanding.size());
    std::int64_t seq = next_front_;
    for (auto [task, attempt] : w.outstanding) {
      TaskResult r;
      r.task = task;
      r.attempt = attempt;
      r.worker = rank;
      r.host = w.info.host;
      r.fingerprint = hardware_fingerprint(w.info);
      r.outcome.status = TaskStatus::kLost;
      r.outcome.error = "worker rank " + std::to_string(rank) + " lost";
      ready_.records.push_back(std::move(r));
      requeue(tasks_[task]);
      tasks_[task].seq = seq++;
      ++counts_.lost_attempts;
    }
    w.outstanding.clear();
    skip();
  }

  void finish(const TaskFinished& e) {
    auto it = workers_.find(e.worker);
    bool valid = it != workers_.end() && it->second.live && e.task < tasks_.size();
    valid = valid && tasks_[e.task].phase == Phase::kOutstanding && tasks_[e.task].worker == e.worker &&
            tasks_[e.task].attempt == e.attempt;
    if (!valid) {
      ++counts_.ignored_events;
      return;
    }
    W& w = it->second;
    w.outstanding.erase(
        std::find(w.outstanding.begin(), w.outstanding.end(), std::make_pair(e.task, e.attempt)));
    T& t = tasks_[e.task];
    TaskResult r;
    r.task = e.task;
    r.attempt = e.attempt;
    r.worker = e.worker;
    r.host = w.info.host;
    r.fingerprint = hardware_fingerprint(w.info);
    r.started_unix = e.started_unix;
    r.ended_unix = e.ended_unix;
    r.outcome = e.outcome;
    if (r.outcome.status == TaskStatus::kLost || r.outcome.status == TaskStatus::kSkipped) {
      r.outcome.error = "worker reported status '" + std::string(to_string(r.outcome.status)) + "'" +
                        (r.outcome.error.empty() ? "" : ": " + r.outcome.error);
      r.outcome.status = TaskStatus::kFailed;
    }
    if (r.outcome.status == TaskStatus::kPassed) {
      r.flaky = t.failures > 0;
      return final_record(std::move(r));
    }
    if (++t.failures > specs_[e.task].retries) return final_record(std::move(r));
    ready_.records.push_back(std::move(r));
    requeue(t);
    t.avoid.insert(e.worker);
    t.seq = next_retry_++;
  }

  std::span<const TaskSpec> specs_;
  std::uint32_t prefetch_;
  std::vector<T> tasks_;
  std::map<std::int32_t, W> workers_;
  bool all_joined_ = false;
  std::int64_t next_front_ = 0, next_retry_ = 0;
  SchedulerReady ready_;
  SchedulerCounts counts_;
};

// ---- Helpers ----

TaskSpec make_task(std::uint32_t index, std::string model, Priority tier = Priority::kMedium,
                   std::string hardware = "cpu", std::uint64_t memory_mb = 1024, std::uint32_t retries = 1) {
  TaskSpec t;
  t.index = index;
  t.id = "t" + std::to_string(index);
  t.kind = "selftest.ok";
  t.model = std::move(model);
  t.priority = tier;
  t.hardware = std::move(hardware);
  t.memory_mb = memory_mb;
  t.retries = retries;
  return t;
}

WorkerInfo make_worker(std::int32_t rank, std::uint64_t memory_mib = 8192, std::uint32_t gpus = 0,
                       std::uint64_t gpu_memory_mib = 0) {
  WorkerInfo w;
  w.rank = rank;
  w.host = "node" + std::to_string(rank);
  w.cpu_model = "Test CPU " + std::to_string(rank % 2);
  w.memory_bytes = memory_mib * kMiB;
  w.gpus = gpus;
  if (gpus > 0) {
    w.gpu_name = "Test GPU";
    w.gpu_driver = "550.54.15";
  }
  w.gpu_memory_bytes = gpu_memory_mib * kMiB;
  return w;
}

TaskFinished finished_event(std::int32_t worker, std::uint32_t task, std::uint32_t attempt,
                            TaskStatus status = TaskStatus::kPassed) {
  TaskFinished f;
  f.worker = worker;
  f.task = task;
  f.attempt = attempt;
  f.started_unix = 1000.0 + task;
  f.ended_unix = 1001.0 + task;
  f.outcome.status = status;
  if (status != TaskStatus::kPassed) f.outcome.error = "boom";
  f.outcome.samples_s = {0.5};
  return f;
}

std::string describe(const SchedulerEvent& ev) {
  std::ostringstream os;
  if (auto* e = std::get_if<WorkerJoined>(&ev)) {
    os << "WorkerJoined{rank=" << e->info.rank << " mem=" << (e->info.memory_bytes >> 20)
       << " gpus=" << e->info.gpus << " gpu_mem=" << (e->info.gpu_memory_bytes >> 20) << "}";
  } else if (std::get_if<AllJoined>(&ev)) {
    os << "AllJoined";
  } else if (auto* e = std::get_if<WorkerLost>(&ev)) {
    os << "WorkerLost{" << e->rank << "}";
  } else if (auto* e = std::get_if<TaskFinished>(&ev)) {
    os << "TaskFinished{worker=" << e->worker << " task=" << e->task << " attempt=" << e->attempt << " "
       << to_string(e->outcome.status) << "}";
  } else {
    os << "Tick";
  }
  return os.str();
}

std::string dump(const SchedulerReady& r) {
  std::ostringstream os;
  for (const auto& x : r.records)
    os << "record task=" << x.task << " attempt=" << x.attempt << " final=" << x.final << " flaky=" << x.flaky
       << " worker=" << x.worker << " host=" << x.host << " fingerprint=" << x.fingerprint
       << " started=" << x.started_unix << " ended=" << x.ended_unix
       << " status=" << to_string(x.outcome.status) << " error='" << x.outcome.error
       << "' samples=" << x.outcome.samples_s.size() << "\n";
  for (const auto& a : r.assignments)
    os << "assign worker=" << a.worker << " task=" << a.task << " attempt=" << a.attempt << "\n";
  return os.str();
}

std::string dump(const SchedulerCounts& c) {
  std::ostringstream os;
  os << "total=" << c.total << " finished=" << c.finished << " retried=" << c.retried << " flaky=" << c.flaky
     << " lost_attempts=" << c.lost_attempts << " ignored=" << c.ignored_events
     << " joined=" << c.workers_joined << " lost=" << c.workers_lost << " by_status=";
  for (auto n : c.by_status) os << n << ",";
  return os.str();
}

// ---- Property observer: rebuilds the task state from events and outputs alone ----
class Observer {
 public:
  Observer(std::span<const TaskSpec> specs, std::uint32_t prefetch)
      : specs_(specs), prefetch_(prefetch), tasks_(specs.size()) {}

  // Checks one step's output; returns the violations found (empty when all hold).
  std::vector<std::string> check(const SchedulerEvent& ev, const SchedulerReady& ready, const Scheduler& s) {
    errors_.clear();
    if (auto* e = std::get_if<WorkerJoined>(&ev)) {
      if (e->info.rank >= 0 && !workers_.count(e->info.rank)) workers_[e->info.rank].info = e->info;
    } else if (std::get_if<AllJoined>(&ev)) {
      all_joined_ = true;
    } else if (auto* e = std::get_if<WorkerLost>(&ev)) {
      if (auto it = workers_.find(e->rank); it != workers_.end()) it->second.live = false;
    }
    for (const auto& r : ready.records) on_record(r);
    for (const auto& a : ready.assignments) on_assignment(a);

    for (const auto& [rank, w] : workers_) {
      if (s.outstanding(rank) != w.outstanding) fail("outstanding(" + std::to_string(rank) + ") disagrees");
      if (!w.live || w.outstanding >= prefetch_) continue;
      for (std::uint32_t i = 0; i < tasks_.size(); ++i)
        if (eligible(i, w.info))
          fail("P9: worker " + std::to_string(rank) + " idle while task " + std::to_string(i) + " waits");
    }
    if (all_joined_ && !live().empty())
      for (std::uint32_t i = 0; i < tasks_.size(); ++i)
        if (tasks_[i].state == kPending && !runnable(i))
          fail("P2: unrunnable task " + std::to_string(i) + " waits");
    if (s.live_workers() != live().size()) fail("live_workers() disagrees");
    return errors_;
  }

  std::vector<std::string> check_end(const Scheduler& s) {
    errors_.clear();
    std::uint32_t finals = 0;
    for (std::uint32_t i = 0; i < tasks_.size(); ++i) {
      finals += tasks_[i].finals;
      if (s.finished() && tasks_[i].finals != 1)
        fail("P5: task " + std::to_string(i) + " has no final record");
    }
    if (s.counts().finished != finals) fail("counts().finished != number of final records");
    if (!s.finished() && !live().empty()) fail("stalled with live workers");
    return errors_;
  }

 private:
  enum State { kPending, kOutstanding, kDone };
  struct T {
    State state = kPending;
    std::uint32_t records = 0, finals = 0;
    std::int32_t worker = -1;
    std::set<std::int32_t> avoid;
  };
  struct W {
    WorkerInfo info;
    bool live = true;
    std::uint32_t outstanding = 0;
    std::optional<std::string> last_model;
  };

  void fail(std::string what) { errors_.push_back(std::move(what)); }

  std::vector<const W*> live() const {
    std::vector<const W*> out;
    for (const auto& [rank, w] : workers_)
      if (w.live) out.push_back(&w);
    return out;
  }
  bool runnable(std::uint32_t i) const {
    for (const W* w : live())
      if (fits(specs_[i], w->info)) return true;
    return false;
  }
  bool other_fits(std::uint32_t i) const {
    for (const W* w : live())
      if (!tasks_[i].avoid.count(w->info.rank) && fits(specs_[i], w->info)) return true;
    return false;
  }
  bool eligible(std::uint32_t i, const WorkerInfo& w) const {
    return tasks_[i].state == kPending && fits(specs_[i], w) &&
           (!tasks_[i].avoid.count(w.rank) || !other_fits(i));
  }

  void on_record(const TaskResult& r) {
    const std::string id = "task " + std::to_string(r.task);
    if (r.task >= tasks_.size()) return fail("record for unknown " + id);
    T& t = tasks_[r.task];
    if (t.state == kDone) fail("P5: record after the final one for " + id);
    if (r.attempt != t.records) fail("P5: " + id + " record attempt " + std::to_string(r.attempt));
    ++t.records;
    if (r.outcome.status == TaskStatus::kSkipped) {
      if (!r.final || r.worker != -1 || t.state != kPending) fail("P2: bad skip record for " + id);
      if (!all_joined_ || live().empty() || runnable(r.task)) fail("P2: " + id + " skipped while runnable");
    } else {
      if (t.state != kOutstanding || t.worker != r.worker) fail("P3: result for " + id + " not outstanding");
      if (auto it = workers_.find(r.worker); it != workers_.end()) --it->second.outstanding;
    }
    if (r.outcome.status == TaskStatus::kLost && r.final) fail("P4: final lost record for " + id);
    if (r.flaky && (!r.final || r.outcome.status != TaskStatus::kPassed)) fail("P3: bad flaky flag on " + id);
    if (r.final) {
      t.state = kDone;
      ++t.finals;
      return;
    }
    t.state = kPending;
    if (r.outcome.status != TaskStatus::kLost) t.avoid.insert(r.worker);
  }

  void on_assignment(const Assignment& a) {
    const std::string id = "task " + std::to_string(a.task) + " on worker " + std::to_string(a.worker);
    auto it = workers_.find(a.worker);
    if (a.task >= tasks_.size() || it == workers_.end() || !it->second.live)
      return fail("assignment of unknown task or to a dead worker: " + id);
    W& w = it->second;
    const TaskSpec& spec = specs_[a.task];
    T& t = tasks_[a.task];
    if (t.state != kPending) fail("P5: " + id + " assigned while not pending");
    if (a.attempt != t.records) fail("P5: " + id + " attempt " + std::to_string(a.attempt));
    if (spec.needs_cuda() && w.info.gpus == 0) fail("P6: CUDA " + id + " on a CPU worker");
    if (!fits(spec, w.info)) fail("P6: " + id + " does not fit");
    if (t.avoid.count(a.worker) && other_fits(a.task))
      fail("P10: retried " + id + " on a worker it failed on");
    if (w.outstanding >= prefetch_) fail("P9: more than prefetch outstanding: " + id);
    for (std::uint32_t i = 0; i < tasks_.size(); ++i) {
      if (i == a.task || !eligible(i, w.info)) continue;
      if (specs_[i].priority < spec.priority)
        fail("P7: " + id + " while higher-tier task " + std::to_string(i) + " waits");
      if (specs_[i].priority == spec.priority && w.last_model && specs_[i].model == *w.last_model &&
          spec.model != *w.last_model)
        fail("P8: " + id + " while task " + std::to_string(i) + " of model " + *w.last_model + " waits");
    }
    t.state = kOutstanding;
    t.worker = a.worker;
    ++w.outstanding;
    w.last_model = spec.model;
  }

  std::span<const TaskSpec> specs_;
  std::uint32_t prefetch_;
  std::vector<T> tasks_;
  std::map<std::int32_t, W> workers_;
  bool all_joined_ = false;
  std::vector<std::string> errors_;
};

// ---- Random workloads ----

struct Workload {
  std::vector<TaskSpec> tasks;
  std::vector<WorkerInfo> workers;  // in join order
  std::uint32_t prefetch = 1;
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  std::uint64_t below(std::uint64_t n) { return g_() % n; }
  bool chance(double p) { return static_cast<double>(g_() >> 11) * 0x1.0p-53 < p; }
  template <typename C>
  const auto& pick(const C& c) {
    return c[below(c.size())];
  }

 private:
  std::mt19937_64 g_;
};

Workload random_workload(Rng& rng) {
  static const std::vector<std::string> kModels = {"bert", "gpt2", "resnet", "t5", "vit"};
  static const std::vector<std::uint64_t> kMemory = {512, 1024, 1024, 2048, 2048, 4096, 16384};
  Workload w;
  w.prefetch = static_cast<std::uint32_t>(1 + rng.below(rng.chance(0.5) ? 1 : 4));
  const std::size_t n = 1 + rng.below(rng.chance(0.2) ? 150 : 60);
  const std::size_t models = 1 + rng.below(kModels.size());
  const double cuda_share = rng.chance(0.3) ? 0.0 : 0.4;
  for (std::size_t i = 0; i < n; ++i) {
    w.tasks.push_back(make_task(static_cast<std::uint32_t>(i), kModels[rng.below(models)],
                                static_cast<Priority>(rng.below(kPriorityTiers)),
                                rng.chance(cuda_share) ? "cuda" : "cpu", rng.pick(kMemory),
                                static_cast<std::uint32_t>(rng.below(3))));
  }
  const std::size_t workers = rng.chance(0.03) ? 0 : 1 + rng.below(7);  // zero workers too
  std::vector<std::int32_t> ranks;
  for (std::int32_t r = 1; r <= 12; ++r) ranks.push_back(r);
  for (std::size_t i = 0; i < workers; ++i) {
    const std::size_t k = rng.below(ranks.size());
    const std::int32_t rank = ranks[k];
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(k));
    const bool gpu = rng.chance(0.4);
    w.workers.push_back(make_worker(rank, rng.pick(kMemory) * 2,
                                    gpu ? 1 + static_cast<std::uint32_t>(rng.below(2)) : 0,
                                    gpu ? rng.pick(kMemory) : 0));
  }
  return w;
}

TaskStatus random_status(Rng& rng) {
  if (rng.chance(0.65)) return TaskStatus::kPassed;
  static const TaskStatus kBad[] = {TaskStatus::kFailed, TaskStatus::kCrashed, TaskStatus::kTimeout,
                                    TaskStatus::kOom};
  return kBad[rng.below(4)];
}

// Feeds one random run to the scheduler, the reference model and the observer; returns the
// first disagreement or property violation, empty when none.
struct Coverage {
  std::uint64_t runs = 0, steps = 0, finished_runs = 0, stalled_runs = 0;
  SchedulerCounts sum;
};

std::string run_random(std::uint64_t seed, Coverage& cov) {
  Rng rng(seed);
  const Workload wl = random_workload(rng);
  Scheduler real(wl.tasks, SchedulerOptions{wl.prefetch});
  ReferenceScheduler ref(wl.tasks, wl.prefetch);
  Observer obs(wl.tasks, wl.prefetch);

  std::map<std::int32_t, std::vector<Assignment>> running;  // driver's view: per worker, in order
  std::vector<TaskFinished> sent;
  std::set<std::int32_t> joined;
  std::size_t next_join = 0;
  bool all_joined = false;
  std::ostringstream transcript;
  std::uint32_t steps = 0;

  auto feed = [&](const SchedulerEvent& ev) -> std::string {
    ++steps;
    transcript << describe(ev) << "\n";
    real.step(ev);
    ref.step(ev);
    const std::string got = dump(real.ready()), want = dump(ref.ready());
    if (got != want)
      return "P11: scheduler and reference differ after:\n" + transcript.str() + "scheduler:\n" + got +
             "reference:\n" + want;
    if (dump(real.counts()) != dump(ref.counts()) || real.finished() != ref.finished())
      return "P11: counts differ after:\n" + transcript.str() + dump(real.counts()) + "\n" +
             dump(ref.counts());
    if (real.has_ready() != !(real.ready().records.empty() && real.ready().assignments.empty()))
      return "has_ready() disagrees with ready()";
    if (auto errors = obs.check(ev, real.ready(), real); !errors.empty())
      return errors.front() + "\nafter:\n" + transcript.str() + got;
    for (const auto& r : real.ready().records) {
      if (r.outcome.status != TaskStatus::kLost || r.worker < 0) continue;
      auto& q = running[r.worker];
      q.erase(std::remove_if(q.begin(), q.end(), [&](const Assignment& a) { return a.task == r.task; }),
              q.end());
    }
    for (const auto& a : real.ready().assignments) running[a.worker].push_back(a);
    real.advance();
    ref.advance();
    return {};
  };
  auto finish_one = [&](bool random_status_too) -> std::optional<SchedulerEvent> {
    std::vector<std::int32_t> busy;
    for (const auto& [rank, q] : running)
      if (!q.empty()) busy.push_back(rank);
    if (busy.empty()) return std::nullopt;
    auto& q = running[busy[rng.below(busy.size())]];
    const std::size_t k = rng.chance(0.8) ? 0 : rng.below(q.size());  // workers run in order, mostly
    const Assignment a = q[k];
    q.erase(q.begin() + static_cast<std::ptrdiff_t>(k));
    TaskFinished f = finished_event(a.worker, a.task, a.attempt,
                                    random_status_too ? random_status(rng) : TaskStatus::kPassed);
    sent.push_back(f);
    return SchedulerEvent{f};
  };

  const std::uint32_t budget = 30 * static_cast<std::uint32_t>(wl.tasks.size()) + 50;
  for (std::uint32_t i = 0; i < budget && !real.finished(); ++i) {
    std::optional<SchedulerEvent> ev;
    const double roll = static_cast<double>(rng.below(1000)) / 1000.0;
    if (roll < 0.15 && next_join < wl.workers.size() && (!all_joined || rng.chance(0.1))) {
      joined.insert(wl.workers[next_join].rank);
      ev = WorkerJoined{wl.workers[next_join++]};
    } else if (roll < 0.20 && !all_joined) {
      all_joined = true;
      ev = AllJoined{};
    } else if (roll < 0.25 && !sent.empty()) {
      ev = sent[rng.below(sent.size())];  // duplicate or stale
    } else if (roll < 0.27) {
      TaskFinished f = finished_event(static_cast<std::int32_t>(rng.below(14)) - 1,
                                      static_cast<std::uint32_t>(rng.below(wl.tasks.size() + 2)),
                                      static_cast<std::uint32_t>(rng.below(3)), random_status(rng));
      ev = f;  // bogus: usually ignored, occasionally a real one
      if (auto it = running.find(f.worker); it != running.end()) {
        auto& q = it->second;
        auto hit = std::find_if(q.begin(), q.end(), [&](const Assignment& a) {
          return a.task == f.task && a.attempt == f.attempt;
        });
        if (hit != q.end()) q.erase(hit);
      }
    } else if (roll < 0.285 && !joined.empty()) {
      const std::int32_t rank =
          rng.chance(0.9) ? *std::next(joined.begin(), static_cast<std::ptrdiff_t>(rng.below(joined.size())))
                          : static_cast<std::int32_t>(rng.below(20));
      running.erase(rank);
      ev = WorkerLost{rank};
    } else if (roll < 0.30 && !joined.empty()) {
      WorkerInfo again = make_worker(*joined.begin(), 1 << 20, 8, 1 << 20);  // re-join: ignored
      ev = WorkerJoined{again};
    } else if (roll < 0.31) {
      ev = Tick{static_cast<double>(i)};
    } else {
      ev = finish_one(true);
    }
    if (!ev) {
      if (next_join < wl.workers.size()) {
        joined.insert(wl.workers[next_join].rank);
        ev = WorkerJoined{wl.workers[next_join++]};
      } else if (!all_joined) {
        all_joined = true;
        ev = AllJoined{};
      } else {
        break;  // nothing outstanding and nothing left to happen
      }
    }
    if (std::string e = feed(*ev); !e.empty()) return e;
  }
  // Drain: everything joins, everything passes, until nothing is outstanding.
  while (next_join < wl.workers.size() && !all_joined) {
    if (std::string e = feed(WorkerJoined{wl.workers[next_join++]}); !e.empty()) return e;
  }
  if (!all_joined) {
    if (std::string e = feed(AllJoined{}); !e.empty()) return e;
  }
  while (auto ev = finish_one(false)) {
    if (std::string e = feed(*ev); !e.empty()) return e;
  }
  if (auto errors = obs.check_end(real); !errors.empty())
    return errors.front() + "\nafter:\n" + transcript.str();
  ++cov.runs;
  cov.steps += steps;
  ++(real.finished() ? cov.finished_runs : cov.stalled_runs);
  const SchedulerCounts& c = real.counts();
  cov.sum.total += c.total;
  for (int k = 0; k < kTaskStatusCount; ++k) cov.sum.by_status[k] += c.by_status[k];
  cov.sum.retried += c.retried;
  cov.sum.flaky += c.flaky;
  cov.sum.lost_attempts += c.lost_attempts;
  cov.sum.ignored_events += c.ignored_events;
  cov.sum.workers_lost += c.workers_lost;
  return {};
}

TEST(SchedulerModelTest, MatchesReferenceAndHoldsPropertiesOnRandomWorkloads) {
  Coverage cov;
  for (std::uint64_t seed = 1; seed <= 600; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string error = run_random(seed, cov);
    ASSERT_TRUE(error.empty()) << "seed " << seed << ": " << error;
  }
  // The generator reaches every case it is meant to (otherwise the comparison proves little).
  std::cout << "random runs: " << cov.runs << " (" << cov.finished_runs << " finished, " << cov.stalled_runs
            << " with every worker lost), " << cov.steps << " events, " << cov.sum.total << " tasks; retried "
            << cov.sum.retried << ", flaky " << cov.sum.flaky << ", lost attempts " << cov.sum.lost_attempts
            << ", ignored events " << cov.sum.ignored_events << ", workers lost " << cov.sum.workers_lost
            << "; final records by status:";
  for (int k = 0; k < kTaskStatusCount; ++k)
    std::cout << " " << to_string(static_cast<TaskStatus>(k)) << "=" << cov.sum.by_status[k];
  std::cout << "\n";
  EXPECT_GT(cov.steps, 20000u);
  EXPECT_GT(cov.finished_runs, 300u);
  EXPECT_GT(cov.stalled_runs, 5u);
  for (TaskStatus st : {TaskStatus::kPassed, TaskStatus::kFailed, TaskStatus::kCrashed, TaskStatus::kTimeout,
                        TaskStatus::kOom, TaskStatus::kSkipped})
    EXPECT_GT(cov.sum.by_status[static_cast<int>(st)], 20u) << to_string(st);
  EXPECT_GT(cov.sum.flaky, 50u);
  EXPECT_GT(cov.sum.lost_attempts, 100u);
  EXPECT_GT(cov.sum.ignored_events, 200u);
  EXPECT_GT(cov.sum.workers_lost, 100u);
}

// ---- Focused scenarios ----

// Feeds one event and returns what it decided, acknowledging it.
SchedulerReady feed(Scheduler& s, const SchedulerEvent& ev) {
  s.step(ev);
  SchedulerReady r = s.ready();
  s.advance();
  EXPECT_FALSE(s.has_ready());
  return r;
}

std::vector<std::pair<std::int32_t, std::uint32_t>> assigned(const SchedulerReady& r) {
  std::vector<std::pair<std::int32_t, std::uint32_t>> out;
  for (const auto& a : r.assignments) out.emplace_back(a.worker, a.task);
  return out;
}

using Pairs = std::vector<std::pair<std::int32_t, std::uint32_t>>;

TEST(SchedulerTest, EmptyCampaignIsFinishedAtOnce) {
  std::vector<TaskSpec> none;
  Scheduler s(none, {});
  EXPECT_TRUE(s.finished());
  EXPECT_TRUE(feed(s, WorkerJoined{make_worker(1)}).assignments.empty());
  EXPECT_EQ(s.counts().total, 0u);
}

TEST(SchedulerTest, FillsPrefetchSlotsRoundRobinInRankOrder) {
  std::vector<TaskSpec> tasks;
  for (std::uint32_t i = 0; i < 7; ++i) tasks.push_back(make_task(i, "m"));
  Scheduler s(tasks, SchedulerOptions{2});
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(5)})), (Pairs{{5, 0}, {5, 1}}));
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(2)})), (Pairs{{2, 2}, {2, 3}}));
  EXPECT_EQ(s.outstanding(5), 2u);
  EXPECT_EQ(s.outstanding(2), 2u);
  EXPECT_EQ(s.outstanding(9), 0u);
  EXPECT_EQ(assigned(feed(s, finished_event(5, 0, 0))), (Pairs{{5, 4}}));
  EXPECT_EQ(assigned(feed(s, finished_event(5, 1, 0))), (Pairs{{5, 5}}));
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(3)})), (Pairs{{3, 6}}));
  EXPECT_EQ(assigned(feed(s, finished_event(5, 4, 0))), Pairs{});
  // A loss re-queues 2 and 3 at the front; the free slots fill round-robin in rank order.
  EXPECT_EQ(assigned(feed(s, WorkerLost{2})), (Pairs{{3, 2}, {5, 3}}));
}

TEST(SchedulerTest, AffinityPrefersTheModelLastAssignedWithinATier) {
  std::vector<TaskSpec> tasks = {make_task(0, "A"), make_task(1, "B"), make_task(2, "B"), make_task(3, "A"),
                                 make_task(4, "B", Priority::kHigh, "cpu", 1024)};
  Scheduler s(tasks, {});
  // The high-tier task goes first whatever the affinity.
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(1)})), (Pairs{{1, 4}}));
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(2)})), (Pairs{{2, 0}}));
  // Worker 1 last ran B: it gets task 1 (B). Worker 2 last ran A: it gets task 3 (A), not task 2.
  EXPECT_EQ(assigned(feed(s, finished_event(1, 4, 0))), (Pairs{{1, 1}}));
  EXPECT_EQ(assigned(feed(s, finished_event(2, 0, 0))), (Pairs{{2, 3}}));
  EXPECT_EQ(assigned(feed(s, finished_event(2, 3, 0))), (Pairs{{2, 2}}));
}

TEST(SchedulerTest, PlacementRespectsCudaAndMemory) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cuda", 8192),
                                 make_task(1, "m", Priority::kMedium, "cpu", 4096),
                                 make_task(2, "m", Priority::kMedium, "cuda", 16384)};
  Scheduler s(tasks, SchedulerOptions{4});
  // A CPU worker with 2 GiB runs nothing; a GPU worker whose host memory is 4 GiB runs task 1 and
  // the CUDA task that fits its 8 GiB of GPU memory.
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(1, 2048)})), Pairs{});
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(2, 4096, 1, 8192)})), (Pairs{{2, 0}, {2, 1}}));
}

TEST(SchedulerTest, SkipsOnlyAfterAllJoinedWithReasons) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cuda", 1024),
                                 make_task(1, "m", Priority::kMedium, "cpu", 4096),
                                 make_task(2, "m", Priority::kMedium, "cpu", 1024)};
  Scheduler s(tasks, {});
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(1, 2048)})), (Pairs{{1, 2}}));
  EXPECT_EQ(assigned(feed(s, WorkerJoined{make_worker(2, 1024)})), Pairs{});
  const SchedulerReady r = feed(s, AllJoined{});
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].task, 0u);
  EXPECT_TRUE(r.records[0].final);
  EXPECT_EQ(r.records[0].worker, -1);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kSkipped);
  EXPECT_EQ(r.records[0].outcome.error, "no live worker can run it: needs cuda (0 GPU workers)");
  EXPECT_EQ(r.records[1].task, 1u);
  EXPECT_EQ(r.records[1].outcome.error,
            "no live worker can run it: needs 4096 MiB, largest worker has 2048 MiB");
  EXPECT_FALSE(s.finished());
  feed(s, finished_event(1, 2, 0));
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.counts().by_status[static_cast<int>(TaskStatus::kSkipped)], 2u);
  EXPECT_EQ(s.counts().by_status[static_cast<int>(TaskStatus::kPassed)], 1u);
}

TEST(SchedulerTest, LosingTheOnlyGpuWorkerSkipsCudaTasksWithGpuMemoryReason) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cuda", 4096),
                                 make_task(1, "m", Priority::kMedium, "cuda", 4096),
                                 make_task(2, "m", Priority::kMedium, "cuda", 16384)};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1, 8192, 1, 8192)});
  feed(s, WorkerJoined{make_worker(2, 8192, 1, 2048)});
  SchedulerReady r = feed(s, AllJoined{});
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].outcome.error,
            "no live worker can run it: needs 16384 MiB of GPU memory, largest GPU worker has 8192 MiB");
  r = feed(s, WorkerLost{1});
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kLost);
  EXPECT_FALSE(r.records[0].final);
  EXPECT_EQ(r.records[1].task, 0u);
  EXPECT_EQ(r.records[1].attempt, 1u);
  EXPECT_EQ(r.records[1].outcome.error,
            "no live worker can run it: needs 4096 MiB of GPU memory, largest GPU worker has 2048 MiB");
  EXPECT_EQ(r.records[2].task, 1u);
  EXPECT_EQ(r.records[2].attempt, 0u);
  EXPECT_TRUE(s.finished());
}

// Hardware fingerprints (issue 6): one short, deterministic string per worker, recorded with every
// result it produces; trend series never mix them.
TEST(HardwareFingerprint, NamesCpuGpusAndDriver) {
  WorkerInfo w;
  w.cpu_model = "AMD EPYC 7B13 64-Core Processor";
  EXPECT_EQ(hardware_fingerprint(w), "cpu=AMD EPYC 7B13 64-Core Processor;gpus=0");
  w.gpus = 1;
  w.gpu_name = "NVIDIA H100 80GB HBM3";
  EXPECT_EQ(hardware_fingerprint(w), "cpu=AMD EPYC 7B13 64-Core Processor;gpus=1xNVIDIA H100 80GB HBM3");
  w.gpu_driver = "550.54.15";
  EXPECT_EQ(hardware_fingerprint(w),
            "cpu=AMD EPYC 7B13 64-Core Processor;gpus=1xNVIDIA H100 80GB HBM3;driver=550.54.15");
  // Separators and white space inside names cannot break the fields apart.
  WorkerInfo odd;
  odd.cpu_model = "  Vendor;model=X\t  9000 ";
  EXPECT_EQ(hardware_fingerprint(odd), "cpu=Vendor model X 9000;gpus=0");
  EXPECT_EQ(hardware_fingerprint(WorkerInfo{}), "cpu=unknown;gpus=0");
  // Host, rank, memory and core count are not hardware identity.
  WorkerInfo other = w;
  other.host = "elsewhere";
  other.rank = 9;
  other.memory_bytes = 1;
  EXPECT_EQ(hardware_fingerprint(other), hardware_fingerprint(w));
}

TEST(HardwareFingerprint, DriverVersionFromProcText) {
  EXPECT_EQ(
      sys::nvidia_driver_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 "
                                 "01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"),
      "535.104.05");
  EXPECT_EQ(sys::nvidia_driver_version(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release "
                "Build  (dvs-builder@U16-I3-B03-4-3)  Tue Mar  5 22:15:33 UTC 2024\n"),
            "550.54.15");
  EXPECT_EQ(sys::nvidia_driver_version(""), "");
  EXPECT_EQ(sys::nvidia_driver_version("GCC version:  gcc version 12.2.0\n"), "");
}

TEST(SchedulerTest, RecordsCarryTheFingerprintOfTheWorkerThatRanThem) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m"), make_task(2, "m"),
                                 make_task(3, "m", Priority::kMedium, "cuda")};
  Scheduler s(tasks, SchedulerOptions{1});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  SchedulerReady r = feed(s, AllJoined{});
  ASSERT_EQ(r.records.size(), 1u);  // the CUDA task: skipped, no worker, no fingerprint
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kSkipped);
  EXPECT_EQ(r.records[0].fingerprint, "");
  r = feed(s, finished_event(1, 0, 0));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].fingerprint, "cpu=Test CPU 1;gpus=0");
  r = feed(s, finished_event(2, 1, 0));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].fingerprint, "cpu=Test CPU 0;gpus=0");
  r = feed(s, WorkerLost{1});  // its outstanding task 2: a lost record, with worker 1's fingerprint
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kLost);
  EXPECT_EQ(r.records[0].fingerprint, "cpu=Test CPU 1;gpus=0");
}

TEST(SchedulerTest, RetriesOnAnotherWorkerUntilExhausted) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cpu", 1024, 2), make_task(1, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  // Task 0 fails on worker 1: it waits for worker 2 although worker 1 is free.
  SchedulerReady r = feed(s, finished_event(1, 0, 0, TaskStatus::kCrashed));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_FALSE(r.records[0].final);
  EXPECT_EQ(r.records[0].host, "node1");
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kCrashed);
  EXPECT_EQ(assigned(r), Pairs{});
  r = feed(s, finished_event(2, 1, 0));
  ASSERT_EQ(r.assignments.size(), 1u);
  EXPECT_EQ(r.assignments[0].worker, 2);
  EXPECT_EQ(r.assignments[0].attempt, 1u);
  // It fails on worker 2 too: both fitting workers are in its avoid set, so worker 1 may run it.
  r = feed(s, finished_event(2, 0, 1, TaskStatus::kTimeout));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_FALSE(r.records[0].final);
  ASSERT_EQ(r.assignments.size(), 1u);
  EXPECT_EQ(r.assignments[0].worker, 1);
  EXPECT_EQ(r.assignments[0].attempt, 2u);
  r = feed(s, finished_event(1, 0, 2, TaskStatus::kOom));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].final);
  EXPECT_FALSE(r.records[0].flaky);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kOom);
  EXPECT_TRUE(r.assignments.empty());
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.counts().retried, 1u);
  EXPECT_EQ(s.counts().by_status[static_cast<int>(TaskStatus::kOom)], 1u);
}

TEST(SchedulerTest, RetryReturnsToTheFailedWorkerWhenTheAlternativeIsLost) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  EXPECT_EQ(assigned(feed(s, finished_event(1, 0, 0, TaskStatus::kFailed))), Pairs{});
  const SchedulerReady r = feed(s, WorkerLost{2});
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_EQ(assigned(r), (Pairs{{1, 0}}));  // the retry comes before the lost task
  EXPECT_EQ(r.assignments[0].attempt, 1u);
}

TEST(SchedulerTest, PassAfterFailureIsFlaky) {
  std::vector<TaskSpec> tasks = {make_task(0, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, finished_event(1, 0, 0, TaskStatus::kFailed));
  const SchedulerReady r = feed(s, finished_event(1, 0, 1));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].final);
  EXPECT_TRUE(r.records[0].flaky);
  EXPECT_EQ(r.records[0].attempt, 1u);
  EXPECT_EQ(r.records[0].started_unix, 1000.0);
  EXPECT_EQ(r.records[0].ended_unix, 1001.0);
  EXPECT_EQ(r.records[0].outcome.samples_s.size(), 1u);
  EXPECT_EQ(s.counts().flaky, 1u);
  EXPECT_EQ(s.counts().retried, 1u);
}

TEST(SchedulerTest, LostWorkerRequeuesAtTheFrontWithoutConsumingRetries) {
  std::vector<TaskSpec> tasks;
  for (std::uint32_t i = 0; i < 6; ++i) tasks.push_back(make_task(i, "m", Priority::kMedium, "cpu", 1024, 0));
  Scheduler s(tasks, SchedulerOptions{2});
  feed(s, WorkerJoined{make_worker(1)});  // 0, 1
  feed(s, WorkerJoined{make_worker(2)});  // 2, 3
  SchedulerReady r = feed(s, WorkerLost{1});
  ASSERT_EQ(r.records.size(), 2u);
  for (std::uint32_t k = 0; k < 2; ++k) {
    EXPECT_EQ(r.records[k].task, k);
    EXPECT_EQ(r.records[k].attempt, 0u);
    EXPECT_FALSE(r.records[k].final);
    EXPECT_EQ(r.records[k].worker, 1);
    EXPECT_EQ(r.records[k].host, "node1");
    EXPECT_EQ(r.records[k].outcome.status, TaskStatus::kLost);
    EXPECT_EQ(r.records[k].outcome.error, "worker rank 1 lost");
  }
  EXPECT_TRUE(r.assignments.empty());  // worker 2 is full
  EXPECT_EQ(s.live_workers(), 1u);
  EXPECT_EQ(s.outstanding(1), 0u);
  // Tasks 0 and 1 come before 4 and 5, with a new attempt number.
  r = feed(s, finished_event(2, 2, 0));
  ASSERT_EQ(r.assignments.size(), 1u);
  EXPECT_EQ(r.assignments[0].task, 0u);
  EXPECT_EQ(r.assignments[0].attempt, 1u);
  // retries = 0, but the lost attempt did not count: a failure now is final.
  r = feed(s, finished_event(2, 0, 1, TaskStatus::kFailed));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].final);
  EXPECT_EQ(assigned(r), (Pairs{{2, 1}}));
  EXPECT_EQ(s.counts().lost_attempts, 2u);
  EXPECT_EQ(s.counts().workers_lost, 1u);
  EXPECT_EQ(s.counts().retried, 2u);
  // The result of the lost attempt, arriving late, is ignored.
  feed(s, finished_event(1, 1, 0));
  EXPECT_EQ(s.counts().ignored_events, 1u);
  // A lost rank that comes back stays lost.
  EXPECT_TRUE(feed(s, WorkerJoined{make_worker(1)}).assignments.empty());
  EXPECT_EQ(s.live_workers(), 1u);
  EXPECT_EQ(s.counts().workers_joined, 2u);
}

TEST(SchedulerTest, DuplicateAndStaleResultsAreIgnoredAndCounted) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  EXPECT_EQ(feed(s, finished_event(1, 0, 0)).records.size(), 1u);
  const SchedulerEvent stale[] = {
      finished_event(1, 0, 0),   // duplicate
      finished_event(1, 1, 0),   // outstanding on another worker
      finished_event(2, 1, 1),   // wrong attempt
      finished_event(7, 1, 0),   // unknown worker
      finished_event(2, 99, 0),  // unknown task
      finished_event(-1, 1, 0),  // no worker
  };
  for (const auto& ev : stale) {
    s.step(ev);
    EXPECT_FALSE(s.has_ready()) << describe(ev);
  }
  EXPECT_EQ(s.counts().ignored_events, 6u);
  EXPECT_EQ(s.counts().finished, 1u);
  EXPECT_EQ(s.outstanding(2), 1u);
}

TEST(SchedulerTest, RejoinOfALiveRankIsIgnored) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m", Priority::kMedium, "cuda", 1024)};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  EXPECT_TRUE(feed(s, WorkerJoined{make_worker(1, 8192, 1, 8192)}).assignments.empty());
  feed(s, finished_event(1, 0, 0));
  EXPECT_EQ(feed(s, AllJoined{}).records.size(), 1u);  // still a CPU worker: the CUDA task is skipped
  EXPECT_EQ(s.counts().workers_joined, 1u);
  EXPECT_TRUE(s.finished());
}

TEST(SchedulerTest, WorkerReportingLostSkippedOrUnknownStatusCountsAsFailure) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cpu", 1024, 0)};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  const SchedulerReady r = feed(s, finished_event(1, 0, 0, TaskStatus::kLost));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].final);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kFailed);
  EXPECT_EQ(r.records[0].outcome.error, "worker reported status 'lost': boom");

  std::vector<TaskSpec> more = {make_task(0, "m", Priority::kMedium, "cpu", 1024, 1)};
  Scheduler t(more, {});
  feed(t, WorkerJoined{make_worker(1)});
  TaskFinished odd = finished_event(1, 0, 0);
  odd.outcome.status = static_cast<TaskStatus>(42);
  const SchedulerReady q = feed(t, odd);
  ASSERT_EQ(q.records.size(), 1u);
  EXPECT_FALSE(q.records[0].final);  // retried, on the same worker since no other exists
  EXPECT_EQ(q.records[0].outcome.status, TaskStatus::kFailed);
  EXPECT_EQ(q.records[0].outcome.error, "worker reported status '42'");
  EXPECT_EQ(assigned(q), (Pairs{{1, 0}}));
  odd.attempt = 1;
  odd.outcome.status = TaskStatus::kSkipped;
  EXPECT_EQ(feed(t, odd).records.at(0).outcome.status, TaskStatus::kFailed);
  EXPECT_EQ(t.counts().by_status[static_cast<int>(TaskStatus::kFailed)], 1u);
}

TEST(SchedulerTest, AllWorkersLostMakesNoProgressAndSkipsNothing) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m"), make_task(2, "m")};
  Scheduler s(tasks, SchedulerOptions{2});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  feed(s, AllJoined{});
  SchedulerReady r = feed(s, WorkerLost{1});
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(assigned(r), (Pairs{{2, 0}}));  // worker 2's free slot takes the first lost task
  r = feed(s, WorkerLost{2});
  ASSERT_EQ(r.records.size(), 2u);
  for (const auto& rec : r.records) EXPECT_EQ(rec.outcome.status, TaskStatus::kLost);
  EXPECT_TRUE(r.assignments.empty());
  for (const SchedulerEvent& ev : std::vector<SchedulerEvent>{WorkerLost{2}, WorkerLost{3}, Tick{5},
                                                              finished_event(2, 1, 0), AllJoined{}}) {
    s.step(ev);
    EXPECT_FALSE(s.has_ready()) << describe(ev);
  }
  EXPECT_FALSE(s.finished());
  EXPECT_EQ(s.live_workers(), 0u);
  EXPECT_EQ(s.counts().finished, 0u);
  EXPECT_EQ(s.counts().workers_lost, 2u);
  EXPECT_EQ(s.counts().lost_attempts, 4u);
  // A late worker picks the work up again: the last lost batch (2, 0) is at the very front.
  r = feed(s, WorkerJoined{make_worker(4)});
  ASSERT_EQ(assigned(r), (Pairs{{4, 2}, {4, 0}}));
  EXPECT_EQ(r.assignments[1].attempt, 2u);
}

TEST(SchedulerTest, LateJoinAfterEveryWorkerWasLostSkipsWhatItCannotRun) {
  std::vector<TaskSpec> tasks = {make_task(0, "m", Priority::kMedium, "cuda", 1024), make_task(1, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1, 8192, 1, 8192)});
  feed(s, AllJoined{});
  EXPECT_EQ(feed(s, WorkerLost{1}).records.size(), 1u);
  const SchedulerReady r = feed(s, WorkerJoined{make_worker(3)});
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].task, 0u);
  EXPECT_EQ(r.records[0].attempt, 1u);
  EXPECT_EQ(r.records[0].outcome.status, TaskStatus::kSkipped);
  EXPECT_EQ(assigned(r), (Pairs{{3, 1}}));
}

TEST(SchedulerTest, TickChangesNothing) {
  std::vector<TaskSpec> tasks = {make_task(0, "m")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  const SchedulerCounts before = s.counts();
  s.step(Tick{123.0});
  EXPECT_FALSE(s.has_ready());
  EXPECT_EQ(dump(s.counts()), dump(before));
}

TEST(SchedulerTest, MovedSchedulerKeepsItsState) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m")};
  Scheduler a(tasks, {});
  feed(a, WorkerJoined{make_worker(1)});
  Scheduler b(std::move(a));
  EXPECT_EQ(b.outstanding(1), 1u);
  EXPECT_EQ(assigned(feed(b, finished_event(1, 0, 0))), (Pairs{{1, 1}}));
}

TEST(SchedulerTest, CountsFillEveryField) {
  std::vector<TaskSpec> tasks = {make_task(0, "m"), make_task(1, "m"),
                                 make_task(2, "m", Priority::kMedium, "cuda")};
  Scheduler s(tasks, {});
  feed(s, WorkerJoined{make_worker(1)});
  feed(s, WorkerJoined{make_worker(2)});
  feed(s, AllJoined{});                                    // task 2 skipped
  feed(s, finished_event(1, 0, 0, TaskStatus::kFailed));   // retry of 0 waits for worker 2
  feed(s, WorkerLost{2});                                  // 1 lost; 0 may now run on 1
  feed(s, finished_event(1, 0, 1));                        // flaky
  feed(s, finished_event(1, 0, 1));                        // duplicate
  feed(s, finished_event(1, 1, 1, TaskStatus::kTimeout));  // retries 1: re-queued on 1 (no other)
  feed(s, finished_event(1, 1, 2, TaskStatus::kTimeout));  // final
  const SchedulerCounts& c = s.counts();
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(c.total, 3u);
  EXPECT_EQ(c.finished, 3u);
  EXPECT_EQ(c.by_status[static_cast<int>(TaskStatus::kPassed)], 1u);
  EXPECT_EQ(c.by_status[static_cast<int>(TaskStatus::kTimeout)], 1u);
  EXPECT_EQ(c.by_status[static_cast<int>(TaskStatus::kSkipped)], 1u);
  EXPECT_EQ(c.retried, 2u);
  EXPECT_EQ(c.flaky, 1u);
  EXPECT_EQ(c.lost_attempts, 1u);
  EXPECT_EQ(c.ignored_events, 1u);
  EXPECT_EQ(c.workers_joined, 2u);
  EXPECT_EQ(c.workers_lost, 1u);
}

// Every event is replayed into a second scheduler: the decisions are identical (P11).
TEST(SchedulerTest, SameEventsGiveSameDecisions) {
  Rng rng(42);
  std::vector<TaskSpec> tasks;
  for (std::uint32_t i = 0; i < 3000; ++i)
    tasks.push_back(make_task(i, "m" + std::to_string(rng.below(7)), static_cast<Priority>(rng.below(3)),
                              rng.chance(0.3) ? "cuda" : "cpu", 1024u << rng.below(4), 2));
  Scheduler a(tasks, SchedulerOptions{3}), b(tasks, SchedulerOptions{3});
  std::string log_a, log_b;
  std::map<std::int32_t, std::vector<Assignment>> running;
  auto both = [&](const SchedulerEvent& ev) {
    a.step(ev);
    b.step(ev);
    log_a += dump(a.ready());
    log_b += dump(b.ready());
    for (const auto& x : a.ready().assignments) running[x.worker].push_back(x);
    a.advance();
    b.advance();
  };
  for (std::int32_t r = 1; r <= 9; ++r) both(WorkerJoined{make_worker(r, 4096, r % 3 == 0, 4096)});
  both(AllJoined{});
  while (!a.finished()) {
    std::vector<std::int32_t> busy;
    for (auto& [rank, q] : running)
      if (!q.empty()) busy.push_back(rank);
    ASSERT_FALSE(busy.empty());
    auto& q = running[busy[rng.below(busy.size())]];
    const Assignment x = q.front();
    q.erase(q.begin());
    both(finished_event(x.worker, x.task, x.attempt, random_status(rng)));
  }
  EXPECT_EQ(log_a, log_b);
  EXPECT_TRUE(b.finished());
  EXPECT_GT(a.counts().by_status[static_cast<int>(TaskStatus::kSkipped)], 0u);
  EXPECT_GT(a.counts().retried, 0u);
}

}  // namespace
}  // namespace ipfsa::core
