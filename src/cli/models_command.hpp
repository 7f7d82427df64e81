// `ipfs-accelerate models list` and `models precisions`: print the model catalog
// (engine/model/catalog.hpp) and the precision profiles (engine/model/precision.hpp), as tables or
// JSON. Also the names a campaign may use, for the commands that load campaigns. Single process,
// no MPI. Thread-safety: the commands write to std::cout / std::cerr; call from one thread.
#pragma once

#include <string>

#include "config/campaign_loader.hpp"

namespace ipfsa::cli {

struct ModelsListOptions {
  std::string tier;       // empty: every tier; else critical, high or medium
  std::string family;     // empty: every family; else one of engine::Family's names
  bool json = false;      // a JSON array on stdout instead of a table
  bool markdown = false;  // the coverage table of docs/models.md instead
};

// Returns 0 after printing the matching models (catalog order within each family), or 2 with a
// message naming the allowed values on stderr for an unknown --tier or --family.
int models_list_command(const ModelsListOptions& options);

// Prints every precision profile (name, bits, description); returns 0.
int models_precisions_command(bool json);

// What a campaign may name: the task kinds, the catalog's models and the precision profiles.
config::LoadContext campaign_load_context();

}  // namespace ipfsa::cli
