// Campaign files (M1): reads a YAML campaign (docs/campaigns.md), follows its `include:`s, checks
// its structure and types, and hands it to core::expand_campaign for the task list. This is the
// yaml-cpp edge of the program: yaml-cpp throws, and nothing thrown escapes these functions.
//
// Thread-safety: the functions share no state; concurrent calls are safe.
// On failure they return an Error with ErrorCode::kInput whose message has the form
// "FILE:LINE:COLUMN: message" (1-based; FILE is the file the mistake is in, which may be an
// included one). The one exception is a top-level file that cannot be read, reported as
// "FILE: cannot read campaign file: REASON" since there is no position to give. Nothing is left
// behind on failure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/campaign.hpp"
#include "core/error.hpp"

namespace ipfsa::config {

struct LoadContext {
  std::vector<std::string> known_kinds;   // e.g. engine::kind_names(); a kind not here is an error
  std::vector<std::string> known_models;  // the model catalog; a `model:` not here is an error
  // The precision profiles (engine::precision_names()); a task of kind `model` whose precision is
  // not here is an error. Empty: precisions are not checked against a list.
  std::vector<std::string> known_precisions;
};

// Loads the campaign file at `path`; includes resolve relative to the including file's directory.
Result<core::Campaign> load_campaign_file(const std::string& path, const LoadContext& ctx);

// Loads a campaign from `text`. `source` names it in messages and becomes Campaign::source (a path,
// or "<embedded default>"); its includes resolve relative to `base_dir` (empty: the working
// directory).
Result<core::Campaign> load_campaign_text(std::string_view text, const std::string& source,
                                          const std::string& base_dir, const LoadContext& ctx);

// Loads the campaign compiled into the binary from configs/default.yaml.
Result<core::Campaign> load_default_campaign(const LoadContext& ctx);

}  // namespace ipfsa::config
