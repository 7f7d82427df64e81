// Private to src/engine/model: the yaml-cpp edge shared by catalog.cpp and precision.cpp. Reads
// mappings with a fixed set of keys and typed scalars, and reports mistakes as
// "FILE:LINE:COLUMN: message" (1-based), like src/config/campaign_loader.cpp.
// Errors are thrown as YamlFailure inside the parsers (so that nested checks read straight) and
// turned into Result values by guarded(); nothing thrown leaves the engine (../../../shared/STYLE.md
// §4.3). Thread-safety: no shared state.
#pragma once

#include <yaml-cpp/yaml.h>

#include <exception>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/campaign_expand.hpp"
#include "core/error.hpp"
#include "core/text.hpp"

namespace ipfsa::engine::yaml {

using Keys = std::span<const std::string_view>;

struct YamlFailure {
  Error error;
};

[[noreturn]] void fail(const core::SourceLoc& loc, std::string_view message);

using core::in_quotes;
using core::join;

struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Reads the nodes of one file, whose name appears in every message.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  core::SourceLoc loc(const YAML::Mark& mark) const;
  core::SourceLoc loc(const YAML::Node& node) const { return loc(node.Mark()); }
  // A value's own position, or its key's when the value is empty.
  core::SourceLoc loc(const Field& f) const;

  // The single YAML document of `text`; a syntax error or a second document fails.
  YAML::Node document(std::string_view text) const;

  // The fields of a mapping in file order; keys must be plain, unique and in `allowed`.
  std::vector<Field> fields(const YAML::Node& node, std::string_view what, Keys allowed) const;

  std::string text(const Field& f, std::string_view expected) const;
  long long integer(const Field& f, long long min, long long max) const;
  double number(const Field& f, double min, bool exclusive) const;
  bool boolean(const Field& f) const;
  // One of a closed set of names: `parse` maps a name to a value (nullopt when unknown).
  template <typename T, typename Parse>
  T choice(const Field& f, Parse parse, std::string_view allowed) const {
    const std::string s = text(f, std::string("one of ") + std::string(allowed));
    const std::optional<T> v = parse(s);
    if (!v)
      fail(loc(f.value),
           "unknown " + f.key + " " + in_quotes(s) + "; expected one of " + std::string(allowed));
    return *v;
  }

 private:
  std::string file_;
};

// Runs `body` (which may throw YamlFailure or yaml-cpp exceptions) and returns its result, or the
// error with `file` as position when something else went wrong.
template <typename T, typename Body>
Result<T> guarded(const std::string& file, Body body) {
  try {
    return body();
  } catch (const YamlFailure& f) {
    return f.error;
  } catch (const YAML::Exception& e) {
    return core::error_at(core::SourceLoc{file, e.mark.is_null() ? 1 : e.mark.line + 1,
                                          e.mark.is_null() ? 1 : e.mark.column + 1},
                          "YAML error: " + e.msg);
  } catch (const std::bad_alloc&) {
    return core::error_at(core::SourceLoc{file, 1, 1}, "out of memory while reading it");
  } catch (const std::exception& e) {
    return core::error_at(core::SourceLoc{file, 1, 1}, std::string("cannot read it: ") + e.what());
  }
}

}  // namespace ipfsa::engine::yaml
