// `run`: every rank enters here. Ranks 0..N-1 (`--coordinators N`) form the coordinator quorum:
// rank 0 loads the campaign and prepares the run, the elected leader schedules it and writes the
// store; the other ranks are workers. MPI_Init and MPI_Finalize are the only collectives, at the
// ends (docs/design.md §HA quorum).
#include <mpi.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.hpp"
#include "cli/models_command.hpp"
#include "config/campaign_loader.hpp"
#include "config/default_campaign.hpp"
#include "core/resume.hpp"
#include "core/version.hpp"
#include "engine/model_kind.hpp"
#include "mpi/messages.hpp"
#include "mpi/transport.hpp"
#include "report/exports.hpp"
#include "report/html_report.hpp"
#include "report/run_outputs.hpp"
#include "store/hdf5_store.hpp"
#include "sys/health.hpp"
#include "sys/watchdog.hpp"

namespace ipfsa::cli {

namespace fs = std::filesystem;

namespace {

double unix_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Sortable, unique enough across concurrent jobs: UTC time + 4 random hex digits.
std::string make_run_id() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "-%04x", rd() & 0xffffu);
  return std::string(buf) + suffix;
}

// Kinds, catalog models and precision profiles a campaign may name (models_command.hpp).
config::LoadContext load_context() {
  return campaign_load_context();
}

// Tells every other rank to stop (used when the run cannot start); bounded, never blocks.
void abort_workers(core::Transport& t, const std::string& reason) {
  const auto body = wire::encode(mpi::ShutdownMsg{reason});
  for (int r = 0; r < t.size(); ++r)
    if (r != t.rank()) t.send(r, mpi::tag(mpi::MsgType::kShutdown), body);
  t.drain(2000);
}

int fail(core::Transport& t, const Error& e) {
  std::cerr << "ipfs-accelerate: " << e.message << "\n";
  abort_workers(t, e.message);
  return static_cast<int>(e.code);
}

// What rank 0 records in the run folder when a run begins (run.json): enough to resume it.
struct RunRecord {
  std::string run_id;
  std::string store;
  std::vector<std::string> task_ids;
};

Result<void> write_run_record(const std::string& out_dir, const core::RunInfo& info, const std::string& store,
                              std::span<const core::TaskSpec> tasks) {
  nlohmann::json j;
  j["run_id"] = info.run_id;
  j["campaign"] = info.campaign;
  j["campaign_source"] = info.campaign_source;
  j["store"] = fs::absolute(store).lexically_normal().string();
  j["started_unix"] = info.started_unix;
  auto& ids = j["task_ids"] = nlohmann::json::array();
  for (const auto& task : tasks) ids.push_back(task.id);
  const std::string path = out_dir + "/run.json";
  {
    std::ofstream out(path + ".tmp");
    out << j.dump(1) << "\n";
    if (!out) return infra_error("cannot write " + path);
  }
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);  // never a half-written run.json
  if (ec) return infra_error("cannot write " + path + ": " + ec.message());
  return {};
}

Result<RunRecord> read_run_record(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return input_error("--resume " + dir + ": no such run folder");
  const std::string path = dir + "/run.json";
  std::ifstream in(path);
  if (!in)
    return input_error("--resume " + dir +
                       ": not a run folder (no run.json; it is written when a run begins)");
  try {
    const auto j = nlohmann::json::parse(in);
    RunRecord r;
    r.run_id = j.at("run_id").get<std::string>();
    r.store = j.at("store").get<std::string>();
    r.task_ids = j.at("task_ids").get<std::vector<std::string>>();
    if (r.run_id.empty()) return input_error(path + ": empty run_id");
    return r;
  } catch (const std::exception& e) {
    return input_error(path + ": not a valid run record: " + e.what());
  }
}

// A stored final result as the coordinator recorded it (for results.csv of a resumed run).
core::TaskResult to_task_result(store::StoredResult&& s) {
  core::TaskResult r;
  r.task = s.task_index;
  r.attempt = s.attempt;
  r.final = s.final;
  r.flaky = s.flaky;
  r.worker = s.worker_rank;
  r.host = std::move(s.worker_host);
  r.started_unix = s.started_unix;
  r.ended_unix = s.ended_unix;
  auto& o = r.outcome;
  o.status = core::parse_task_status(s.status).value_or(core::TaskStatus::kFailed);
  o.signal = s.signal;
  o.error = std::move(s.error);
  o.samples_s = std::move(s.samples);
  o.throughput = s.throughput;
  o.peak_memory_bytes = s.peak_memory_bytes;
  o.acc_cosine = s.acc_cosine;
  o.acc_rel_error = s.acc_rel_error;
  o.acc_kl = s.acc_kl;
  o.acc_top1 = s.acc_top1;
  o.metrics = std::move(s.metrics);
  r.fingerprint = std::move(s.fingerprint);
  return r;
}

// Runs the remaining tasks of a resumed run (renumbered 0..n-1, see core::ResumePlan) and writes
// their rows under their campaign indices.
class RemapSink final : public core::ResultSink {
 public:
  RemapSink(core::ResultSink& inner, std::span<const std::uint32_t> original)
      : inner_(inner), original_(original) {}
  Result<void> begin_run(const core::RunInfo& run, std::span<const core::TaskSpec> tasks) override {
    return inner_.begin_run(run, tasks);
  }
  Result<void> append(std::span<const core::TaskResult> results) override {
    std::vector<core::TaskResult> mapped(results.begin(), results.end());
    for (auto& r : mapped) {
      if (r.task >= original_.size())
        return input_error("resume: task index " + std::to_string(r.task) + " out of range");
      r.task = original_[r.task];
    }
    return inner_.append(mapped);
  }
  Result<void> flush() override { return inner_.flush(); }
  Result<void> end_run(const core::RunInfo& run) override { return inner_.end_run(run); }

 private:
  core::ResultSink& inner_;
  std::span<const std::uint32_t> original_;
};

void write_status(const RunOptions& o, int code) {
  if (!o.status_file.empty()) std::ofstream(o.status_file) << code << "\n";
}

// What rank 0 decides at start-up (Setup message) plus the task list every coordinator derives
// from it: the same on every coordinator, so their scheduler replicas agree.
struct Prepared {
  mpi::SetupMsg setup;
  core::ResumePlan plan;  // the tasks to run (renumbered) and their campaign indices
};

// Rank 0: load the campaign, begin (or reopen, with --resume) the run in the store, write
// run.json, then close the store: the leader of the quorum opens it (RunStore). Errors are
// reported here and returned; the caller tells the other ranks.
Result<Prepared> prepare_run(core::Transport& t, const RunOptions& o, const core::Campaign& campaign) {
  if (t.size() < o.coordinators + 1)
    return input_error("run needs at least " + std::to_string(o.coordinators + 1) + " MPI ranks (" +
                       std::to_string(o.coordinators) + " coordinator" + (o.coordinators > 1 ? "s" : "") +
                       " + workers), got " + std::to_string(t.size()) + "; start it with: mpirun -np " +
                       std::to_string(o.coordinators + 3) + " ipfs-accelerate run");

  const bool resuming = !o.resume.empty();
  Prepared p;
  auto& s = p.setup;
  std::string run_id;
  double started_unix = unix_s();
  std::vector<std::uint32_t> final_indices;
  // Resume (docs/design.md §Resume): the run folder's run.json names the run and its store; the
  // store holds the final results already recorded. Only the tasks without one are run.
  if (resuming) {
    auto rec = read_run_record(o.resume);
    if (!rec) return rec.error();
    if (auto diff = core::first_task_difference(rec->task_ids, campaign.tasks))
      return input_error("--resume " + o.resume + ": the campaign '" + campaign.source +
                         "' is not the one of run " + rec->run_id + ": " + *diff);
    run_id = rec->run_id;
    s.out_dir = o.resume;
    s.store_path = o.store.empty() ? rec->store : o.store;
    // Read before the writer opens the file (HDF5 cannot reopen a read-only file for writing).
    auto reader = store::Hdf5Reader::open(s.store_path);
    if (!reader)
      return input_error("--resume " + o.resume + ": store of run " + run_id + ": " + reader.error().message);
    auto runs = reader->runs();
    if (!runs) return runs.error();
    auto run = std::find_if(runs->begin(), runs->end(), [&](const auto& r) { return r.run_id == run_id; });
    if (run == runs->end())
      return input_error("--resume " + o.resume + ": run " + run_id + " is not in the store " + s.store_path);
    started_unix = run->started_unix;
    auto results = reader->results(run_id, true);
    if (!results) return results.error();
    std::vector<bool> seen(campaign.tasks.size(), false);
    for (auto& r : *results) {
      if (!r.final || r.task_index >= campaign.tasks.size() || seen[r.task_index]) continue;
      if (r.task_id != campaign.tasks[r.task_index].id) continue;  // not this campaign's task
      seen[r.task_index] = true;
      final_indices.push_back(r.task_index);
      s.kept.push_back(to_task_result(std::move(r)));
    }
  } else {
    run_id = make_run_id();
    s.out_dir = o.out_dir.empty() ? "results/runs/" + run_id : o.out_dir;
    s.store_path = !o.store.empty()          ? o.store
                   : !campaign.store.empty() ? campaign.store
                                             : "results/trends.h5";
  }
  p.plan = core::plan_resume(campaign.tasks, final_indices);
  if (resuming && p.plan.tasks.empty()) return p;  // nothing left to do: the caller says so

  std::error_code ec;
  fs::create_directories(s.out_dir, ec);
  if (ec) return infra_error("cannot create output folder " + s.out_dir + ": " + ec.message());

  auto store = store::Hdf5Store::open_for_write(s.store_path);
  if (!store) return store.error();
  core::RunInfo& info = s.info;
  info.run_id = run_id;
  info.campaign = campaign.name;
  info.campaign_source = campaign.source;
  info.version = kVersion;
  info.git_commit = kGitCommit;
  info.hosts = sys::host_name();
  info.started_unix = started_unix;
  info.ranks = static_cast<std::uint32_t>(t.size());
  info.coordinators = static_cast<std::uint32_t>(o.coordinators);
  info.workers = static_cast<std::uint32_t>(t.size() - o.coordinators);
  info.tasks_total = static_cast<std::uint32_t>(campaign.tasks.size());
  if (resuming) {
    if (auto resumed = (*store)->resume_run(info, campaign.tasks); !resumed) return resumed.error();
    spdlog::info("resuming run {} from {}: {} of {} tasks have a final result and are kept; {} to run",
                 run_id, s.out_dir, p.plan.kept, campaign.tasks.size(), p.plan.tasks.size());
  } else {
    if (auto begun = (*store)->begin_run(info, campaign.tasks); !begun) return begun.error();
    if (auto recorded = write_run_record(s.out_dir, info, s.store_path, campaign.tasks); !recorded) {
      info.status = "aborted";
      (void)(*store)->end_run(info);
      return recorded.error();
    }
  }
  s.job_first_row = (*store)->result_rows();
  if (auto closed = (*store)->close(); !closed) return closed.error();
  return p;
}

// Coordinators 1..N-1: the Setup rank 0 sends once it has prepared the run (bounded wait).
Result<Prepared> receive_setup(core::Transport& t, const RunOptions& o, const core::Campaign& campaign,
                               bool* told_to_stop) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(o.timing.startup_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = t.receive(10);
    if (!m || m->from != 0) continue;  // peers' Raft messages before the run is set up: dropped
    if (m->type == mpi::tag(mpi::MsgType::kShutdown)) {
      *told_to_stop = true;
      return infra_error("rank 0 could not start the run");
    }
    if (m->type != mpi::tag(mpi::MsgType::kSetup)) continue;
    auto setup = wire::decode<mpi::SetupMsg>(m->body);
    if (!setup)
      return infra_error("rank " + std::to_string(t.rank()) +
                         ": bad Setup from rank 0: " + setup.error().message);
    Prepared p;
    p.setup = std::move(*setup);
    std::vector<std::uint32_t> kept;
    for (const auto& r : p.setup.kept) kept.push_back(r.task);
    p.plan = core::plan_resume(campaign.tasks, kept);
    return p;
  }
  return infra_error("rank " + std::to_string(t.rank()) + ": no Setup from rank 0 within " +
                     std::to_string(o.timing.startup_timeout_ms) + " ms");
}

// The leader's store (mpi::LeaderStore): opened on taking over with the run current again;
// appends go through a RemapSink so the store only sees campaign indices.
class RunStore final : public mpi::LeaderStore {
 public:
  RunStore(const Prepared& p, std::span<const core::TaskSpec> campaign_tasks)
      : p_(p), campaign_tasks_(campaign_tasks), to_plan_(campaign_tasks.size(), kNoTask) {
    for (std::uint32_t i = 0; i < p.plan.original.size(); ++i) to_plan_[p.plan.original[i]] = i;
  }

  Result<core::ResultSink*> open(std::vector<std::pair<std::uint32_t, std::uint32_t>>* written) override {
    close();
    auto store = store::Hdf5Store::open_for_write(p_.setup.store_path);
    if (!store) return store.error();
    if (auto resumed = (*store)->resume_run(p_.setup.info, campaign_tasks_); !resumed) return resumed.error();
    auto rows = (*store)->written_attempts(p_.setup.job_first_row);
    if (!rows) return rows.error();
    written->clear();
    for (const auto& [task, attempt] : *rows)
      if (task < to_plan_.size() && to_plan_[task] != kNoTask) written->emplace_back(to_plan_[task], attempt);
    store_ = std::move(*store);
    remap_ = std::make_unique<RemapSink>(*store_, p_.plan.original);
    return remap_.get();
  }

  void close() override {
    remap_.reset();
    if (store_) {
      if (auto closed = store_->close(); !closed) spdlog::warn("{}", closed.error().message);
      store_.reset();
    }
  }

  store::Hdf5Store* store() { return store_.get(); }

 private:
  static constexpr std::uint32_t kNoTask = ~0u;
  const Prepared& p_;
  std::span<const core::TaskSpec> campaign_tasks_;
  std::vector<std::uint32_t> to_plan_;  // campaign index -> plan index
  std::unique_ptr<store::Hdf5Store> store_;
  std::unique_ptr<RemapSink> remap_;
};

// junit.xml, summary.md and report.html for CI (docs/report.md, docs/ci.md): the run's tasks, and
// the trends of the store's history up to this run. Best effort: a failure is reported and does
// not change the run's exit code (summary.json and results.csv are the run's record).
void write_ci_outputs(const std::string& out_dir, const std::string& store_path, const core::RunInfo& info,
                      const core::Campaign& campaign, std::span<const core::TaskResult> finals) {
  const auto rows = report::rows_from_results(campaign.tasks, finals);
  // The campaign's thresholds are the minimum effects of a regression (docs/campaigns.md).
  report::TrendOptions trend_options;
  trend_options.threshold_pct = campaign.thresholds.latency_pct;
  trend_options.throughput_pct = campaign.thresholds.throughput_pct;
  trend_options.accuracy_abs = campaign.thresholds.accuracy_abs;
  auto input = report::load_report_input(store_path, info.run_id, trend_options);
  if (!input) spdlog::warn("report.html and the trends in junit.xml skipped: {}", input.error().message);
  const std::vector<report::SeriesTrend> none;
  const auto& trends = input ? input->trends : none;
  const std::pair<std::string, std::string> files[] = {
      {out_dir + "/junit.xml", report::junit_xml(info, rows, trends)},
      {out_dir + "/summary.md", report::markdown_summary(info, rows, trends)}};
  for (const auto& [path, text] : files)
    if (auto w = report::write_text_file(path, text); !w)
      std::cerr << "ipfs-accelerate: " << w.error().message << "\n";
  if (input) {
    input->generator = std::string("ipfs-accelerate ") + kVersion;
    input->generated_unix = unix_s();
    if (auto w = report::write_html_report(out_dir + "/report.html", *input); !w)
      std::cerr << "ipfs-accelerate: " << w.error().message << "\n";
  }
}

// The final leader's outputs: the run's end in the store, summary.json, results.csv, the status
// file and the one-line report. Returns the run's exit code.
int write_outputs(const RunOptions& o, const Prepared& p, const core::Campaign& campaign, RunStore& store,
                  mpi::CoordinatorReport& rep) {
  const bool resuming = !o.resume.empty();
  const auto& plan = p.plan;
  core::RunInfo info = p.setup.info;
  for (auto& r : rep.finals) r.task = plan.original[r.task];  // back to campaign indices
  auto& c = rep.counts;
  c.total = static_cast<std::uint32_t>(campaign.tasks.size());
  for (const auto& r : p.setup.kept) {  // kept results count as this run's
    ++c.finished;
    ++c.by_status[static_cast<int>(r.outcome.status)];
    if (r.attempt > 0) ++c.retried;
    if (r.flaky) ++c.flaky;
  }
  rep.finals.insert(rep.finals.begin(), p.setup.kept.begin(), p.setup.kept.end());

  report::RunSummary sum;
  sum.counts = rep.counts;
  if (resuming) {
    sum.resumed_from = p.setup.out_dir;
    sum.results_kept = plan.kept;
  }
  sum.exit_code = report::exit_code_for(rep.counts, rep.infra_error);
  info.ended_unix = unix_s();
  info.status = !rep.infra_error.empty() ? "aborted" : sum.exit_code == 0 ? "completed" : "failed";
  std::string hosts = info.hosts;
  for (const auto& w : rep.workers)
    if (!w.host.empty() && ("," + hosts + ",").find("," + w.host + ",") == std::string::npos)
      hosts += "," + w.host;
  info.hosts = hosts;
  info.workers = rep.counts.workers_joined;
  if (store.store() == nullptr) {
    sum.exit_code = 3;  // the store could not be opened: rep.infra_error says why
  } else if (auto ended = store.store()->end_run(info); !ended && rep.infra_error.empty()) {
    rep.infra_error = "store: " + ended.error().message;
    sum.exit_code = 3;
  }

  sum.run = info;
  sum.out_dir = p.setup.out_dir;
  sum.store_path = p.setup.store_path;
  sum.results_written = rep.results_written;
  sum.messages_rejected = rep.messages_rejected;
  sum.wall_s = rep.wall_s;
  sum.dispatch_s = rep.dispatch_s;
  sum.prefetch = o.prefetch;
  sum.infra_error = rep.infra_error;
  sum.leader = rep.leader;
  sum.leader_changes = rep.leader_changes;
  sum.failover_ms = rep.failover_ms;
  for (const auto& w : rep.workers)
    sum.workers.push_back(report::WorkerSummary{w.rank, w.host, w.lost, w.executor_restarts, w.load1,
                                                w.mem_available_bytes, w.disk_free_bytes,
                                                w.gpu_mem_used_bytes, w.gpu_mem_total_bytes});
  auto wrote = report::write_summary_json(p.setup.out_dir + "/summary.json", sum);
  auto wrote_csv = report::write_results_csv(p.setup.out_dir + "/results.csv", campaign.tasks, rep.finals);
  if (!wrote || !wrote_csv) {
    std::cerr << "ipfs-accelerate: " << (!wrote ? wrote.error().message : wrote_csv.error().message) << "\n";
    sum.exit_code = 3;
  }
  write_ci_outputs(p.setup.out_dir, p.setup.store_path, info, campaign, rep.finals);

  auto n = [&](core::TaskStatus st) { return c.by_status[static_cast<int>(st)]; };
  std::ostringstream line;
  line << "run " << info.run_id << ": " << c.total << " tasks: " << n(core::TaskStatus::kPassed)
       << " passed, " << n(core::TaskStatus::kFailed) << " failed, " << n(core::TaskStatus::kCrashed)
       << " crashed, " << n(core::TaskStatus::kTimeout) << " timeout, " << n(core::TaskStatus::kOom)
       << " oom, " << n(core::TaskStatus::kSkipped) << " skipped; " << c.retried << " retried; "
       << c.workers_joined << " workers (" << c.workers_lost << " lost); " << rep.results_written
       << " results written in " << rep.wall_s << " s";
  if (o.coordinators > 1)
    line << "; leader rank " << rep.leader << ", " << rep.leader_changes << " leader change"
         << (rep.leader_changes == 1 ? "" : "s");
  std::cout << line.str() << "\n";
  if (!rep.infra_error.empty()) std::cerr << "ipfs-accelerate: run aborted: " << rep.infra_error << "\n";
  std::cout << "store: " << p.setup.store_path << "\n";
  std::cout << "results: " << p.setup.out_dir << std::endl;
  write_status(o, sum.exit_code);
  return sum.exit_code;
}

// Every coordinator rank (0..N-1) enters here. Rank 0 prepares the run and sends it to the other
// coordinators; then all of them run the quorum. The one that completes the run as leader writes
// the outputs and the status file.
int coordinate(core::Transport& t, const RunOptions& o) {
  const bool first = t.rank() == 0;
  auto campaign = o.campaign.empty() ? config::load_default_campaign(load_context())
                                     : config::load_campaign_file(o.campaign, load_context());
  if (!campaign) {
    if (!first) return static_cast<int>(campaign.error().code);  // rank 0 reports it
    write_status(o, static_cast<int>(campaign.error().code));
    return fail(t, campaign.error());
  }

  Result<Prepared> prepared = Error{};
  if (first) {
    prepared = prepare_run(t, o, *campaign);
    if (!prepared) {
      write_status(o, static_cast<int>(prepared.error().code));
      return fail(t, prepared.error());
    }
    if (prepared->plan.tasks.empty()) {
      std::cout << "run " << prepared->setup.info.run_id << ": all " << campaign->tasks.size()
                << " tasks already have a final result; nothing left to do (nothing written)\n";
      std::cout << "results: " << prepared->setup.out_dir << std::endl;
      write_status(o, 0);
      abort_workers(t, "nothing left to do");
      return 0;
    }
    const auto body = wire::encode(prepared->setup);
    for (int r = 1; r < o.coordinators; ++r) t.send(r, mpi::tag(mpi::MsgType::kSetup), body);
    spdlog::info("run {}: campaign '{}' ({}), {} tasks on {} workers, {} coordinator{}; store {}",
                 prepared->setup.info.run_id, campaign->name, campaign->source, campaign->tasks.size(),
                 t.size() - o.coordinators, o.coordinators, o.coordinators > 1 ? "s" : "",
                 prepared->setup.store_path);
  } else {
    bool told_to_stop = false;
    prepared = receive_setup(t, o, *campaign, &told_to_stop);
    if (!prepared) {
      if (told_to_stop) return 0;  // rank 0 reported why
      std::cerr << "ipfs-accelerate: " << prepared.error().message << "\n";
      return 3;
    }
  }

  mpi::CoordinatorConfig cfg;
  cfg.timing = o.timing;
  cfg.chaos = o.chaos;
  cfg.coordinators = o.coordinators;
  cfg.prefetch = o.prefetch;
  RunStore store(*prepared, campaign->tasks);
  auto rep = mpi::run_coordinator(t, prepared->plan.tasks, store, cfg, [&](mpi::CoordinatorReport& r) {
    return write_outputs(o, *prepared, *campaign, store, r);
  });
  store.close();
  if (rep.final_leader) return report::exit_code_for(rep.counts, rep.infra_error);
  if (!rep.infra_error.empty()) {
    // No quorum: the leader that could write the outputs is gone. This rank says why.
    std::cerr << "ipfs-accelerate: rank " << t.rank() << ": run " << prepared->setup.info.run_id
              << " stopped: " << rep.infra_error << " (" << prepared->setup.out_dir << ")\n";
    write_status(o, 3);
    return 3;
  }
  return 0;
}

int work(core::Transport& t, const RunOptions& o) {
  mpi::WorkerConfig cfg;
  cfg.timing = o.timing;
  cfg.chaos = o.chaos;
  cfg.coordinators = o.coordinators;
  cfg.disk_path = o.out_dir.empty() ? "." : o.out_dir;
  const int gpus = sys::gpu_device_count();
  if (gpus > 0) {
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    cfg.gpu_device = (local ? std::atoi(local) : t.rank()) % gpus;
    // Tasks run in the executor process: tell it the same GPU (the model kind reads it).
    cfg.executor.env.push_back(std::string(engine::kCudaDeviceEnv) + "=" + std::to_string(cfg.gpu_device));
  }
  return mpi::run_worker(t, cfg);
}

}  // namespace

int run_command(const RunOptions& o) {
  const char* env_rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const int world_rank = env_rank ? std::atoi(env_rank) : 0;
  // Before the campaign starts, rank 0 speaks for the job; afterwards the rank that ends it does.
  auto startup_status = [&](int code) {
    if (world_rank == 0) write_status(o, code);
  };

  // MPI_Init and MPI_Comm_dup are collective: a rank that dies inside them (killed, OOM, node lost
  // while the job starts) leaves the others waiting forever. Bound them.
  sys::Watchdog startup(o.timing.startup_timeout_ms / 1000.0, 3, [&] {
    // One write, so the ranks' lines do not interleave.
    std::cerr << ("ipfs-accelerate: rank " + std::to_string(world_rank) +
                  ": MPI start-up did not complete within " + std::to_string(o.timing.startup_timeout_ms) +
                  " ms (did a rank die while the job started?); exiting\n");
    startup_status(3);
  });
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // watchdog threads never call MPI
  int code = 0;
  {
    mpi::MpiTransport transport;  // collective: MPI_Comm_dup
    startup.disarm();
    code = transport.rank() < o.coordinators ? coordinate(transport, o) : work(transport, o);
  }
  // Every result is in the store and the status is written; MPI_Finalize may still wait on a peer
  // that died (Open MPI fences at finalize). Do not let it hold the job.
  sys::Watchdog finalize(o.timing.finalize_timeout_ms / 1000.0, code, [&] {
    std::cerr << ("ipfs-accelerate: rank " + std::to_string(world_rank) +
                  ": MPI_Finalize did not complete within " + std::to_string(o.timing.finalize_timeout_ms) +
                  " ms (a peer rank died?); exiting with code " + std::to_string(code) + "\n");
  });
  MPI_Finalize();
  finalize.disarm();
  return code;
}

}  // namespace ipfsa::cli
