#include "engine/model/catalog.hpp"

#include <algorithm>
#include <map>
#include <utility>

#include "engine/model/embedded_configs.hpp"
#include "engine/model/yaml_fields.hpp"

namespace ipfsa::engine {

namespace {

using yaml::Field;
using yaml::in_quotes;
using yaml::Keys;
using yaml::Reader;

constexpr std::string_view kTopKeys[] = {"models"};
constexpr std::string_view kEntryKeys[] = {"name",       "hf_class", "family", "tier",
                                           "checkpoint", "notes",    "real",   "tiny"};
// In the order their absence is reported.
constexpr std::string_view kRequiredKeys[] = {"hf_class", "family", "tier", "checkpoint", "real", "tiny"};
constexpr std::string_view kArchKeys[] = {
    "frontend",       "vocab",          "num_labels",  "image_size", "patch_size", "channels", "mel_bins",
    "projection_dim", "tie_embeddings", "embed_scale", "encoder",    "decoder",    "vision"};
constexpr std::string_view kStackKeys[] = {
    "layers",     "hidden",   "heads",           "kv_heads", "ffn",          "causal",     "gated_mlp",
    "activation", "norm",     "pre_norm",        "norm_eps", "position",     "rope_theta", "max_positions",
    "qkv_bias",   "mlp_bias", "cross_attention", "experts",  "experts_top_k"};

// Bounds that only catch typos; ModelConfig::validate checks consistency.
constexpr long long kMaxWidth = 1LL << 24;
constexpr long long kMaxCount = 1LL << 16;

// "a, b, c" over every value of an enum with `count` values, as to_string writes them.
template <typename E>
std::string enum_names(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    if (!out.empty()) out += ", ";
    out += to_string(static_cast<E>(i));
  }
  return out;
}

const std::string& family_names() {
  static const std::string names = enum_names<Family>(7);
  return names;
}

bool is_catalog_name(std::string_view s) {
  if (s.empty() || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

bool is_class_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

int as_int(long long v) {
  return static_cast<int>(v);
}

// Sets the fields of `s` that `node` (a `what:` mapping) names; the rest stay as they are.
void apply_stack(const Reader& r, const YAML::Node& node, const std::string& what, StackConfig& s) {
  for (const Field& f : r.fields(node, what, kStackKeys)) {
    const std::string& k = f.key;
    if (k == "layers") {
      s.layers = as_int(r.integer(f, 0, kMaxCount));
    } else if (k == "hidden") {
      s.hidden = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "heads") {
      s.heads = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "kv_heads") {
      s.kv_heads = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "ffn") {
      s.ffn = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "causal") {
      s.causal = r.boolean(f);
    } else if (k == "gated_mlp") {
      s.gated_mlp = r.boolean(f);
    } else if (k == "activation") {
      s.activation = r.choice<Activation>(f, parse_activation, enum_names<Activation>(4));
    } else if (k == "norm") {
      s.norm = r.choice<NormKind>(f, parse_norm, enum_names<NormKind>(2));
    } else if (k == "pre_norm") {
      s.pre_norm = r.boolean(f);
    } else if (k == "norm_eps") {
      s.norm_eps = static_cast<float>(r.number(f, 0, /*exclusive=*/true));
    } else if (k == "position") {
      s.position = r.choice<PositionKind>(f, parse_position, enum_names<PositionKind>(4));
    } else if (k == "rope_theta") {
      s.rope_theta = static_cast<float>(r.number(f, 0, /*exclusive=*/true));
    } else if (k == "max_positions") {
      s.max_positions = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "qkv_bias") {
      s.qkv_bias = r.boolean(f);
    } else if (k == "mlp_bias") {
      s.mlp_bias = r.boolean(f);
    } else if (k == "cross_attention") {
      s.cross_attention = r.boolean(f);
    } else if (k == "experts") {
      s.experts = as_int(r.integer(f, 0, kMaxCount));
    } else {  // experts_top_k
      s.experts_top_k = as_int(r.integer(f, 0, kMaxCount));
    }
  }
}

// Sets the fields of `c` that `node` (the `what:` mapping, "real" or "tiny") names.
void apply_arch(const Reader& r, const YAML::Node& node, const std::string& what, ModelConfig& c) {
  for (const Field& f : r.fields(node, what, kArchKeys)) {
    const std::string& k = f.key;
    if (k == "frontend") {
      c.frontend = r.choice<Frontend>(f, parse_frontend, enum_names<Frontend>(3));
    } else if (k == "vocab") {
      c.vocab = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "num_labels") {
      c.num_labels = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "image_size") {
      c.image_size = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "patch_size") {
      c.patch_size = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "channels") {
      c.channels = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "mel_bins") {
      c.mel_bins = as_int(r.integer(f, 1, kMaxCount));
    } else if (k == "projection_dim") {
      c.projection_dim = as_int(r.integer(f, 1, kMaxWidth));
    } else if (k == "tie_embeddings") {
      c.tie_embeddings = r.boolean(f);
    } else if (k == "embed_scale") {
      c.embed_scale = static_cast<float>(r.number(f, 0, /*exclusive=*/true));
    } else {
      StackConfig& s = k == "encoder" ? c.encoder : k == "decoder" ? c.decoder : c.vision;
      apply_stack(r, f.value, what + "." + k, s);
    }
  }
}

// kv_heads left unset means multi-head attention.
ModelConfig finish(ModelConfig c) {
  for (StackConfig* s : {&c.encoder, &c.decoder, &c.vision})
    if (s->kv_heads == 0) s->kv_heads = s->heads;
  return c;
}

// The defaults an entry's `real:` starts from (docs/models.md §Defaults).
ModelConfig base_config(const std::string& name, const std::string& hf_class, Family family) {
  ModelConfig c;
  c.name = name;
  c.hf_class = hf_class;
  c.family = family;
  c.frontend = family == Family::kVision  ? Frontend::kPatches
               : family == Family::kAudio ? Frontend::kAudioConv
                                          : Frontend::kTokens;
  c.tie_embeddings = family != Family::kVision && family != Family::kAudio;
  c.decoder.causal = true;
  c.decoder.cross_attention = family == Family::kEncoderDecoder;
  return c;
}

const Field* find(const std::vector<Field>& fields, std::string_view key) {
  for (const Field& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

CatalogEntry parse_entry(const Reader& r, const YAML::Node& node) {
  const std::vector<Field> fields = r.fields(node, "a model entry", kEntryKeys);
  const core::SourceLoc at = r.loc(node);
  const Field* name = find(fields, "name");
  if (!name) yaml::fail(at, "a model entry is missing key `name`");
  CatalogEntry e;
  e.name = r.text(*name, "a catalog name");
  if (!is_catalog_name(e.name))
    yaml::fail(r.loc(name->value),
               "bad model name " + in_quotes(e.name) + ": use lower-case letters, digits, '-', '_' and '.'");
  for (std::string_view key : kRequiredKeys)
    if (!find(fields, key))
      yaml::fail(at, "model " + in_quotes(e.name) + " is missing key `" + std::string(key) + "`");

  const Field& hf_class = *find(fields, "hf_class");
  e.hf_class = r.text(hf_class, "a HuggingFace class name");
  if (!is_class_name(e.hf_class))
    yaml::fail(r.loc(hf_class.value),
               "bad hf_class " + in_quotes(e.hf_class) + ": expected a Python class name");
  e.family = r.choice<Family>(*find(fields, "family"), parse_family, family_names());
  e.tier = r.choice<core::Priority>(*find(fields, "tier"), core::parse_priority, "critical, high, medium");
  e.checkpoint = r.text(*find(fields, "checkpoint"), "a checkpoint name");
  if (const Field* notes = find(fields, "notes")) e.notes = r.text(*notes, "a text");
  e.file = r.file();
  e.line = at.line;
  e.column = at.column;

  const Field& real = *find(fields, "real");
  const Field& tiny = *find(fields, "tiny");
  ModelConfig real_config = base_config(e.name, e.hf_class, e.family);
  apply_arch(r, real.value, "real", real_config);
  ModelConfig tiny_config = real_config;  // tiny overrides real field by field
  apply_arch(r, tiny.value, "tiny", tiny_config);
  e.real = finish(std::move(real_config));
  e.tiny = finish(std::move(tiny_config));
  for (const auto& [config, field] : {std::pair{&e.real, &real}, std::pair{&e.tiny, &tiny}}) {
    const Result<void> ok = config->validate("model " + in_quotes(e.name) + " " + field->key);
    if (!ok) yaml::fail(r.loc(field->key_node), ok.error().message);
  }
  return e;
}

std::vector<CatalogEntry> parse_file(const Reader& r, std::string_view text) {
  const YAML::Node root = r.document(text);
  const std::vector<Field> top = r.fields(root, "a catalog file", kTopKeys);
  const Field* models = find(top, "models");
  if (!models) yaml::fail(r.loc(root), "missing key `models` (the list of model entries)");
  if (!models->value.IsSequence() || models->value.size() == 0)
    yaml::fail(r.loc(*models), "models must be a non-empty list of model entries");
  std::vector<CatalogEntry> out;
  std::map<std::string, core::SourceLoc> seen;
  for (const YAML::Node& node : models->value) {
    CatalogEntry e = parse_entry(r, node);
    const core::SourceLoc at{e.file, e.line, e.column};
    if (auto it = seen.find(e.name); it != seen.end())
      yaml::fail(at, "duplicate model name " + in_quotes(e.name) + " (first at " +
                         core::to_string(it->second) + ")");
    seen.emplace(e.name, at);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Result<std::vector<CatalogEntry>> parse_catalog(std::string_view text, const std::string& file) {
  return yaml::guarded<std::vector<CatalogEntry>>(file, [&] { return parse_file(Reader(file), text); });
}

Result<std::vector<CatalogEntry>> parse_embedded_catalog() {
  std::vector<CatalogEntry> all;
  for (const EmbeddedFile& f : embedded_model_files()) {
    auto entries = parse_catalog(f.text, std::string(f.path));
    if (!entries) return entries.error();
    for (CatalogEntry& e : *entries) {
      const auto first =
          std::find_if(all.begin(), all.end(), [&](const CatalogEntry& x) { return x.name == e.name; });
      if (first != all.end())
        return core::error_at(core::SourceLoc{e.file, e.line, e.column},
                              "duplicate model name " + in_quotes(e.name) + " (first at " +
                                  core::to_string(core::SourceLoc{first->file, first->line, first->column}) +
                                  ")");
      all.push_back(std::move(e));
    }
  }
  if (all.empty()) return input_error("the embedded model catalog is empty (no configs/models/*.yaml)");
  return all;
}

const std::vector<CatalogEntry>& model_catalog() {
  static const std::vector<CatalogEntry> catalog = [] {
    auto parsed = parse_embedded_catalog();
    IPFSA_EXPECTS(parsed.ok(), parsed.ok() ? "" : parsed.error().message.c_str());
    return std::move(parsed).value();
  }();
  return catalog;
}

const CatalogEntry* find_model(std::string_view name) {
  for (const CatalogEntry& e : model_catalog())
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const CatalogEntry& e : model_catalog()) out.push_back(e.name);
  return out;
}

}  // namespace ipfsa::engine
