// The HDF5 trend store (M10): one file that accumulates every run's runs-table row, every attempt's
// result row, the raw latency samples and the kinds' extra metrics, so trends can be read across
// runs. Schema, widths and the durability contract: docs/store.md.
//
// Writing: only the coordinator writes, through Hdf5Store (a core::ResultSink). The file is opened
// for SWMR writing (HDF5 1.10 single-writer/multiple-reader), so Hdf5Reader and h5py
// (`h5py.File(path, "r", libver="latest", swmr=True)`) can read it while a run is in progress. A
// sidecar lock file `<path>.lock` (flock) keeps a second writer out; with that lock held a file
// left "open for write" by a crashed writer is recovered the way `h5clear -s` does.
//
// Thread-safety: none. One Hdf5Store or Hdf5Reader per thread; HDF5 (serial build) is not
// thread-safe, so no two threads may call into this module at the same time.
// MPI contract: none; only the coordinator rank uses it.
// On failure every function returns an Error naming the file and the operation; nothing aborts.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result_sink.hpp"
#include "core/task.hpp"

namespace ipfsa::store {

// Version 2 added /results.fingerprint. Readers read versions kOldestSchemaVersion..kSchemaVersion;
// the writer upgrades an older store in place before writing to it (docs/store.md §Versions).
inline constexpr std::uint32_t kSchemaVersion = 2;
inline constexpr std::uint32_t kOldestSchemaVersion = 1;
inline constexpr std::string_view kFormatName = "ipfs-accelerate trend store";

// Widths (bytes) of the fixed-length, null-padded UTF-8 string columns. Longer values are cut at a
// character boundary, except run ids, which are keys: a longer run id is refused by begin_run.
namespace width {
inline constexpr std::size_t kRunId = 64;
inline constexpr std::size_t kCampaign = 128;
inline constexpr std::size_t kCampaignSource = 512;
inline constexpr std::size_t kVersion = 32;
inline constexpr std::size_t kGitCommit = 48;
inline constexpr std::size_t kHosts = 4096;
inline constexpr std::size_t kRunStatus = 16;
inline constexpr std::size_t kTaskId = 256;
inline constexpr std::size_t kKind = 64;
inline constexpr std::size_t kModel = 128;
inline constexpr std::size_t kHardware = 16;
inline constexpr std::size_t kPrecision = 16;
inline constexpr std::size_t kScenario = 32;
inline constexpr std::size_t kPriority = 16;
inline constexpr std::size_t kStatus = 16;
inline constexpr std::size_t kWorkerHost = 64;
inline constexpr std::size_t kError = 512;
inline constexpr std::size_t kMetricName = 64;
inline constexpr std::size_t kFingerprint = 256;  // schema_version >= 2
}  // namespace width

// `s` cut to at most `max_bytes` bytes without splitting a UTF-8 sequence. Pure.
std::string truncate_utf8(std::string_view s, std::size_t max_bytes);

// The coordinator's sink. Not copyable or movable (HDF5 handles are owned); held by unique_ptr.
class Hdf5Store final : public core::ResultSink {
 public:
  // Opens `path` for SWMR writing, creating it (and its parent folders) when missing. A new file is
  // built under a temporary name and renamed into place, so `path` is never a half-made store. An
  // existing file is checked read-only first, so a file that is not a store is never opened for
  // writing. A file left "open for write" by a crashed writer is recovered; runs it left "running"
  // are marked "aborted" (ended_unix stays 0), and rows it left at the end of /results whose
  // samples or metrics never reached the file get an empty run id (readers skip them). Waits up
  // to 10 s for readers holding HDF5's lock.
  // A store of an older schema_version is upgraded first, under the writer lock: every row is
  // copied into a new file of the current schema (new columns empty), built under a temporary
  // name and renamed over `path`, so `path` is always either the old or the new store. Needs free
  // space for a second copy; without flock support (no writer lock) the upgrade is refused (kInput).
  // Errors: kInfra when the folder or file cannot be created or written (an upgrade that fails
  // leaves the old store unchanged), another writer holds the lock, or readers keep the file
  // locked; kInput when `path` is not a trend store ("PATH: not an ipfs-accelerate trend store:
  // WHY") or is a corrupt HDF5 file. On failure nothing is left open,
  // no `.lock` file is left that this call created, and an existing file is unchanged (except for
  // crash flags cleared as `h5clear -s` would).
  // In one process, open the writer before any Hdf5Reader of the same file (HDF5 shares one open
  // file per process and cannot reopen a file open read-only for writing).
  static Result<std::unique_ptr<Hdf5Store>> open_for_write(const std::string& path);

  Hdf5Store(const Hdf5Store&) = delete;
  Hdf5Store& operator=(const Hdf5Store&) = delete;
  // Flushes what is pending (best effort; call close() to see errors) and closes the file.
  ~Hdf5Store() override;

  // Writes the run's row (status as given, normally "running") and flushes. The run becomes the
  // current run: append() attributes rows to it. Errors: kInput for an empty run id, one longer
  // than width::kRunId or one already in the file; kInfra for a write failure (no row recorded).
  Result<void> begin_run(const core::RunInfo& run, std::span<const core::TaskSpec> tasks) override;
  // Makes `run.run_id`, already in the file (begun by a process that died or was killed), the
  // current run again (`run --resume`): its row is rewritten from `run` (keeping its
  // results_first_row; status normally "running") and flushed; append() then adds rows to it.
  // `tasks` must be the run's full task list (rows keep the indices of that list). Errors (kInput):
  // a run id not in the file, or a run that is not the newest in the file (its rows must stay
  // contiguous); kInfra for a write failure.
  Result<void> resume_run(const core::RunInfo& run, std::span<const core::TaskSpec> tasks);
  // Buffers result rows of the current run in memory; no HDF5 call. Errors (kInput, nothing of the
  // batch buffered): no current run, or a row whose task index is outside the run's task list.
  Result<void> append(std::span<const core::TaskResult> results) override;
  // Writes everything buffered (one H5Dset_extent + H5Dwrite per dataset) and calls
  // H5Fflush(H5F_SCOPE_GLOBAL): afterwards the rows survive a crash of this process and SWMR
  // readers see them. On failure (kInfra) rows not yet written stay buffered and a later flush
  // retries them; rows already written are not written twice.
  Result<void> flush() override;
  // Rewrites the run's row in place (found by run id; any run in the file) and flushes. Ends the
  // current run if it is that run. Errors: kInput for an unknown run id; kInfra for write failures.
  Result<void> end_run(const core::RunInfo& run) override;

  // Flushes and closes the file and releases the writer lock; later calls fail with kInfra.
  Result<void> close();

  const std::string& path() const { return path_; }
  std::size_t pending_rows() const;  // results appended but not yet written

  // Rows of /results in the file plus rows appended and not yet written: the index the next
  // appended row will get. A new leader of the HA quorum records it at setup to know which rows
  // belong to this job.
  std::uint64_t result_rows() const;
  // (task_index, attempt) of every row of the current run at /results index >= from_row: rows in
  // the file (complete ones only: rows never completed by a killed writer have an empty run id and
  // are skipped, and rows of another run id are skipped) followed by rows appended and not yet
  // written, in row order. Used by a coordinator that takes over as leader so it writes each result
  // exactly once. Reads the file in batches of 4096 rows, only the three columns it needs.
  // Errors: kInput when no run is current; kInfra on a read failure or a closed store.
  Result<std::vector<std::pair<std::uint32_t, std::uint32_t>>> written_attempts(std::uint64_t from_row) const;

 private:
  struct Impl;
  explicit Hdf5Store(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// One row of /runs. Every RunInfo field is a column; `row` is the row's index in /runs.
struct StoredRun : core::RunInfo {
  std::uint64_t row = 0;
  // First /results row of this run. Runs are written one after another, so the run's rows are
  // [results_first_row, next run's results_first_row) — or up to the end for the newest run.
  std::uint64_t results_first_row = 0;
};

// One row of /results, its samples (when asked for) and its rows of /metrics.
struct StoredResult {
  std::uint64_t row = 0;  // index in /results; /metrics rows point at it
  std::string run_id;
  std::string task_id;
  std::uint32_t task_index = 0;
  std::uint32_t attempt = 0;
  bool final = false;
  bool flaky = false;
  std::string kind;
  std::string model;
  std::string hardware;
  std::string precision;
  std::uint32_t batch = 0;
  std::uint32_t seq_len = 0;
  std::string scenario;
  std::string priority;
  std::string status;  // core::to_string(TaskStatus); kept as text so newer statuses still read
  std::int32_t signal = 0;
  std::int32_t worker_rank = -1;
  std::string worker_host;
  double started_unix = 0;
  double ended_unix = 0;
  double latency_mean_s = core::kNaN;
  double latency_p50_s = core::kNaN;
  double latency_p90_s = core::kNaN;
  double latency_p99_s = core::kNaN;
  double latency_min_s = core::kNaN;
  double latency_max_s = core::kNaN;
  double latency_stddev_s = core::kNaN;
  std::uint32_t sample_count = 0;
  double throughput = core::kNaN;
  std::uint64_t peak_memory_bytes = 0;
  double acc_cosine = core::kNaN;
  double acc_rel_error = core::kNaN;
  double acc_kl = core::kNaN;
  double acc_top1 = core::kNaN;
  std::string error;
  std::uint64_t samples_offset = 0;  // slice of /samples
  std::uint32_t samples_count = 0;
  std::uint64_t metrics_offset = 0;  // slice of /metrics
  std::uint32_t metrics_count = 0;
  std::string fingerprint;      // worker's hardware fingerprint; empty in schema_version 1 stores
  std::vector<double> samples;  // filled only when asked for
  std::vector<std::pair<std::string, double>> metrics;  // in the order they were recorded
};

// Reads a trend store, also while a writer has it open (SWMR read) and after a writer crashed.
// Every call re-reads the current extent of the datasets, so a long-lived reader sees rows flushed
// since it was opened. While open it holds HDF5's shared file lock, which keeps a writer from
// starting (open_for_write waits up to 10 s): keep readers short-lived, or run them with
// HDF5_USE_FILE_LOCKING=FALSE. Movable, not copyable.
class Hdf5Reader {
 public:
  // Reads every schema_version from kOldestSchemaVersion to kSchemaVersion; columns an older
  // version lacks read as empty/zero. Errors (kInput): "PATH: no such file", "PATH: not an
  // ipfs-accelerate trend store: WHY" (not HDF5, missing datasets or columns, unknown
  // schema_version), or an HDF5 open failure.
  static Result<Hdf5Reader> open(const std::string& path);

  Hdf5Reader(Hdf5Reader&& other) noexcept;
  Hdf5Reader& operator=(Hdf5Reader&& other) noexcept;
  Hdf5Reader(const Hdf5Reader&) = delete;
  Hdf5Reader& operator=(const Hdf5Reader&) = delete;
  ~Hdf5Reader();

  // All runs in row order (the order they were begun). Error (kInput) on a read failure.
  Result<std::vector<StoredRun>> runs() const;
  // Result rows of `run_id` (all runs when empty; none for an unknown id) in row order, with their
  // metrics and, when `with_samples`, their raw samples. A row whose samples or metrics lie beyond
  // those datasets' current extents is skipped: a concurrent writer's flush still in progress (it
  // shows on a later call), or a flush a killed writer never finished. Rows never completed by a
  // crashed writer (empty run id) are skipped too. Error (kInput) on a read failure.
  Result<std::vector<StoredResult>> results(std::string_view run_id = {}, bool with_samples = false) const;

  const std::string& path() const { return path_; }
  std::uint32_t schema_version() const;  // of the file, as read at open

 private:
  struct Impl;
  Hdf5Reader(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace ipfsa::store
