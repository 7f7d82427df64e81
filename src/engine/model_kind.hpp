// The `model` task kind (model_kind.cpp; the params and scenarios are documented there and in
// src/engine/README.md), also run directly by `ipfs-accelerate models run`.
// Thread-safety: each call builds its own models; the engine's thread pool is shared.
#pragma once

#include <string>

#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::engine {

// Runs one `model` task and returns its outcome (passed, with samples, throughput, accuracy and
// metrics). Error (kInput) for what the task names wrongly: an unknown model or precision, a bad
// parameter, a scenario the family cannot run, a checkpoint folder (`path`) that is missing or
// malformed (the message names the file), an input the model cannot take (e.g. seq_len beyond its
// learned positions). The kind turns an error into a `failed` outcome with the same message.
//
// `hardware: cuda` (task.needs_cuda()) runs the model's linear layers on GPU `cuda_device`
// (Model::build with a GpuDevice, docs/cuda.md §Engine backend) and compares against the CPU fp32
// model of the same weights; it never falls back to the CPU: without that device it is an Error
// (kInfra) naming the reason, in a build without CUDA a kInput one (kNoCudaBuild), both only after
// the task's inputs were checked. Its outcome adds metrics gpu_device and gpu_weight_bytes; `gpu_name`, when
// not null, receives the GPU's name.
Result<core::TaskOutcome> run_model_task(const core::TaskSpec& task, int cuda_device = 0,
                                         std::string* gpu_name = nullptr);

// The environment variable through which a worker tells its executor (and so the `model` kind)
// which GPU to use: the worker's node-local rank modulo the node's GPU count (src/cli/run_command.cpp).
inline constexpr const char* kCudaDeviceEnv = "IPFSA_CUDA_DEVICE";

// The GPU index in `value` (the variable's text; null or empty: 0). Error (kInput) naming
// kCudaDeviceEnv when it is not a whole number in [0, 1023].
Result<int> parse_cuda_device(const char* value);

}  // namespace ipfsa::engine
