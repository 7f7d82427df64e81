#include "engine/kinds.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/kind_util.hpp"

namespace ipfsa::engine {

namespace {

const std::vector<Kind>& registry() {
  // Built on first use (thread-safe static initialisation), never changed afterwards.
  static const std::vector<Kind> kinds = [] {
    std::vector<Kind> all;
    for (auto set : {selftest_kinds(), gemm_kinds(), model_kinds()})
      all.insert(all.end(), set.begin(), set.end());
    return all;
  }();
  return kinds;
}

std::string param_error(const core::TaskSpec& task, std::string_view key, const std::string& value,
                        std::string_view expected) {
  return std::string(task.kind) + ": parameter " + std::string(key) + "='" + value + "' is not " +
         std::string(expected);
}

}  // namespace

std::span<const Kind> builtin_kinds() {
  return registry();
}

const Kind* find_kind(std::string_view name) {
  for (const Kind& k : registry())
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> kind_names() {
  std::vector<std::string> names;
  names.reserve(registry().size());
  for (const Kind& k : registry()) names.emplace_back(k.name);
  return names;
}

Result<std::int64_t> int_param(const core::TaskSpec& task, std::string_view key, std::int64_t fallback,
                               std::int64_t lo, std::int64_t hi) {
  const std::string text = task.param(key);
  if (text.empty()) return fallback;
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (ec != std::errc() || ptr != end || v < lo || v > hi)
    return input_error(param_error(task, key, text, range));
  return v;
}

Result<double> real_param(const core::TaskSpec& task, std::string_view key, double fallback, double lo,
                          double hi) {
  const std::string text = task.param(key);
  if (text.empty()) return fallback;
  // strtod, not from_chars: g++ 12's libstdc++ has floating from_chars, but strtod also accepts
  // what users write ("1e3", " 5").
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string range = "a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (end != text.c_str() + text.size() || !std::isfinite(v) || v < lo || v > hi)
    return input_error(param_error(task, key, text, range));
  return v;
}

}  // namespace ipfsa::engine
