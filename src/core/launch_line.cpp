#include "core/launch_line.hpp"

namespace ipfsa::core {

std::vector<std::string> mpirun_command(const LaunchOptions& o, const std::string& self,
                                        const std::string& status_file) {
  std::vector<std::string> cmd = {o.mpirun, "--enable-recovery"};
  cmd.insert(cmd.end(), o.mpirun_args.begin(), o.mpirun_args.end());
  cmd.insert(cmd.end(), {"-np", std::to_string(o.np), self, "run"});
  cmd.insert(cmd.end(), o.run_args.begin(), o.run_args.end());
  cmd.insert(cmd.end(), {"--status-file", status_file});
  return cmd;
}

}  // namespace ipfsa::core
