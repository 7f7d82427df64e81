// Precision profiles (M7): the named settings a campaign's `precision:` may give a task of kind
// `model`, each a PrecisionPlan (model_config.hpp) saying how many bits every weight of the model
// gets: uniform ones (fp32, int8, int4, int3, int2) and mixed ones (attention and MLP at different
// widths, wider first and last blocks, a 2- or 4-bit KV cache). Read from
// configs/precision/profiles.yaml, compiled into the binary (embedded_configs.hpp).
// Schema and the table of profiles: docs/models.md.
//
// Thread-safety: precision_profiles() parses the embedded file once (a function-local static,
// safe under concurrent first calls); the other functions only read it. No MPI.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "engine/model/model_config.hpp"

namespace ipfsa::engine {

struct PrecisionProfile {
  PrecisionPlan plan;       // plan.name is the profile's name
  std::string description;  // one line, for `models precisions`
  std::string file;         // where it was defined
  int line = 0;
};

// Parses a profiles file. On success the profiles in file order, each with a name a campaign can
// write (lower-case letters, digits, '_', '.', '-'), bits in {0, 2, 3, 4, 8}, group in {32, 64, 128},
// kv_bits in {16, 4, 2}. On failure a kInput Error "FILE:LINE:COLUMN: message" (unknown or
// duplicate key, wrong type or value, missing name or description, duplicate name).
Result<std::vector<PrecisionProfile>> parse_precision_profiles(std::string_view text,
                                                               const std::string& file);

// The embedded profiles, parsed on first use; a malformed embedded file is a build bug (tested by
// tests/unit/precision_test.cpp) and aborts with the parse error.
const std::vector<PrecisionProfile>& precision_profiles();

// The plan of the profile `name`; a kInput error "unknown precision 'NAME'; known precisions: ..."
// when there is none.
Result<PrecisionPlan> resolve_precision(std::string_view name);

// Every profile name in file order: config::LoadContext::known_precisions.
std::vector<std::string> precision_names();

// A one-line summary of a plan: "attention 4, ffn 2, head 8, edge 8 (1 block), g64 asymmetric, kv 16".
std::string summarize(const PrecisionPlan& plan);

}  // namespace ipfsa::engine
