// The YAML files compiled into the binary for the engine (generated at configure time by
// cmake/embed_configs.cmake): the model catalog (configs/models/*.yaml, parsed by catalog.hpp)
// and the precision profiles (configs/precision/profiles.yaml, parsed by precision.hpp). Lets the
// executor find them from any working directory. Thread-safety: immutable static data.
#pragma once

#include <span>
#include <string_view>

namespace ipfsa::engine {

struct EmbeddedFile {
  std::string_view path;  // relative to the source tree: "configs/models/decoder.yaml"
  std::string_view text;  // the file's contents
};

// Every configs/models/*.yaml, sorted by path.
std::span<const EmbeddedFile> embedded_model_files();
// configs/precision/profiles.yaml.
EmbeddedFile embedded_precision_profiles();

}  // namespace ipfsa::engine
