#include "cli/models_run_command.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "core/stats.hpp"
#include "engine/model_kind.hpp"

namespace ipfsa::cli {

int models_run_command(const ModelsRunOptions& o) {
  if (o.model.empty() == o.dir.empty()) {
    std::cerr << "ipfs-accelerate: models run: give a catalog model name or --dir (one of them)\n";
    return 2;
  }
  if (o.device != "cpu" && o.device != "cuda") {
    std::cerr << "ipfs-accelerate: models run: --device must be cpu or cuda, got '" << o.device << "'\n";
    return 2;
  }
  core::TaskSpec task;
  task.kind = "model";
  task.model = o.model;
  task.precision = o.precision;
  task.scenario = o.scenario;
  task.batch = o.batch;
  task.seq_len = o.seq_len;
  task.repeats = o.repeats;
  task.warmup = o.warmup;
  task.hardware = o.device;
  task.params = {{"seed", std::to_string(o.seed)}, {"size", o.size}, {"threads", std::to_string(o.threads)}};
  if (!o.dir.empty()) task.params.emplace_back("path", o.dir);
  std::sort(task.params.begin(), task.params.end());

  std::string gpu_name;
  auto outcome = engine::run_model_task(task, /*cuda_device=*/0, &gpu_name);
  if (!outcome) {
    std::cerr << "ipfs-accelerate: models run: " << outcome.error().message << "\n";
    return static_cast<int>(outcome.error().code);
  }
  const auto& out = *outcome;
  auto samples = out.samples_s;
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) { return samples.empty() ? NAN : core::percentile(samples, p); };
  nlohmann::json j;
  j["model"] = o.dir.empty() ? o.model : o.dir;
  j["precision"] = o.precision;
  j["scenario"] = o.scenario;
  j["batch"] = o.batch;
  j["seq_len"] = o.seq_len;
  j["device"] = o.device;
  if (o.device == "cuda") j["gpu_name"] = gpu_name;
  j["status"] = std::string(core::to_string(out.status));
  j["p50_s"] = pct(50);
  j["p90_s"] = pct(90);
  j["p99_s"] = pct(99);
  j["throughput"] = out.throughput;
  j["acc_cosine"] = out.acc_cosine;
  j["acc_rel_error"] = out.acc_rel_error;
  j["acc_kl"] = out.acc_kl;
  j["acc_top1"] = out.acc_top1;
  for (const auto& [k, v] : out.metrics) j[k] = v;
  if (o.json) {
    std::cout << j.dump() << "\n";
  } else {
    for (auto it = j.begin(); it != j.end(); ++it) std::cout << it.key() << ": " << it.value().dump() << "\n";
  }
  return out.status == core::TaskStatus::kPassed ? 0 : 1;
}

}  // namespace ipfsa::cli
