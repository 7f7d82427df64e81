// `ipfs-accelerate quantize` (see quantize_command.hpp).
#include "cli/quantize_command.hpp"

#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/quant.hpp"

namespace ipfsa::cli {

int quantize_command(const QuantizeOptions& o) {
  engine::QuantParams params;
  params.bits = o.bits;
  params.group = o.group;
  params.scheme = o.symmetric ? engine::QuantScheme::kSymmetric : engine::QuantScheme::kAsymmetric;
  // Two threads: the developer and CI machines have two cores (the quantizer splits rows).
  auto report = engine::measure_quant_error(o.rows, o.cols, o.seed, params, /*threads=*/2);
  if (!report) {
    std::cerr << "ipfs-accelerate: quantize: " << report.error().message << "\n";
    return static_cast<int>(report.error().code);
  }
  const char* scheme = o.symmetric ? "symmetric" : "asymmetric";
  if (o.json) {
    nlohmann::ordered_json j;
    j["bits"] = o.bits;
    j["group"] = o.group;
    j["rows"] = o.rows;
    j["cols"] = o.cols;
    j["seed"] = o.seed;
    j["scheme"] = scheme;
    j["rel_rmse"] = report->rel_rmse;
    j["minmax_rel_rmse"] = report->minmax_rel_rmse;
    j["bits_per_weight"] = report->bits_per_weight;
    j["seconds"] = report->seconds;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << o.rows << "x" << o.cols << " N(0,1) seed " << o.seed << ", " << o.bits << "-bit group "
              << o.group << " " << scheme << ": rel_rmse " << report->rel_rmse << " (min/max "
              << report->minmax_rel_rmse << "), " << report->bits_per_weight << " bits/weight, "
              << report->seconds << " s\n";
  }
  return 0;
}

}  // namespace ipfsa::cli
