// ipfs-accelerate: the one binary every MPI rank runs. Parses the command line (CLI11) and hands
// over to a command. Exceptions stop here and become exit codes (../STYLE.md §4):
//   0 all tasks passed · 1 some task did not pass · 2 usage or input error · 3 infrastructure failure.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli/bench_gemv_command.hpp"
#include "cli/bench_kv_command.hpp"
#include "cli/commands.hpp"
#include "cli/launch.hpp"
#include "cli/models_command.hpp"
#include "cli/models_run_command.hpp"
#include "cli/quantize_command.hpp"
#include "cli/report_command.hpp"
#include "core/chaos.hpp"
#include "core/version.hpp"
#include "exec/executor.hpp"

namespace {

// Rank as mpirun announces it, readable before MPI_Init; 0 outside mpirun.
int launcher_rank() {
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  if (!r) r = std::getenv("PMI_RANK");
  return r ? std::atoi(r) : 0;
}

// A usage error under `launch`: tell the launcher through the status file, if one was named.
void write_status_file_from_argv(int argc, char** argv, int code) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "--status-file") std::ofstream(argv[i + 1]) << code << "\n";
}

void setup_logging(const std::string& level, int rank) {
  auto logger = spdlog::stderr_logger_mt("ipfsa");
  logger->set_pattern(rank >= 0 ? "[%H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%^%l%$] %v"
                                : "[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  // The executor is spawned as `ipfs-accelerate __executor`: no CLI, no MPI, no logging set-up.
  if (argc == 2 && std::string_view(argv[1]) == "__executor") return ipfsa::exec::executor_main();

  const int rank = launcher_rank();
  CLI::App app{"ipfs-accelerate: distributed test and benchmark campaigns for ML inference on MPI"};
  app.set_version_flag("--version",
                       std::string("ipfs-accelerate ") + ipfsa::kVersion + " (" + ipfsa::kGitCommit + ")");
  app.require_subcommand(1);
  app.fallthrough();  // global options (--log-level) may follow the subcommand
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  ipfsa::cli::RunOptions run;
  auto* run_cmd =
      app.add_subcommand("run", "Run a campaign (under mpirun: rank 0 coordinates, the others work)");
  run_cmd->add_option("campaign", run.campaign,
                      "Campaign YAML file (default: the embedded default campaign)");
  auto* out_opt = run_cmd->add_option(
      "--out", run.out_dir, "Output folder for summary.json and results.csv (default: results/runs/RUN_ID)");
  run_cmd
      ->add_option("--resume", run.resume,
                   "Continue the interrupted run whose output folder is RUN_DIR (same campaign): keep its "
                   "final results, run the rest; its outputs go to RUN_DIR")
      ->type_name("RUN_DIR")
      ->excludes(out_opt);
  run_cmd->add_option("--store", run.store,
                      "HDF5 trend store (default: the campaign's `store`, else results/trends.h5)");
  run_cmd
      ->add_option("--coordinators", run.coordinators,
                   "Coordinator ranks 0..N-1 forming the HA quorum (1, 3 or 5; N=3 survives one dead "
                   "coordinator, N=5 two)")
      ->check(CLI::IsMember({1, 3, 5}));
  run_cmd->add_option("--prefetch", run.prefetch, "Tasks queued ahead on each worker")
      ->check(CLI::Range(1, 4096));
  run_cmd->add_option("--heartbeat-ms", run.timing.heartbeat_ms, "Heartbeat interval")
      ->check(CLI::Range(10, 60000));
  run_cmd
      ->add_option("--worker-timeout-ms", run.timing.worker_timeout_ms,
                   "Silence after which a worker is lost")
      ->check(CLI::Range(100, 3600000));
  run_cmd
      ->add_option("--coordinator-timeout-ms", run.timing.coordinator_timeout_ms,
                   "Silence after which a worker gives up on the coordinator")
      ->check(CLI::Range(100, 3600000));
  run_cmd->add_option("--join-timeout-ms", run.timing.join_timeout_ms, "Time for all ranks to join")
      ->check(CLI::Range(100, 3600000));
  run_cmd
      ->add_option(
          "--startup-timeout-ms", run.timing.startup_timeout_ms,
          "Time for MPI start-up; a rank that dies during it ends the job (exit 3) instead of hanging it")
      ->check(CLI::Range(100, 3600000));
  run_cmd
      ->add_option("--finalize-timeout-ms", run.timing.finalize_timeout_ms,
                   "Time MPI_Finalize may take before a rank exits without it")
      ->check(CLI::Range(100, 3600000));

  run_cmd
      ->add_option("--election-timeout-ms", run.timing.election_timeout_ms,
                   "A coordinator that hears no leader for a random time in [T, 2T) starts an election")
      ->check(CLI::Range(20, 600000));
  run_cmd
      ->add_option("--raft-heartbeat-ms", run.timing.raft_heartbeat_ms,
                   "Leader heartbeat to the other coordinators (below the election timeout)")
      ->check(CLI::Range(5, 60000));
  run_cmd
      ->add_option(
          "--quorum-timeout-ms", run.timing.quorum_timeout_ms,
          "A coordinator with no leader for this long stops the run (exit 3; continue with --resume)")
      ->check(CLI::Range(100, 3600000));
  std::vector<std::string> chaos;
  run_cmd
      ->add_option("--chaos", chaos,
                   "Fault injection (repeatable): kill-leader-after=N (the leader SIGKILLs itself when the "
                   "Nth result is committed) or kill-rank=R@N (rank R SIGKILLs itself once N results are "
                   "committed)")
      ->type_name("SPEC");
  run_cmd->add_option("--status-file", run.status_file,
                      "The rank that ends the run writes its exit code to this file");

  ipfsa::cli::LaunchOptions launch;
  auto* launch_cmd = app.add_subcommand(
      "launch",
      "Run `mpirun --enable-recovery -np N ipfs-accelerate run ARGS` and exit with the run's exit code");
  launch_cmd->add_option("-n,--np", launch.np, "MPI ranks (1 coordinator + N-1 workers)")
      ->check(CLI::Range(2, 100000));
  launch_cmd->add_option("--mpirun", launch.mpirun, "mpirun to use");
  launch_cmd->add_option("--mpirun-arg", launch.mpirun_args, "Extra argument for mpirun (repeatable)");
  launch_cmd->add_option("args", launch.run_args, "Arguments for `run` (after --)");

  ipfsa::cli::ValidateOptions validate;
  auto* validate_cmd = app.add_subcommand("validate", "Check a campaign file and print what it expands to");
  validate_cmd->add_option("campaign", validate.campaign, "Campaign YAML file")->required();
  validate_cmd->add_flag("--list", validate.list, "List every task id");

  std::string store_path, store_run;
  bool store_all = false;
  auto* store_cmd = app.add_subcommand("store", "Inspect the HDF5 trend store");
  store_cmd->require_subcommand(1);
  auto* show_cmd =
      store_cmd->add_subcommand("show", "List runs and the results of the newest (or --run) run");
  show_cmd->add_option("file", store_path, "Trend store (.h5)")->required();
  show_cmd->add_option("--run", store_run, "Run id to show");
  show_cmd->add_flag("--all", store_all, "Show every attempt, not only final results");

  app.add_subcommand("kinds", "List the task kinds a campaign can use");

  ipfsa::cli::ModelsListOptions models_list;
  bool precisions_json = false;
  auto* models_cmd = app.add_subcommand("models", "The model catalog and the precision profiles");
  models_cmd->require_subcommand(1);
  auto* models_list_cmd = models_cmd->add_subcommand(
      "list", "List the catalog's models: HuggingFace class, family, tier, tiny and real parameter counts");
  models_list_cmd->add_option("--tier", models_list.tier, "Only this tier: critical, high or medium");
  models_list_cmd->add_option("--family", models_list.family,
                              "Only this family: encoder, decoder, encoder_decoder, vision, audio, "
                              "dual_encoder or moe");
  models_list_cmd->add_flag("--json", models_list.json, "Print a JSON array with the full architectures");
  models_list_cmd->add_flag("--markdown", models_list.markdown,
                            "Print the coverage table of docs/models.md (generated from the catalog)");
  auto* precisions_cmd =
      models_cmd->add_subcommand("precisions", "List the precision profiles a model task may use");
  precisions_cmd->add_flag("--json", precisions_json, "Print a JSON array");
  ipfsa::cli::ModelsRunOptions models_run;
  auto* models_run_cmd = models_cmd->add_subcommand(
      "run", "Run one model in this process: latency, throughput and accuracy against fp32");
  models_run_cmd->add_option("model", models_run.model, "Catalog model name (see `models list`)");
  models_run_cmd->add_option("--dir", models_run.dir,
                             "HuggingFace-style checkpoint folder (config.json + *.safetensors) instead");
  models_run_cmd->add_option("--precision", models_run.precision, "A profile of `models precisions`");
  models_run_cmd->add_option("--size", models_run.size, "tiny or real (catalog models)")
      ->check(CLI::IsMember({"tiny", "real"}));
  models_run_cmd->add_option("--scenario", models_run.scenario, "latency, throughput, prefill or decode")
      ->check(CLI::IsMember({"latency", "throughput", "prefill", "decode"}));
  models_run_cmd->add_option("--batch", models_run.batch, "Batch size")->check(CLI::Range(1, 4096));
  models_run_cmd->add_option("--seq-len", models_run.seq_len, "Sequence length")
      ->check(CLI::Range(1, 1 << 20));
  models_run_cmd->add_option("--repeats", models_run.repeats, "Timed runs")->check(CLI::Range(1, 100000));
  models_run_cmd->add_option("--warmup", models_run.warmup, "Untimed runs first")
      ->check(CLI::Range(0, 100000));
  models_run_cmd->add_option("--threads", models_run.threads, "Threads")->check(CLI::Range(1, 256));
  models_run_cmd->add_option("--seed", models_run.seed, "Seed of the synthetic weights and input");
  models_run_cmd
      ->add_option("--device", models_run.device,
                   "cpu, or cuda: the linear layers on GPU 0 (exit 3 when there is none)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  models_run_cmd->add_flag("--json", models_run.json, "Print one JSON object");

  ipfsa::cli::QuantizeOptions quant;
  auto* quant_cmd = app.add_subcommand(
      "quantize", "Quantization error of a seeded N(0,1) matrix: clipping search vs plain min/max rounding");
  quant_cmd->add_option("--bits", quant.bits, "2, 3, 4 or 8");
  quant_cmd->add_option("--group", quant.group, "Group size: 32, 64 or 128");
  // Up to 16384 x 16384 (1 GiB of fp32): larger sizes are a usage error, not an allocation failure.
  quant_cmd->add_option("--rows", quant.rows, "Matrix rows")->check(CLI::Range(1, 16384));
  quant_cmd->add_option("--cols", quant.cols, "Matrix columns")->check(CLI::Range(1, 16384));
  quant_cmd->add_option("--seed", quant.seed, "Seed of the N(0,1) matrix");
  quant_cmd->add_flag("--symmetric", quant.symmetric, "Symmetric (scale only) instead of scale + offset");
  quant_cmd->add_flag("--json", quant.json, "Print one JSON object");

  ipfsa::cli::BenchKvOptions kv;
  auto* bench_cmd = app.add_subcommand("bench", "Micro-benchmarks");
  bench_cmd->require_subcommand(1);
  auto* kv_cmd =
      bench_cmd->add_subcommand("kv", "Quantized KV cache: memory, and attention against the fp16 cache");
  kv_cmd->add_option("--bits", kv.bits, "2 or 4");
  kv_cmd->add_option("--tokens", kv.tokens, "Tokens in the cache")->check(CLI::Range(1, 1 << 20));
  kv_cmd->add_option("--heads", kv.heads, "Attention heads")->check(CLI::Range(1, 1024));
  kv_cmd->add_option("--head-dim", kv.head_dim, "Head dimension")->check(CLI::Range(1, 1024));
  kv_cmd->add_option("--group", kv.group, "Quantization group");
  kv_cmd->add_option("--window", kv.window, "Newest tokens kept in fp16");
  kv_cmd->add_option("--seed", kv.seed, "Seed of the synthetic keys, values and query");
  kv_cmd->add_flag("--json", kv.json, "Print one JSON object");

  ipfsa::cli::BenchGemvOptions gemv;
  auto* gemv_cmd = bench_cmd->add_subcommand(
      "gemv", "Low-bit dequant-fused GEMV/GEMM: time, GB/s against the read ceiling, Eigen fp32 baseline");
  gemv_cmd->add_option("--bits", gemv.bits, "2, 3, 4 or 8")->check(CLI::IsMember({2, 3, 4, 8}));
  gemv_cmd->add_option("--m", gemv.m, "Rows of W (output features)")->check(CLI::Range(1, 1 << 20));
  gemv_cmd->add_option("--k", gemv.k, "Columns of W (input features), a multiple of --group")
      ->check(CLI::Range(32, 1 << 20));
  gemv_cmd->add_option("--group", gemv.group, "Quantization group: 32, 64 or 128")
      ->check(CLI::IsMember({32, 64, 128}));
  gemv_cmd->add_option("--scheme", gemv.scheme, "asym (scale + offset) or sym (scale only)")
      ->check(CLI::IsMember({"asym", "sym"}));
  gemv_cmd->add_option("--batch", gemv.batch, "Activation rows (1: GEMV)")->check(CLI::Range(1, 4096));
  gemv_cmd->add_option("--threads", gemv.threads, "Threads (default: hardware threads)")
      ->check(CLI::Range(1, 1024));
  auto* gemv_repeats = gemv_cmd
                           ->add_option("--repeats,--runs", gemv.repeats,
                                        "Timed products; the median is reported (default 20; cuda: 100)")
                           ->check(CLI::Range(1, 100000));
  auto* gemv_stream =
      gemv_cmd->add_option("--stream-mib", gemv.stream_mib, "Buffer of the read-bandwidth probe, MiB")
          ->check(CLI::Range(1, 65536));
  gemv_cmd->add_flag("--warm", gemv.warm, "Do not evict the caches before each timed product");
  gemv_cmd->add_option("--seed", gemv.seed, "Seed of the N(0,1) matrix and activations");
  gemv_cmd->add_flag("--json", gemv.json, "Print one JSON object");
  gemv_cmd
      ->add_option("--device", gemv.device,
                   "cpu, or cuda: the GPU kernels on GPU 0 against cuBLAS fp16 (exit 3 when there is no GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));

  ipfsa::cli::TrendsOptions trends;
  auto* trends_cmd = app.add_subcommand(
      "trends", "Change points, anomalies and regression verdicts of metric series (exit 1 on a regression)");
  auto* trends_csv = trends_cmd->add_option(
      "--csv", trends.csv, "Series as CSV with columns series,run,value (rows in run order)");
  auto* trends_store =
      trends_cmd
          ->add_option(
              "--store", trends.store,
              "HDF5 trend store: every metric of every configuration and hardware fingerprint over its runs")
          ->excludes(trends_csv);
  trends_cmd
      ->add_option("--run", trends.run,
                   "With --store: judge this run (series end at it; default: the newest run)")
      ->needs(trends_store);
  trends_cmd->add_option("--format", trends.format, "text, json, junit (JUnit XML) or markdown")
      ->check(CLI::IsMember({"text", "json", "junit", "markdown"}));
  trends_cmd
      ->add_option("--threshold-pct", trends.threshold_pct,
                   "Minimum effect for a verdict, in percent (store mode: latency and memory; campaign "
                   "thresholds.latency_pct)")
      ->check(CLI::Range(0.0, 1e6));
  trends_cmd
      ->add_option("--throughput-pct", trends.throughput_pct,
                   "Store mode: minimum throughput effect for a verdict, in percent (campaign "
                   "thresholds.throughput_pct)")
      ->check(CLI::Range(0.0, 1e6));
  trends_cmd
      ->add_option("--accuracy-abs", trends.accuracy_abs,
                   "Store mode: minimum drop of accuracy (cosine against fp32) for a verdict "
                   "(thresholds.accuracy_abs)")
      ->check(CLI::Range(0.0, 1.0));
  trends_cmd
      ->add_flag("--higher-is-better", trends.higher_is_better,
                 "With --csv: the metric is throughput-like (default: latency-like, higher is worse)")
      ->excludes(trends_store);
  trends_cmd->callback([&] {
    if (trends.csv.empty() && trends.store.empty()) throw CLI::RequiredError("--csv or --store");
  });

  ipfsa::cli::ReportOptions report_opts;
  auto* report_cmd = ipfsa::cli::add_report_command(app, report_opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    if (rank == 0) return app.exit(e);
    return 0;
  } catch (const CLI::CallForAllHelp& e) {
    if (rank == 0) return app.exit(e);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    if (rank == 0) return app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    if (rank == 0) {
      std::cerr << "ipfs-accelerate: " << e.what() << "\n";
      std::cerr << "Run 'ipfs-accelerate --help' for usage.\n";
      write_status_file_from_argv(argc, argv, 2);
    }
    return 2;
  }

  try {
    if (run_cmd->parsed()) {
      auto parsed_chaos = ipfsa::core::parse_chaos(chaos);
      if (!parsed_chaos) {
        if (rank == 0) {
          std::cerr << "ipfs-accelerate: " << parsed_chaos.error().message << "\n";
          write_status_file_from_argv(argc, argv, 2);
        }
        return 2;
      }
      run.chaos = std::move(*parsed_chaos);
      setup_logging(log_level, rank);
      return ipfsa::cli::run_command(run);
    }
    if (launch_cmd->parsed()) return ipfsa::cli::launch_command(launch);
    setup_logging(log_level, -1);
    if (validate_cmd->parsed()) return ipfsa::cli::validate_command(validate);
    if (show_cmd->parsed()) return ipfsa::cli::store_show_command(store_path, store_run, store_all);
    if (trends_cmd->parsed()) return ipfsa::cli::trends_command(trends);
    if (report_cmd->parsed()) return ipfsa::cli::report_command(report_opts);
    if (quant_cmd->parsed()) return ipfsa::cli::quantize_command(quant);
    if (kv_cmd->parsed()) return ipfsa::cli::bench_kv_command(kv);
    if (gemv_cmd->parsed()) {
      gemv.repeats_given = gemv_repeats->count() > 0;
      gemv.stream_mib_given = gemv_stream->count() > 0;
      return ipfsa::cli::bench_gemv_command(gemv);
    }
    if (models_list_cmd->parsed()) return ipfsa::cli::models_list_command(models_list);
    if (precisions_cmd->parsed()) return ipfsa::cli::models_precisions_command(precisions_json);
    if (models_run_cmd->parsed()) return ipfsa::cli::models_run_command(models_run);
    return ipfsa::cli::kinds_command();
  } catch (const std::exception& e) {
    std::cerr << "ipfs-accelerate: internal error: " << e.what() << "\n";
    return 3;
  }
}
