// The subcommands of ipfs-accelerate. Each returns the process exit code (see main.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "mpi/loops.hpp"

namespace ipfsa::cli {

struct RunOptions {
  std::string campaign;  // empty: embedded default
  std::string out_dir;
  std::string store;
  int coordinators = 1;
  std::uint32_t prefetch = 2;
  mpi::Timing timing;
  mpi::Chaos chaos;
  std::string status_file;  // the rank that ends the run writes its exit code here (see launch.hpp)
  std::string resume;       // run folder of an earlier, interrupted run to continue
};

struct ValidateOptions {
  std::string campaign;
  bool list = false;
};

// MPI contract: every rank calls run_command; it calls MPI_Init and MPI_Finalize.
int run_command(const RunOptions& options);
int validate_command(const ValidateOptions& options);
int store_show_command(const std::string& path, const std::string& run_id, bool all);
int kinds_command();

struct TrendsOptions {
  std::string csv;    // --csv FILE: series given as rows (exactly one of csv and store)
  std::string store;  // --store FILE: series from the HDF5 trend store
  std::string run;    // with store: the run judged (default: the newest)
  std::string format = "text";
  double threshold_pct = 10.0;
  double throughput_pct = 10.0;
  double accuracy_abs = 0.01;
  bool higher_is_better = false;
};
// Exit 0 when no series regressed, 1 when any did, 2 for bad input.
int trends_command(const TrendsOptions& options);

}  // namespace ipfsa::cli
