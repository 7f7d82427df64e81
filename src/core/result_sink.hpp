// Where the coordinator writes runs and results (M10). Implementations: the HDF5 trend store
// (src/store), an in-memory sink and a fault-injecting sink for tests (src/core/memory_sink.hpp).
// Not thread-safe: the coordinator's loop is its only caller.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::core {

struct RunInfo {
  std::string run_id;
  std::string campaign;            // campaign name
  std::string campaign_source;     // file path or "<embedded default>"
  std::string version;             // framework version
  std::string git_commit;          // framework build commit
  std::string hosts;               // comma-separated host names of all ranks
  std::string status = "running";  // running | completed | failed | aborted
  double started_unix = 0;
  double ended_unix = 0;
  std::uint32_t ranks = 0;
  std::uint32_t coordinators = 1;
  std::uint32_t workers = 0;
  std::uint32_t tasks_total = 0;
};

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // Records the run as started. `tasks` must outlive the sink's use of this run.
  virtual Result<void> begin_run(const RunInfo& run, std::span<const TaskSpec> tasks) = 0;
  // Appends attempt rows (final and non-final). Durable only after flush().
  virtual Result<void> append(std::span<const TaskResult> results) = 0;
  // Makes everything appended so far durable and visible to concurrent readers.
  virtual Result<void> flush() = 0;
  // Updates the run's row (end time, status, counts) and flushes.
  virtual Result<void> end_run(const RunInfo& run) = 0;
};

}  // namespace ipfsa::core
