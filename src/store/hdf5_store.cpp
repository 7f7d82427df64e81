#include "store/hdf5_store.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/stats.hpp"

namespace ipfsa::store {

namespace fs = std::filesystem;

std::string truncate_utf8(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t cut = max_bytes;
  // Back off over continuation bytes (10xxxxxx) so the cut lands on the start of a character.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0u) == 0x80u) --cut;
  return std::string(s.substr(0, cut));
}

namespace {

// ---------------------------------------------------------------------------------------------
// HDF5 plumbing: owned handles, error text, silenced automatic printing.

class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes the handle; returns the close call's status (0 when there was nothing to close).
  herr_t reset() {
    herr_t r = 0;
    if (id_ >= 0 && closer_ != nullptr) r = closer_(id_);
    id_ = H5I_INVALID_HID;
    return r;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// HDF5 prints its error stack to stderr by default; we turn failures into Errors instead.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

herr_t innermost_error(unsigned n, const H5E_error2_t* e, void* data) {
  // H5E_WALK_UPWARD visits the innermost (most specific) record first.
  if (n == 0 && e->desc != nullptr) *static_cast<std::string*>(data) = e->desc;
  return 0;
}

// The most specific message on HDF5's error stack, which it then clears.
std::string hdf5_reason() {
  std::string why;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &why);
  H5Eclear2(H5E_DEFAULT);
  return why.empty() ? std::string("unknown HDF5 error") : why;
}

Error h5_error(ErrorCode code, const std::string& path, std::string_view op) {
  return Error{code, path + ": " + std::string(op) + " failed: " + hdf5_reason()};
}

Error not_a_store(const std::string& path, std::string_view why) {
  return input_error(path + ": not an ipfs-accelerate trend store: " + std::string(why));
}

// ---------------------------------------------------------------------------------------------
// Row layouts. Each struct is the in-memory image of one row; the column tables below describe
// them to HDF5 and are the single source of the schema (docs/store.md §Schema).

template <std::size_t N>
void put(char (&dst)[N], std::string_view s) {
  std::size_t len = std::min(s.size(), N);
  while (len < s.size() && len > 0 && (static_cast<unsigned char>(s[len]) & 0xC0u) == 0x80u) --len;
  std::memcpy(dst, s.data(), len);
  std::memset(dst + len, 0, N - len);
}

template <std::size_t N>
std::string get(const char (&src)[N]) {
  return std::string(src, strnlen(src, N));
}

struct RunRow {
  char run_id[width::kRunId];
  char campaign[width::kCampaign];
  char campaign_source[width::kCampaignSource];
  char version[width::kVersion];
  char git_commit[width::kGitCommit];
  char hosts[width::kHosts];
  char status[width::kRunStatus];
  double started_unix;
  double ended_unix;
  std::uint32_t ranks;
  std::uint32_t coordinators;
  std::uint32_t workers;
  std::uint32_t tasks_total;
  std::uint64_t results_first_row;
};

struct ResultRow {
  char run_id[width::kRunId];
  char task_id[width::kTaskId];
  std::uint32_t task_index;
  std::uint32_t attempt;
  std::uint8_t final;
  std::uint8_t flaky;
  char kind[width::kKind];
  char model[width::kModel];
  char hardware[width::kHardware];
  char precision[width::kPrecision];
  std::uint32_t batch;
  std::uint32_t seq_len;
  char scenario[width::kScenario];
  char priority[width::kPriority];
  char status[width::kStatus];
  std::int32_t signal;
  std::int32_t worker_rank;
  char worker_host[width::kWorkerHost];
  double started_unix;
  double ended_unix;
  double latency_mean_s;
  double latency_p50_s;
  double latency_p90_s;
  double latency_p99_s;
  double latency_min_s;
  double latency_max_s;
  double latency_stddev_s;
  std::uint32_t sample_count;
  double throughput;
  std::uint64_t peak_memory_bytes;
  double acc_cosine;
  double acc_rel_error;
  double acc_kl;
  double acc_top1;
  char error[width::kError];
  std::uint64_t samples_offset;
  std::uint32_t samples_count;
  std::uint64_t metrics_offset;
  std::uint32_t metrics_count;
  char fingerprint[width::kFingerprint];  // schema_version >= 2
};

struct MetricRow {
  std::uint64_t result_row;
  char name[width::kMetricName];
  double value;
};

enum class ColType { kStr, kU8, kU32, kI32, kU64, kF64 };

struct Column {
  const char* name;
  std::size_t offset;  // in the row struct
  ColType type;
  std::size_t size;         // bytes
  std::uint32_t since = 1;  // first schema_version that has the column
};

#define IPFSA_COL(Row, member, type)                                   \
  Column {                                                             \
#member, offsetof(Row, member), ColType::type, sizeof(Row::member) \
  }
#define IPFSA_COL_SINCE(Row, member, type, version)                             \
  Column {                                                                      \
#member, offsetof(Row, member), ColType::type, sizeof(Row::member), version \
  }

const std::vector<Column>& run_columns() {
  static const std::vector<Column> cols = {
      IPFSA_COL(RunRow, run_id, kStr),          IPFSA_COL(RunRow, campaign, kStr),
      IPFSA_COL(RunRow, campaign_source, kStr), IPFSA_COL(RunRow, version, kStr),
      IPFSA_COL(RunRow, git_commit, kStr),      IPFSA_COL(RunRow, hosts, kStr),
      IPFSA_COL(RunRow, status, kStr),          IPFSA_COL(RunRow, started_unix, kF64),
      IPFSA_COL(RunRow, ended_unix, kF64),      IPFSA_COL(RunRow, ranks, kU32),
      IPFSA_COL(RunRow, coordinators, kU32),    IPFSA_COL(RunRow, workers, kU32),
      IPFSA_COL(RunRow, tasks_total, kU32),     IPFSA_COL(RunRow, results_first_row, kU64),
  };
  return cols;
}

const std::vector<Column>& result_columns() {
  static const std::vector<Column> cols = {
      IPFSA_COL(ResultRow, run_id, kStr),
      IPFSA_COL(ResultRow, task_id, kStr),
      IPFSA_COL(ResultRow, task_index, kU32),
      IPFSA_COL(ResultRow, attempt, kU32),
      IPFSA_COL(ResultRow, final, kU8),
      IPFSA_COL(ResultRow, flaky, kU8),
      IPFSA_COL(ResultRow, kind, kStr),
      IPFSA_COL(ResultRow, model, kStr),
      IPFSA_COL(ResultRow, hardware, kStr),
      IPFSA_COL(ResultRow, precision, kStr),
      IPFSA_COL(ResultRow, batch, kU32),
      IPFSA_COL(ResultRow, seq_len, kU32),
      IPFSA_COL(ResultRow, scenario, kStr),
      IPFSA_COL(ResultRow, priority, kStr),
      IPFSA_COL(ResultRow, status, kStr),
      IPFSA_COL(ResultRow, signal, kI32),
      IPFSA_COL(ResultRow, worker_rank, kI32),
      IPFSA_COL(ResultRow, worker_host, kStr),
      IPFSA_COL(ResultRow, started_unix, kF64),
      IPFSA_COL(ResultRow, ended_unix, kF64),
      IPFSA_COL(ResultRow, latency_mean_s, kF64),
      IPFSA_COL(ResultRow, latency_p50_s, kF64),
      IPFSA_COL(ResultRow, latency_p90_s, kF64),
      IPFSA_COL(ResultRow, latency_p99_s, kF64),
      IPFSA_COL(ResultRow, latency_min_s, kF64),
      IPFSA_COL(ResultRow, latency_max_s, kF64),
      IPFSA_COL(ResultRow, latency_stddev_s, kF64),
      IPFSA_COL(ResultRow, sample_count, kU32),
      IPFSA_COL(ResultRow, throughput, kF64),
      IPFSA_COL(ResultRow, peak_memory_bytes, kU64),
      IPFSA_COL(ResultRow, acc_cosine, kF64),
      IPFSA_COL(ResultRow, acc_rel_error, kF64),
      IPFSA_COL(ResultRow, acc_kl, kF64),
      IPFSA_COL(ResultRow, acc_top1, kF64),
      IPFSA_COL(ResultRow, error, kStr),
      IPFSA_COL(ResultRow, samples_offset, kU64),
      IPFSA_COL(ResultRow, samples_count, kU32),
      IPFSA_COL(ResultRow, metrics_offset, kU64),
      IPFSA_COL(ResultRow, metrics_count, kU32),
      IPFSA_COL_SINCE(ResultRow, fingerprint, kStr, 2),
  };
  return cols;
}

const std::vector<Column>& metric_columns() {
  static const std::vector<Column> cols = {
      IPFSA_COL(MetricRow, result_row, kU64),
      IPFSA_COL(MetricRow, name, kStr),
      IPFSA_COL(MetricRow, value, kF64),
  };
  return cols;
}

// The columns of /results that say which attempt a row records (Hdf5Store::written_attempts):
// reading through this projection converts three columns instead of the whole row.
struct AttemptRow {
  char run_id[width::kRunId];
  std::uint32_t task_index;
  std::uint32_t attempt;
};

const std::vector<Column>& attempt_columns() {
  static const std::vector<Column> cols = {
      IPFSA_COL(AttemptRow, run_id, kStr),
      IPFSA_COL(AttemptRow, task_index, kU32),
      IPFSA_COL(AttemptRow, attempt, kU32),
  };
  return cols;
}

// The columns of /results that say where a row's samples and metrics are: the writer's recovery
// checks the rows a killed writer left at the end of the table (Hdf5Store::Impl::blank_incomplete_tail).
struct SliceRow {
  char run_id[width::kRunId];
  std::uint64_t samples_offset;
  std::uint32_t samples_count;
  std::uint64_t metrics_offset;
  std::uint32_t metrics_count;
};

const std::vector<Column>& slice_columns() {
  static const std::vector<Column> cols = {
      IPFSA_COL(SliceRow, run_id, kStr),        IPFSA_COL(SliceRow, samples_offset, kU64),
      IPFSA_COL(SliceRow, samples_count, kU32), IPFSA_COL(SliceRow, metrics_offset, kU64),
      IPFSA_COL(SliceRow, metrics_count, kU32),
  };
  return cols;
}

// Just the run id of a /results row: writing it alone blanks a row.
struct RunIdRow {
  char run_id[width::kRunId];
};

const std::vector<Column>& run_id_columns() {
  static const std::vector<Column> cols = {IPFSA_COL(RunIdRow, run_id, kStr)};
  return cols;
}

#undef IPFSA_COL
#undef IPFSA_COL_SINCE

struct TableDef {
  const char* name;  // dataset path
  const std::vector<Column>* cols;
  std::size_t row_size;  // sizeof the row struct
  hsize_t chunk_rows;
};

// Chunk sizes: a few hundred KiB per chunk, so a flush touches few chunks and a chunk fits the
// default 1 MiB chunk cache.
const TableDef kRunsTable{"runs", &run_columns(), sizeof(RunRow), 16};
const TableDef kResultsTable{"results", &result_columns(), sizeof(ResultRow), 256};
const TableDef kMetricsTable{"metrics", &metric_columns(), sizeof(MetricRow), 2048};
constexpr const char* kSamplesName = "samples";
constexpr hsize_t kSamplesChunk = 16384;

Handle string_type(std::size_t n) {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!t.valid() || H5Tset_size(t.get(), n) < 0 || H5Tset_strpad(t.get(), H5T_STR_NULLPAD) < 0 ||
      H5Tset_cset(t.get(), H5T_CSET_UTF8) < 0)
    return {};
  return t;
}

hid_t atom_type(ColType type, bool file) {
  switch (type) {
    case ColType::kU8:
      return file ? H5T_STD_U8LE : H5T_NATIVE_UINT8;
    case ColType::kU32:
      return file ? H5T_STD_U32LE : H5T_NATIVE_UINT32;
    case ColType::kI32:
      return file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
    case ColType::kU64:
      return file ? H5T_STD_U64LE : H5T_NATIVE_UINT64;
    case ColType::kF64:
      return file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
    case ColType::kStr:
      break;
  }
  return H5I_INVALID_HID;
}

// The compound type of the columns of `cols` that schema `version` has: the in-memory layout
// (offsets of the row struct, `mem_size` bytes) or the packed little-endian file layout. An
// in-memory type of an older version leaves the newer members of the row struct untouched on
// read. Invalid handle on failure.
Handle compound_type(const std::vector<Column>& cols, std::size_t mem_size, bool file,
                     std::uint32_t version = kSchemaVersion) {
  std::size_t size = 0;
  for (const auto& c : cols)
    if (c.since <= version) size += c.size;
  Handle t(H5Tcreate(H5T_COMPOUND, file ? size : mem_size), H5Tclose);
  if (!t.valid()) return {};
  std::size_t offset = 0;
  for (const auto& c : cols) {
    if (c.since > version) continue;
    Handle str;
    hid_t member = H5I_INVALID_HID;
    if (c.type == ColType::kStr) {
      str = string_type(c.size);
      member = str.get();
    } else {
      member = atom_type(c.type, file);
    }
    if (member < 0 || H5Tinsert(t.get(), c.name, file ? offset : c.offset, member) < 0) return {};
    offset += c.size;
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Schema checks, shared by reader and writer.

// Checks the attributes and datasets of a store of any readable schema_version; returns the
// version.
Result<std::uint32_t> check_schema(hid_t file, const std::string& path) {
  auto attr_class = [&](const char* name) -> Result<Handle> {
    const htri_t exists = H5Aexists(file, name);
    if (exists < 0) return h5_error(ErrorCode::kInput, path, std::string("reading attribute ") + name);
    if (exists == 0) return not_a_store(path, std::string("no '") + name + "' attribute");
    Handle a(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
    if (!a.valid()) return h5_error(ErrorCode::kInput, path, std::string("opening attribute ") + name);
    return a;
  };

  auto format = attr_class("format");
  if (!format) return format.error();
  {
    Handle type(H5Aget_type(format->get()), H5Tclose);
    if (!type.valid() || H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) != 0)
      return not_a_store(path, "'format' attribute is not a fixed-length string");
    const std::size_t n = H5Tget_size(type.get());
    if (n == 0 || n > 1024) return not_a_store(path, "'format' attribute has an unexpected size");
    // Read with the attribute's own type: HDF5 does not convert between ASCII and UTF-8 strings.
    std::string value(n, '\0');
    if (H5Aread(format->get(), type.get(), value.data()) < 0)
      return h5_error(ErrorCode::kInput, path, "reading attribute format");
    value.resize(strnlen(value.c_str(), n));
    if (value != kFormatName) return not_a_store(path, "'format' attribute is \"" + value + "\"");
  }

  std::uint32_t schema = 0;
  auto version = attr_class("schema_version");
  if (!version) return version.error();
  {
    Handle type(H5Aget_type(version->get()), H5Tclose);
    Handle space(H5Aget_space(version->get()), H5Sclose);
    if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER || !space.valid() ||
        H5Sget_simple_extent_npoints(space.get()) != 1)
      return not_a_store(path, "'schema_version' attribute is not an integer");
    std::int64_t v = 0;
    if (H5Aread(version->get(), H5T_NATIVE_INT64, &v) < 0)
      return h5_error(ErrorCode::kInput, path, "reading attribute schema_version");
    if (v < static_cast<std::int64_t>(kOldestSchemaVersion) || v > static_cast<std::int64_t>(kSchemaVersion))
      return not_a_store(path, "schema_version is " + std::to_string(v) + ", this build reads " +
                                   std::to_string(kOldestSchemaVersion) + " to " +
                                   std::to_string(kSchemaVersion));
    schema = static_cast<std::uint32_t>(v);
  }

  auto check_dataset = [&](const char* name, const std::vector<Column>* cols) -> Result<void> {
    const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists <= 0) return not_a_store(path, std::string("no /") + name + " dataset");
    H5O_info_t info;
    if (H5Oget_info_by_name2(file, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        info.type != H5O_TYPE_DATASET)
      return not_a_store(path, std::string("/") + name + " is not a dataset");
    Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return h5_error(ErrorCode::kInput, path, std::string("opening /") + name);
    Handle space(H5Dget_space(ds.get()), H5Sclose);
    if (!space.valid() || H5Sget_simple_extent_ndims(space.get()) != 1)
      return not_a_store(path, std::string("/") + name + " is not one-dimensional");
    Handle type(H5Dget_type(ds.get()), H5Tclose);
    if (!type.valid()) return h5_error(ErrorCode::kInput, path, std::string("reading the type of /") + name);
    if (cols == nullptr) {
      if (H5Tget_class(type.get()) != H5T_FLOAT)
        return not_a_store(path, std::string("/") + name + " is not float");
      return {};
    }
    if (H5Tget_class(type.get()) != H5T_COMPOUND)
      return not_a_store(path, std::string("/") + name + " is not a compound dataset");
    for (const auto& c : *cols) {
      if (c.since > schema) continue;
      const int idx = H5Tget_member_index(type.get(), c.name);
      if (idx < 0) {
        H5Eclear2(H5E_DEFAULT);
        return not_a_store(path, std::string("/") + name + " has no column '" + c.name + "'");
      }
      const H5T_class_t cls = H5Tget_member_class(type.get(), static_cast<unsigned>(idx));
      bool ok = false;
      if (c.type == ColType::kStr) {
        Handle mt(H5Tget_member_type(type.get(), static_cast<unsigned>(idx)), H5Tclose);
        ok = cls == H5T_STRING && mt.valid() && H5Tis_variable_str(mt.get()) == 0;
      } else if (c.type == ColType::kF64) {
        ok = cls == H5T_FLOAT;
      } else {
        ok = cls == H5T_INTEGER;
      }
      if (!ok)
        return not_a_store(path, std::string("/") + name + " column '" + c.name + "' has the wrong type");
    }
    return {};
  };
  if (auto r = check_dataset(kRunsTable.name, kRunsTable.cols); !r) return r.error();
  if (auto r = check_dataset(kResultsTable.name, kResultsTable.cols); !r) return r.error();
  if (auto r = check_dataset(kSamplesName, nullptr); !r) return r.error();
  if (auto r = check_dataset(kMetricsTable.name, kMetricsTable.cols); !r) return r.error();
  return schema;
}

// ---------------------------------------------------------------------------------------------
// Opening files.

constexpr unsigned kMetadataReadAttempts = 28;

Handle make_fapl(bool latest) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid()) return {};
  if (latest && H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) return {};
  // Use HDF5's file locks, but carry on where the file system has none (some NFS/Lustre mounts).
  if (H5Pset_file_locking(fapl.get(), true, true) < 0) return {};
  // A SWMR reader retries a metadata read whose checksum fails (a writer may be mid-write),
  // sleeping 1, 2, 4, ... ns between tries. HDF5's default of 100 tries never ends on a corrupt
  // or truncated file; 28 tries wait at most 2^28 ns (~0.27 s) in all.
  if (H5Pset_metadata_read_attempts(fapl.get(), kMetadataReadAttempts) < 0) return {};
  return fapl;
}

bool is_lock_conflict(const std::string& why) {
  return why.find("unable to lock") != std::string::npos;
}

// Opens with `open`, retrying for up to `patience` while HDF5 reports a file-lock conflict: HDF5
// 1.10 holds an flock on the store during every open call and, in readers, for as long as they
// keep the file open (docs/store.md §Reading concurrently).
template <typename OpenFn>
hid_t open_retrying(OpenFn open, std::chrono::milliseconds patience, std::string* why) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const hid_t f = open();
    if (f >= 0) return f;
    *why = hdf5_reason();
    if (!is_lock_conflict(*why) || std::chrono::steady_clock::now() >= deadline) return f;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

constexpr std::chrono::milliseconds kReaderPatience{2000};
constexpr std::chrono::milliseconds kWriterPatience{10000};

// Checks that `path` names a regular file in HDF5 format.
Result<void> check_hdf5_file(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return input_error(path + ": no such file");
  if (!fs::is_regular_file(st)) return not_a_store(path, "not a regular file");
  const htri_t is = H5Fis_hdf5(path.c_str());
  if (is < 0) return h5_error(ErrorCode::kInput, path, "reading the file signature");
  if (is == 0) return not_a_store(path, "not an HDF5 file");
  return {};
}

// Read-only open: SWMR read (works while a writer is active and after it crashed), else a plain
// read-only open (a store copied without SWMR support, e.g. by h5repack). Sets *swmr.
Result<Handle> open_read_only(const std::string& path, bool* swmr) {
  if (auto r = check_hdf5_file(path); !r) return r.error();
  Handle fapl = make_fapl(false);
  if (!fapl.valid()) return h5_error(ErrorCode::kInfra, path, "creating a file access property list");
  std::string swmr_why;
  hid_t f =
      open_retrying([&] { return H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()); },
                    kReaderPatience, &swmr_why);
  *swmr = f >= 0;
  if (f < 0) {
    std::string plain_why;
    f = open_retrying([&] { return H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()); }, kReaderPatience,
                      &plain_why);
    if (f < 0) return input_error(path + ": cannot open the HDF5 file: " + swmr_why);
  }
  return Handle(f, H5Fclose);
}

Handle open_dataset(hid_t file, const char* name) {
  return Handle(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
}

// Current number of rows of a 1-D dataset, or -1 on failure.
std::int64_t dataset_rows(hid_t ds) {
  Handle space(H5Dget_space(ds), H5Sclose);
  hsize_t dims = 0;
  if (!space.valid() || H5Sget_simple_extent_dims(space.get(), &dims, nullptr) != 1) return -1;
  return static_cast<std::int64_t>(dims);
}

// Reads rows [start, start + count) of a 1-D dataset into `out` (count elements of `memtype`).
herr_t read_rows(hid_t ds, hid_t memtype, hsize_t start, hsize_t count, void* out) {
  if (count == 0) return 0;
  Handle fspace(H5Dget_space(ds), H5Sclose);
  if (!fspace.valid() ||
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr) < 0)
    return -1;
  Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  if (!mspace.valid()) return -1;
  return H5Dread(ds, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, out);
}

StoredRun to_stored(const RunRow& r, std::uint64_t row) {
  StoredRun s;
  s.row = row;
  s.run_id = get(r.run_id);
  s.campaign = get(r.campaign);
  s.campaign_source = get(r.campaign_source);
  s.version = get(r.version);
  s.git_commit = get(r.git_commit);
  s.hosts = get(r.hosts);
  s.status = get(r.status);
  s.started_unix = r.started_unix;
  s.ended_unix = r.ended_unix;
  s.ranks = r.ranks;
  s.coordinators = r.coordinators;
  s.workers = r.workers;
  s.tasks_total = r.tasks_total;
  s.results_first_row = r.results_first_row;
  return s;
}

RunRow to_row(const core::RunInfo& run, std::uint64_t results_first_row) {
  RunRow r{};
  put(r.run_id, run.run_id);
  put(r.campaign, run.campaign);
  put(r.campaign_source, run.campaign_source);
  put(r.version, run.version);
  put(r.git_commit, run.git_commit);
  put(r.hosts, run.hosts);
  put(r.status, run.status);
  r.started_unix = run.started_unix;
  r.ended_unix = run.ended_unix;
  r.ranks = run.ranks;
  r.coordinators = run.coordinators;
  r.workers = run.workers;
  r.tasks_total = run.tasks_total;
  r.results_first_row = results_first_row;
  return r;
}

StoredResult to_stored(const ResultRow& r, std::uint64_t row) {
  StoredResult s;
  s.row = row;
  s.run_id = get(r.run_id);
  s.task_id = get(r.task_id);
  s.task_index = r.task_index;
  s.attempt = r.attempt;
  s.final = r.final != 0;
  s.flaky = r.flaky != 0;
  s.kind = get(r.kind);
  s.model = get(r.model);
  s.hardware = get(r.hardware);
  s.precision = get(r.precision);
  s.batch = r.batch;
  s.seq_len = r.seq_len;
  s.scenario = get(r.scenario);
  s.priority = get(r.priority);
  s.status = get(r.status);
  s.signal = r.signal;
  s.worker_rank = r.worker_rank;
  s.worker_host = get(r.worker_host);
  s.started_unix = r.started_unix;
  s.ended_unix = r.ended_unix;
  s.latency_mean_s = r.latency_mean_s;
  s.latency_p50_s = r.latency_p50_s;
  s.latency_p90_s = r.latency_p90_s;
  s.latency_p99_s = r.latency_p99_s;
  s.latency_min_s = r.latency_min_s;
  s.latency_max_s = r.latency_max_s;
  s.latency_stddev_s = r.latency_stddev_s;
  s.sample_count = r.sample_count;
  s.throughput = r.throughput;
  s.peak_memory_bytes = r.peak_memory_bytes;
  s.acc_cosine = r.acc_cosine;
  s.acc_rel_error = r.acc_rel_error;
  s.acc_kl = r.acc_kl;
  s.acc_top1 = r.acc_top1;
  s.error = get(r.error);
  s.samples_offset = r.samples_offset;
  s.samples_count = r.samples_count;
  s.metrics_offset = r.metrics_offset;
  s.metrics_count = r.metrics_count;
  s.fingerprint = get(r.fingerprint);
  return s;
}

// Reads every row of /runs.
Result<std::vector<RunRow>> read_all_runs(hid_t runs_ds, hid_t run_mem, const std::string& path) {
  const std::int64_t n = dataset_rows(runs_ds);
  if (n < 0) return h5_error(ErrorCode::kInput, path, "reading the size of /runs");
  std::vector<RunRow> rows(static_cast<std::size_t>(n));
  if (read_rows(runs_ds, run_mem, 0, static_cast<hsize_t>(n), rows.data()) < 0)
    return h5_error(ErrorCode::kInput, path, "reading /runs");
  return rows;
}

// ---------------------------------------------------------------------------------------------
// The writer lock: an flock on `<path>.lock`, held for the life of the writer. HDF5's own flock
// on the store is released once a file is opened for SWMR writing (and SWMR readers take it
// briefly while opening), so it cannot keep a second writer out; this lock can, and proves a
// file left "open for write" has no live writer.

class WriterLock {
 public:
  WriterLock() = default;
  WriterLock(WriterLock&& o) noexcept
      : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), held_(o.held_), created_(o.created_) {}
  WriterLock& operator=(WriterLock&& o) noexcept {
    if (this != &o) {
      release();
      path_ = std::move(o.path_);
      fd_ = std::exchange(o.fd_, -1);
      held_ = o.held_;
      created_ = o.created_;
    }
    return *this;
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  ~WriterLock() { release(); }

  // held() is false where the file system does not support flock: the store is still opened, but
  // a file left open by a crashed writer is then not recovered automatically.
  static Result<WriterLock> acquire(const std::string& path) {
    const std::string lock_path = path + ".lock";
    WriterLock lock;
    lock.path_ = lock_path;
    lock.fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    lock.created_ = lock.fd_ >= 0;
    if (lock.fd_ < 0 && errno == EEXIST) lock.fd_ = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (lock.fd_ < 0)
      return infra_error(path + ": cannot create the writer lock " + lock_path + ": " + std::strerror(errno));
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) == 0) {
      lock.held_ = true;
      const std::string pid = std::to_string(::getpid()) + "\n";
      if (::ftruncate(lock.fd_, 0) == 0 && ::pwrite(lock.fd_, pid.data(), pid.size(), 0) < 0) {
        // The pid is only a hint for the error message of a second writer; ignore failures.
      }
      return lock;
    }
    const int err = errno;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      const ssize_t n = ::pread(lock.fd_, buf, sizeof buf - 1, 0);
      std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return infra_error(path + ": the store is open for writing by another process" +
                         (holder.empty() ? std::string() : " (pid " + holder + ")") + "; lock " + lock_path);
    }
    if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS) return lock;  // no flock here; not held
    return infra_error(path + ": cannot lock " + lock_path + ": " + std::strerror(err));
  }

  bool held() const { return held_; }

  // Releases the lock and, when this writer created the lock file, removes it: used when the
  // open fails, so that a file that turned out not to be a usable store gets no `.lock` beside it.
  void discard() {
    if (held_ && created_) ::unlink(path_.c_str());
    release();
  }

  void release() {
    if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
    fd_ = -1;
    held_ = false;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool held_ = false;
  bool created_ = false;  // this writer created the lock file
};

// Fills a new store's datasets (opened in `file`, not in SWMR mode) before it is moved into place.
using StoreFiller = std::function<Result<void>(hid_t file)>;

// Builds a new store at `path`, empty or filled by `fill`: written under a temporary name in the
// same folder, flushed to disk and renamed into place (replacing an existing file), so a crash
// never leaves a half-made store at `path`. `perms`, when given, are the new file's permissions.
// On failure the temporary file is removed and `path` is untouched.
Result<void> create_store(const std::string& path, const StoreFiller& fill = nullptr,
                          std::optional<fs::perms> perms = std::nullopt) {
  const fs::path target(path);
  const std::string tmp =
      (target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid())))
          .string();
  auto fail = [&](std::string_view op) {
    Error e = h5_error(ErrorCode::kInfra, path, op);
    std::error_code ec;
    fs::remove(tmp, ec);
    return e;
  };
  {
    Handle fapl = make_fapl(true);
    if (!fapl.valid()) return fail("creating a file access property list");
    Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.valid()) return fail("creating the file");

    auto make_table = [&](const char* name, hid_t file_type, hsize_t chunk) -> bool {
      const hsize_t zero = 0, unlimited = H5S_UNLIMITED;
      Handle space(H5Screate_simple(1, &zero, &unlimited), H5Sclose);
      Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      if (!space.valid() || !dcpl.valid() || H5Pset_chunk(dcpl.get(), 1, &chunk) < 0) return false;
      Handle ds(H5Dcreate2(file.get(), name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                H5Dclose);
      return ds.valid();
    };
    for (const TableDef* t : {&kRunsTable, &kResultsTable, &kMetricsTable}) {
      Handle ftype = compound_type(*t->cols, t->row_size, true);
      if (!ftype.valid() || !make_table(t->name, ftype.get(), t->chunk_rows))
        return fail(std::string("creating /") + t->name);
    }
    if (!make_table(kSamplesName, H5T_IEEE_F64LE, kSamplesChunk)) return fail("creating /samples");

    Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
    Handle version(
        H5Acreate2(file.get(), "schema_version", H5T_STD_U32LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    const std::uint32_t v = kSchemaVersion;
    if (!version.valid() || H5Awrite(version.get(), H5T_NATIVE_UINT32, &v) < 0)
      return fail("writing attribute schema_version");
    Handle ftype = string_type(kFormatName.size());
    Handle format(H5Acreate2(file.get(), "format", ftype.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose);
    if (!format.valid() || H5Awrite(format.get(), ftype.get(), kFormatName.data()) < 0)
      return fail("writing attribute format");
    format.reset();
    version.reset();
    if (fill) {
      if (auto filled = fill(file.get()); !filled) {
        std::error_code ec;
        file.reset();
        fs::remove(tmp, ec);
        return filled.error();
      }
    }
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0 || file.reset() < 0) return fail("closing the new file");
  }
  std::error_code ec;
  if (perms) fs::permissions(tmp, *perms, ec);  // best effort: the store stays usable without
  // Make the new file's bytes durable before its name is.
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return infra_error(path + ": cannot move the new store into place: " + ec.message());
  }
  return {};
}

// Copies rows [0, n) of the 1-D dataset `name` of `src` into the (empty) dataset of the same name
// of `dst`, `batch` rows at a time: read with `src_mem`, written with `dst_mem`, both describing
// rows of `row_size` bytes. A column `src_mem` lacks keeps the buffer's zero bytes.
Result<void> copy_table(hid_t src, hid_t dst, const char* name, hid_t src_mem, hid_t dst_mem,
                        std::size_t row_size, hsize_t batch, const std::string& path) {
  Handle in = open_dataset(src, name);
  Handle out = open_dataset(dst, name);
  if (!in.valid() || !out.valid()) return h5_error(ErrorCode::kInfra, path, std::string("opening /") + name);
  const std::int64_t n = dataset_rows(in.get());
  if (n < 0) return h5_error(ErrorCode::kInfra, path, std::string("reading the size of /") + name);
  hsize_t total = static_cast<hsize_t>(n);
  if (H5Dset_extent(out.get(), &total) < 0)
    return h5_error(ErrorCode::kInfra, path, std::string("extending /") + name);
  std::vector<unsigned char> buf(static_cast<std::size_t>(std::min(batch, std::max<hsize_t>(total, 1))) *
                                 row_size);
  for (hsize_t start = 0; start < total; start += batch) {
    hsize_t count = std::min(batch, total - start);
    std::fill(buf.begin(), buf.end(), 0);
    if (read_rows(in.get(), src_mem, start, count, buf.data()) < 0)
      return h5_error(ErrorCode::kInfra, path, std::string("reading /") + name);
    Handle fspace(H5Dget_space(out.get()), H5Sclose);
    Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
    if (!fspace.valid() || !mspace.valid() ||
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr) < 0 ||
        H5Dwrite(out.get(), dst_mem, mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()) < 0)
      return h5_error(ErrorCode::kInfra, path, std::string("writing /") + name);
  }
  return {};
}

// Rewrites the store at `path`, of schema `from` < kSchemaVersion, as a store of the current
// schema: every row of every dataset is copied in order (so row numbers, offsets and
// results_first_row stay valid; columns the old schema lacks are empty) into a new file that
// replaces `path` by rename (create_store). Only with the writer lock held and no writer open.
// On failure `path` is unchanged.
Result<void> upgrade_store(const std::string& path, std::uint32_t from) {
  const std::string what = path + ": upgrading the store from schema_version " + std::to_string(from) +
                           " to " + std::to_string(kSchemaVersion);
  bool swmr = false;
  auto src = open_read_only(path, &swmr);
  if (!src) return Error{src.error().code, what + " failed: " + src.error().message};
  std::error_code ec;
  const auto st = fs::status(path, ec);
  std::optional<fs::perms> perms;
  if (!ec) perms = st.permissions();
  Handle run_mem = compound_type(run_columns(), sizeof(RunRow), false);
  Handle old_result_mem = compound_type(result_columns(), sizeof(ResultRow), false, from);
  Handle result_mem = compound_type(result_columns(), sizeof(ResultRow), false);
  Handle metric_mem = compound_type(metric_columns(), sizeof(MetricRow), false);
  if (!run_mem.valid() || !old_result_mem.valid() || !result_mem.valid() || !metric_mem.valid())
    return h5_error(ErrorCode::kInfra, path, "building the row types");
  const hid_t in = src->get();
  auto copied = create_store(
      path,
      [&](hid_t out) -> Result<void> {
        if (auto r = copy_table(in, out, kRunsTable.name, run_mem.get(), run_mem.get(), sizeof(RunRow), 1024,
                                path);
            !r)
          return r;
        if (auto r = copy_table(in, out, kResultsTable.name, old_result_mem.get(), result_mem.get(),
                                sizeof(ResultRow), 8192, path);
            !r)
          return r;
        if (auto r = copy_table(in, out, kSamplesName, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, sizeof(double),
                                hsize_t{1} << 20, path);
            !r)
          return r;
        return copy_table(in, out, kMetricsTable.name, metric_mem.get(), metric_mem.get(), sizeof(MetricRow),
                          65536, path);
      },
      perms);
  if (!copied)
    return Error{copied.error().code, what + " failed (the store is unchanged): " + copied.error().message};
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer.

struct Hdf5Store::Impl {
  struct Table {
    Handle ds;
    hsize_t rows = 0;  // rows written to the file
  };

  std::string path;
  WriterLock lock;  // declared first: released last
  Handle file;
  Table runs, results, samples, metrics;
  Handle run_mem, result_mem, metric_mem;             // in-memory row types
  Handle attempt_mem;                                 // in-memory projection of /results
  std::unordered_map<std::string, hsize_t> run_rows;  // run id -> row in /runs

  bool closed = false;
  bool in_run = false;
  std::string run_id;
  std::vector<core::TaskSpec> tasks;

  std::vector<ResultRow> pending_results;
  std::vector<double> pending_samples;
  std::vector<MetricRow> pending_metrics;

  Error infra(std::string_view op) const { return h5_error(ErrorCode::kInfra, path, op); }

  // Appends `n` rows at the end of `t` (one H5Dset_extent + one H5Dwrite).
  Result<void> write_rows(Table& t, hid_t memtype, const void* data, std::size_t n, const char* name) {
    if (n == 0) return {};
    hsize_t start = t.rows, count = n, total = t.rows + n;
    if (H5Dset_extent(t.ds.get(), &total) < 0) return infra(std::string("extending /") + name);
    if (auto r = overwrite_rows(t, memtype, data, start, count, name); !r) return r;
    t.rows = total;
    return {};
  }

  Result<void> overwrite_rows(Table& t, hid_t memtype, const void* data, hsize_t start, hsize_t count,
                              const char* name) {
    Handle fspace(H5Dget_space(t.ds.get()), H5Sclose);
    if (!fspace.valid() ||
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr) < 0)
      return infra(std::string("selecting rows of /") + name);
    Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
    if (!mspace.valid() || H5Dwrite(t.ds.get(), memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data) < 0)
      return infra(std::string("writing /") + name);
    return {};
  }

  // Writes the buffered rows. Samples and metrics go first, so that a reader that sees a result
  // row finds what it points at; each buffer is dropped only once written.
  Result<void> write_pending() {
    if (auto r = write_rows(samples, H5T_NATIVE_DOUBLE, pending_samples.data(), pending_samples.size(),
                            kSamplesName);
        !r)
      return r;
    pending_samples.clear();
    if (auto r = write_rows(metrics, metric_mem.get(), pending_metrics.data(), pending_metrics.size(),
                            kMetricsTable.name);
        !r)
      return r;
    pending_metrics.clear();
    if (auto r = write_rows(results, result_mem.get(), pending_results.data(), pending_results.size(),
                            kResultsTable.name);
        !r)
      return r;
    pending_results.clear();
    return {};
  }

  Result<void> flush_file() {
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) return infra("flushing the file");
    return {};
  }

  Result<void> check_open() const {
    if (closed) return infra_error(path + ": the store is closed");
    return {};
  }

  // Closes the datasets and the file; returns H5Fclose's status.
  herr_t close_handles() {
    runs.ds.reset();
    results.ds.reset();
    samples.ds.reset();
    metrics.ds.reset();
    return file.reset();
  }

  // Upgrades the file, of schema `from`, to the current schema (upgrade_store). Needs the writer
  // lock: it proves that no other writer (of this or an older build) has the file open.
  Result<void> upgrade(std::uint32_t from) {
    if (!lock.held())
      return input_error(
          path + ": the store has schema_version " + std::to_string(from) + " and must be upgraded to " +
          std::to_string(kSchemaVersion) +
          " before writing, which needs the writer lock (flock), not supported here; upgrade it "
          "once on a file system with flock (any write does it), or start a new store");
    return upgrade_store(path, from);
  }

  // The part of open_for_write done under the writer lock: create the file if missing, upgrade an
  // older schema, open it for SWMR writing (recovering a crashed writer's file), check the schema
  // if not yet done, open the datasets and mark orphaned runs aborted. `version` is the schema of
  // the file as checked read-only before the lock, 0 when that check could not be made.
  Result<void> open_locked(std::uint32_t version) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {  // checked again under the lock: another writer may have made it
      if (auto created = create_store(path); !created) return created.error();
      version = kSchemaVersion;
    }
    if (version != 0 && version < kSchemaVersion) {
      if (auto up = upgrade(version); !up) return up;
      version = kSchemaVersion;
    }

    Handle fapl = make_fapl(true);
    if (!fapl.valid()) return infra("creating a file access property list");
    const unsigned flags = H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE;
    std::string why;
    hid_t f = open_retrying([&] { return H5Fopen(path.c_str(), flags, fapl.get()); }, kWriterPatience, &why);
    if (f < 0 && is_lock_conflict(why))
      return infra_error(path + ": cannot open for writing: another process keeps the file open (" + why +
                         "); readers that hold the store open block the writer unless they set "
                         "HDF5_USE_FILE_LOCKING=FALSE");
    if (f < 0 && lock.held()) {
      // With the writer lock held no writer of ours is alive, so an "already open for write" mark
      // is a crash leftover: clear it as `h5clear -s` does, through the library's private FAPL
      // property "clear_status_flags" (registered in the default FAPL class; see h5clear.c).
      hbool_t clear = true;
      if (H5Pset(fapl.get(), "clear_status_flags", &clear) >= 0) {
        std::string why_cleared;
        f = open_retrying([&] { return H5Fopen(path.c_str(), flags, fapl.get()); }, kWriterPatience,
                          &why_cleared);
      } else {
        H5Eclear2(H5E_DEFAULT);
      }
    }
    if (f < 0) {
      const ErrorCode code = ::access(path.c_str(), W_OK) != 0 ? ErrorCode::kInfra : ErrorCode::kInput;
      std::string hint;
      if (!lock.held() && why.find("h5clear") != std::string::npos)
        hint = " (no file locking here to prove the old writer is gone; once sure, run `h5clear -s " + path +
               "`)";
      return Error{code, path + ": cannot open for writing: " + why + hint};
    }
    file = Handle(f, H5Fclose);
    if (version == 0) {
      auto schema = check_schema(f, path);
      if (!schema) return schema.error();
      if (*schema < kSchemaVersion) {
        // A crashed writer's store (not readable until opened for writing above) of an older
        // schema: closing it cleared its status flags; now upgrade it and open the new file.
        if (file.reset() < 0) return infra("closing the file");
        if (auto up = upgrade(*schema); !up) return up;
        return open_locked(kSchemaVersion);
      }
    }

    run_mem = compound_type(run_columns(), sizeof(RunRow), false);
    result_mem = compound_type(result_columns(), sizeof(ResultRow), false);
    metric_mem = compound_type(metric_columns(), sizeof(MetricRow), false);
    attempt_mem = compound_type(attempt_columns(), sizeof(AttemptRow), false);
    if (!run_mem.valid() || !result_mem.valid() || !metric_mem.valid() || !attempt_mem.valid())
      return infra("building the row types");

    const std::pair<Table*, const char*> tables[] = {{&runs, kRunsTable.name},
                                                     {&results, kResultsTable.name},
                                                     {&samples, kSamplesName},
                                                     {&metrics, kMetricsTable.name}};
    for (auto [table, name] : tables) {
      table->ds = open_dataset(f, name);
      const std::int64_t rows = table->ds.valid() ? dataset_rows(table->ds.get()) : -1;
      if (rows < 0) return infra(std::string("opening /") + name);
      table->rows = static_cast<hsize_t>(rows);
    }

    auto run_list = read_all_runs(runs.ds.get(), run_mem.get(), path);
    if (!run_list) return run_list.error();
    for (std::size_t i = 0; i < run_list->size(); ++i) run_rows.emplace(get((*run_list)[i].run_id), i);

    if (lock.held()) {
      if (auto blanked = blank_incomplete_tail(); !blanked) return blanked;
      return abort_orphaned_runs();
    }
    return {};
  }

  // Blanks the run id of the rows at the end of /results whose samples or metrics lie beyond those
  // datasets' extents: a writer killed inside a flush can leave the results' new extent in the
  // file without the samples' (HDF5 orders metadata writes within a dataset, not across
  // datasets). Readers skip blank rows, and the samples appended next can never be taken for
  // theirs. Rows are appended with ascending slices, so the scan stops at the first complete row
  // from the end. Called with the writer lock held (no writer is alive).
  Result<void> blank_incomplete_tail() {
    Handle slice_mem = compound_type(slice_columns(), sizeof(SliceRow), false);
    Handle run_id_mem = compound_type(run_id_columns(), sizeof(RunIdRow), false);
    if (!slice_mem.valid() || !run_id_mem.valid()) return infra("building the row types");
    constexpr hsize_t kBatch = 1024;
    std::vector<SliceRow> buf;
    hsize_t blanked = 0;
    for (hsize_t end = results.rows; end > 0;) {
      const hsize_t start = end > kBatch ? end - kBatch : 0;
      buf.assign(end - start, SliceRow{});
      if (read_rows(results.ds.get(), slice_mem.get(), start, end - start, buf.data()) < 0)
        return infra("reading /results");
      for (hsize_t i = end - start; i-- > 0;) {
        const SliceRow& r = buf[i];
        if (r.run_id[0] == '\0') continue;
        if (r.samples_offset + r.samples_count <= samples.rows &&
            r.metrics_offset + r.metrics_count <= metrics.rows)
          return blanked > 0 ? flush_file() : Result<void>{};
        const RunIdRow blank{};
        if (auto w = overwrite_rows(results, run_id_mem.get(), &blank, start + i, 1, kResultsTable.name); !w)
          return w;
        ++blanked;
      }
      end = start;
    }
    return blanked > 0 ? flush_file() : Result<void>{};
  }

  // Marks runs left "running" as "aborted": called with the writer lock held, so their writer is
  // gone (it crashed or was killed before end_run).
  Result<void> abort_orphaned_runs() {
    auto rows = read_all_runs(runs.ds.get(), run_mem.get(), path);
    if (!rows) return infra_error(rows.error().message);
    bool changed = false;
    for (std::size_t i = 0; i < rows->size(); ++i) {
      RunRow& r = (*rows)[i];
      if (get(r.status) != "running") continue;
      put(r.status, "aborted");
      if (auto w = overwrite_rows(runs, run_mem.get(), &r, i, 1, kRunsTable.name); !w) return w;
      changed = true;
    }
    return changed ? flush_file() : Result<void>{};
  }
};

Hdf5Store::Hdf5Store(std::unique_ptr<Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {}

Hdf5Store::~Hdf5Store() {
  if (impl_ && !impl_->closed) (void)close();
}

Result<std::unique_ptr<Hdf5Store>> Hdf5Store::open_for_write(const std::string& path) {
  silence_hdf5();
  if (path.empty()) return input_error("trend store path is empty");
  auto impl = std::make_unique<Impl>();
  impl->path = path;

  // An existing file is validated read-only first, before the lock file is made, so that a file
  // that is not ours is never opened for writing and gets no `.lock` beside it. A file left open
  // for (non-SWMR) write by a crashed writer cannot be opened read-only; it is checked right after
  // the write open below, before anything is written.
  std::error_code ec;
  std::uint32_t version = 0;  // 0: not checked yet
  if (fs::exists(path, ec)) {
    if (auto hdf5 = check_hdf5_file(path); !hdf5) return hdf5.error();
    bool swmr = false;
    if (auto ro = open_read_only(path, &swmr); ro) {
      auto schema = check_schema(ro->get(), path);
      if (!schema) return schema.error();
      version = *schema;
    }
  } else {
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent, ec);
      if (ec) return infra_error(path + ": cannot create folder " + parent.string() + ": " + ec.message());
    }
  }
  auto lock = WriterLock::acquire(path);
  if (!lock) return lock.error();
  impl->lock = std::move(*lock);
  if (auto opened = impl->open_locked(version); !opened) {
    (void)impl->close_handles();  // the file first, then the lock that guards it
    impl->lock.discard();
    return opened.error();
  }
  return std::unique_ptr<Hdf5Store>(new Hdf5Store(std::move(impl), path));
}

Result<void> Hdf5Store::begin_run(const core::RunInfo& run, std::span<const core::TaskSpec> tasks) {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  if (run.run_id.empty()) return input_error(path_ + ": begin_run: empty run id");
  if (run.run_id.size() > width::kRunId)
    return input_error(path_ + ": begin_run: run id '" + run.run_id + "' is longer than " +
                       std::to_string(width::kRunId) + " bytes");
  if (m.run_rows.count(run.run_id) != 0)
    return input_error(path_ + ": begin_run: run id '" + run.run_id + "' is already in the store");
  // Rows of the previous run go first: a run's rows must follow its results_first_row.
  if (auto w = m.write_pending(); !w) return w;

  const RunRow row = to_row(run, m.results.rows);
  const hsize_t index = m.runs.rows;
  if (auto w = m.write_rows(m.runs, m.run_mem.get(), &row, 1, kRunsTable.name); !w) return w;
  m.run_rows.emplace(run.run_id, index);
  m.in_run = true;
  m.run_id = run.run_id;
  m.tasks.assign(tasks.begin(), tasks.end());
  return m.flush_file();
}

Result<void> Hdf5Store::resume_run(const core::RunInfo& run, std::span<const core::TaskSpec> tasks) {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  const auto it = m.run_rows.find(run.run_id);
  if (it == m.run_rows.end())
    return input_error(path_ + ": resume_run: run id '" + run.run_id + "' is not in the store");
  // A run's result rows must stay contiguous (docs/store.md §Finding a run's rows): only the
  // newest run can take more rows.
  if (it->second + 1 != m.runs.rows)
    return input_error(path_ + ": resume_run: run '" + run.run_id +
                       "' cannot be resumed: other runs were recorded in the store after it");
  // Rows of the previous run go first (as in begin_run).
  if (auto w = m.write_pending(); !w) return w;
  RunRow old{};
  if (read_rows(m.runs.ds.get(), m.run_mem.get(), it->second, 1, &old) < 0) return m.infra("reading /runs");
  const RunRow row = to_row(run, old.results_first_row);
  if (auto w = m.overwrite_rows(m.runs, m.run_mem.get(), &row, it->second, 1, kRunsTable.name); !w) return w;
  m.in_run = true;
  m.run_id = run.run_id;
  m.tasks.assign(tasks.begin(), tasks.end());
  return m.flush_file();
}

Result<void> Hdf5Store::append(std::span<const core::TaskResult> results) {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  if (!m.in_run) return input_error(path_ + ": append: no run in progress (begin_run first)");
  for (const auto& r : results)
    if (r.task >= m.tasks.size())
      return input_error(path_ + ": append: task index " + std::to_string(r.task) + " is outside run '" +
                         m.run_id + "' (" + std::to_string(m.tasks.size()) + " tasks)");

  m.pending_results.reserve(m.pending_results.size() + results.size());
  for (const auto& r : results) {
    const core::TaskSpec& t = m.tasks[r.task];
    const core::TaskOutcome& o = r.outcome;
    ResultRow& row = m.pending_results.emplace_back();  // value-initialised: all zero
    put(row.run_id, m.run_id);
    put(row.task_id, t.id);
    row.task_index = r.task;
    row.attempt = r.attempt;
    row.final = r.final ? 1 : 0;
    row.flaky = r.flaky ? 1 : 0;
    put(row.kind, t.kind);
    put(row.model, t.model);
    put(row.hardware, t.hardware);
    put(row.precision, t.precision);
    row.batch = t.batch;
    row.seq_len = t.seq_len;
    put(row.scenario, t.scenario);
    put(row.priority, core::to_string(t.priority));
    put(row.status, core::to_string(o.status));
    row.signal = o.signal;
    row.worker_rank = r.worker;
    put(row.worker_host, r.host);
    row.started_unix = r.started_unix;
    row.ended_unix = r.ended_unix;
    core::copy_latency_summary(core::summarize(o.samples_s), row);
    row.throughput = o.throughput;
    row.peak_memory_bytes = o.peak_memory_bytes;
    row.acc_cosine = o.acc_cosine;
    row.acc_rel_error = o.acc_rel_error;
    row.acc_kl = o.acc_kl;
    row.acc_top1 = o.acc_top1;
    put(row.error, o.error);
    put(row.fingerprint, r.fingerprint);
    row.samples_offset = m.samples.rows + m.pending_samples.size();
    row.samples_count = static_cast<std::uint32_t>(o.samples_s.size());
    m.pending_samples.insert(m.pending_samples.end(), o.samples_s.begin(), o.samples_s.end());
    const std::uint64_t result_row = m.results.rows + m.pending_results.size() - 1;
    row.metrics_offset = m.metrics.rows + m.pending_metrics.size();
    row.metrics_count = static_cast<std::uint32_t>(o.metrics.size());
    for (const auto& [name, value] : o.metrics) {
      MetricRow& mr = m.pending_metrics.emplace_back();
      mr.result_row = result_row;
      put(mr.name, name);
      mr.value = value;
    }
  }
  return {};
}

Result<void> Hdf5Store::flush() {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  if (auto w = m.write_pending(); !w) return w;
  return m.flush_file();
}

Result<void> Hdf5Store::end_run(const core::RunInfo& run) {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  const auto it = m.run_rows.find(run.run_id);
  if (it == m.run_rows.end())
    return input_error(path_ + ": end_run: run id '" + run.run_id + "' is not in the store");
  // Results first, then the run's final row: a reader that sees the run ended sees all its rows.
  if (auto w = m.write_pending(); !w) return w;
  RunRow old{};
  if (read_rows(m.runs.ds.get(), m.run_mem.get(), it->second, 1, &old) < 0) return m.infra("reading /runs");
  const RunRow row = to_row(run, old.results_first_row);
  if (auto w = m.overwrite_rows(m.runs, m.run_mem.get(), &row, it->second, 1, kRunsTable.name); !w) return w;
  if (m.in_run && m.run_id == run.run_id) {
    m.in_run = false;
    m.tasks.clear();
  }
  return m.flush_file();
}

Result<void> Hdf5Store::close() {
  Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open;
  Result<void> flushed = flush();
  m.closed = true;
  m.in_run = false;
  const herr_t closed = m.close_handles();
  m.lock.release();
  if (!flushed) return flushed;
  if (closed < 0) return m.infra("closing the file");
  return {};
}

std::size_t Hdf5Store::pending_rows() const {
  return impl_->pending_results.size();
}

std::uint64_t Hdf5Store::result_rows() const {
  return impl_->results.rows + impl_->pending_results.size();
}

Result<std::vector<std::pair<std::uint32_t, std::uint32_t>>> Hdf5Store::written_attempts(
    std::uint64_t from_row) const {
  const Impl& m = *impl_;
  if (auto open = m.check_open(); !open) return open.error();
  if (!m.in_run)
    return input_error(path_ + ": written_attempts: no run in progress (begin_run or resume_run first)");
  // A row never completed by a killed writer reads with an empty run id, which never matches.
  auto of_run = [&](const char(&run_id)[width::kRunId]) {
    return std::string_view(run_id, strnlen(run_id, width::kRunId)) == m.run_id;
  };
  std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
  constexpr hsize_t kBatch = 4096;  // rows per read; bounds the transient buffer (~300 KiB)
  std::vector<AttemptRow> buf;
  for (hsize_t start = from_row; start < m.results.rows; start += kBatch) {
    const hsize_t count = std::min(kBatch, m.results.rows - start);
    buf.resize(count);
    if (read_rows(m.results.ds.get(), m.attempt_mem.get(), start, count, buf.data()) < 0)
      return m.infra("reading /results");
    for (const AttemptRow& r : buf)
      if (of_run(r.run_id)) out.emplace_back(r.task_index, r.attempt);
  }
  // Pending row i will be row results.rows + i.
  const std::uint64_t skip = from_row > m.results.rows ? from_row - m.results.rows : 0;
  for (std::size_t i = skip; i < m.pending_results.size(); ++i) {
    const ResultRow& r = m.pending_results[i];
    if (of_run(r.run_id)) out.emplace_back(r.task_index, r.attempt);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reader.

struct Hdf5Reader::Impl {
  std::string path;
  Handle file;
  bool swmr = false;
  std::uint32_t version = kSchemaVersion;  // of the file; result_mem reads only its columns
  Handle runs, results, samples, metrics;
  Handle run_mem, result_mem, metric_mem;

  // Current rows of `ds`, after picking up what a SWMR writer flushed since the last call.
  Result<hsize_t> rows(const Handle& ds, const char* name) const {
    if (swmr && H5Drefresh(ds.get()) < 0)
      return h5_error(ErrorCode::kInput, path, std::string("refreshing /") + name);
    const std::int64_t n = dataset_rows(ds.get());
    if (n < 0) return h5_error(ErrorCode::kInput, path, std::string("reading the size of /") + name);
    return static_cast<hsize_t>(n);
  }
};

Hdf5Reader::Hdf5Reader(std::unique_ptr<Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {}
Hdf5Reader::Hdf5Reader(Hdf5Reader&& other) noexcept = default;
Hdf5Reader& Hdf5Reader::operator=(Hdf5Reader&& other) noexcept = default;
Hdf5Reader::~Hdf5Reader() = default;

Result<Hdf5Reader> Hdf5Reader::open(const std::string& path) {
  silence_hdf5();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  auto file = open_read_only(path, &impl->swmr);
  if (!file) return file.error();
  impl->file = std::move(*file);
  auto schema = check_schema(impl->file.get(), path);
  if (!schema) return schema.error();
  impl->version = *schema;
  impl->runs = open_dataset(impl->file.get(), kRunsTable.name);
  impl->results = open_dataset(impl->file.get(), kResultsTable.name);
  impl->samples = open_dataset(impl->file.get(), kSamplesName);
  impl->metrics = open_dataset(impl->file.get(), kMetricsTable.name);
  if (!impl->runs.valid() || !impl->results.valid() || !impl->samples.valid() || !impl->metrics.valid())
    return h5_error(ErrorCode::kInput, path, "opening the datasets");
  impl->run_mem = compound_type(run_columns(), sizeof(RunRow), false);
  // An older file is read through the projection of its own columns: the newer members of the
  // row struct are never written by HDF5 and keep the zero bytes they are set to before each read.
  impl->result_mem = compound_type(result_columns(), sizeof(ResultRow), false, impl->version);
  impl->metric_mem = compound_type(metric_columns(), sizeof(MetricRow), false);
  if (!impl->run_mem.valid() || !impl->result_mem.valid() || !impl->metric_mem.valid())
    return h5_error(ErrorCode::kInfra, path, "building the row types");
  return Hdf5Reader(std::move(impl), path);
}

std::uint32_t Hdf5Reader::schema_version() const {
  return impl_->version;
}

Result<std::vector<StoredRun>> Hdf5Reader::runs() const {
  const Impl& m = *impl_;
  if (auto n = m.rows(m.runs, kRunsTable.name); !n) return n.error();
  auto rows = read_all_runs(m.runs.get(), m.run_mem.get(), path_);
  if (!rows) return rows.error();
  std::vector<StoredRun> out;
  out.reserve(rows->size());
  for (std::size_t i = 0; i < rows->size(); ++i) {
    if ((*rows)[i].run_id[0] == '\0') continue;  // a row a crashed writer never filled
    out.push_back(to_stored((*rows)[i], i));
  }
  return out;
}

Result<std::vector<StoredResult>> Hdf5Reader::results(std::string_view run_id, bool with_samples) const {
  const Impl& m = *impl_;
  // Order matters for concurrent reads: results first, then what its rows point at, so every
  // slice a visible row points at has been flushed by the time its dataset is refreshed.
  auto total = m.rows(m.results, kResultsTable.name);
  if (!total) return total.error();
  hsize_t lo = 0, hi = *total;
  if (!run_id.empty()) {
    auto runs = this->runs();
    if (!runs) return runs.error();
    const auto it =
        std::find_if(runs->begin(), runs->end(), [&](const StoredRun& r) { return r.run_id == run_id; });
    if (it == runs->end()) return std::vector<StoredResult>{};
    lo = std::min<hsize_t>(it->results_first_row, hi);
    if (std::next(it) != runs->end()) hi = std::clamp<hsize_t>(std::next(it)->results_first_row, lo, hi);
  }
  auto metric_total = m.rows(m.metrics, kMetricsTable.name);
  if (!metric_total) return metric_total.error();
  auto samples_n = m.rows(m.samples, kSamplesName);
  if (!samples_n) return samples_n.error();
  const hsize_t sample_total = *samples_n;
  // A row is returned once what it points at is visible too: a row whose samples or metrics lie
  // beyond their datasets' extents belongs to a flush still in progress, or to one a killed
  // writer never finished (its extents reached the file in another order than they were set).
  auto wanted = [&](const ResultRow& r) {
    return r.run_id[0] != '\0' && (run_id.empty() || get(r.run_id) == run_id) &&
           r.samples_offset + r.samples_count <= sample_total &&
           r.metrics_offset + r.metrics_count <= *metric_total;
  };

  std::vector<StoredResult> out;
  constexpr hsize_t kBatch = 8192;  // rows per read; bounds the transient buffer (~11 MiB)
  std::vector<ResultRow> buf;
  std::vector<MetricRow> metric_buf;
  std::vector<double> sample_buf;
  for (hsize_t start = lo; start < hi; start += kBatch) {
    const hsize_t count = std::min(kBatch, hi - start);
    buf.resize(count);
    if (m.version < kSchemaVersion)
      for (auto& r : buf) r.fingerprint[0] = '\0';  // not in the file: read as empty
    if (read_rows(m.results.get(), m.result_mem.get(), start, count, buf.data()) < 0)
      return h5_error(ErrorCode::kInput, path_, "reading /results");
    // The slices of /metrics and /samples that this batch's rows point at, read in one go each.
    // Rows of one batch were appended in order, so their slices are contiguous and ascending.
    hsize_t m_lo = *metric_total, m_hi = 0, s_lo = sample_total, s_hi = 0;
    for (const auto& r : buf) {
      if (!wanted(r)) continue;
      if (r.metrics_count > 0 && r.metrics_offset + r.metrics_count <= *metric_total) {
        m_lo = std::min<hsize_t>(m_lo, r.metrics_offset);
        m_hi = std::max<hsize_t>(m_hi, r.metrics_offset + r.metrics_count);
      }
      if (with_samples && r.samples_count > 0 && r.samples_offset + r.samples_count <= sample_total) {
        s_lo = std::min<hsize_t>(s_lo, r.samples_offset);
        s_hi = std::max<hsize_t>(s_hi, r.samples_offset + r.samples_count);
      }
    }
    metric_buf.clear();
    if (m_hi > m_lo) {
      metric_buf.resize(m_hi - m_lo);
      if (read_rows(m.metrics.get(), m.metric_mem.get(), m_lo, m_hi - m_lo, metric_buf.data()) < 0)
        return h5_error(ErrorCode::kInput, path_, "reading /metrics");
    }
    sample_buf.clear();
    if (s_hi > s_lo) {
      sample_buf.resize(s_hi - s_lo);
      if (read_rows(m.samples.get(), H5T_NATIVE_DOUBLE, s_lo, s_hi - s_lo, sample_buf.data()) < 0)
        return h5_error(ErrorCode::kInput, path_, "reading /samples");
    }
    for (hsize_t i = 0; i < count; ++i) {
      const ResultRow& r = buf[i];
      if (!wanted(r)) continue;
      StoredResult s = to_stored(r, start + i);
      if (!metric_buf.empty() && r.metrics_count > 0 && r.metrics_offset >= m_lo &&
          r.metrics_offset + r.metrics_count <= m_hi) {
        for (std::uint32_t k = 0; k < r.metrics_count; ++k) {
          const MetricRow& mr = metric_buf[r.metrics_offset - m_lo + k];
          if (mr.result_row == start + i) s.metrics.emplace_back(get(mr.name), mr.value);
        }
      }
      if (!sample_buf.empty() && r.samples_count > 0 && r.samples_offset >= s_lo &&
          r.samples_offset + r.samples_count <= s_hi) {
        const auto first = sample_buf.begin() + static_cast<std::ptrdiff_t>(r.samples_offset - s_lo);
        s.samples.assign(first, first + r.samples_count);
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace ipfsa::store
