#include "cli/models_command.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <vector>

#include "engine/kinds.hpp"
#include "engine/model/catalog.hpp"
#include "engine/model/precision.hpp"

namespace ipfsa::cli {

namespace {

using Json = nlohmann::ordered_json;
using engine::CatalogEntry;
using engine::Family;

constexpr int kFamilies = 7;

std::string family_list() {
  std::string out;
  for (int i = 0; i < kFamilies; ++i) out += (i ? ", " : "") + std::string(to_string(static_cast<Family>(i)));
  return out;
}

// 124439808 -> "124.4M"; 6738415616 -> "6.74B".
std::string human(std::int64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

Json stack_json(const engine::StackConfig& s) {
  return Json{{"layers", s.layers},
              {"hidden", s.hidden},
              {"heads", s.heads},
              {"kv_heads", s.kv_heads},
              {"ffn", s.ffn},
              {"causal", s.causal},
              {"gated_mlp", s.gated_mlp},
              {"activation", to_string(s.activation)},
              {"norm", to_string(s.norm)},
              {"pre_norm", s.pre_norm},
              {"norm_eps", s.norm_eps},
              {"position", to_string(s.position)},
              {"rope_theta", s.rope_theta},
              {"max_positions", s.max_positions},
              {"qkv_bias", s.qkv_bias},
              {"mlp_bias", s.mlp_bias},
              {"cross_attention", s.cross_attention},
              {"experts", s.experts},
              {"experts_top_k", s.experts_top_k}};
}

Json config_json(const engine::ModelConfig& c) {
  Json j{{"frontend", to_string(c.frontend)},
         {"vocab", c.vocab},
         {"num_labels", c.num_labels},
         {"image_size", c.image_size},
         {"patch_size", c.patch_size},
         {"channels", c.channels},
         {"mel_bins", c.mel_bins},
         {"projection_dim", c.projection_dim},
         {"tie_embeddings", c.tie_embeddings},
         {"embed_scale", c.embed_scale},
         {"parameters", c.parameters()}};
  if (c.encoder.layers > 0) j["encoder"] = stack_json(c.encoder);
  if (c.decoder.layers > 0) j["decoder"] = stack_json(c.decoder);
  if (c.vision.layers > 0) j["vision"] = stack_json(c.vision);
  return j;
}

Json entry_json(const CatalogEntry& e) {
  return Json{{"name", e.name},
              {"hf_class", e.hf_class},
              {"family", to_string(e.family)},
              {"tier", core::to_string(e.tier)},
              {"checkpoint", e.checkpoint},
              {"notes", e.notes},
              {"file", e.file},
              {"tiny_parameters", e.tiny.parameters()},
              {"real_parameters", e.real.parameters()},
              {"tiny", config_json(e.tiny)},
              {"real", config_json(e.real)}};
}

void print_table(const std::vector<const CatalogEntry*>& entries) {
  std::size_t name_w = 4, class_w = 8;
  for (const CatalogEntry* e : entries) {
    name_w = std::max(name_w, e->name.size());
    class_w = std::max(class_w, e->hf_class.size());
  }
  auto pad = [](std::string s, std::size_t w) {
    s.resize(std::max(w, s.size()), ' ');
    return s;
  };
  std::cout << pad("NAME", name_w) << "  " << pad("HF_CLASS", class_w) << "  " << pad("FAMILY", 15) << "  "
            << pad("TIER", 8) << "  " << pad("TINY", 8) << "  REAL\n";
  int tiers[core::kPriorityTiers] = {};
  for (const CatalogEntry* e : entries) {
    ++tiers[static_cast<int>(e->tier)];
    std::cout << pad(e->name, name_w) << "  " << pad(e->hf_class, class_w) << "  "
              << pad(std::string(to_string(e->family)), 15) << "  "
              << pad(std::string(core::to_string(e->tier)), 8) << "  " << pad(human(e->tiny.parameters()), 8)
              << "  " << human(e->real.parameters()) << "\n";
  }
  std::cout << entries.size() << " models (" << tiers[0] << " critical, " << tiers[1] << " high, " << tiers[2]
            << " medium); parameters from ModelConfig::parameters(); approximations in docs/models.md\n";
}

}  // namespace

int models_list_command(const ModelsListOptions& o) {
  std::optional<core::Priority> tier;
  if (!o.tier.empty()) {
    tier = core::parse_priority(o.tier);
    if (!tier) {
      std::cerr << "ipfs-accelerate: unknown tier '" << o.tier << "'; allowed: critical, high, medium\n";
      return 2;
    }
  }
  std::optional<Family> family;
  if (!o.family.empty()) {
    family = engine::parse_family(o.family);
    if (!family) {
      std::cerr << "ipfs-accelerate: unknown family '" << o.family << "'; allowed: " << family_list() << "\n";
      return 2;
    }
  }
  std::vector<const CatalogEntry*> shown;
  for (const CatalogEntry& e : engine::model_catalog())
    if ((!tier || e.tier == *tier) && (!family || e.family == *family)) shown.push_back(&e);
  std::stable_sort(shown.begin(), shown.end(),
                   [](const CatalogEntry* a, const CatalogEntry* b) { return a->family < b->family; });
  if (o.markdown) {
    // The coverage table of docs/models.md ("The classes"), generated from the catalog; the e2e
    // test models_list.sh fails when the document and the catalog disagree.
    std::cout << "| name | HuggingFace class | family | tier | checkpoint (`real`) | real | tiny | "
                 "approximations |\n"
              << "|---|---|---|---|---|---|---|---|\n";
    for (const CatalogEntry* e : shown) {
      std::string notes = e->notes.empty() ? "—" : e->notes;
      for (char& c : notes)
        if (c == '\n') c = ' ';
      std::cout << "| `" << e->name << "` | `" << e->hf_class << "` | " << to_string(e->family) << " | "
                << core::to_string(e->tier) << " | " << e->checkpoint << " | " << human(e->real.parameters())
                << " | " << human(e->tiny.parameters()) << " | " << notes << " |\n";
    }
  } else if (o.json) {
    Json out = Json::array();
    for (const CatalogEntry* e : shown) out.push_back(entry_json(*e));
    std::cout << out.dump(2) << "\n";
  } else {
    print_table(shown);
  }
  return 0;
}

int models_precisions_command(bool json) {
  const auto& profiles = engine::precision_profiles();
  if (json) {
    Json out = Json::array();
    for (const auto& p : profiles) {
      const engine::PrecisionPlan& plan = p.plan;
      out.push_back(
          Json{{"name", plan.name},
               {"description", p.description},
               {"attention_bits", plan.attention_bits},
               {"ffn_bits", plan.ffn_bits},
               {"embedding_bits", plan.embedding_bits},
               {"head_bits", plan.head_bits},
               {"edge_layer_bits", plan.edge_layer_bits},
               {"edge_layers", plan.edge_layers},
               {"group", plan.group},
               {"scheme", plan.scheme == engine::QuantScheme::kAsymmetric ? "asymmetric" : "symmetric"},
               {"kv_bits", plan.kv_bits}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& p : profiles)
    std::cout << p.plan.name << "\t" << engine::summarize(p.plan) << "\t" << p.description << "\n";
  return 0;
}

config::LoadContext campaign_load_context() {
  return config::LoadContext{engine::kind_names(), engine::model_names(), engine::precision_names()};
}

}  // namespace ipfsa::cli
