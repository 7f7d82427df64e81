#include "sys/health.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#ifdef IPFSA_HAVE_CUDA
#include "device_info.cuh"
#endif

namespace ipfsa::sys {

namespace {

// Value in kB of `key:` in a /proc file such as /proc/meminfo or /proc/self/status.
std::uint64_t proc_kb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':') {
      std::istringstream ss(line.substr(key.size() + 1));
      std::uint64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace

std::string nvidia_driver_version(std::string_view text) {
  constexpr std::string_view kPrefix = "NVRM version:";
  const auto at = text.find(kPrefix);
  if (at == std::string_view::npos) return {};
  std::string_view line = text.substr(at + kPrefix.size());
  line = line.substr(0, line.find('\n'));
  std::istringstream ss{std::string(line)};
  std::string token;
  while (ss >> token) {
    const bool digits_and_dots =
        std::all_of(token.begin(), token.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (digits_and_dots && token.front() != '.' && token.back() != '.' &&
        token.find('.') != std::string::npos)
      return token;
  }
  return {};
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

int gpu_device_count() {
#ifdef IPFSA_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

core::WorkerInfo probe_worker_info(std::int32_t rank, int gpu_device) {
  core::WorkerInfo w;
  w.rank = rank;
  w.host = host_name();
  w.cores = std::max(1u, std::thread::hardware_concurrency());
  w.memory_bytes = proc_kb("/proc/meminfo", "MemTotal");
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_first_of(" \t"));
    std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model" && line.compare(0, 10, "model name") == 0 && w.cpu_model.empty()) {
      w.cpu_model = value;
    } else if (key == "flags" && w.cpu_features.empty()) {
      std::istringstream ss(value);
      std::string flag;
      static const char* kInteresting[] = {"sse4_2",      "avx",      "avx2",     "fma",
                                           "f16c",        "avx512f",  "avx512bw", "avx512_vnni",
                                           "avx512_bf16", "amx_tile", "neon",     "sve"};
      while (ss >> flag)
        for (const char* want : kInteresting)
          if (flag == want) w.cpu_features.push_back(flag);
    }
  }
#ifdef IPFSA_HAVE_CUDA
  cuda::GpuInfo g;
  if (gpu_device >= 0 && cuda::device_info(gpu_device, &g)) {
    w.gpus = 1;
    w.gpu_name = g.name;
    w.gpu_cc = g.cc_major * 10 + g.cc_minor;
    w.gpu_memory_bytes = g.total_memory_bytes;
    std::ifstream version("/proc/driver/nvidia/version");
    std::stringstream text;
    text << version.rdbuf();
    w.gpu_driver = nvidia_driver_version(text.str());
  }
#else
  (void)gpu_device;
#endif
  return w;
}

Health probe_health(const std::string& disk_path, int gpu_device) {
  Health h;
  {
    std::ifstream in("/proc/loadavg");
    in >> h.load1;
  }
  h.mem_total_bytes = proc_kb("/proc/meminfo", "MemTotal");
  h.mem_available_bytes = proc_kb("/proc/meminfo", "MemAvailable");
  h.rss_bytes = proc_kb("/proc/self/status", "VmRSS");
  struct statvfs vfs {};
  if (statvfs(disk_path.empty() ? "." : disk_path.c_str(), &vfs) == 0)
    h.disk_free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  std::ifstream net("/proc/net/dev");
  std::string line;
  while (std::getline(net, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string iface = line.substr(0, colon);
    iface.erase(0, iface.find_first_not_of(' '));
    if (iface == "lo") continue;
    std::istringstream ss(line.substr(colon + 1));
    std::uint64_t v[9] = {};
    for (auto& x : v) ss >> x;
    h.net_rx_bytes += v[0];
    h.net_tx_bytes += v[8];
  }
#ifdef IPFSA_HAVE_CUDA
  std::uint64_t free_b = 0, total_b = 0;
  if (gpu_device >= 0 && cuda::device_memory(gpu_device, &free_b, &total_b)) {
    h.gpu_mem_total_bytes = total_b;
    h.gpu_mem_used_bytes = total_b - free_b;
  }
#else
  (void)gpu_device;
#endif
  return h;
}

}  // namespace ipfsa::sys
