// The campaign scheduler (M3). Contract and placement rules: scheduler.hpp. This file adds the
// decisions the header leaves open, which tests/unit/scheduler_test.cpp checks against a naive
// reference model:
//
//   * Queue order. Every pending task has a queue position `seq`. At start task i has seq i. A task
//     re-queued after a non-passing attempt is a "retry": it goes to the back of its tier's retry
//     queue and avoids the workers it did not pass on. A task whose worker was lost goes to the
//     FRONT of its queue (the retry queue if it has workers to avoid, the normal one otherwise); the
//     lost worker's tasks keep their assignment order there.
//   * Picking a task for worker w. Eligible: pending, fits w (rule 1), and w is not one it avoids
//     unless no live worker outside its avoid set fits it (rule 5). From the highest tier holding
//     an eligible task, the smallest of (model != model last assigned to w, not a retry, seq)
//     is picked: affinity first (rule 3), then retries, then queue order.
//   * Distributing free slots. Rounds over the live workers in rank order, one task per worker
//     with a free slot per round, until a round assigns nothing (rule 4). Between events every
//     live worker is full or has nothing eligible, so after an event that frees one worker's slot
//     and adds no pending task only that worker is filled; the outcome is the same.
//   * Skips (rule 7) are emitted in task index order and only while at least one worker is live:
//     with none, nothing can be decided (the shell reports an infrastructure error), so tasks wait;
//     a worker joining late (after AllJoined) re-runs the check.
//   * Attempts: `attempt` counts every attempt, lost ones too, so it is unique and increasing per
//     task; retries are counted on non-passing attempts only. A task is `flaky` when it passes
//     after a failed, crashed, timed-out or OOM attempt (a lost attempt says nothing about the
//     task). A worker reporting `lost`, `skipped` or an unknown status is broken: that counts as
//     `failed`, the error saying what it reported.
//     SchedulerCounts::retried counts tasks re-queued at least once (after a failure or a loss).
//   * Workers: a join of a rank already known (live or lost) is ignored: a lost rank stays lost,
//     as the coordinator's shell has already forgotten it. A loss of an unknown rank is ignored.
//   * Tick is accepted and changes nothing: no rule depends on time yet. It is the hook for
//     time-based decisions (e.g. speculative re-runs of stragglers) that must stay replayable.
//   * Synthesised records (lost, skipped) carry started_unix = ended_unix = 0: there is no clock.
//
// Data layout: pending tasks live in groups keyed by (tier, placement class, avoid set), where the
// class is (model, needs CUDA, memory_mb). Each group is a deque sorted by seq, so a pick looks at
// group heads only: O(groups of w's last model) typically, O(non-empty groups of a tier) at worst.
// No unordered container is iterated and no pointer is a key: all iteration orders are derived
// from the events.
#include "core/scheduler.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "core/error.hpp"

namespace ipfsa::core {

namespace {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

enum class Phase : std::uint8_t { kPending, kOutstanding, kDone };

// Placement class: what decides whether a worker can run a task (rule 1) and its affinity key.
struct PlacementClass {
  std::uint32_t model = 0;  // interned model name
  bool cuda = false;
  std::uint64_t memory_mb = 0;
};

struct TaskState {
  std::uint32_t cls = 0;
  std::uint32_t attempt = 0;     // number of the pending or outstanding attempt
  std::uint32_t failures = 0;    // non-passing attempts, lost ones excluded
  std::uint32_t worker = kNone;  // worker id while outstanding
  Phase phase = Phase::kPending;
  bool requeued = false;            // counted in SchedulerCounts::retried
  std::vector<std::int32_t> avoid;  // ranks it did not pass on, sorted
};

struct Group {
  std::uint8_t tier = 0;
  std::uint32_t cls = 0;
  bool retry = false;
  std::vector<std::int32_t> avoid;  // same as its tasks' avoid sets; empty unless retry
  std::deque<std::pair<std::int64_t, std::uint32_t>> queue;  // (seq, task), ascending seq
  bool active = false;  // listed in the tier's active lists (queue not empty)
  std::uint64_t alt_version = std::numeric_limits<std::uint64_t>::max();
  bool alt_exists = false;  // a live worker outside `avoid` fits; valid at alt_version
};

struct Worker {
  WorkerInfo info;
  std::uint64_t memory_mb = 0;  // whole MiB, so memory_mb * 2^20 <= memory_bytes
  std::uint64_t gpu_memory_mb = 0;
  bool live = true;
  std::uint32_t last_model = kNone;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> outstanding;  // (task, attempt), assignment order
  std::string fingerprint;  // hardware_fingerprint(info), computed once at join
};

// A name as a fingerprint field: `;` and `=` (the separators) and control characters become
// spaces, runs of white space collapse to one, leading and trailing white space is dropped.
std::string fingerprint_field(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (const char c : s) {
    const bool blank = c == ';' || c == '=' || static_cast<unsigned char>(c) < 0x20 || c == ' ' || c == 0x7f;
    if (blank) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string hardware_fingerprint(const WorkerInfo& info) {
  std::string cpu = fingerprint_field(info.cpu_model);
  if (cpu.empty()) cpu = "unknown";
  std::string f = "cpu=" + cpu + ";gpus=" + std::to_string(info.gpus);
  if (info.gpus > 0) {
    f += "x" + fingerprint_field(info.gpu_name);
    const std::string driver = fingerprint_field(info.gpu_driver);
    if (!driver.empty()) f += ";driver=" + driver;
  }
  return f;
}

struct Scheduler::State {
  std::span<const TaskSpec> specs;
  SchedulerOptions options;
  std::vector<TaskState> tasks;
  std::vector<PlacementClass> classes;
  std::uint32_t models = 0;

  std::deque<Group> groups;                 // a deque: adding a group never moves the others' queues
  std::vector<std::uint32_t> normal_group;  // per (tier * classes + cls): group id or kNone
  std::map<std::tuple<std::uint8_t, std::uint32_t, std::vector<std::int32_t>>, std::uint32_t> retry_groups;
  std::vector<std::uint32_t> active[kPriorityTiers];                     // group ids, non-empty
  std::vector<std::vector<std::uint32_t>> model_active[kPriorityTiers];  // per model id

  std::vector<Worker> workers;  // by join order
  std::map<std::int32_t, std::uint32_t> by_rank;
  std::vector<std::uint32_t> live;  // worker ids in rank order
  std::uint64_t live_version = 0;   // bumped whenever `live` changes

  bool all_joined = false;
  std::int64_t front_seq = 0;  // next front position is below this
  std::int64_t retry_seq = 0;  // next back position of retry queues

  SchedulerReady ready;
  SchedulerCounts counts;
  std::vector<std::uint32_t> scratch_workers;
  std::vector<std::uint32_t> scratch_tasks;

  State(std::span<const TaskSpec> t, SchedulerOptions o);

  bool fits(std::uint32_t cls, const Worker& w) const {
    const PlacementClass& c = classes[cls];
    if (c.cuda) return w.info.gpus > 0 && c.memory_mb <= w.gpu_memory_mb;
    return c.memory_mb <= w.memory_mb;
  }

  bool fits_any_live(std::uint32_t cls) const {
    for (std::uint32_t id : live)
      if (fits(cls, workers[id])) return true;
    return false;
  }

  bool has_alternative(Group& g) {
    if (g.alt_version != live_version) {
      g.alt_exists = false;
      for (std::uint32_t id : live) {
        const Worker& w = workers[id];
        if (fits(g.cls, w) && !std::binary_search(g.avoid.begin(), g.avoid.end(), w.info.rank)) {
          g.alt_exists = true;
          break;
        }
      }
      g.alt_version = live_version;
    }
    return g.alt_exists;
  }

  bool eligible(Group& g, const Worker& w) {
    if (!fits(g.cls, w)) return false;
    if (!g.retry || !std::binary_search(g.avoid.begin(), g.avoid.end(), w.info.rank)) return true;
    return !has_alternative(g);
  }

  void activate(std::uint32_t gid) {
    Group& g = groups[gid];
    if (g.active) return;
    g.active = true;
    active[g.tier].push_back(gid);
    model_active[g.tier][classes[g.cls].model].push_back(gid);
  }

  void deactivate(std::uint32_t gid) {
    Group& g = groups[gid];
    g.active = false;
    auto drop = [gid](std::vector<std::uint32_t>& v) { v.erase(std::find(v.begin(), v.end(), gid)); };
    drop(active[g.tier]);
    drop(model_active[g.tier][classes[g.cls].model]);
  }

  std::uint32_t group_of(std::uint32_t task) {
    const TaskState& t = tasks[task];
    const auto tier = static_cast<std::uint8_t>(specs[task].priority);
    if (t.avoid.empty()) return normal_group[tier * classes.size() + t.cls];
    auto [it, inserted] =
        retry_groups.try_emplace({tier, t.cls, t.avoid}, static_cast<std::uint32_t>(groups.size()));
    if (inserted) {
      Group g;
      g.tier = tier;
      g.cls = t.cls;
      g.retry = true;
      g.avoid = t.avoid;
      groups.push_back(std::move(g));
    }
    return it->second;
  }

  // The best eligible group for worker `w` among `candidates`, or kNone. Key: (not a retry, seq).
  std::uint32_t best_of(const std::vector<std::uint32_t>& candidates, const Worker& w) {
    std::uint32_t best = kNone;
    std::pair<bool, std::int64_t> best_key{};
    for (std::uint32_t gid : candidates) {
      Group& g = groups[gid];
      if (!eligible(g, w)) continue;
      const std::pair<bool, std::int64_t> key{!g.retry, g.queue.front().first};
      if (best == kNone || key < best_key) {
        best = gid;
        best_key = key;
      }
    }
    return best;
  }

  // Assigns one task to worker `id` if one is eligible; returns whether it did.
  bool assign_one(std::uint32_t id) {
    Worker& w = workers[id];
    for (int tier = 0; tier < kPriorityTiers; ++tier) {
      if (active[tier].empty()) continue;
      std::uint32_t gid = kNone;
      if (w.last_model != kNone) gid = best_of(model_active[tier][w.last_model], w);
      if (gid == kNone) gid = best_of(active[tier], w);
      if (gid == kNone) continue;
      Group& g = groups[gid];
      const std::uint32_t task = g.queue.front().second;
      g.queue.pop_front();
      if (g.queue.empty()) deactivate(gid);
      TaskState& t = tasks[task];
      t.phase = Phase::kOutstanding;
      t.worker = id;
      w.outstanding.emplace_back(task, t.attempt);
      w.last_model = classes[t.cls].model;
      ready.assignments.push_back(Assignment{w.info.rank, task, t.attempt});
      return true;
    }
    return false;
  }

  void fill(std::uint32_t id) {
    while (workers[id].outstanding.size() < options.prefetch && assign_one(id)) {
    }
  }

  void distribute() {
    auto& hungry = scratch_workers;
    hungry.clear();
    for (std::uint32_t id : live)
      if (workers[id].outstanding.size() < options.prefetch) hungry.push_back(id);
    while (!hungry.empty()) {
      std::size_t keep = 0;
      for (std::uint32_t id : hungry)
        if (assign_one(id) && workers[id].outstanding.size() < options.prefetch) hungry[keep++] = id;
      hungry.resize(keep);
    }
  }

  void requeue_back(std::uint32_t task) {
    const std::uint32_t gid = group_of(task);
    groups[gid].queue.emplace_back(retry_seq++, task);
    activate(gid);
  }

  void requeue_front(std::uint32_t task, std::int64_t seq) {
    const std::uint32_t gid = group_of(task);
    groups[gid].queue.emplace_front(seq, task);
    activate(gid);
  }

  void mark_requeued(TaskState& t) {
    if (!t.requeued) ++counts.retried;
    t.requeued = true;
  }

  void finish_task(std::uint32_t task, TaskResult record) {
    TaskState& t = tasks[task];
    t.phase = Phase::kDone;
    t.worker = kNone;
    ++counts.finished;
    ++counts.by_status[static_cast<int>(record.outcome.status)];
    if (record.flaky) ++counts.flaky;
    record.final = true;
    ready.records.push_back(std::move(record));
  }

  std::string skip_reason(std::uint32_t cls) const {
    const PlacementClass& c = classes[cls];
    std::uint64_t largest = 0;
    std::uint32_t capable = 0;  // live workers of the right kind (GPU workers for CUDA tasks)
    for (std::uint32_t id : live) {
      const Worker& w = workers[id];
      if (c.cuda && w.info.gpus == 0) continue;
      ++capable;
      largest = std::max(largest, c.cuda ? w.gpu_memory_mb : w.memory_mb);
    }
    std::string why = "no live worker can run it: ";
    if (c.cuda && capable == 0) return why + "needs cuda (0 GPU workers)";
    why += "needs " + std::to_string(c.memory_mb) + " MiB";
    if (c.cuda) return why + " of GPU memory, largest GPU worker has " + std::to_string(largest) + " MiB";
    return why + ", largest worker has " + std::to_string(largest) + " MiB";
  }

  // Rule 7: records every pending task that no live worker fits as final `skipped`.
  void skip_unrunnable() {
    if (!all_joined || live.empty()) return;
    auto& doomed = scratch_tasks;
    doomed.clear();
    for (int tier = 0; tier < kPriorityTiers; ++tier) {
      // Copy: deactivate() edits the list.
      const std::vector<std::uint32_t> gids = active[tier];
      for (std::uint32_t gid : gids) {
        Group& g = groups[gid];
        if (fits_any_live(g.cls)) continue;
        for (const auto& entry : g.queue) doomed.push_back(entry.second);
        g.queue.clear();
        deactivate(gid);
      }
    }
    std::sort(doomed.begin(), doomed.end());
    for (std::uint32_t task : doomed) {
      TaskResult r;
      r.task = task;
      r.attempt = tasks[task].attempt;
      r.outcome.status = TaskStatus::kSkipped;
      r.outcome.error = skip_reason(tasks[task].cls);
      finish_task(task, std::move(r));
    }
  }

  void on(const WorkerJoined& e) {
    const std::int32_t rank = e.info.rank;
    if (rank < 0 || by_rank.count(rank)) return;  // invalid, a re-join, or a lost rank coming back
    const auto id = static_cast<std::uint32_t>(workers.size());
    Worker w;
    w.info = e.info;
    w.memory_mb = e.info.memory_bytes >> 20;
    w.gpu_memory_mb = e.info.gpu_memory_bytes >> 20;
    w.fingerprint = hardware_fingerprint(e.info);
    workers.push_back(std::move(w));
    by_rank.emplace(rank, id);
    live.insert(
        std::upper_bound(live.begin(), live.end(), rank,
                         [this](std::int32_t r, std::uint32_t x) { return r < workers[x].info.rank; }),
        id);
    ++live_version;
    ++counts.workers_joined;
    skip_unrunnable();  // matters only after AllJoined when no worker was live until now
    fill(id);
  }

  void on(const AllJoined&) {
    all_joined = true;
    skip_unrunnable();
  }

  void on(const WorkerLost& e) {
    auto it = by_rank.find(e.rank);
    if (it == by_rank.end() || !workers[it->second].live) return;
    const std::uint32_t id = it->second;
    Worker& w = workers[id];
    w.live = false;
    live.erase(std::find(live.begin(), live.end(), id));
    ++live_version;
    ++counts.workers_lost;

    const std::string error = "worker rank " + std::to_string(e.rank) + " lost";
    for (const auto& [task, attempt] : w.outstanding) {
      TaskResult r;
      r.task = task;
      r.attempt = attempt;
      r.worker = e.rank;
      r.host = w.info.host;
      r.fingerprint = w.fingerprint;
      r.outcome.status = TaskStatus::kLost;
      r.outcome.error = error;
      ready.records.push_back(std::move(r));
      TaskState& t = tasks[task];
      t.phase = Phase::kPending;
      t.worker = kNone;
      ++t.attempt;
      mark_requeued(t);
      ++counts.lost_attempts;
    }
    // To the front, keeping assignment order: the first assigned gets the smallest seq.
    const auto n = static_cast<std::int64_t>(w.outstanding.size());
    front_seq -= n;
    for (std::int64_t i = n - 1; i >= 0; --i) requeue_front(w.outstanding[i].first, front_seq + i);
    w.outstanding.clear();

    skip_unrunnable();
    distribute();
  }

  void on(const TaskFinished& e) {
    auto it = by_rank.find(e.worker);
    if (it == by_rank.end() || e.task >= tasks.size()) {
      ++counts.ignored_events;
      return;
    }
    const std::uint32_t id = it->second;
    Worker& w = workers[id];
    TaskState& t = tasks[e.task];
    if (!w.live || t.phase != Phase::kOutstanding || t.worker != id || t.attempt != e.attempt) {
      ++counts.ignored_events;
      return;
    }
    w.outstanding.erase(std::find(w.outstanding.begin(), w.outstanding.end(),
                                  std::pair<std::uint32_t, std::uint32_t>{e.task, e.attempt}));

    TaskResult r;
    r.task = e.task;
    r.attempt = e.attempt;
    r.worker = e.worker;
    r.host = w.info.host;
    r.fingerprint = w.fingerprint;
    r.started_unix = e.started_unix;
    r.ended_unix = e.ended_unix;
    r.outcome = e.outcome;
    const int status = static_cast<int>(r.outcome.status);
    if (status >= kTaskStatusCount || r.outcome.status == TaskStatus::kSkipped ||
        r.outcome.status == TaskStatus::kLost) {
      // Only the scheduler decides these; a worker reporting one is broken. Count it as a failure.
      const std::string reported =
          status < kTaskStatusCount ? std::string(to_string(r.outcome.status)) : std::to_string(status);
      r.outcome.error = "worker reported status '" + reported + "'" +
                        (r.outcome.error.empty() ? "" : ": " + r.outcome.error);
      r.outcome.status = TaskStatus::kFailed;
    }

    if (r.outcome.status == TaskStatus::kPassed) {
      r.flaky = t.failures > 0;
      finish_task(e.task, std::move(r));
      fill(id);
      return;
    }
    ++t.failures;
    if (t.failures > specs[e.task].retries) {
      finish_task(e.task, std::move(r));
      fill(id);
      return;
    }
    ready.records.push_back(std::move(r));
    t.phase = Phase::kPending;
    t.worker = kNone;
    ++t.attempt;
    t.avoid.insert(std::lower_bound(t.avoid.begin(), t.avoid.end(), e.worker), e.worker);
    mark_requeued(t);
    requeue_back(e.task);
    distribute();
  }

  void on(const Tick&) {}  // see the top of this file
};

Scheduler::State::State(std::span<const TaskSpec> t, SchedulerOptions o) : specs(t), options(o) {
  IPFSA_EXPECTS(options.prefetch >= 1, "SchedulerOptions::prefetch must be at least 1");
  tasks.resize(specs.size());
  counts.total = static_cast<std::uint32_t>(specs.size());

  std::map<std::string, std::uint32_t, std::less<>> model_ids;
  std::map<std::tuple<std::uint32_t, bool, std::uint64_t>, std::uint32_t> class_ids;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const TaskSpec& s = specs[i];
    IPFSA_EXPECTS(s.index == i, "tasks[i].index must equal i");
    IPFSA_EXPECTS(static_cast<int>(s.priority) < kPriorityTiers, "priority out of range");
    const auto model =
        model_ids.try_emplace(s.model, static_cast<std::uint32_t>(model_ids.size())).first->second;
    const PlacementClass c{model, s.needs_cuda(), s.memory_mb};
    const auto cls =
        class_ids.try_emplace({c.model, c.cuda, c.memory_mb}, static_cast<std::uint32_t>(classes.size()))
            .first->second;
    if (cls == classes.size()) classes.push_back(c);
    tasks[i].cls = cls;
  }
  models = static_cast<std::uint32_t>(model_ids.size());
  for (auto& per_model : model_active) per_model.resize(models);

  normal_group.assign(kPriorityTiers * classes.size(), kNone);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto tier = static_cast<std::uint8_t>(specs[i].priority);
    std::uint32_t& gid = normal_group[tier * classes.size() + tasks[i].cls];
    if (gid == kNone) {
      gid = static_cast<std::uint32_t>(groups.size());
      Group g;
      g.tier = tier;
      g.cls = tasks[i].cls;
      groups.push_back(std::move(g));
    }
    groups[gid].queue.emplace_back(static_cast<std::int64_t>(i), static_cast<std::uint32_t>(i));
    activate(gid);
  }
}

Scheduler::Scheduler(std::span<const TaskSpec> tasks, SchedulerOptions options)
    : s_(std::make_unique<State>(tasks, options)) {}
Scheduler::~Scheduler() = default;
Scheduler::Scheduler(Scheduler&&) noexcept = default;
Scheduler& Scheduler::operator=(Scheduler&&) noexcept = default;

void Scheduler::step(const SchedulerEvent& event) {
  std::visit([this](const auto& e) { s_->on(e); }, event);
}

bool Scheduler::has_ready() const {
  return !s_->ready.records.empty() || !s_->ready.assignments.empty();
}
const SchedulerReady& Scheduler::ready() const {
  return s_->ready;
}

void Scheduler::advance() {
  s_->ready.records.clear();
  s_->ready.assignments.clear();
}

bool Scheduler::finished() const {
  return s_->counts.finished == s_->counts.total;
}
std::uint32_t Scheduler::live_workers() const {
  return static_cast<std::uint32_t>(s_->live.size());
}

std::uint32_t Scheduler::outstanding(std::int32_t worker) const {
  auto it = s_->by_rank.find(worker);
  if (it == s_->by_rank.end()) return 0;
  return static_cast<std::uint32_t>(s_->workers[it->second].outstanding.size());
}

std::vector<Assignment> Scheduler::outstanding_assignments() const {
  std::vector<Assignment> out;
  for (const Worker& w : s_->workers)
    for (const auto& [task, attempt] : w.outstanding) out.push_back(Assignment{w.info.rank, task, attempt});
  return out;
}

const SchedulerCounts& Scheduler::counts() const {
  return s_->counts;
}

}  // namespace ipfsa::core
