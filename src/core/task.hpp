// Tasks: what a campaign expands into (TaskSpec), what running one produces (TaskOutcome), and what
// the coordinator records (TaskResult). Plain value types shared by every layer; the wire format
// lives in src/wire/serialize.hpp, the HDF5 layout in src/store. No third-party includes.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ipfsa::core {

// Priority tiers; lower value is scheduled first (M3).
enum class Priority : std::uint8_t { kCritical = 0, kHigh = 1, kMedium = 2 };
inline constexpr int kPriorityTiers = 3;

std::string_view to_string(Priority p);
std::optional<Priority> parse_priority(std::string_view s);

// Final and non-final statuses of one attempt of a task (M4).
enum class TaskStatus : std::uint8_t {
  kPassed = 0,
  kFailed = 1,   // the task ran and reported failure
  kCrashed = 2,  // the executor died (signal or unexpected exit) while running it
  kTimeout = 3,  // ran past timeout_s; the executor was killed
  kOom = 4,      // exceeded memory_mb
  kSkipped = 5,  // no live worker can ever run it (e.g. needs CUDA, no GPU rank)
  kLost = 6,     // its worker rank was lost while running it (never final: it is re-run)
};
inline constexpr int kTaskStatusCount = 7;

std::string_view to_string(TaskStatus s);
std::optional<TaskStatus> parse_task_status(std::string_view s);

// One expanded task of a campaign. Deterministic: the same campaign file always yields the same
// list in the same order with the same ids (docs/campaigns.md §Expansion).
struct TaskSpec {
  std::uint32_t index = 0;       // position in the expanded list; the key used on the wire
  std::string id;                // stable, human-readable id derived from the fields below
  std::string kind;              // task kind from the registry: "selftest.ok", "gemm.eigen", "model"
  std::string model;             // model name; the affinity key for scheduling (defaults to kind)
  std::string hardware = "cpu";  // "cpu" or "cuda"
  std::string precision = "fp32";
  std::uint32_t batch = 1;
  std::uint32_t seq_len = 0;
  std::string scenario = "latency";
  Priority priority = Priority::kMedium;
  std::uint32_t repeats = 5;
  std::uint32_t warmup = 1;
  double timeout_s = 60.0;
  std::uint32_t retries = 1;       // extra attempts after a non-passing one
  std::uint64_t memory_mb = 2048;  // limit for the executor while it runs this task; placement need
  std::vector<std::pair<std::string, std::string>> params;  // kind-specific, sorted by key

  bool needs_cuda() const { return hardware == "cuda"; }
  std::uint64_t memory_bytes() const { return memory_mb << 20; }
  // The value of params[key], or fallback.
  std::string param(std::string_view key, std::string_view fallback = {}) const;
};

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What one execution of a task produced, as reported by the executor process (or synthesised by
// the worker when the executor died, hung or ran out of memory).
struct TaskOutcome {
  TaskStatus status = TaskStatus::kFailed;
  std::int32_t signal = 0;        // terminating signal when status == kCrashed
  std::string error;              // human-readable reason when not passed
  std::vector<double> samples_s;  // per-repeat latency samples, seconds
  double throughput = kNaN;       // items per second, if the kind measures it
  std::uint64_t peak_memory_bytes = 0;
  // Accuracy against the fp32 run of the same model (NaN when not applicable).
  double acc_cosine = kNaN;
  double acc_rel_error = kNaN;
  double acc_kl = kNaN;
  double acc_top1 = kNaN;
  std::vector<std::pair<std::string, double>> metrics;  // extra named metrics of the kind
};

// One attempt as the coordinator records it in the store.
struct TaskResult {
  std::uint32_t task = 0;     // TaskSpec::index
  std::uint32_t attempt = 0;  // 0-based
  bool final = false;         // the one result that counts for this task
  bool flaky = false;         // final and passed after a non-passing attempt
  std::int32_t worker = -1;   // MPI rank of the worker, -1 when none ran it (skipped)
  std::string host;
  double started_unix = 0.0;
  double ended_unix = 0.0;
  TaskOutcome outcome;
  // Hardware fingerprint of the worker that ran it (core::hardware_fingerprint, filled by the
  // scheduler from the worker's WorkerInfo); empty when no worker ran it (skipped). Trend series
  // never mix fingerprints (docs/trends.md).
  std::string fingerprint;
};

}  // namespace ipfsa::core
