#include "report/trends.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ipfsa::report {

namespace {

// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

nlohmann::json num(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

SeriesTrend analyse_series(std::string key, std::vector<std::string> runs, std::vector<double> values,
                           const TrendOptions& o) {
  SeriesTrend t;
  t.key = std::move(key);
  t.runs = std::move(runs);
  t.values = std::move(values);
  t.change_points = core::detect_change_points(t.values, o.change_points);
  t.newest_z = core::newest_robust_z(t.values, o.anomaly);
  t.anomaly = std::abs(t.newest_z) > o.anomaly.z_threshold;
  if (t.values.size() < 2) return t;
  std::size_t base_begin = 0;
  for (const auto& cp : t.change_points)
    if (cp.index < t.values.size() - 1) base_begin = cp.index;
  const std::span<const double> all(t.values);
  const double base = core::median(all.subspan(base_begin, t.values.size() - 1 - base_begin));
  t.newest_effect_pct = (t.values.back() - base) / std::max(std::abs(base), 1e-300) * 100.0;
  const double bad = o.higher_is_better ? -t.newest_effect_pct : t.newest_effect_pct;
  if (t.anomaly && bad >= o.threshold_pct) t.verdict = "regression";
  if (t.anomaly && -bad >= o.threshold_pct) t.verdict = "improvement";
  return t;
}

Result<std::vector<SeriesTrend>> analyse_csv(const std::string& path, const TrendOptions& o) {
  std::ifstream in(path);
  if (!in) return input_error(path + ": cannot read CSV file");
  std::string line;
  if (!std::getline(in, line))
    return input_error(path + ":1: empty file; expected a header series,run,value");
  const auto header = split_csv(line);
  int col_series = -1, col_run = -1, col_value = -1;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    if (header[i] == "series") col_series = i;
    if (header[i] == "run") col_run = i;
    if (header[i] == "value") col_value = i;
  }
  if (col_series < 0 || col_run < 0 || col_value < 0)
    return input_error(path + ":1: header must name the columns series, run and value; got '" + line + "'");
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<double>>> by_key;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty() || line == "\r") continue;
    const auto f = split_csv(line);
    const int need = std::max({col_series, col_run, col_value});
    if (static_cast<int>(f.size()) <= need)
      return input_error(path + ":" + std::to_string(lineno) + ": expected " + std::to_string(header.size()) +
                         " fields, got " + std::to_string(f.size()));
    double v = 0;
    const auto& text = f[col_value];
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v))
      return input_error(path + ":" + std::to_string(lineno) + ": value '" + text +
                         "' is not a finite number");
    auto [it, inserted] = by_key.try_emplace(f[col_series]);
    if (inserted) order.push_back(f[col_series]);
    it->second.first.push_back(f[col_run]);
    it->second.second.push_back(v);
  }
  std::vector<SeriesTrend> out;
  out.reserve(order.size());
  for (const auto& key : order) {
    auto& [runs, values] = by_key[key];
    out.push_back(analyse_series(key, std::move(runs), std::move(values), o));
  }
  return out;
}

std::string trends_json(const std::vector<SeriesTrend>& trends) {
  nlohmann::json series = nlohmann::json::array();
  for (const auto& t : trends) {
    nlohmann::json cps = nlohmann::json::array();
    for (const auto& cp : t.change_points)
      cps.push_back({{"index", cp.index},
                     {"run", t.runs[cp.index]},
                     {"magnitude_pct", num(cp.magnitude_pct)},
                     {"p_value", num(cp.p_value)}});
    series.push_back({{"key", t.key},
                      {"points", t.values.size()},
                      {"change_points", cps},
                      {"anomaly", t.anomaly},
                      {"newest_z", num(t.newest_z)},
                      {"newest_effect_pct", num(t.newest_effect_pct)},
                      {"verdict", t.verdict}});
  }
  return nlohmann::json{{"series", series}}.dump(2) + "\n";
}

std::string trends_text(const std::vector<SeriesTrend>& trends) {
  std::ostringstream out;
  int regressions = 0, improvements = 0;
  for (const auto& t : trends) {
    regressions += t.verdict == "regression";
    improvements += t.verdict == "improvement";
    out << t.verdict << "\t" << t.key << "\t" << t.values.size() << " points";
    if (t.anomaly) out << "\tnewest is an anomaly (z " << t.newest_z << ", " << t.newest_effect_pct << "%)";
    for (const auto& cp : t.change_points)
      out << "\tchange at run " << t.runs[cp.index] << " (" << cp.magnitude_pct << "%, p " << cp.p_value
          << ")";
    out << "\n";
  }
  out << trends.size() << " series: " << regressions << " regressions, " << improvements << " improvements\n";
  return out.str();
}

}  // namespace ipfsa::report
