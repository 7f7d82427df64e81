#include "core/campaign_expand.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "core/text.hpp"

namespace ipfsa::core {

namespace {

constexpr std::array<std::string_view, 8> kAxisNames = {"kind",      "model", "params",  "hardware",
                                                        "precision", "batch", "seq_len", "scenario"};

// Above this many combinations before excludes, a matrix block is rejected without counting what
// its excludes leave: counting means visiting every combination.
constexpr std::uint64_t kEnumerationFactor = 16;

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a)
    return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return b > std::numeric_limits<std::uint64_t>::max() - a ? std::numeric_limits<std::uint64_t>::max()
                                                           : a + b;
}

// "kind", "params.m", ...
std::string axis_label(Axis axis, std::string_view param) {
  if (axis == Axis::kParam) return "params." + std::string(param);
  return std::string(to_string(axis));
}

std::optional<std::uint32_t> parse_u32(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Checks one value of an axis and returns it in canonical form (integers without leading zeros).
Result<std::string> canonical_value(Axis axis, const AxisValue& value, const ExpandOptions& options) {
  const std::string& s = value.text;
  switch (axis) {
    case Axis::kKind:
      if (!contains(options.known_kinds, s))
        return error_at(value.loc, "unknown kind " + in_quotes(s) + "; known kinds: " +
                                       (options.known_kinds.empty() ? "(none)" : join(options.known_kinds)));
      return s;
    case Axis::kModel:
      if (options.known_models.empty())
        return error_at(value.loc, "unknown model " + in_quotes(s) + ": the model catalog is empty");
      if (!contains(options.known_models, s))
        return error_at(value.loc,
                        "unknown model " + in_quotes(s) + "; known models: " + join(options.known_models));
      return s;
    case Axis::kParam:
      return s;
    case Axis::kHardware:
      if (!is_valid_hardware(s))
        return error_at(value.loc,
                        "unknown hardware " + in_quotes(s) + "; expected one of: " + join(kHardwareNames));
      return s;
    case Axis::kPrecision:
      if (!is_valid_precision(s))
        return error_at(value.loc,
                        "bad precision " + in_quotes(s) +
                            ": use lower-case letters, digits, '_', '.' and '-' (e.g. fp32, int8)");
      return s;
    case Axis::kBatch: {
      const auto v = parse_u32(s);
      if (!v || *v == 0) return error_at(value.loc, "batch must be an integer >= 1, got " + in_quotes(s));
      return std::to_string(*v);
    }
    case Axis::kSeqLen: {
      const auto v = parse_u32(s);
      if (!v) return error_at(value.loc, "seq_len must be an integer >= 0, got " + in_quotes(s));
      return std::to_string(*v);
    }
    case Axis::kScenario:
      if (!is_valid_scenario(s))
        return error_at(value.loc,
                        "unknown scenario " + in_quotes(s) + "; expected one of: " + join(kScenarioNames));
      return s;
  }
  return error_at(value.loc, "bad axis");
}

// One axis of a block after checking, in canonical order.
struct NormAxis {
  Axis axis = Axis::kKind;
  std::string param;
  std::vector<std::string> values;
};

bool axis_less(Axis a, std::string_view pa, Axis b, std::string_view pb) {
  if (a != b) return a < b;
  return pa < pb;
}

// A full combination written out: one value per axis, in canonical order.
struct Slot {
  Axis axis = Axis::kKind;
  std::string param;
  std::string value;
};

struct ExcludeRule {
  std::vector<std::pair<std::size_t, std::size_t>> match;  // (axis position, value index)
};

// Everything needed to generate the tasks of one block.
struct Plan {
  const TaskBlock* block = nullptr;
  std::vector<NormAxis> axes;
  std::vector<ExcludeRule> excludes;
  std::vector<std::vector<Slot>> includes;
  std::uint64_t product = 1;  // combinations before excludes (saturating)
  std::uint64_t kept = 0;     // combinations the excludes leave
  std::uint64_t tasks = 0;    // (kept + includes) * count (saturating)
  TaskSpec base;              // settings applied, axes not yet
};

std::optional<std::size_t> find_axis(const std::vector<NormAxis>& axes, Axis axis, std::string_view param) {
  for (std::size_t i = 0; i < axes.size(); ++i)
    if (axes[i].axis == axis && (axis != Axis::kParam || axes[i].param == param)) return i;
  return std::nullopt;
}

std::string axis_list(const std::vector<NormAxis>& axes) {
  std::vector<std::string> labels;
  labels.reserve(axes.size());
  for (const auto& a : axes) labels.push_back(axis_label(a.axis, a.param));
  return join(labels);
}

bool excluded(const std::vector<ExcludeRule>& rules, const std::vector<std::size_t>& idx) {
  for (const auto& rule : rules) {
    bool all = true;
    for (const auto& [pos, value] : rule.match) {
      if (idx[pos] != value) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

// Advances a mixed-radix counter, last position fastest. Returns false after the last combination.
bool next_combination(const std::vector<NormAxis>& axes, std::vector<std::size_t>& idx) {
  for (std::size_t i = axes.size(); i-- > 0;) {
    if (++idx[i] < axes[i].values.size()) return true;
    idx[i] = 0;
  }
  return false;
}

// Checks the axes of `block` and fills in the implicit ones (docs/campaigns.md §Expansion).
Result<std::vector<NormAxis>> normalize_axes(const TaskBlock& block, const ExpandOptions& options) {
  std::vector<NormAxis> axes;
  std::vector<const SourceLoc*> axis_locs;
  const std::string what = block.is_matrix ? "matrix block" : "task";
  for (const AxisValues& av : block.axes) {
    const std::string label = axis_label(av.axis, av.param);
    if (auto pos = find_axis(axes, av.axis, av.param))
      return error_at(av.loc, label + " is given twice in this " + what + " (first at " +
                                  to_string(*axis_locs[*pos]) + ")");
    if (av.axis == Axis::kParam && !is_valid_name(av.param))
      return error_at(av.loc,
                      "bad parameter key " + in_quotes(av.param) + ": use letters, digits, '_', '.' and '-'");
    if (av.values.empty())
      return error_at(av.loc, label + " is an empty list, so this " + what + " expands to no tasks");
    if (!block.is_matrix && av.values.size() != 1)
      return error_at(av.loc, label + " takes a single value in a task; lists belong in `matrix:` blocks");
    NormAxis axis{av.axis, av.param, {}};
    std::vector<const SourceLoc*> value_locs;
    for (const AxisValue& v : av.values) {
      auto canon = canonical_value(av.axis, v, options);
      if (!canon) return canon.error();
      const auto dup = std::find(axis.values.begin(), axis.values.end(), *canon);
      if (dup != axis.values.end())
        return error_at(v.loc, "duplicate value " + in_quotes(v.text) + " in " + label + " (first at " +
                                   to_string(*value_locs[dup - axis.values.begin()]) + ")");
      axis.values.push_back(std::move(*canon));
      value_locs.push_back(&v.loc);
    }
    axes.push_back(std::move(axis));
    axis_locs.push_back(&av.loc);
  }

  if (!find_axis(axes, Axis::kKind, {})) {
    const auto model = find_axis(axes, Axis::kModel, {});
    if (!model) return error_at(block.loc, "this " + what + " names neither `kind:` nor `model:`");
    if (!contains(options.known_kinds, "model"))
      return error_at(*axis_locs[*model],
                      "`model:` tasks run as kind 'model', which this build does not provide; known kinds: " +
                          (options.known_kinds.empty() ? std::string("(none)") : join(options.known_kinds)));
    axes.push_back(NormAxis{Axis::kKind, {}, {"model"}});
  }
  const TaskSpec defaults;
  const std::pair<Axis, std::string> implicit[] = {
      {Axis::kHardware, defaults.hardware},           {Axis::kPrecision, defaults.precision},
      {Axis::kBatch, std::to_string(defaults.batch)}, {Axis::kSeqLen, std::to_string(defaults.seq_len)},
      {Axis::kScenario, defaults.scenario},
  };
  for (const auto& [axis, value] : implicit)
    if (!find_axis(axes, axis, {})) axes.push_back(NormAxis{axis, {}, {value}});

  std::stable_sort(axes.begin(), axes.end(), [](const NormAxis& a, const NormAxis& b) {
    return axis_less(a.axis, a.param, b.axis, b.param);
  });
  return axes;
}

Result<ExcludeRule> compile_exclude(const Combo& combo, const std::vector<NormAxis>& axes,
                                    const ExpandOptions& options) {
  if (combo.entries.empty())
    return error_at(combo.loc, "an empty exclude entry would remove every combination");
  ExcludeRule rule;
  for (const ComboEntry& e : combo.entries) {
    const std::string label = axis_label(e.axis, e.param);
    const auto pos = find_axis(axes, e.axis, e.param);
    if (!pos)
      return error_at(e.value.loc,
                      "exclude names " + label +
                          ", which is not an axis of this matrix block (axes: " + axis_list(axes) + ")");
    for (const auto& m : rule.match)
      if (m.first == *pos) return error_at(e.value.loc, label + " is given twice in this exclude entry");
    auto canon = canonical_value(e.axis, e.value, options);
    if (!canon) return canon.error();
    const auto& values = axes[*pos].values;
    const auto it = std::find(values.begin(), values.end(), *canon);
    if (it == values.end())
      return error_at(e.value.loc, "exclude value " + in_quotes(e.value.text) + " for " + label +
                                       " is not one of the block's values (" + join(values) + ")");
    rule.match.emplace_back(*pos, static_cast<std::size_t>(it - values.begin()));
  }
  return rule;
}

// An include entry: the first value of every axis, replaced or extended by the entry's values.
Result<std::vector<Slot>> compile_include(const Combo& combo, const std::vector<NormAxis>& axes,
                                          const ExpandOptions& options) {
  std::vector<Slot> slots;
  slots.reserve(axes.size() + combo.entries.size());
  for (const auto& a : axes) slots.push_back(Slot{a.axis, a.param, a.values.front()});
  std::vector<std::pair<Axis, std::string>> seen;
  for (const ComboEntry& e : combo.entries) {
    const std::string label = axis_label(e.axis, e.param);
    if (std::find(seen.begin(), seen.end(), std::make_pair(e.axis, e.param)) != seen.end())
      return error_at(e.value.loc, label + " is given twice in this include entry");
    seen.emplace_back(e.axis, e.param);
    if (e.axis == Axis::kParam && !is_valid_name(e.param))
      return error_at(e.value.loc,
                      "bad parameter key " + in_quotes(e.param) + ": use letters, digits, '_', '.' and '-'");
    auto canon = canonical_value(e.axis, e.value, options);
    if (!canon) return canon.error();
    auto it = std::find_if(slots.begin(), slots.end(), [&](const Slot& s) {
      return s.axis == e.axis && (e.axis != Axis::kParam || s.param == e.param);
    });
    if (it != slots.end()) {
      it->value = std::move(*canon);
    } else {
      slots.push_back(Slot{e.axis, e.param, std::move(*canon)});
    }
  }
  std::stable_sort(slots.begin(), slots.end(),
                   [](const Slot& a, const Slot& b) { return axis_less(a.axis, a.param, b.axis, b.param); });
  return slots;
}

TaskSpec base_task(const TaskSettings& settings) {
  TaskSpec t;
  const CampaignDefaults d = resolve_defaults(settings);
  t.priority = settings.priority.value_or(Priority::kMedium);
  t.repeats = d.repeats;
  t.warmup = d.warmup;
  t.timeout_s = d.timeout_s;
  t.retries = d.retries;
  t.memory_mb = d.memory_mb;
  return t;
}

Result<Plan> plan_block(const TaskBlock& block, const TaskSettings& fragment_defaults,
                        const ExpandOptions& options) {
  Plan plan;
  plan.block = &block;
  if (block.name && !is_valid_name(block.name->text))
    return error_at(block.name->loc,
                    "bad name " + in_quotes(block.name->text) + ": use letters, digits, '_', '.' and '-'");
  if (block.count && *block.count == 0) return error_at(block.loc, "count must be >= 1");
  if (!block.is_matrix && (!block.exclude.empty() || !block.include.empty()))
    return error_at(block.loc, "exclude and include entries belong in `matrix:` blocks");

  auto axes = normalize_axes(block, options);
  if (!axes) return axes.error();
  plan.axes = std::move(*axes);
  for (const auto& a : plan.axes) plan.product = saturating_mul(plan.product, a.values.size());

  for (const Combo& c : block.exclude) {
    auto rule = compile_exclude(c, plan.axes, options);
    if (!rule) return rule.error();
    plan.excludes.push_back(std::move(*rule));
  }
  for (const Combo& c : block.include) {
    auto slots = compile_include(c, plan.axes, options);
    if (!slots) return slots.error();
    plan.includes.push_back(std::move(*slots));
  }

  const std::uint64_t max_tasks = options.max_tasks;
  if (plan.excludes.empty()) {
    plan.kept = plan.product;
  } else {
    if (plan.product > saturating_mul(std::max<std::uint64_t>(max_tasks, 1), kEnumerationFactor))
      return error_at(block.loc, "this matrix block has " + std::to_string(plan.product) +
                                     " combinations before its excludes; a campaign may expand to at most " +
                                     std::to_string(max_tasks) + " tasks");
    std::vector<std::size_t> idx(plan.axes.size(), 0);
    do {
      if (!excluded(plan.excludes, idx)) ++plan.kept;
    } while (next_combination(plan.axes, idx));
  }
  if (plan.kept == 0 && plan.includes.empty())
    return error_at(block.loc,
                    "the excludes of this matrix block remove every combination, so it expands to no tasks");

  plan.tasks = saturating_mul(saturating_add(plan.kept, plan.includes.size()), block.count.value_or(1));
  plan.base = base_task(overlay(block.settings, fragment_defaults));
  return plan;
}

void set_axis(TaskSpec& t, Axis axis, const std::string& param, const std::string& value,
              bool& explicit_model) {
  switch (axis) {
    case Axis::kKind:
      t.kind = value;
      break;
    case Axis::kModel:
      t.model = value;
      explicit_model = true;
      break;
    case Axis::kParam:
      t.params.emplace_back(param, value);
      break;
    case Axis::kHardware:
      t.hardware = value;
      break;
    case Axis::kPrecision:
      t.precision = value;
      break;
    case Axis::kBatch:
      t.batch = parse_u32(value).value_or(1);
      break;  // checked by canonical_value
    case Axis::kSeqLen:
      t.seq_len = parse_u32(value).value_or(0);
      break;
    case Axis::kScenario:
      t.scenario = value;
      break;
  }
}

// Appends the tasks of one combination (`count` copies) to `tasks`.
void emit(const Plan& plan, TaskSpec t, bool explicit_model, const SourceLoc* origin,
          std::vector<TaskSpec>& tasks, std::vector<const SourceLoc*>& origins) {
  if (t.model.empty()) t.model = t.kind;
  const std::string_view name =
      plan.block->name ? std::string_view(plan.block->name->text) : std::string_view();
  if (!plan.block->count) {
    t.id = make_task_id(t, explicit_model, name, std::nullopt);
    t.index = static_cast<std::uint32_t>(tasks.size());
    tasks.push_back(std::move(t));
    origins.push_back(origin);
    return;
  }
  for (std::uint32_t copy = 0; copy < *plan.block->count; ++copy) {
    TaskSpec c = t;
    c.id = make_task_id(c, explicit_model, name, copy);
    c.index = static_cast<std::uint32_t>(tasks.size());
    tasks.push_back(std::move(c));
    origins.push_back(origin);
  }
}

void generate(const Plan& plan, std::vector<TaskSpec>& tasks, std::vector<const SourceLoc*>& origins) {
  std::vector<std::size_t> idx(plan.axes.size(), 0);
  do {
    if (excluded(plan.excludes, idx)) continue;
    TaskSpec t = plan.base;
    bool explicit_model = false;
    for (std::size_t i = 0; i < plan.axes.size(); ++i)
      set_axis(t, plan.axes[i].axis, plan.axes[i].param, plan.axes[i].values[idx[i]], explicit_model);
    emit(plan, std::move(t), explicit_model, &plan.block->loc, tasks, origins);
  } while (next_combination(plan.axes, idx));
  for (std::size_t k = 0; k < plan.includes.size(); ++k) {
    TaskSpec t = plan.base;
    bool explicit_model = false;
    for (const Slot& s : plan.includes[k]) set_axis(t, s.axis, s.param, s.value, explicit_model);
    emit(plan, std::move(t), explicit_model, &plan.block->include[k].loc, tasks, origins);
  }
}

}  // namespace

std::string to_string(const SourceLoc& loc) {
  return loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
}

Error error_at(const SourceLoc& loc, std::string_view message) {
  return input_error(to_string(loc) + ": " + std::string(message));
}

bool is_valid_hardware(std::string_view s) {
  return std::find(kHardwareNames.begin(), kHardwareNames.end(), s) != kHardwareNames.end();
}

bool is_valid_scenario(std::string_view s) {
  return std::find(kScenarioNames.begin(), kScenarioNames.end(), s) != kScenarioNames.end();
}

bool is_valid_precision(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

bool is_valid_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

TaskSettings overlay(const TaskSettings& top, const TaskSettings& bottom) {
  TaskSettings out;
  out.priority = top.priority ? top.priority : bottom.priority;
  out.repeats = top.repeats ? top.repeats : bottom.repeats;
  out.warmup = top.warmup ? top.warmup : bottom.warmup;
  out.timeout_s = top.timeout_s ? top.timeout_s : bottom.timeout_s;
  out.retries = top.retries ? top.retries : bottom.retries;
  out.memory_mb = top.memory_mb ? top.memory_mb : bottom.memory_mb;
  return out;
}

CampaignDefaults resolve_defaults(const TaskSettings& settings) {
  CampaignDefaults d;
  d.repeats = settings.repeats.value_or(d.repeats);
  d.warmup = settings.warmup.value_or(d.warmup);
  d.timeout_s = settings.timeout_s.value_or(d.timeout_s);
  d.retries = settings.retries.value_or(d.retries);
  d.memory_mb = settings.memory_mb.value_or(d.memory_mb);
  return d;
}

std::string_view to_string(Axis axis) {
  return kAxisNames[static_cast<std::size_t>(axis)];
}

std::string make_task_id(const TaskSpec& task, bool explicit_model, std::string_view name,
                         std::optional<std::uint32_t> copy) {
  std::string id;
  id.reserve(64);
  id += task.kind;
  if (explicit_model) {
    id += '(';
    id += task.model;
    id += ')';
  }
  if (!task.params.empty()) {
    id += '[';
    for (std::size_t i = 0; i < task.params.size(); ++i) {
      if (i) id += ',';
      id += task.params[i].first;
      id += '=';
      id += task.params[i].second;
    }
    id += ']';
  }
  if (!name.empty()) {
    id += ':';
    id += name;
  }
  id += '/';
  id += task.hardware;
  id += '/';
  id += task.precision;
  id += "/b";
  id += std::to_string(task.batch);
  id += "/s";
  id += std::to_string(task.seq_len);
  id += '/';
  id += task.scenario;
  if (copy) {
    id += '#';
    id += std::to_string(*copy);
  }
  return id;
}

Result<Campaign> expand_campaign(const CampaignSpec& spec, const ExpandOptions& options) {
  // Pass 1: check every block and count its tasks, so that the limit is enforced before any
  // memory is spent on tasks.
  std::vector<Plan> plans;
  std::uint64_t total = 0;
  for (const CampaignFragment& fragment : spec.fragments) {
    for (const TaskBlock& block : fragment.blocks) {
      auto plan = plan_block(block, fragment.defaults, options);
      if (!plan) return plan.error();
      total = saturating_add(total, plan->tasks);
      if (total > options.max_tasks)
        return error_at(block.loc, "the campaign expands to more than " + std::to_string(options.max_tasks) +
                                       " tasks (the limit); this block alone adds " +
                                       std::to_string(plan->tasks));
      plans.push_back(std::move(*plan));
    }
  }

  // Pass 2: generate, in order.
  Campaign campaign;
  campaign.name = spec.name;
  campaign.source = spec.source;
  campaign.store = spec.store;
  campaign.defaults = resolve_defaults(spec.defaults);
  campaign.thresholds = spec.thresholds;
  campaign.tasks.reserve(static_cast<std::size_t>(total));
  std::vector<const SourceLoc*> origins;
  origins.reserve(static_cast<std::size_t>(total));
  for (const Plan& plan : plans) generate(plan, campaign.tasks, origins);
  IPFSA_ASSERT(campaign.tasks.size() == total);

  // Ids are unique; the error points at the first task whose id was already taken. The views
  // stay valid: the task vector no longer changes.
  std::unordered_map<std::string_view, std::uint32_t> first;
  first.reserve(campaign.tasks.size());
  for (const TaskSpec& t : campaign.tasks) {
    const auto [it, inserted] = first.emplace(t.id, t.index);
    if (!inserted)
      return error_at(*origins[t.index], "duplicate task id " + in_quotes(t.id) + " (first produced at " +
                                             to_string(*origins[it->second]) +
                                             "); give one of them a distinct `name:`");
  }
  return campaign;
}

}  // namespace ipfsa::core
