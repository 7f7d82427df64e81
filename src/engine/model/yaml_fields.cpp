#include "engine/model/yaml_fields.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace ipfsa::engine::yaml {

namespace {

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

}  // namespace

void fail(const core::SourceLoc& loc, std::string_view message) {
  throw YamlFailure{core::error_at(loc, message)};
}

core::SourceLoc Reader::loc(const YAML::Mark& mark) const {
  if (mark.is_null()) return core::SourceLoc{file_, 1, 1};
  return core::SourceLoc{file_, mark.line + 1, mark.column + 1};
}

core::SourceLoc Reader::loc(const Field& f) const {
  return f.value.IsNull() ? loc(f.key_node) : loc(f.value);
}

YAML::Node Reader::document(std::string_view text) const {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::ParserException& e) {
    fail(loc(e.mark), "YAML syntax error: " + e.msg);
  }
  if (docs.empty() || docs.front().IsNull()) fail(core::SourceLoc{file_, 1, 1}, "the file is empty");
  if (docs.size() > 1) fail(loc(docs[1]), "the file holds one YAML document; this is a second one");
  return docs.front();
}

std::vector<Field> Reader::fields(const YAML::Node& node, std::string_view what, Keys allowed) const {
  if (!node.IsMap()) fail(loc(node), std::string(what) + " must be a mapping of keys, got " + describe(node));
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
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      fail(loc(key), "unknown key " + in_quotes(name) + " in " + std::string(what) +
                         "; allowed keys: " + join(allowed));
    out.push_back(Field{name, key, it->second});
  }
  return out;
}

std::string Reader::text(const Field& f, std::string_view expected) const {
  if (f.value.IsNull()) fail(loc(f.key_node), f.key + " has no value; expected " + std::string(expected));
  if (!f.value.IsScalar())
    fail(loc(f.value), f.key + " must be " + std::string(expected) + ", got " + describe(f.value));
  return f.value.Scalar();
}

long long Reader::integer(const Field& f, long long min, long long max) const {
  const std::string expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  const std::string s = text(f, expected);
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < min || v > max)
    fail(loc(f.value), f.key + " must be " + expected + ", got " + in_quotes(s));
  return v;
}

double Reader::number(const Field& f, double min, bool exclusive) const {
  const std::string expected = std::string("a number ") + (exclusive ? "> " : ">= ") +
                               (min == 0 ? std::string("0") : std::to_string(min));
  std::string s = text(f, expected);
  std::string_view digits = s;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(v) ||
      v < min || (exclusive && v == min))
    fail(loc(f.value), f.key + " must be " + expected + ", got " + in_quotes(s));
  return v;
}

bool Reader::boolean(const Field& f) const {
  const std::string s = text(f, "true or false");
  if (s == "true") return true;
  if (s == "false") return false;
  fail(loc(f.value), f.key + " must be true or false, got " + in_quotes(s));
}

}  // namespace ipfsa::engine::yaml
