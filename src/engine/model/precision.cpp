#include "engine/model/precision.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "engine/model/embedded_configs.hpp"
#include "engine/model/yaml_fields.hpp"

namespace ipfsa::engine {

namespace {

using yaml::Field;
using yaml::in_quotes;
using yaml::Reader;

constexpr std::string_view kTopKeys[] = {"profiles"};
constexpr std::string_view kProfileKeys[] = {
    "name",           "description", "attention_bits",  "ffn_bits",
    "embedding_bits", "head_bits",   "edge_layer_bits", "edge_layers",
    "group",          "scheme",      "kv_bits"};

bool is_precision_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

// The value of an integer field that must be one of `allowed`.
int one_of(const Reader& r, const Field& f, std::initializer_list<int> allowed) {
  std::string list;
  for (int a : allowed) list += (list.empty() ? "" : ", ") + std::to_string(a);
  const long long v = r.integer(f, 0, 1 << 20);
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
    yaml::fail(r.loc(f.value), f.key + " must be one of " + list + ", got " + in_quotes(std::to_string(v)));
  return static_cast<int>(v);
}

std::optional<QuantScheme> parse_scheme(std::string_view s) {
  if (s == "asymmetric") return QuantScheme::kAsymmetric;
  if (s == "symmetric") return QuantScheme::kSymmetric;
  return std::nullopt;
}

PrecisionProfile parse_profile(const Reader& r, const YAML::Node& node) {
  const std::vector<Field> fields = r.fields(node, "a precision profile", kProfileKeys);
  const core::SourceLoc at = r.loc(node);
  PrecisionProfile p;
  p.file = r.file();
  p.line = at.line;
  bool named = false;
  bool described = false;
  for (const Field& f : fields) {
    const std::string& k = f.key;
    PrecisionPlan& plan = p.plan;
    if (k == "name") {
      plan.name = r.text(f, "a precision name");
      if (!is_precision_name(plan.name))
        yaml::fail(r.loc(f.value), "bad precision name " + in_quotes(plan.name) +
                                       ": use lower-case letters, digits, '_', '.' and '-'");
      named = true;
    } else if (k == "description") {
      p.description = r.text(f, "a one-line description");
      described = true;
    } else if (k == "attention_bits") {
      plan.attention_bits = one_of(r, f, {0, 2, 3, 4, 8});
    } else if (k == "ffn_bits") {
      plan.ffn_bits = one_of(r, f, {0, 2, 3, 4, 8});
    } else if (k == "embedding_bits") {
      plan.embedding_bits = one_of(r, f, {0, 2, 3, 4, 8});
    } else if (k == "head_bits") {
      plan.head_bits = one_of(r, f, {0, 2, 3, 4, 8});
    } else if (k == "edge_layer_bits") {
      plan.edge_layer_bits = one_of(r, f, {0, 2, 3, 4, 8});
    } else if (k == "edge_layers") {
      plan.edge_layers = static_cast<int>(r.integer(f, 1, 1024));
    } else if (k == "group") {
      plan.group = one_of(r, f, {32, 64, 128});
    } else if (k == "scheme") {
      plan.scheme = r.choice<QuantScheme>(f, parse_scheme, "asymmetric, symmetric");
    } else {  // kv_bits
      plan.kv_bits = one_of(r, f, {16, 4, 2});
    }
  }
  if (!named) yaml::fail(at, "a precision profile is missing key `name`");
  if (!described)
    yaml::fail(at, "precision profile " + in_quotes(p.plan.name) + " is missing key `description`");
  return p;
}

std::vector<PrecisionProfile> parse_file(const Reader& r, std::string_view text) {
  const YAML::Node root = r.document(text);
  const std::vector<Field> top = r.fields(root, "a precision profiles file", kTopKeys);
  if (top.empty()) yaml::fail(r.loc(root), "missing key `profiles` (the list of precision profiles)");
  const Field& profiles = top.front();
  if (!profiles.value.IsSequence() || profiles.value.size() == 0)
    yaml::fail(r.loc(profiles), "profiles must be a non-empty list of precision profiles");
  std::vector<PrecisionProfile> out;
  std::map<std::string, core::SourceLoc> seen;
  for (const YAML::Node& node : profiles.value) {
    PrecisionProfile p = parse_profile(r, node);
    const core::SourceLoc at = r.loc(node);
    if (auto it = seen.find(p.plan.name); it != seen.end())
      yaml::fail(at, "duplicate precision " + in_quotes(p.plan.name) + " (first at " +
                         core::to_string(it->second) + ")");
    seen.emplace(p.plan.name, at);
    out.push_back(std::move(p));
  }
  return out;
}

std::string bits_text(int bits) {
  return bits == 0 ? std::string("fp32") : std::to_string(bits);
}

}  // namespace

Result<std::vector<PrecisionProfile>> parse_precision_profiles(std::string_view text,
                                                               const std::string& file) {
  return yaml::guarded<std::vector<PrecisionProfile>>(file, [&] { return parse_file(Reader(file), text); });
}

const std::vector<PrecisionProfile>& precision_profiles() {
  static const std::vector<PrecisionProfile> profiles = [] {
    const EmbeddedFile f = embedded_precision_profiles();
    auto parsed = parse_precision_profiles(f.text, std::string(f.path));
    IPFSA_EXPECTS(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    return std::move(parsed).value();
  }();
  return profiles;
}

Result<PrecisionPlan> resolve_precision(std::string_view name) {
  for (const PrecisionProfile& p : precision_profiles())
    if (p.plan.name == name) return p.plan;
  std::string known;
  for (const PrecisionProfile& p : precision_profiles()) known += (known.empty() ? "" : ", ") + p.plan.name;
  return input_error("unknown precision " + in_quotes(name) + "; known precisions: " + known);
}

std::vector<std::string> precision_names() {
  std::vector<std::string> out;
  for (const PrecisionProfile& p : precision_profiles()) out.push_back(p.plan.name);
  return out;
}

std::string summarize(const PrecisionPlan& plan) {
  std::string s = "attention " + bits_text(plan.attention_bits) + ", ffn " + bits_text(plan.ffn_bits) +
                  ", head " + bits_text(plan.head_bits) + ", embedding " + bits_text(plan.embedding_bits);
  if (plan.edge_layer_bits != 0)
    s += ", edge " + bits_text(plan.edge_layer_bits) + " (" + std::to_string(plan.edge_layers) +
         (plan.edge_layers == 1 ? " block)" : " blocks)");
  const bool quantized =
      plan.attention_bits || plan.ffn_bits || plan.head_bits || plan.embedding_bits || plan.edge_layer_bits;
  if (quantized)
    s += ", g" + std::to_string(plan.group) +
         (plan.scheme == QuantScheme::kAsymmetric ? " asymmetric" : " symmetric");
  s += ", kv " + std::to_string(plan.kv_bits);
  return s;
}

}  // namespace ipfsa::engine
