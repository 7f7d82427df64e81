// A campaign after loading: its settings and its deterministic list of tasks (M1).
// The YAML parser lives in src/config (it needs yaml-cpp); this header is the pure model.
// No third-party includes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/task.hpp"

namespace ipfsa::core {

struct CampaignDefaults {
  std::uint32_t repeats = 5;
  std::uint32_t warmup = 1;
  double timeout_s = 60.0;
  std::uint32_t retries = 1;
  std::uint64_t memory_mb = 2048;
};

// Regression thresholds used by trend analysis (issue "Trend analysis"); carried from the file.
struct Thresholds {
  double latency_pct = 10.0;
  double throughput_pct = 10.0;
  double accuracy_abs = 0.01;
};

struct Campaign {
  std::string name;
  std::string source;  // file path, or "<embedded default>"
  std::string store;   // trend store path from the file; empty = caller's default
  CampaignDefaults defaults;
  Thresholds thresholds;
  std::vector<TaskSpec> tasks;  // expanded; tasks[i].index == i
};

}  // namespace ipfsa::core
