// Machine probes (src/sys): capabilities at join and health in heartbeats.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "sys/health.hpp"

namespace ipfsa::sys {
namespace {

bool cpuinfo_has_flag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0) return (line + " ").find(" " + flag + " ") != std::string::npos;
  return false;
}

TEST(Probe, WorkerInfoDescribesThisMachine) {
  const auto w = probe_worker_info(3, -1);
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.host, host_name());
  EXPECT_GE(w.cores, 1u);
  EXPECT_GT(w.memory_bytes, 64ull << 20);
  EXPECT_EQ(w.gpus, 0u) << "no GPU was asked for";
  bool listed = false;
  for (const auto& f : w.cpu_features) listed |= f == "avx2";
  EXPECT_EQ(listed, cpuinfo_has_flag("avx2"));
}

TEST(Probe, HealthReadsMemoryDiskAndLoad) {
  const auto h = probe_health(".", -1);
  EXPECT_GT(h.mem_total_bytes, 0u);
  EXPECT_GT(h.mem_available_bytes, 0u);
  EXPECT_LE(h.mem_available_bytes, h.mem_total_bytes);
  EXPECT_GT(h.disk_free_bytes, 0u);
  EXPECT_GT(h.rss_bytes, 0u);
  EXPECT_GE(h.load1, 0.0);
}

TEST(Probe, GpuCapabilitiesWhenADeviceExists) {
  if (gpu_device_count() == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
  const auto w = probe_worker_info(1, 0);
  EXPECT_EQ(w.gpus, 1u);
  EXPECT_FALSE(w.gpu_name.empty());
  EXPECT_GE(w.gpu_cc, 50);
  EXPECT_GT(w.gpu_memory_bytes, 0u);
  const auto h = probe_health(".", 0);
  EXPECT_EQ(h.gpu_mem_total_bytes, w.gpu_memory_bytes);
}

}  // namespace
}  // namespace ipfsa::sys
