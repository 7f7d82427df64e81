// `ipfs-accelerate models run`: one `model` task run in this process (no MPI, no executor) — a
// catalog model with synthetic weights, or a HuggingFace-style checkpoint folder — printing its
// latency, throughput, accuracy against fp32 and the model's metrics. The quickest way to try a
// model or a checkpoint before putting it in a campaign. `--device cuda` runs the linear layers on
// GPU 0 (docs/cuda.md §Engine backend).
// Thread-safety: writes to std::cout / std::cerr; call from one thread.
#pragma once

#include <cstdint>
#include <string>

namespace ipfsa::cli {

struct ModelsRunOptions {
  std::string model;  // catalog name; empty when --dir is given
  std::string dir;    // checkpoint folder: config.json + *.safetensors (+ model.safetensors.index.json)
  std::string precision = "fp32";
  std::string size = "tiny";
  std::string scenario = "latency";
  std::uint32_t batch = 1;
  std::uint32_t seq_len = 8;
  std::uint32_t repeats = 5;
  std::uint32_t warmup = 1;
  int threads = 1;
  std::uint64_t seed = 1;
  std::string device = "cpu";  // cpu or cuda (GPU 0)
  bool json = false;
};

// 0 after printing the outcome; 2 (message on stderr naming the model, file or value) for an
// unknown model or precision, a missing or malformed checkpoint, a bad combination (e.g. decode on
// an encoder) and for --device cuda in a build without the CUDA backend; 3 (message naming the
// reason) for --device cuda without a usable GPU or driver; 1 if the run itself failed.
int models_run_command(const ModelsRunOptions& options);

}  // namespace ipfsa::cli
