// Small text helpers for user-facing messages, shared by every parser that reports
// "FILE:LINE:COLUMN: message" errors (core/campaign_expand, config/campaign_loader,
// engine/model/yaml_fields). Header-only, pure, no third-party includes.
#pragma once

#include <string>
#include <string_view>

namespace ipfsa::core {

// 'text', for naming a value in a message.
inline std::string in_quotes(std::string_view s) {
  std::string out;  // not "'" + std::string(s) + "'": g++ 12 -O3 warns falsely (-Wrestrict) about that
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

// The items of a range of strings or string_views, separated by `sep`.
template <typename Range>
std::string join(const Range& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

}  // namespace ipfsa::core
