#include "report/html_report.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "report/exports.hpp"

// Defined in generated/report/web_assets.cpp, which web/embed.mjs writes at build time from uPlot
// (web/node_modules via `npm ci`) and web/report.{js,css} (CMakeLists.txt, "report.html front-end
// assets"). Returns the asset's text; IPFSA_EXPECTS that the name is one of the embedded ones.
namespace ipfsa::report::web_assets {
std::string get(std::string_view name);
}  // namespace ipfsa::report::web_assets

namespace ipfsa::report {

namespace {

using nlohmann::json;

json jnum(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Text for HTML element content and attribute values: the XML escaping of exports.hpp (also
// valid HTML; invalid UTF-8 becomes U+FFFD).
std::string html_escape(std::string_view s) {
  return markup_escape(s, true);
}

// JSON text safe inside <script type="application/json">: '<' and '>' only occur inside JSON
// strings, where \u003c / \u003e mean the same, so neither "</script" nor "<!--" can appear.
std::string script_safe_json(const json& j) {
  const std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  for (char c : text) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else
      out += c;
  }
  return out;
}

// The config whose task id is the longest prefix of `key` ending at a separator (or the whole
// key): links a series to its task whatever the analysis appends to the id ("/latency_p50",
// " p99", "|fingerprint"). -1 when none.
int config_of_series(const std::string& key, const std::map<std::string, int>& config_index) {
  for (std::size_t len = key.size(); len > 0; --len) {
    if (len < key.size() && std::string_view("/ |:@,;").find(key[len]) == std::string_view::npos) continue;
    auto it = config_index.find(key.substr(0, len));
    if (it != config_index.end()) return it->second;
  }
  return -1;
}

// A run's results as columns (one array per field, one element per task). The overview run gets
// every column the page shows; the other runs only what the comparison needs, which keeps the page
// small for campaigns with many tasks and runs.
json run_results_columns(const std::vector<ResultRow>& rows, const std::map<std::string, int>& config_index,
                         bool overview) {
  json cols = json::object();
  for (const char* name : {"config", "status", "p50", "p99", "throughput", "cosine"})
    cols[name] = json::array();
  for (const auto& r : rows) {
    cols["config"].push_back(config_index.at(r.task_id));
    cols["status"].push_back(r.status);
    cols["p50"].push_back(jnum(r.latency_p50_s));
    cols["p99"].push_back(jnum(r.latency_p99_s));
    cols["throughput"].push_back(jnum(r.throughput));
    cols["cosine"].push_back(jnum(r.acc_cosine));
  }
  if (!overview) return cols;
  for (const char* name :
       {"attempts", "flaky", "p90", "top1", "rel_error", "kl", "samples", "time_s", "worker", "error"})
    cols[name] = json::array();
  for (const auto& r : rows) {
    cols["attempts"].push_back(r.attempts);
    cols["flaky"].push_back(r.flaky ? 1 : 0);
    cols["p90"].push_back(jnum(r.latency_p90_s));
    cols["top1"].push_back(jnum(r.acc_top1));
    cols["rel_error"].push_back(jnum(r.acc_rel_error));
    cols["kl"].push_back(jnum(r.acc_kl));
    cols["samples"].push_back(r.sample_count);
    cols["time_s"].push_back(jnum(
        r.ended_unix > r.started_unix && r.started_unix > 0 ? r.ended_unix - r.started_unix : core::kNaN));
    cols["worker"].push_back(r.worker_rank >= 0 ? r.worker_host + ":" + std::to_string(r.worker_rank) : "");
    cols["error"].push_back(r.error);
  }
  return cols;
}

}  // namespace

std::string render_html_report(const HtmlReportInput& in) {
  std::size_t selected = in.runs.size();
  for (std::size_t i = 0; i < in.runs.size(); ++i)
    if (in.runs[i].run_id == in.run_id) selected = i;
  IPFSA_EXPECTS(selected < in.runs.size(), "render_html_report: run_id is not one of the runs");

  // Results grouped by run; configs (task ids) numbered in order of first appearance.
  std::map<std::string, std::vector<store::StoredResult>> by_run;
  for (const auto& r : in.results) by_run[r.run_id].push_back(r);
  std::map<std::string, int> config_index;
  json configs = json::array();
  std::vector<std::vector<ResultRow>> run_rows(in.runs.size());
  for (std::size_t i = 0; i < in.runs.size(); ++i) {
    auto it = by_run.find(in.runs[i].run_id);
    if (it == by_run.end()) continue;
    run_rows[i] = rows_from_store(it->second);
    for (const auto& r : run_rows[i]) {
      if (config_index.count(r.task_id) != 0) continue;
      config_index.emplace(r.task_id, static_cast<int>(configs.size()));
      json config = task_config_json(r);
      config["id"] = r.task_id;
      configs.push_back(std::move(config));
    }
  }

  json data;
  data["schema"] = 1;
  data["store"] = in.store_path;
  data["generator"] = in.generator;
  data["generated_unix"] = in.generated_unix;
  data["run"] = selected;
  data["configs"] = std::move(configs);
  auto& runs = data["runs"] = json::array();
  std::map<std::string, int> run_index;
  for (std::size_t i = 0; i < in.runs.size(); ++i) {
    const auto& r = in.runs[i];
    run_index.emplace(r.run_id, static_cast<int>(i));
    const auto c = count_statuses(run_rows[i], {}, r.run_id);
    runs.push_back({{"id", r.run_id},
                    {"campaign", r.campaign},
                    {"campaign_source", r.campaign_source},
                    {"status", r.status},
                    {"version", r.version},
                    {"git_commit", r.git_commit},
                    {"hosts", r.hosts},
                    {"started_unix", r.started_unix},
                    {"ended_unix", r.ended_unix},
                    {"ranks", r.ranks},
                    {"workers", r.workers},
                    {"tasks_total", r.tasks_total},
                    {"counts",
                     {{"tasks", c.tasks},
                      {"passed", c.passed},
                      {"failed", c.failed},
                      {"crashed", c.crashed},
                      {"timeout", c.timeout},
                      {"oom", c.oom},
                      {"skipped", c.skipped},
                      {"other", c.other},
                      {"flaky", c.flaky}}},
                    {"results", run_results_columns(run_rows[i], config_index, i == selected)}});
  }
  auto& series = data["series"] = json::array();
  for (const auto& t : in.trends) {
    json cps = json::array();
    for (const auto& cp : t.change_points)
      cps.push_back(
          {{"index", cp.index}, {"magnitude_pct", jnum(cp.magnitude_pct)}, {"p_value", jnum(cp.p_value)}});
    json idx = json::array();
    bool all_in_page = true;
    for (const auto& id : t.runs) {
      auto it = run_index.find(id);
      all_in_page = all_in_page && it != run_index.end();
      idx.push_back(it == run_index.end() ? -1 : it->second);
    }
    json values = json::array();
    for (double v : t.values) values.push_back(jnum(v));
    auto by_task = t.task_id.empty() ? config_index.end() : config_index.find(t.task_id);
    series.push_back(
        {{"key", t.key},
         {"config", by_task != config_index.end() ? by_task->second : config_of_series(t.key, config_index)},
         {"run_index", std::move(idx)},
         {"values", std::move(values)},
         {"change_points", std::move(cps)},
         {"anomaly", t.anomaly},
         {"newest_z", jnum(t.newest_z)},
         {"newest_effect_pct", jnum(t.newest_effect_pct)},
         {"verdict", t.verdict}});
    if (!all_in_page) series.back()["runs"] = t.runs;  // ids the page cannot look up by index
  }

  const auto& run = in.runs[selected];
  std::string html;
  html.reserve(160 * 1024);
  html += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<meta name=\"generator\" content=\"" + html_escape(in.generator) + "\">\n";
  html += "<title>ipfs-accelerate report: " + html_escape(run.run_id) +
          (run.campaign.empty() ? "" : " (" + html_escape(run.campaign) + ")") + "</title>\n";
  html += "<link rel=\"icon\" href=\"data:,\">\n";  // no favicon request
  html += "<!-- uPlot (https://github.com/leeoniya/uPlot), embedded under its licence:\n";
  html += web_assets::get("uplot.LICENSE");
  html += "-->\n<style>\n" + web_assets::get("uplot.css") + "\n</style>\n";
  html += "<style>\n" + web_assets::get("report.css") + "\n</style>\n</head>\n<body>\n";
  html +=
      "<noscript><p>This report draws its tables and plots with JavaScript; enable it to see "
      "them.</p></noscript>\n";
  html += "<div id=\"app\"></div>\n";
  html += "<script type=\"application/json\" id=\"ipfsa-data\">" + script_safe_json(data) + "</script>\n";
  html += "<script>\n" + web_assets::get("uplot.js") + "\n</script>\n";
  html += "<script>\n" + web_assets::get("report.js") + "\n</script>\n</body>\n</html>\n";
  return html;
}

Result<HtmlReportInput> load_report_input(const std::string& store_path, const std::string& run_id,
                                          const TrendOptions& trend_options, std::size_t max_runs) {
  HtmlReportInput in;
  in.store_path = store_path;
  {
    auto reader = store::Hdf5Reader::open(store_path);
    if (!reader) return reader.error();
    auto runs = reader->runs();
    if (!runs) return runs.error();
    if (runs->empty()) return input_error(store_path + ": the store has no runs");
    std::size_t selected = runs->size();
    if (run_id.empty()) {
      selected = 0;
      for (std::size_t i = 1; i < runs->size(); ++i)
        if ((*runs)[i].started_unix >= (*runs)[selected].started_unix) selected = i;
    } else {
      for (std::size_t i = 0; i < runs->size(); ++i)
        if ((*runs)[i].run_id == run_id) selected = i;
      if (selected == runs->size()) return input_error(store_path + ": no run '" + run_id + "' in the store");
    }
    const std::size_t keep = std::max<std::size_t>(max_runs, 1);
    const std::size_t first = selected + 1 > keep ? selected + 1 - keep : 0;
    in.runs.assign(runs->begin() + static_cast<std::ptrdiff_t>(first),
                   runs->begin() + static_cast<std::ptrdiff_t>(selected) + 1);
    in.run_id = in.runs.back().run_id;
    for (const auto& r : in.runs) {
      auto rows = reader->results(r.run_id, false);
      if (!rows) return rows.error();
      for (auto& row : *rows) in.results.push_back(std::move(row));
    }
  }
  // Every series of the store's history up to this run (docs/trends.md), read by its own reader.
  auto trends = analyse_store(store_path, in.run_id, trend_options);
  if (!trends) return trends.error();
  in.trends = std::move(*trends);
  return in;
}

Result<void> write_html_report(const std::string& path, const HtmlReportInput& in) {
  return write_text_file(path, render_html_report(in));
}

}  // namespace ipfsa::report
