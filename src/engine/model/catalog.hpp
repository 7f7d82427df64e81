// The model catalog (M6): the HuggingFace model classes the engine can build, each mapped onto a
// Family of model_config.hpp with the real published architecture of a named checkpoint and a
// tiny one of the same shape (same GQA ratio, MLP kind, position scheme, norm, experts) that runs
// in milliseconds on a CPU. Read from configs/models/*.yaml, which are compiled into the binary
// (embedded_configs.hpp), so every rank and executor sees the same catalog from any directory.
// Schema, the table of classes and the approximations made: docs/models.md.
//
// Thread-safety: model_catalog() parses the embedded files once (a function-local static, safe
// under concurrent first calls) and never changes the result; find_model and model_names only
// read it. parse_catalog shares no state. No MPI.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/task.hpp"
#include "engine/model/model_config.hpp"

namespace ipfsa::engine {

struct CatalogEntry {
  std::string name;      // catalog key, what a campaign's `model:` names ("llama")
  std::string hf_class;  // "LlamaForCausalLM"
  Family family = Family::kDecoder;
  core::Priority tier = core::Priority::kMedium;
  std::string checkpoint;  // the checkpoint `real` describes ("meta-llama/Llama-2-7b-hf")
  std::string notes;       // what the engine approximates for this class; may be empty
  ModelConfig tiny;        // runs in milliseconds on a CPU; same features as `real`
  ModelConfig real;        // the checkpoint's published sizes
  std::string file;        // the catalog file it came from ("configs/models/decoder.yaml")
  int line = 0;            // where its entry begins in `file` (1-based)
  int column = 0;
};

// Parses one catalog file. On success every entry's `real` and `tiny` pass ModelConfig::validate,
// in file order. On failure returns a kInput Error "FILE:LINE:COLUMN: message" at the first
// mistake: an unknown or duplicate key, a value of the wrong type, an unknown family / tier / norm /
// activation / position / frontend, a missing field, a duplicate model name, an entry whose
// architecture does not validate; nothing is returned.
Result<std::vector<CatalogEntry>> parse_catalog(std::string_view text, const std::string& file);

// Parses every embedded configs/models/*.yaml (sorted by path) and concatenates them; a model name
// given in two files is an error at the second.
Result<std::vector<CatalogEntry>> parse_embedded_catalog();

// The embedded catalog, parsed on first use. A malformed embedded catalog is a bug in the build
// (tests/unit/catalog_test.cpp parses it): it aborts with the parse error.
const std::vector<CatalogEntry>& model_catalog();

// The entry named `name`, or nullptr.
const CatalogEntry* find_model(std::string_view name);

// Every catalog name in catalog order: config::LoadContext::known_models.
std::vector<std::string> model_names();

}  // namespace ipfsa::engine
