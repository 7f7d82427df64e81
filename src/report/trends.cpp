#include "report/trends.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/stats.hpp"
#include "store/hdf5_store.hpp"

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

// First index of the baseline segment of a series of n >= 2 points: the last change point before
// the newest point (the baseline ends just before the newest point).
std::size_t baseline_begin(const std::vector<core::ChangePoint>& change_points, std::size_t n) {
  std::size_t begin = 0;
  for (const auto& cp : change_points)
    if (cp.index < n - 1) begin = cp.index;
  return begin;
}

// P(X >= k) for X ~ Hypergeometric: `draws` taken without replacement from `total` items of which
// `marked` are marked; X counts the marked ones drawn.
double hypergeometric_sf(std::size_t total, std::size_t marked, std::size_t draws, std::size_t k) {
  const std::size_t hi = std::min(marked, draws);
  if (k == 0) return 1.0;
  if (k > hi) return 0.0;
  auto log_choose = [](double n, double r) {
    return std::lgamma(n + 1) - std::lgamma(r + 1) - std::lgamma(n - r + 1);
  };
  const double n = static_cast<double>(total), m = static_cast<double>(marked),
               d = static_cast<double>(draws);
  const double denominator = log_choose(n, d);
  double sum = 0;
  for (std::size_t i = k; i <= hi; ++i) {
    const double di = static_cast<double>(i);
    if (d - di > n - m) continue;  // not enough unmarked items for the rest of the draws
    sum += std::exp(log_choose(m, di) + log_choose(n - m, d - di) - denominator);
  }
  return std::min(1.0, sum);
}

struct SampleTest {
  double p = 1.0;
  int direction = 0;  // +1: newest is higher, -1: lower, 0: neither
};

// The exceedance test (exceedance_p) with the direction of the departure.
SampleTest exceedance_test(std::span<const double> baseline, std::span<const double> newest,
                           double threshold) {
  if (baseline.empty() || newest.empty()) return {};
  auto count = [&](std::span<const double> v, bool above) {
    return static_cast<std::size_t>(
        std::count_if(v.begin(), v.end(), [&](double x) { return above ? x > threshold : x < threshold; }));
  };
  const std::size_t total = baseline.size() + newest.size();
  const std::size_t above = count(newest, true), below = count(newest, false);
  // Fisher's exact test, one-sided each way: as many newest samples above (below) the threshold
  // as were drawn, given how many of all samples lie above (below) it.
  const double p_up = hypergeometric_sf(total, count(baseline, true) + above, newest.size(), above);
  const double p_down = hypergeometric_sf(total, count(baseline, false) + below, newest.size(), below);
  return {std::min(1.0, 2.0 * std::min(p_up, p_down)), p_up < p_down ? 1 : (p_down < p_up ? -1 : 0)};
}

// Mann-Whitney U (two-sided) with the direction of the medians.
SampleTest mann_whitney_test(std::span<const double> baseline, std::span<const double> newest) {
  if (baseline.empty() || newest.empty()) return {};
  const double diff = core::median(newest) - core::median(baseline);
  return {core::mann_whitney_p(baseline, newest), diff > 0 ? 1 : (diff < 0 ? -1 : 0)};
}

}  // namespace

std::string_view metric_name(Metric m) {
  switch (m) {
    case Metric::kLatencyP50:
      return "latency_p50";
    case Metric::kLatencyP90:
      return "latency_p90";
    case Metric::kLatencyP99:
      return "latency_p99";
    case Metric::kThroughput:
      return "throughput";
    case Metric::kPeakMemory:
      return "peak_memory";
    case Metric::kAccuracy:
      return "accuracy_cosine";
  }
  return "unknown";
}

bool metric_higher_is_better(Metric m) {
  return m == Metric::kThroughput || m == Metric::kAccuracy;
}

double exceedance_p(std::span<const double> baseline, std::span<const double> newest, double threshold) {
  return exceedance_test(baseline, newest, threshold).p;
}

SeriesTrend analyse_series(std::string key, std::vector<std::string> runs, std::vector<double> values,
                           const TrendOptions& o) {
  SeriesTrend t;
  t.key = std::move(key);
  t.runs = std::move(runs);
  t.values = std::move(values);
  t.change_points = core::detect_change_points(t.values, o.change_points);
  t.newest_z = core::newest_robust_z(t.values, o.anomaly);
  t.anomaly = std::abs(t.newest_z) > o.anomaly.z_threshold;
  t.verdict_test = "robust-z";
  t.higher_is_better = o.higher_is_better;
  if (t.values.size() < 2) return t;
  const std::size_t base_begin = baseline_begin(t.change_points, t.values.size());
  const std::span<const double> all(t.values);
  const double base = core::median(all.subspan(base_begin, t.values.size() - 1 - base_begin));
  t.baseline_value = base;
  t.newest_effect_pct = (t.values.back() - base) / std::max(std::abs(base), 1e-300) * 100.0;
  const double bad = o.higher_is_better ? -t.newest_effect_pct : t.newest_effect_pct;
  if (t.anomaly && bad >= o.threshold_pct) t.verdict = "regression";
  if (t.anomaly && -bad >= o.threshold_pct) t.verdict = "improvement";
  return t;
}

SeriesTrend analyse_latency_series(std::string key, std::vector<std::string> runs,
                                   std::span<const std::vector<double>> samples, double quantile,
                                   const TrendOptions& o) {
  // Each run's samples sorted: as given when they already are (the store path sorts them once).
  std::vector<std::vector<double>> copies;
  copies.reserve(samples.size());
  std::vector<std::span<const double>> sorted;
  sorted.reserve(samples.size());
  std::vector<double> values;
  values.reserve(samples.size());
  for (const auto& s : samples) {
    if (std::is_sorted(s.begin(), s.end())) {
      sorted.emplace_back(s);
    } else {
      copies.emplace_back(s);
      std::sort(copies.back().begin(), copies.back().end());
      sorted.emplace_back(copies.back());  // a moved inner vector keeps its buffer
    }
    values.push_back(s.empty() ? core::kNaN : core::percentile(sorted.back(), quantile * 100.0));
  }
  TrendOptions latency = o;
  latency.higher_is_better = false;
  SeriesTrend t = analyse_series(std::move(key), std::move(runs), std::move(values), latency);
  t.verdict = "none";
  const bool median_test = quantile <= 0.5;
  t.verdict_test = median_test ? "mann-whitney" : "quantile-exceedance";
  const std::size_t n = t.values.size();
  if (n < 2) return t;
  // Pool the raw samples of the baseline's newest runs; test the newest run's against them.
  const std::size_t base_end = n - 1;
  const std::size_t pool_begin =
      std::max(baseline_begin(t.change_points, n), base_end - std::min(base_end, o.sample_baseline_runs));
  std::vector<double> pooled;
  for (std::size_t i = pool_begin; i < base_end; ++i)
    pooled.insert(pooled.end(), sorted[i].begin(), sorted[i].end());
  SampleTest test;
  if (median_test) {
    test = mann_whitney_test(pooled, sorted.back());
  } else {
    // The tail's threshold is the median of the pooled runs' own quantiles, not the quantile of
    // the pooled samples: one noisy run of the baseline would otherwise set it.
    const std::span<const double> pool_values(t.values.data() + pool_begin, base_end - pool_begin);
    test = exceedance_test(pooled, sorted.back(), core::median(pool_values));
  }
  t.verdict_p_value = test.p;
  if (test.p >= o.sample_alpha) return t;
  if (test.direction > 0 && t.newest_effect_pct >= o.threshold_pct) t.verdict = "regression";
  if (test.direction < 0 && -t.newest_effect_pct >= o.threshold_pct) t.verdict = "improvement";
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

namespace {

// Distinct host names in a comma-separated list (the /runs `hosts` column); at least 1.
std::size_t node_count(std::string_view hosts) {
  std::unordered_set<std::string_view> names;
  while (!hosts.empty()) {
    const std::size_t comma = hosts.find(',');
    std::string_view name = hosts.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) names.insert(name);
    hosts = comma == std::string_view::npos ? std::string_view() : hosts.substr(comma + 1);
  }
  return std::max<std::size_t>(1, names.size());
}

// One passed final result of a configuration in one run.
struct Point {
  std::size_t run = 0;  // index into the runs taken
  std::string task_id;
  std::vector<double> samples;  // sorted
  double throughput = core::kNaN;
  std::uint64_t peak_memory_bytes = 0;
  double acc_cosine = core::kNaN;
};

// A configuration on one fingerprint, and its points in run order.
struct Config {
  std::string config;        // config_name(), plus " task=ID" when split by task id
  store::StoredResult meta;  // its first result, for the task columns (no samples)
  std::string fingerprint;   // with ";nodes=N"
  std::vector<Point> points;
};

// The configuration of a result as the issue defines it: kind, model, hardware, precision, batch,
// seq_len, scenario (the fingerprint is the rest of the series key).
std::string config_name(const store::StoredResult& r) {
  return "kind=" + r.kind + " model=" + r.model + " hardware=" + r.hardware + " precision=" + r.precision +
         " batch=" + std::to_string(r.batch) + " seq_len=" + std::to_string(r.seq_len) +
         " scenario=" + r.scenario;
}

bool counts(const store::StoredResult& r) {
  return r.final && r.status == "passed";
}

}  // namespace

Result<std::vector<SeriesTrend>> analyse_store(const std::string& path, const std::string& run_id,
                                               const TrendOptions& o) {
  auto reader = store::Hdf5Reader::open(path);
  if (!reader) return reader.error();
  auto runs = reader->runs();
  if (!runs) return runs.error();
  // Runs in the order they were begun (row order in /runs), up to the judged run.
  std::size_t taken = runs->size();
  if (!run_id.empty()) {
    const auto it = std::find_if(runs->begin(), runs->end(),
                                 [&](const store::StoredRun& r) { return r.run_id == run_id; });
    if (it == runs->end()) return input_error(path + ": no run '" + run_id + "' in the store");
    taken = static_cast<std::size_t>(it - runs->begin()) + 1;
  }
  if (taken == 0) return std::vector<SeriesTrend>{};
  const std::string judged = (*runs)[taken - 1].run_id;
  std::unordered_map<std::string, std::size_t> run_index;
  std::vector<std::size_t> nodes(taken);
  for (std::size_t i = 0; i < taken; ++i) {
    run_index.emplace((*runs)[i].run_id, i);
    nodes[i] = node_count((*runs)[i].hosts);
  }

  // One read of /results (rows in run order: each run's rows are contiguous, docs/store.md).
  auto results = reader->results({}, /*with_samples=*/true);
  if (!results) return results.error();

  // Configurations that one run measured with several tasks (a parameter sweep, named variants,
  // `count` copies) are split by task id; the others keep one series across edits of their
  // parameters or name.
  std::unordered_set<std::string> split;
  {
    std::unordered_map<std::string, std::string> task_of;  // config + '\n' + run -> its task id
    for (const auto& r : *results) {
      if (!counts(r)) continue;
      const auto run = run_index.find(r.run_id);
      if (run == run_index.end()) continue;
      std::string name = config_name(r);
      auto [it, inserted] = task_of.try_emplace(name + '\n' + std::to_string(run->second), r.task_id);
      if (!inserted && it->second != r.task_id) split.insert(std::move(name));
    }
  }

  std::vector<Config> configs;
  std::unordered_map<std::string, std::size_t> config_of;  // config + '\n' + fingerprint
  for (auto& r : *results) {
    if (!counts(r)) continue;
    const auto run = run_index.find(r.run_id);
    if (run == run_index.end()) continue;  // a run after the judged one
    std::vector<double> samples = std::move(r.samples);
    std::sort(samples.begin(), samples.end());
    std::string config = config_name(r);
    if (split.count(config) != 0) config += " task=" + r.task_id;
    std::string fingerprint = (r.fingerprint.empty() ? std::string("unrecorded") : r.fingerprint) +
                              ";nodes=" + std::to_string(nodes[run->second]);
    auto [it, inserted] = config_of.try_emplace(config + '\n' + fingerprint, configs.size());
    if (inserted) configs.push_back(Config{std::move(config), r, std::move(fingerprint), {}});
    Point& p = configs[it->second].points.emplace_back();
    p.run = run->second;
    p.task_id = r.task_id;
    p.samples = std::move(samples);
    p.throughput = r.throughput;
    p.peak_memory_bytes = r.peak_memory_bytes;
    p.acc_cosine = r.acc_cosine;
  }
  results->clear();

  std::vector<SeriesTrend> out;
  for (auto& c : configs) {
    // Run order; one point per run: should a run hold two final results of the configuration (a
    // writer never records them), the later row counts.
    std::stable_sort(c.points.begin(), c.points.end(),
                     [](const Point& a, const Point& b) { return a.run < b.run; });
    std::vector<Point> unique;
    unique.reserve(c.points.size());
    for (auto& p : c.points) {
      if (!unique.empty() && unique.back().run == p.run) unique.pop_back();
      unique.push_back(std::move(p));
    }
    c.points = std::move(unique);
    auto finish = [&](SeriesTrend t, Metric m) {
      t.metric = std::string(metric_name(m));
      t.config = c.config;
      t.kind = c.meta.kind;
      t.model = c.meta.model;
      t.hardware = c.meta.hardware;
      t.precision = c.meta.precision;
      t.scenario = c.meta.scenario;
      t.batch = c.meta.batch;
      t.seq_len = c.meta.seq_len;
      t.fingerprint = c.fingerprint;
      t.higher_is_better = metric_higher_is_better(m);
      t.judged_run = judged;
      t.newest_run = t.runs.empty() ? std::string() : t.runs.back();
      for (auto p = c.points.rbegin(); p != c.points.rend(); ++p)
        if ((*runs)[p->run].run_id == t.newest_run) {
          t.task_id = p->task_id;
          break;
        }
      if (t.newest_run != judged) {  // nothing of this series to judge in the judged run
        t.anomaly = false;
        t.verdict = "none";
      }
      out.push_back(std::move(t));
    };
    auto key = [&](Metric m) {
      return std::string(metric_name(m)) + " | " + c.config + " | " + c.fingerprint;
    };
    // Latency quantiles from the raw samples.
    std::vector<std::string> sample_runs;
    std::vector<std::vector<double>> samples;
    for (auto& p : c.points) {
      if (p.samples.empty()) continue;
      sample_runs.push_back((*runs)[p.run].run_id);
      samples.push_back(std::move(p.samples));
    }
    if (!samples.empty()) {
      constexpr std::pair<Metric, double> kQuantiles[] = {
          {Metric::kLatencyP50, 0.5}, {Metric::kLatencyP90, 0.9}, {Metric::kLatencyP99, 0.99}};
      for (const auto& [m, q] : kQuantiles)
        finish(analyse_latency_series(key(m), sample_runs, samples, q, o), m);
    }
    // Single-valued metrics: the anomaly + effect rule, in the metric's direction.
    auto single = [&](Metric m, auto&& value_of) {
      std::vector<std::string> ids;
      std::vector<double> values;
      for (const auto& p : c.points) {
        const double v = value_of(p);
        if (!std::isfinite(v)) continue;
        ids.push_back((*runs)[p.run].run_id);
        values.push_back(v);
      }
      if (values.empty()) return;
      TrendOptions mo = o;
      mo.higher_is_better = metric_higher_is_better(m);
      if (m == Metric::kThroughput) mo.threshold_pct = o.throughput_pct;
      if (m == Metric::kAccuracy) {
        // An absolute drop, as a percentage of the series' typical level (cosine is near 1).
        const double level = std::abs(core::median(std::span<const double>(values).first(values.size() - 1)));
        mo.threshold_pct = values.size() > 1 && level > 0 ? o.accuracy_abs / level * 100.0 : o.threshold_pct;
      }
      finish(analyse_series(key(m), std::move(ids), std::move(values), mo), m);
    };
    single(Metric::kThroughput, [](const Point& p) { return p.throughput; });
    single(Metric::kPeakMemory, [](const Point& p) {
      return p.peak_memory_bytes > 0 ? static_cast<double>(p.peak_memory_bytes) : core::kNaN;
    });
    single(Metric::kAccuracy, [](const Point& p) { return p.acc_cosine; });
  }
  return out;
}

nlohmann::json trends_series_json(std::span<const SeriesTrend> trends) {
  nlohmann::json series = nlohmann::json::array();
  for (const auto& t : trends) {
    nlohmann::json cps = nlohmann::json::array();
    for (const auto& cp : t.change_points)
      cps.push_back({{"index", cp.index},
                     {"run", t.runs[cp.index]},
                     {"magnitude_pct", num(cp.magnitude_pct)},
                     {"p_value", num(cp.p_value)}});
    nlohmann::json s = {{"key", t.key},
                        {"points", t.values.size()},
                        {"change_points", cps},
                        {"anomaly", t.anomaly},
                        {"newest_z", num(t.newest_z)},
                        {"newest_effect_pct", num(t.newest_effect_pct)},
                        {"verdict", t.verdict},
                        {"verdict_test", t.verdict_test},
                        {"verdict_p_value", num(t.verdict_p_value)},
                        {"baseline_value", num(t.baseline_value)},
                        {"newest_value", num(t.values.empty() ? core::kNaN : t.values.back())}};
    if (!t.metric.empty()) {
      s["metric"] = t.metric;
      s["config"] = t.config;
      s["task_id"] = t.task_id;
      s["kind"] = t.kind;
      s["model"] = t.model;
      s["hardware"] = t.hardware;
      s["precision"] = t.precision;
      s["batch"] = t.batch;
      s["seq_len"] = t.seq_len;
      s["scenario"] = t.scenario;
      s["fingerprint"] = t.fingerprint;
      s["higher_is_better"] = t.higher_is_better;
      s["judged_run"] = t.judged_run;
      s["newest_run"] = t.newest_run;
    }
    series.push_back(std::move(s));
  }
  return series;
}

std::string trends_json(const std::vector<SeriesTrend>& trends) {
  return nlohmann::json{{"series", trends_series_json(trends)}}.dump(2) + "\n";
}

namespace {

// A store-mode value with its unit: latency in ms, memory in MiB.
std::string with_unit(const SeriesTrend& t, double v) {
  char buf[64];
  if (t.metric.rfind("latency_", 0) == 0) {
    std::snprintf(buf, sizeof buf, "%.4g ms", v * 1e3);
  } else if (t.metric == "peak_memory") {
    std::snprintf(buf, sizeof buf, "%.4g MiB", v / (1024.0 * 1024.0));
  } else if (t.metric == "throughput") {
    std::snprintf(buf, sizeof buf, "%.4g/s", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  return buf;
}

}  // namespace

std::string trends_text(const std::vector<SeriesTrend>& trends) {
  std::ostringstream out;
  int regressions = 0, improvements = 0;
  for (const auto& t : trends) {
    regressions += t.verdict == "regression";
    improvements += t.verdict == "improvement";
    out << t.verdict << "\t" << t.key << "\t" << t.values.size() << " points";
    if (!t.metric.empty()) {
      if (t.newest_run != t.judged_run) {
        out << "\tnot measured in run " << t.judged_run;
      } else if (t.values.size() >= 2) {
        char effect[32];
        std::snprintf(effect, sizeof effect, "%+.1f%%", t.newest_effect_pct);
        out << "\tnewest " << with_unit(t, t.values.back()) << " vs baseline "
            << with_unit(t, t.baseline_value) << " (" << effect << ")";
        if (std::isfinite(t.verdict_p_value)) out << ", " << t.verdict_test << " p " << t.verdict_p_value;
      }
    }
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
