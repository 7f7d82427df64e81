// The mpirun line of `ipfs-accelerate launch`, token by token.
#include <gtest/gtest.h>

#include "core/launch_line.hpp"

namespace ipfsa::core {
namespace {

TEST(LaunchLine, ExactTokens) {
  LaunchOptions o;
  o.np = 6;
  o.mpirun_args = {"--hostfile", "hosts"};
  o.run_args = {"camp.yaml", "--out", "o"};
  const std::vector<std::string> want = {"mpirun", "--enable-recovery",    "--hostfile", "hosts",     "-np",
                                         "6",      "/opt/ipfs-accelerate", "run",        "camp.yaml", "--out",
                                         "o",      "--status-file",        "/tmp/s"};
  EXPECT_EQ(mpirun_command(o, "/opt/ipfs-accelerate", "/tmp/s"), want);
}

TEST(LaunchLine, DefaultsRunTheDefaultCampaignOnFourRanks) {
  const std::vector<std::string> want = {"mpirun", "--enable-recovery", "-np", "4", "x",
                                         "run",    "--status-file",     "f"};
  EXPECT_EQ(mpirun_command(LaunchOptions{}, "x", "f"), want);
}

}  // namespace
}  // namespace ipfsa::core
