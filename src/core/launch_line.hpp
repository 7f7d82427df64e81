// The mpirun command line `ipfs-accelerate launch` runs (ReFrame-style: built as tokens, asserted
// token by token in tests, never via a shell). Pure.
#pragma once

#include <string>
#include <vector>

namespace ipfsa::core {

struct LaunchOptions {
  int np = 4;
  std::string mpirun = "mpirun";
  std::vector<std::string> mpirun_args;  // extra arguments for mpirun, placed before -np
  std::vector<std::string> run_args;     // arguments for `ipfs-accelerate run`
};

// mpirun --enable-recovery [mpirun_args] -np N SELF run [run_args] --status-file STATUS_FILE
std::vector<std::string> mpirun_command(const LaunchOptions& o, const std::string& self,
                                        const std::string& status_file);

}  // namespace ipfsa::core
