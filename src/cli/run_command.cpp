// `run`: every rank enters here. Rank 0 loads the campaign, opens the store and coordinates;
// the other ranks are workers. MPI_Init and MPI_Finalize are the only collectives, at the ends.
#include <mpi.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "cli/commands.hpp"
#include "cli/models_command.hpp"
#include "config/campaign_loader.hpp"
#include "config/default_campaign.hpp"
#include "core/version.hpp"
#include "engine/model_kind.hpp"
#include "mpi/messages.hpp"
#include "mpi/transport.hpp"
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

int coordinate(core::Transport& t, const RunOptions& o) {
  auto campaign = o.campaign.empty() ? config::load_default_campaign(load_context())
                                     : config::load_campaign_file(o.campaign, load_context());
  if (!campaign) return fail(t, campaign.error());
  if (t.size() < 2)
    return fail(t,
                input_error("run needs at least 2 MPI ranks (1 coordinator + workers), got " +
                            std::to_string(t.size()) + "; start it with: mpirun -np 4 ipfs-accelerate run"));

  const std::string run_id = make_run_id();
  const std::string out_dir = o.out_dir.empty() ? "results/runs/" + run_id : o.out_dir;
  const std::string store_path = !o.store.empty()           ? o.store
                                 : !campaign->store.empty() ? campaign->store
                                                            : "results/trends.h5";
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return fail(t, infra_error("cannot create output folder " + out_dir + ": " + ec.message()));

  auto store = store::Hdf5Store::open_for_write(store_path);
  if (!store) return fail(t, store.error());

  core::RunInfo info;
  info.run_id = run_id;
  info.campaign = campaign->name;
  info.campaign_source = campaign->source;
  info.version = kVersion;
  info.git_commit = kGitCommit;
  info.hosts = sys::host_name();
  info.started_unix = unix_s();
  info.ranks = static_cast<std::uint32_t>(t.size());
  info.coordinators = static_cast<std::uint32_t>(o.coordinators);
  info.workers = static_cast<std::uint32_t>(t.size() - o.coordinators);
  info.tasks_total = static_cast<std::uint32_t>(campaign->tasks.size());
  if (auto begun = (*store)->begin_run(info, campaign->tasks); !begun) return fail(t, begun.error());

  spdlog::info("run {}: campaign '{}' ({}), {} tasks on {} workers; store {}", run_id, campaign->name,
               campaign->source, campaign->tasks.size(), info.workers, store_path);

  mpi::CoordinatorConfig cfg;
  cfg.timing = o.timing;
  cfg.prefetch = o.prefetch;
  auto rep = mpi::run_coordinator(t, campaign->tasks, **store, cfg);

  report::RunSummary sum;
  sum.counts = rep.counts;
  sum.exit_code = report::exit_code_for(rep.counts, rep.infra_error);
  info.ended_unix = unix_s();
  info.status = !rep.infra_error.empty() ? "aborted" : sum.exit_code == 0 ? "completed" : "failed";
  std::string hosts = info.hosts;
  for (const auto& w : rep.workers)
    if (!w.host.empty() && ("," + hosts + ",").find("," + w.host + ",") == std::string::npos)
      hosts += "," + w.host;
  info.hosts = hosts;
  info.workers = rep.counts.workers_joined;
  if (auto ended = (*store)->end_run(info); !ended && rep.infra_error.empty()) {
    rep.infra_error = "store: " + ended.error().message;
    sum.exit_code = 3;
  }

  sum.run = info;
  sum.out_dir = out_dir;
  sum.store_path = store_path;
  sum.results_written = rep.results_written;
  sum.messages_rejected = rep.messages_rejected;
  sum.wall_s = rep.wall_s;
  sum.dispatch_s = rep.dispatch_s;
  sum.prefetch = o.prefetch;
  sum.infra_error = rep.infra_error;
  for (const auto& w : rep.workers)
    sum.workers.push_back(report::WorkerSummary{w.rank, w.host, w.lost, w.executor_restarts, w.load1,
                                                w.mem_available_bytes, w.disk_free_bytes,
                                                w.gpu_mem_used_bytes, w.gpu_mem_total_bytes});
  auto wrote = report::write_summary_json(out_dir + "/summary.json", sum);
  auto wrote_csv = report::write_results_csv(out_dir + "/results.csv", campaign->tasks, rep.finals);
  if (!wrote || !wrote_csv) {
    std::cerr << "ipfs-accelerate: " << (!wrote ? wrote.error().message : wrote_csv.error().message) << "\n";
    sum.exit_code = 3;
  }

  const auto& c = rep.counts;
  auto n = [&](core::TaskStatus s) { return c.by_status[static_cast<int>(s)]; };
  std::cout << "run " << run_id << ": " << c.total << " tasks: " << n(core::TaskStatus::kPassed)
            << " passed, " << n(core::TaskStatus::kFailed) << " failed, " << n(core::TaskStatus::kCrashed)
            << " crashed, " << n(core::TaskStatus::kTimeout) << " timeout, " << n(core::TaskStatus::kOom)
            << " oom, " << n(core::TaskStatus::kSkipped) << " skipped; " << c.retried << " retried; "
            << c.workers_joined << " workers (" << c.workers_lost << " lost); " << rep.results_written
            << " results written in " << rep.wall_s << " s\n";
  if (!rep.infra_error.empty()) std::cerr << "ipfs-accelerate: run aborted: " << rep.infra_error << "\n";
  std::cout << "store: " << store_path << "\n";
  std::cout << "results: " << out_dir << std::endl;
  return sum.exit_code;
}

int work(core::Transport& t, const RunOptions& o) {
  mpi::WorkerConfig cfg;
  cfg.timing = o.timing;
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
  if (o.coordinators != 1) {
    if (world_rank == 0)
      std::cerr << "ipfs-accelerate: --coordinators " << o.coordinators
                << ": only 1 is supported in this version (the HA quorum with 3 or 5 is not done yet)\n";
    return 2;
  }
  auto write_status = [&](int code) {
    if (world_rank == 0 && !o.status_file.empty()) std::ofstream(o.status_file) << code << "\n";
  };

  // MPI_Init and MPI_Comm_dup are collective: a rank that dies inside them (killed, OOM, node lost
  // while the job starts) leaves the others waiting forever. Bound them.
  sys::Watchdog startup(o.timing.startup_timeout_ms / 1000.0, 3, [&] {
    // One write, so the ranks' lines do not interleave.
    std::cerr << ("ipfs-accelerate: rank " + std::to_string(world_rank) +
                  ": MPI start-up did not complete within " + std::to_string(o.timing.startup_timeout_ms) +
                  " ms (did a rank die while the job started?); exiting\n");
    write_status(3);
  });
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // watchdog threads never call MPI
  int code = 0;
  {
    mpi::MpiTransport transport;  // collective: MPI_Comm_dup
    startup.disarm();
    code = transport.rank() == 0 ? coordinate(transport, o) : work(transport, o);
    write_status(code);
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
