#include "core/chaos.hpp"

#include <charconv>

namespace ipfsa::core {

namespace {

template <class T>
bool parse_number(std::string_view s, T* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

Result<Chaos> parse_chaos(std::span<const std::string> specs) {
  Chaos c;
  for (const std::string& spec : specs) {
    const auto bad = [&](const std::string& why) {
      return input_error("--chaos " + spec + ": " + why +
                         " (expected kill-leader-after=N or kill-rank=R@N, N >= 1 results committed)");
    };
    const auto eq = spec.find('=');
    if (eq == std::string::npos) return bad("no '='");
    const std::string_view name(spec.data(), eq);
    const std::string_view value(spec.data() + eq + 1, spec.size() - eq - 1);
    if (name == "kill-leader-after") {
      if (c.kill_leader_after > 0) return bad("kill-leader-after given twice");
      if (!parse_number(value, &c.kill_leader_after) || c.kill_leader_after == 0)
        return bad("N must be a whole number >= 1");
    } else if (name == "kill-rank") {
      const auto at = value.find('@');
      std::int32_t rank = -1;
      std::uint64_t n = 0;
      if (at == std::string_view::npos) return bad("no '@' in R@N");
      if (!parse_number(value.substr(0, at), &rank) || rank < 0) return bad("R must be a rank >= 0");
      if (!parse_number(value.substr(at + 1), &n) || n == 0) return bad("N must be a whole number >= 1");
      c.kill_rank.emplace_back(rank, n);
    } else {
      return bad("unknown fault '" + std::string(name) + "'");
    }
  }
  return c;
}

}  // namespace ipfsa::core
