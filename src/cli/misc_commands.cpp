// `validate`, `store show`, `kinds`: single-process commands (no MPI).
#include <iostream>
#include <map>

#include "cli/commands.hpp"
#include "cli/models_command.hpp"
#include "config/campaign_loader.hpp"
#include "engine/kinds.hpp"
#include "report/exports.hpp"
#include "report/trends.hpp"
#include "store/store_show.hpp"

namespace ipfsa::cli {

int validate_command(const ValidateOptions& o) {
  auto campaign = config::load_campaign_file(o.campaign, campaign_load_context());
  if (!campaign) {
    std::cerr << "ipfs-accelerate: " << campaign.error().message << "\n";
    return static_cast<int>(campaign.error().code);
  }
  std::map<std::string, int> by_kind;
  int tiers[core::kPriorityTiers] = {};
  for (const auto& t : campaign->tasks) {
    ++by_kind[t.kind];
    ++tiers[static_cast<int>(t.priority)];
  }
  std::cout << o.campaign << ": OK: campaign '" << campaign->name << "', " << campaign->tasks.size()
            << " tasks (" << tiers[0] << " critical, " << tiers[1] << " high, " << tiers[2] << " medium)\n";
  for (const auto& [kind, n] : by_kind) std::cout << "  " << kind << ": " << n << "\n";
  if (o.list)
    for (const auto& t : campaign->tasks)
      std::cout << t.index << "\t" << core::to_string(t.priority) << "\t" << t.id << "\n";
  return 0;
}

int store_show_command(const std::string& path, const std::string& run_id, bool all) {
  auto shown = store::show_store(path, run_id, all, std::cout);
  if (!shown) {
    std::cerr << "ipfs-accelerate: " << shown.error().message << "\n";
    return static_cast<int>(shown.error().code);
  }
  return 0;
}

int kinds_command() {
  for (const auto& k : engine::builtin_kinds()) std::cout << k.name << "\t" << k.description << "\n";
  return 0;
}

int trends_command(const TrendsOptions& o) {
  report::TrendOptions opts;
  opts.threshold_pct = o.threshold_pct;
  opts.throughput_pct = o.throughput_pct;
  opts.accuracy_abs = o.accuracy_abs;
  opts.higher_is_better = o.higher_is_better;
  auto trends =
      o.store.empty() ? report::analyse_csv(o.csv, opts) : report::analyse_store(o.store, o.run, opts);
  if (!trends) {
    std::cerr << "ipfs-accelerate: " << trends.error().message << "\n";
    return static_cast<int>(trends.error().code);
  }
  const std::string judged = !o.store.empty() && !trends->empty() ? trends->front().judged_run : o.run;
  const std::string& source = o.store.empty() ? o.csv : o.store;
  if (o.format == "json") {
    std::cout << report::trends_json(*trends);
  } else if (o.format == "junit") {
    std::cout << report::trends_junit(source, judged, *trends);
  } else if (o.format == "markdown") {
    std::cout << report::trends_markdown(source, judged, *trends);
  } else {
    if (!o.store.empty() && !trends->empty())
      std::cout << o.store << ": judging run " << trends->front().judged_run << "\n";
    std::cout << report::trends_text(*trends);
  }
  for (const auto& t : *trends)
    if (t.verdict == "regression") return 1;
  return 0;
}

}  // namespace ipfsa::cli
