// Campaign expansion (M1): turns the parsed description of a campaign (a CampaignSpec: explicit
// tasks and matrix blocks, every value with the place it was written) into the deterministic task
// list of a core::Campaign. Pure: no I/O, no YAML. The YAML front end is src/config/campaign_loader,
// which checks the file's structure and types; this module checks the values (kinds, models,
// hardware, numbers), applies matrix excludes/includes, derives the ids and enforces the limits.
// The rules are written down in docs/campaigns.md §Expansion.
//
// Thread-safety: free functions over value types; safe to call concurrently.
// On failure every function returns an input Error (ErrorCode::kInput) whose message has the form
// "FILE:LINE:COLUMN: message", pointing at what caused it; nothing is left behind.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/campaign.hpp"
#include "core/error.hpp"
#include "core/task.hpp"

namespace ipfsa::core {

// Where something was written: a path (or "<embedded default>") and a 1-based line and column.
struct SourceLoc {
  std::string file;
  int line = 1;
  int column = 1;
};

// "FILE:LINE:COLUMN".
std::string to_string(const SourceLoc& loc);
// An input error with the message "FILE:LINE:COLUMN: message".
Error error_at(const SourceLoc& loc, std::string_view message);

// ---- value domains (docs/campaigns.md §Values) ----
inline constexpr std::array<std::string_view, 2> kHardwareNames = {"cpu", "cuda"};
inline constexpr std::array<std::string_view, 4> kScenarioNames = {"latency", "throughput", "prefill",
                                                                   "decode"};
// A campaign expanding to more tasks than this is rejected.
inline constexpr std::size_t kMaxCampaignTasks = 5'000'000;
inline constexpr std::uint32_t kMaxRetries = 100;
// 16 TiB; keeps TaskSpec::memory_bytes() far from overflow.
inline constexpr std::uint64_t kMaxMemoryMb = std::uint64_t{1} << 24;

bool is_valid_hardware(std::string_view s);
bool is_valid_scenario(std::string_view s);
// Precision names: one or more of [a-z0-9_.-] ("fp32", "int4", "mixed.w4a16").
bool is_valid_precision(std::string_view s);
// Campaign names, task names and parameter keys: one or more of [A-Za-z0-9_.-].
bool is_valid_name(std::string_view s);

// The settings a `defaults:` mapping, a task or a matrix block may set. Unset fields inherit.
struct TaskSettings {
  std::optional<Priority> priority;
  std::optional<std::uint32_t> repeats;
  std::optional<std::uint32_t> warmup;
  std::optional<double> timeout_s;
  std::optional<std::uint32_t> retries;
  std::optional<std::uint64_t> memory_mb;
};

// Field by field: `top`'s value where set, else `bottom`'s.
TaskSettings overlay(const TaskSettings& top, const TaskSettings& bottom);
// The campaign-wide defaults: `settings` over the built-in values of CampaignDefaults.
CampaignDefaults resolve_defaults(const TaskSettings& settings);

// The axes of a matrix block, in expansion order: the earlier axis varies slower. Parameter axes
// (one per params key, ordered by key) sit between model and hardware.
enum class Axis : std::uint8_t {
  kKind = 0,
  kModel = 1,
  kParam = 2,
  kHardware = 3,
  kPrecision = 4,
  kBatch = 5,
  kSeqLen = 6,
  kScenario = 7,
};
// "kind", "model", "params", "hardware", "precision", "batch", "seq_len", "scenario".
std::string_view to_string(Axis axis);

// One value as written (the text of a YAML scalar).
struct AxisValue {
  std::string text;
  SourceLoc loc;
};

// One axis of a block with its values. A task entry has exactly one value per axis it names.
struct AxisValues {
  Axis axis = Axis::kKind;
  std::string param;  // the params key when axis == kParam
  SourceLoc loc;      // where the key was written
  std::vector<AxisValue> values;
};

// One `exclude:` or `include:` entry of a matrix block: a partial combination.
struct ComboEntry {
  Axis axis = Axis::kKind;
  std::string param;  // the params key when axis == kParam
  AxisValue value;
};
struct Combo {
  SourceLoc loc;
  std::vector<ComboEntry> entries;
};

// One entry of `tasks:` (is_matrix == false) or one block of `matrix:` (is_matrix == true).
// Axes it does not name take one value: hardware cpu, precision fp32, batch 1, seq_len 0, scenario
// latency; a block naming `model` but not `kind` has kind "model".
struct TaskBlock {
  SourceLoc loc;
  bool is_matrix = false;
  std::vector<AxisValues> axes;
  std::optional<AxisValue> name;       // part of the id
  std::optional<std::uint32_t> count;  // copies of each task, ids suffixed "#0".."#count-1"
  TaskSettings settings;               // the block's own settings; override the fragment's defaults
  std::vector<Combo> exclude;          // combinations removed from the cross product (partial matches)
  std::vector<Combo> include;          // combinations added after the excludes
};

// The blocks of one campaign file, with the defaults in force for them (the loader has already
// laid the defaults of every including file over the file's own: docs/campaigns.md §Includes).
struct CampaignFragment {
  std::string file;
  TaskSettings defaults;
  std::vector<TaskBlock> blocks;  // expansion order
};

struct CampaignSpec {
  std::string name;
  std::string source;
  std::string store;
  TaskSettings defaults;  // the top-level file's own `defaults:`; becomes Campaign::defaults
  Thresholds thresholds;
  std::vector<CampaignFragment> fragments;  // expansion order
};

struct ExpandOptions {
  std::vector<std::string> known_kinds;   // a kind not listed here is an error
  std::vector<std::string> known_models;  // a model not listed here is an error
  std::size_t max_tasks = kMaxCampaignTasks;
};

// The readable, content-derived id of a task (docs/campaigns.md §Ids):
//   KIND[(MODEL)][[K=V,...]][:NAME]/HARDWARE/PRECISION/bBATCH/sSEQ_LEN/SCENARIO[#COPY]
// e.g. "gemm.eigen[k=256,m=256,n=256]/cpu/fp32/b1/s128/latency",
// "selftest.ok:smoke/cpu/fp32/b1/s0/latency#2". `task.params` must be sorted by key. The model is shown only
// when `explicit_model`.
std::string make_task_id(const TaskSpec& task, bool explicit_model, std::string_view name,
                         std::optional<std::uint32_t> copy);

// Expands `spec`: fragments in order, blocks in order, within a matrix block the cross product in
// axis order with the last axis varying fastest, minus the excludes, then the includes, each
// combination `count` times. On success tasks[i].index == i and ids are unique.
// Errors: an unknown kind or model, a bad value, an empty axis, a block whose excludes remove every
// combination, an exclude that names no axis value, a duplicate id (reported at the second
// occurrence), more than options.max_tasks tasks.
Result<Campaign> expand_campaign(const CampaignSpec& spec, const ExpandOptions& options);

}  // namespace ipfsa::core
