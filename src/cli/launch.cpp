#include "cli/launch.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

extern char** environ;

namespace ipfsa::cli {

int launch_command(const LaunchOptions& o) {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    std::cerr << "ipfs-accelerate: launch: cannot find own binary: " << ec.message() << "\n";
    return 3;
  }
  char tmpl[] = "/tmp/ipfsa-status.XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) {
    std::cerr << "ipfs-accelerate: launch: cannot create a status file in /tmp\n";
    return 3;
  }
  close(fd);
  const std::string status_file = tmpl;
  const auto cmd = core::mpirun_command(o, self, status_file);
  std::vector<char*> argv;
  for (const auto& s : cmd) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    std::cerr << "ipfs-accelerate: launch: cannot start " << o.mpirun << "\n";
    std::filesystem::remove(status_file, ec);
    return 3;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int code = -1;
  std::ifstream in(status_file);
  if (!(in >> code)) code = -1;
  std::filesystem::remove(status_file, ec);
  if (code >= 0) return code;
  std::cerr << "ipfs-accelerate: launch: no coordinator left an exit code (mpirun "
            << (WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                  : "killed by signal " + std::to_string(WTERMSIG(status)))
            << ")\n";
  return 3;
}

}  // namespace ipfsa::cli
