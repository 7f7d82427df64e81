// The `model` task kind (model_kind.cpp; the params and scenarios are documented there and in
// src/engine/README.md), also run directly by `ipfs-accelerate models run`.
// Thread-safety: each call builds its own models; the engine's thread pool is shared.
#pragma once

#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::engine {

// Runs one `model` task and returns its outcome (passed, with samples, throughput, accuracy and
// metrics). Error (kInput) for what the task names wrongly: an unknown model or precision, a bad
// parameter, a scenario the family cannot run, a checkpoint folder (`path`) that is missing or
// malformed (the message names the file), an input the model cannot take (e.g. seq_len beyond its
// learned positions). The kind turns an error into a `failed` outcome with the same message.
Result<core::TaskOutcome> run_model_task(const core::TaskSpec& task);

}  // namespace ipfsa::engine
