#include "config/campaign_loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <new>
#include <optional>
#include <span>
#include <sstream>
#include <system_error>
#include <utility>

#include "config/default_campaign.hpp"
#include "core/campaign_expand.hpp"
#include "core/text.hpp"

namespace ipfsa::config {

namespace {

namespace fs = std::filesystem;
using core::in_quotes;
using core::join;
using core::SourceLoc;
using core::TaskSettings;

// Thrown by the checks below and caught by the public functions, so that deeply nested checks read
// straight; it never leaves this file, which is the yaml-cpp edge where exceptions are allowed
// (../../shared/STYLE.md §4.3). yaml-cpp's own exceptions are caught at the same boundary.
struct LoadFailure {
  Error error;
};

[[noreturn]] void fail(const SourceLoc& loc, std::string_view message) {
  throw LoadFailure{core::error_at(loc, message)};
}

constexpr std::uintmax_t kMaxFileBytes = std::uintmax_t{64} << 20;

using Keys = std::span<const std::string_view>;

constexpr std::string_view kTopKeys[] = {"name",    "store", "defaults", "thresholds",
                                         "include", "tasks", "matrix"};
constexpr std::string_view kSettingKeys[] = {"priority",  "repeats", "warmup",
                                             "timeout_s", "retries", "memory_mb"};
constexpr std::string_view kThresholdKeys[] = {"latency_pct", "throughput_pct", "accuracy_abs"};
constexpr std::string_view kTaskKeys[] = {
    "kind",     "model",  "name",     "count",   "hardware", "precision", "batch",   "seq_len",
    "scenario", "params", "priority", "repeats", "warmup",   "timeout_s", "retries", "memory_mb"};
constexpr std::string_view kMatrixKeys[] = {
    "kind",   "model",    "name",    "count",  "hardware",  "precision", "batch",     "seq_len", "scenario",
    "params", "priority", "repeats", "warmup", "timeout_s", "retries",   "memory_mb", "exclude", "include"};
constexpr std::string_view kComboKeys[] = {"kind",  "model",   "hardware", "precision",
                                           "batch", "seq_len", "scenario", "params"};

struct AxisKey {
  std::string_view key;
  core::Axis axis;
};
constexpr AxisKey kAxisKeys[] = {
    {"kind", core::Axis::kKind},           {"model", core::Axis::kModel}, {"hardware", core::Axis::kHardware},
    {"precision", core::Axis::kPrecision}, {"batch", core::Axis::kBatch}, {"seq_len", core::Axis::kSeqLen},
    {"scenario", core::Axis::kScenario},
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest allowed key, when close enough to be a likely typo.
std::optional<std::string_view> suggest(std::string_view key, Keys allowed) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view k : allowed) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_distance && d < k.size()) {
      best = k;
      best_distance = d;
    }
  }
  return best;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return in_quotes(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

// Reads a whole file; on failure returns false and says why in `reason`.
bool read_file(const fs::path& path, std::string& text, std::string& reason) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    reason = "no such file";
    return false;
  }
  if (fs::is_directory(st)) {
    reason = "it is a directory";
    return false;
  }
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > kMaxFileBytes) {
    reason = "larger than 64 MiB";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    reason = "cannot open it (permission denied?)";
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    reason = "read error";
    return false;
  }
  text = std::move(buffer).str();
  return true;
}

std::string canonical_key(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(path, ec);
  if (ec) p = fs::absolute(path, ec).lexically_normal();
  return p.string();
}

struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Parses the nodes of one file; knows the file's name for messages.
class FileParser {
 public:
  explicit FileParser(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  SourceLoc loc(const YAML::Mark& mark) const {
    if (mark.is_null()) return SourceLoc{file_, 1, 1};
    return SourceLoc{file_, mark.line + 1, mark.column + 1};
  }
  SourceLoc loc(const YAML::Node& node) const { return loc(node.Mark()); }
  // Where a value is: its own mark, or its key's when it is null (yaml-cpp puts an empty value's
  // mark on the next token, possibly lines later).
  SourceLoc loc(const Field& f) const { return f.value.IsNull() ? loc(f.key_node) : loc(f.value); }

  // The fields of a mapping, in file order; checks that keys are plain, unique and allowed (any
  // key when `allowed` is empty).
  std::vector<Field> fields(const YAML::Node& node, std::string_view what, Keys allowed) const {
    if (!node.IsMap())
      fail(loc(node), std::string(what) + " must be a mapping of keys, got " + describe(node));
    std::vector<Field> out;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator hands out temporaries
      if (!key.IsScalar())
        fail(loc(key), "keys in " + std::string(what) + " must be plain words, got " + describe(key));
      const std::string& name = key.Scalar();
      for (const Field& f : out)
        if (f.key == name)
          fail(loc(key), "duplicate key " + in_quotes(name) + " in " + std::string(what) + " (first at " +
                             core::to_string(loc(f.key_node)) + ")");
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string message = "unknown key " + in_quotes(name) + " in " + std::string(what);
        if (auto s = suggest(name, allowed)) message += " (did you mean " + in_quotes(*s) + "?)";
        fail(loc(key), message + "; allowed keys: " + join(allowed));
      }
      out.push_back(Field{name, key, it->second});
    }
    return out;
  }

  // The text of a single-value field.
  std::string scalar(const Field& f, std::string_view expected) const {
    if (f.value.IsNull()) fail(loc(f.key_node), f.key + " has no value; expected " + std::string(expected));
    if (!f.value.IsScalar())
      fail(loc(f.value), f.key + " must be " + std::string(expected) + ", got " + describe(f.value));
    return f.value.Scalar();
  }

  std::uint64_t integer(const Field& f, std::uint64_t min, std::uint64_t max) const {
    const std::string expected = "an integer >= " + std::to_string(min) +
                                 (max >= UINT32_MAX ? std::string() : " and <= " + std::to_string(max));
    const std::string text = scalar(f, expected);
    std::uint64_t v = 0;
    if (!parse_u64(text, v) || v < min || v > max)
      fail(loc(f.value), f.key + " must be " + expected + ", got " + in_quotes(text));
    return v;
  }

  // A finite number >= min (> min when `exclusive`).
  double number(const Field& f, double min, bool exclusive, std::string_view unit = {}) const {
    const std::string expected = std::string("a number") + std::string(unit) + (exclusive ? " > " : " >= ") +
                                 (min == 0 ? std::string("0") : std::to_string(min));
    const std::string text = scalar(f, expected);
    double v = 0;
    if (!parse_double(text, v) || v < min || (exclusive && v == min))
      fail(loc(f.value), f.key + " must be " + expected + ", got " + in_quotes(text));
    return v;
  }

  // Sets the field of `s` named by f.key; returns false when f.key is not a setting.
  bool setting(const Field& f, TaskSettings& s) const {
    if (f.key == "priority") {
      const std::string text = scalar(f, "one of critical, high, medium");
      const auto p = core::parse_priority(text);
      if (!p) fail(loc(f.value), "priority must be one of critical, high, medium; got " + in_quotes(text));
      s.priority = *p;
    } else if (f.key == "repeats") {
      s.repeats = static_cast<std::uint32_t>(integer(f, 1, UINT32_MAX));
    } else if (f.key == "warmup") {
      s.warmup = static_cast<std::uint32_t>(integer(f, 0, UINT32_MAX));
    } else if (f.key == "timeout_s") {
      s.timeout_s = number(f, 0, /*exclusive=*/true, " of seconds");
    } else if (f.key == "retries") {
      s.retries = static_cast<std::uint32_t>(integer(f, 0, core::kMaxRetries));
    } else if (f.key == "memory_mb") {
      s.memory_mb = integer(f, 1, core::kMaxMemoryMb);
    } else {
      return false;
    }
    return true;
  }

  TaskSettings settings(const YAML::Node& node) const {
    TaskSettings s;
    if (node.IsNull()) return s;
    for (const Field& f : fields(node, "defaults", kSettingKeys)) setting(f, s);
    return s;
  }

  core::AxisValue value(const YAML::Node& node, std::string_view key) const {
    if (!node.IsScalar())
      fail(loc(node), "values of " + std::string(key) + " must be single values, got " + describe(node));
    return core::AxisValue{node.Scalar(), loc(node)};
  }

  // One axis: a single value, or (in a matrix block) a list of single values.
  core::AxisValues axis(const Field& f, core::Axis axis, std::string param, bool list_ok) const {
    core::AxisValues out{axis, std::move(param), loc(f.key_node), {}};
    const std::string label = axis == core::Axis::kParam ? "params." + out.param : f.key;
    if (f.value.IsNull()) fail(loc(f.key_node), label + " has no value");
    if (f.value.IsSequence()) {
      if (!list_ok)
        fail(loc(f.value),
             label + " must be a single value in a task, got a list; lists belong in `matrix:` blocks");
      for (const YAML::Node& item : f.value) out.values.push_back(value(item, label));
    } else if (f.value.IsScalar()) {
      out.values.push_back(value(f.value, label));
    } else {
      fail(loc(f.value), label + " must be " + (list_ok ? "a value or a list of values" : "a single value") +
                             ", got " + describe(f.value));
    }
    return out;
  }

  std::vector<core::AxisValues> params(const Field& f, bool list_ok) const {
    std::vector<core::AxisValues> out;
    if (f.value.IsNull()) return out;
    for (const Field& p : fields(f.value, "params", {}))
      out.push_back(axis(p, core::Axis::kParam, p.key, list_ok));
    return out;
  }

  // An `exclude:` or `include:` list of a matrix block.
  std::vector<core::Combo> combos(const Field& f) const {
    std::vector<core::Combo> out;
    if (f.value.IsNull()) return out;
    if (!f.value.IsSequence())
      fail(loc(f.value),
           f.key + " must be a list of mappings (partial combinations), got " + describe(f.value));
    const std::string what = f.key + " entry";
    for (const YAML::Node& entry : f.value) {
      core::Combo combo{loc(entry), {}};
      for (const Field& e : fields(entry, what, kComboKeys)) {
        if (e.key == "params") {
          if (e.value.IsNull()) continue;
          for (const Field& p : fields(e.value, "params", {})) {
            if (p.value.IsNull()) fail(loc(p.key_node), "params." + p.key + " has no value");
            combo.entries.push_back(
                core::ComboEntry{core::Axis::kParam, p.key, value(p.value, "params." + p.key)});
          }
          continue;
        }
        const auto* ak = std::find_if(std::begin(kAxisKeys), std::end(kAxisKeys),
                                      [&](const AxisKey& k) { return k.key == e.key; });
        if (e.value.IsNull()) fail(loc(e.key_node), e.key + " has no value");
        if (!e.value.IsScalar())
          fail(loc(e.value),
               e.key + " in an " + f.key + " entry must be a single value, got " + describe(e.value));
        combo.entries.push_back(core::ComboEntry{ak->axis, {}, value(e.value, e.key)});
      }
      out.push_back(std::move(combo));
    }
    return out;
  }

  // One `tasks:` entry (is_matrix == false) or `matrix:` block.
  core::TaskBlock block(const YAML::Node& node, bool is_matrix) const {
    core::TaskBlock b;
    b.loc = loc(node);
    b.is_matrix = is_matrix;
    const auto all = fields(node, is_matrix ? "a matrix block" : "a task",
                            is_matrix ? Keys(kMatrixKeys) : Keys(kTaskKeys));
    for (const Field& f : all) {
      const auto* ak = std::find_if(std::begin(kAxisKeys), std::end(kAxisKeys),
                                    [&](const AxisKey& k) { return k.key == f.key; });
      if (ak != std::end(kAxisKeys)) {
        b.axes.push_back(axis(f, ak->axis, {}, is_matrix));
      } else if (f.key == "params") {
        auto p = params(f, is_matrix);
        std::move(p.begin(), p.end(), std::back_inserter(b.axes));
      } else if (f.key == "name") {
        b.name = core::AxisValue{scalar(f, "a name"), loc(f)};
      } else if (f.key == "count") {
        b.count = static_cast<std::uint32_t>(integer(f, 1, core::kMaxCampaignTasks));
      } else if (f.key == "exclude") {
        b.exclude = combos(f);
      } else if (f.key == "include") {
        b.include = combos(f);
      } else {
        setting(f, b.settings);
      }
    }
    return b;
  }

 private:
  std::string file_;
};

class Loader {
 public:
  explicit Loader(const LoadContext& ctx) : ctx_(ctx) {}

  // Marks `canonical` as being loaded, so that an include of it is reported as a cycle.
  void enter_top(const std::string& canonical, const std::string& source) {
    included_[canonical] = SourceLoc{source, 1, 1};
    stack_.emplace_back(canonical, source);
  }

  // Parses one file's text: the top-level campaign (top == true) or an included fragment whose
  // including files' defaults are `outer`.
  void load_text(std::string_view text, const std::string& source, const fs::path& base_dir,
                 const TaskSettings& outer, bool top) {
    const FileParser p(source);
    try {
      parse(p, text, base_dir, outer, top);
    } catch (const YAML::Exception& e) {
      fail(p.loc(e.mark), "YAML error: " + e.msg);
    }
  }

  Result<core::Campaign> finish() {
    std::size_t blocks = 0;
    for (const auto& f : spec_.fragments) blocks += f.blocks.size();
    if (blocks == 0)
      fail(SourceLoc{spec_.source, 1, 1},
           "the campaign has no tasks; add a `tasks:` list or a `matrix:` block");
    spec_.thresholds.latency_pct = latency_pct_.value_or(spec_.thresholds.latency_pct);
    spec_.thresholds.throughput_pct = throughput_pct_.value_or(spec_.thresholds.throughput_pct);
    spec_.thresholds.accuracy_abs = accuracy_abs_.value_or(spec_.thresholds.accuracy_abs);
    core::ExpandOptions options;
    options.known_kinds = ctx_.known_kinds;
    options.known_models = ctx_.known_models;
    auto campaign = core::expand_campaign(spec_, options);
    if (campaign && !ctx_.known_precisions.empty()) check_model_precisions(*campaign);
    return campaign;
  }

 private:
  // Tasks of kind `model` run a precision profile (engine/model/precision.hpp): each task's precision
  // must be a known one. Checked on the expanded tasks, so that a matrix whose excludes keep an
  // unknown precision away from its model tasks passes; reported where the value is written.
  void check_model_precisions(const core::Campaign& campaign) const {
    for (const core::TaskSpec& t : campaign.tasks) {
      if (t.kind != "model" || listed(ctx_.known_precisions, t.precision)) continue;
      fail(precision_loc(t.precision),
           "unknown precision " + in_quotes(t.precision) +
               " for a model task; known precisions: " + join_names(ctx_.known_precisions));
    }
  }

  static bool listed(const std::vector<std::string>& list, std::string_view s) {
    return std::find(list.begin(), list.end(), s) != list.end();
  }

  static std::string join_names(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  // Where `precision` is written: first in a block that can make model tasks (a `kind:` listing
  // `model`, or `model:` without `kind:`), else anywhere; the campaign file when nowhere (the
  // default precision is never unknown, so that is not expected).
  SourceLoc precision_loc(const std::string& precision) const {
    const SourceLoc* any = nullptr;
    for (const auto& fragment : spec_.fragments) {
      for (const core::TaskBlock& b : fragment.blocks) {
        bool kind_axis = false, model_kind = false, model_axis = false;
        for (const core::AxisValues& a : b.axes) {
          if (a.axis == core::Axis::kModel) model_axis = true;
          if (a.axis != core::Axis::kKind) continue;
          kind_axis = true;
          for (const core::AxisValue& v : a.values) model_kind = model_kind || v.text == "model";
        }
        const bool makes_model_tasks = model_kind || (!kind_axis && model_axis);
        auto consider = [&](const core::AxisValue& v) -> const SourceLoc* {
          if (v.text != precision) return nullptr;
          if (makes_model_tasks) return &v.loc;
          if (!any) any = &v.loc;
          return nullptr;
        };
        for (const core::AxisValues& a : b.axes)
          if (a.axis == core::Axis::kPrecision)
            for (const core::AxisValue& v : a.values)
              if (const SourceLoc* at = consider(v)) return *at;
        for (const core::Combo& c : b.include)
          for (const core::ComboEntry& e : c.entries)
            if (e.axis == core::Axis::kPrecision)
              if (const SourceLoc* at = consider(e.value)) return *at;
      }
    }
    return any ? *any : SourceLoc{spec_.source, 1, 1};
  }

  void parse(const FileParser& p, std::string_view text, const fs::path& base_dir, const TaskSettings& outer,
             bool top) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::ParserException& e) {
      fail(p.loc(e.mark), "YAML syntax error: " + e.msg);
    }
    if (docs.empty() || docs.front().IsNull())
      fail(SourceLoc{p.file(), 1, 1},
           "the file is empty; a campaign needs `name:` and `tasks:` or `matrix:`");
    if (docs.size() > 1)
      fail(p.loc(docs[1]), "a campaign file holds one YAML document; this is a second one");
    const YAML::Node& root = docs.front();
    const std::vector<Field> fields = p.fields(root, "a campaign file", kTopKeys);
    auto find = [&](std::string_view key) -> const Field* {
      for (const Field& f : fields)
        if (f.key == key) return &f;
      return nullptr;
    };

    if (top) {
      spec_.source = p.file();
      const Field* name = find("name");
      if (!name) fail(p.loc(root), "missing required key `name` (the campaign's name)");
      spec_.name = p.scalar(*name, "the campaign's name");
      if (!core::is_valid_name(spec_.name))
        fail(p.loc(name->value),
             "bad campaign name " + in_quotes(spec_.name) + ": use letters, digits, '_', '.' and '-'");
    } else if (const Field* name = find("name")) {
      p.scalar(*name, "a name");  // a fragment's name is documentation only
    }

    if (const Field* store = find("store"); store && !store_set_) {
      spec_.store = p.scalar(*store, "a file path");
      if (spec_.store.empty()) fail(p.loc(*store), "store must be a file path, got an empty string");
      store_set_ = true;
    }

    if (const Field* t = find("thresholds"); t && !t->value.IsNull()) {
      for (const Field& f : p.fields(t->value, "thresholds", kThresholdKeys)) {
        const double v = p.number(f, 0, /*exclusive=*/false);
        auto& slot = f.key == "latency_pct"      ? latency_pct_
                     : f.key == "throughput_pct" ? throughput_pct_
                                                 : accuracy_abs_;
        if (!slot) slot = v;  // the including file, and then the earlier file, wins
      }
    }

    const TaskSettings own = find("defaults") ? p.settings(find("defaults")->value) : TaskSettings{};
    const TaskSettings effective = core::overlay(outer, own);
    if (top) spec_.defaults = own;

    core::CampaignFragment fragment;
    fragment.file = p.file();
    fragment.defaults = effective;
    for (const char* section : {"tasks", "matrix"}) {
      const Field* f = find(section);
      if (!f || f->value.IsNull()) continue;
      const bool is_matrix = std::string_view(section) == "matrix";
      if (!f->value.IsSequence())
        fail(p.loc(f->value), std::string(section) + " must be a list of " +
                                  (is_matrix ? "matrix blocks" : "tasks") + ", got " + describe(f->value));
      for (const YAML::Node& node : f->value) fragment.blocks.push_back(p.block(node, is_matrix));
    }
    spec_.fragments.push_back(std::move(fragment));

    if (const Field* inc = find("include"); inc && !inc->value.IsNull()) {
      if (inc->value.IsScalar()) {
        include(p, inc->value, base_dir, effective);
      } else if (inc->value.IsSequence()) {
        for (const YAML::Node& item : inc->value) include(p, item, base_dir, effective);
      } else {
        fail(p.loc(inc->value),
             "include must be a file path or a list of file paths, got " + describe(inc->value));
      }
    }
  }

  void include(const FileParser& p, const YAML::Node& node, const fs::path& base_dir,
               const TaskSettings& outer) {
    const SourceLoc site = p.loc(node);
    if (!node.IsScalar() || node.Scalar().empty())
      fail(site, "include entries must be file paths, got " + describe(node));
    const fs::path rel(node.Scalar());
    const fs::path resolved =
        rel.is_absolute() ? rel.lexically_normal() : (base_dir / rel).lexically_normal();
    const std::string shown = resolved.string();
    std::string text;
    std::string reason;
    if (!read_file(resolved, text, reason)) {
      const std::string resolved_note =
          shown == rel.string() ? "" : " (resolved to " + in_quotes(shown) + ")";
      fail(site, "cannot read included file " + in_quotes(rel.string()) + resolved_note + ": " + reason);
    }
    const std::string canonical = canonical_key(resolved);
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      if (stack_[i].first != canonical) continue;
      std::string chain;
      for (std::size_t j = i; j < stack_.size(); ++j) chain += stack_[j].second + " -> ";
      fail(site, "include cycle: " + chain + shown);
    }
    if (auto it = included_.find(canonical); it != included_.end())
      fail(site, in_quotes(shown) + " is already included (at " + core::to_string(it->second) +
                     "); a file may be included only once");
    included_[canonical] = site;
    stack_.emplace_back(canonical, shown);
    load_text(text, shown, resolved.parent_path(), outer, /*top=*/false);
    stack_.pop_back();
  }

  const LoadContext& ctx_;
  core::CampaignSpec spec_;
  bool store_set_ = false;
  std::optional<double> latency_pct_;
  std::optional<double> throughput_pct_;
  std::optional<double> accuracy_abs_;
  std::map<std::string, SourceLoc> included_;               // canonical path -> where first included
  std::vector<std::pair<std::string, std::string>> stack_;  // (canonical, shown) of files being loaded
};

Result<core::Campaign> load(std::string_view text, const std::string& source, const fs::path& base_dir,
                            const std::optional<std::string>& canonical, const LoadContext& ctx) {
  try {
    Loader loader(ctx);
    if (canonical) loader.enter_top(*canonical, source);
    loader.load_text(text, source, base_dir, TaskSettings{}, /*top=*/true);
    return loader.finish();
  } catch (const LoadFailure& f) {
    return f.error;
  } catch (const std::bad_alloc&) {
    return core::error_at(SourceLoc{source, 1, 1}, "out of memory while loading the campaign");
  } catch (const std::exception& e) {
    return core::error_at(SourceLoc{source, 1, 1}, std::string("cannot load the campaign: ") + e.what());
  }
}

}  // namespace

Result<core::Campaign> load_campaign_file(const std::string& path, const LoadContext& ctx) {
  std::string text;
  std::string reason;
  try {
    if (!read_file(path, text, reason)) return input_error(path + ": cannot read campaign file: " + reason);
    const fs::path p(path);
    return load(text, path, p.parent_path(), canonical_key(p), ctx);
  } catch (const std::exception& e) {
    return input_error(path + ": cannot read campaign file: " + e.what());
  }
}

Result<core::Campaign> load_campaign_text(std::string_view text, const std::string& source,
                                          const std::string& base_dir, const LoadContext& ctx) {
  return load(text, source, fs::path(base_dir), std::nullopt, ctx);
}

Result<core::Campaign> load_default_campaign(const LoadContext& ctx) {
  return load_campaign_text(default_campaign_yaml(), std::string(kDefaultCampaignSource), std::string(), ctx);
}

}  // namespace ipfsa::config
