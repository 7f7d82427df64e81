#include "cli/report_command.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <vector>

#include "core/version.hpp"
#include "report/exports.hpp"
#include "report/html_report.hpp"

namespace ipfsa::cli {

CLI::App* add_report_command(CLI::App& app, ReportOptions& o) {
  auto* cmd = app.add_subcommand(
      "report",
      "Write a self-contained HTML report of a trend store (overview, trend plots, compatibility matrix, "
      "run comparison) and the run's CSV/JSON/JUnit/Markdown exports");
  cmd->add_option("--store", o.store, "HDF5 trend store (.h5)")->required();
  cmd->add_option("--out", o.out, "report.html to write (default: report.html when no export is asked for)");
  cmd->add_option("--run", o.run, "Run id of the overview and the exports (default: the newest run)");
  cmd->add_option("--csv", o.csv, "Also write the run's results as CSV to this file");
  cmd->add_option("--json", o.json, "Also write the run's results and series as JSON to this file");
  cmd->add_option("--junit", o.junit,
                  "Also write JUnit XML (one testcase per task, regressions as failures)");
  cmd->add_option("--markdown", o.markdown, "Also write a Markdown summary (for $GITHUB_STEP_SUMMARY)");
  cmd->add_option("--max-runs", o.max_runs, "Runs in the report: the run and those begun before it")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--threshold-pct", o.threshold_pct,
                  "Minimum latency and memory effect of a verdict, in percent (as for `trends`)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--throughput-pct", o.throughput_pct, "Minimum throughput effect of a verdict, in percent")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--accuracy-abs", o.accuracy_abs, "Minimum accuracy drop (cosine) of a verdict")
      ->check(CLI::Range(0.0, 1.0));
  return cmd;
}

int report_command(const ReportOptions& o) {
  report::TrendOptions trend_options;
  trend_options.threshold_pct = o.threshold_pct;
  trend_options.throughput_pct = o.throughput_pct;
  trend_options.accuracy_abs = o.accuracy_abs;
  auto input = report::load_report_input(o.store, o.run, trend_options, o.max_runs);
  if (!input) {
    std::cerr << "ipfs-accelerate: " << input.error().message << "\n";
    return static_cast<int>(input.error().code);
  }
  input->generator = std::string("ipfs-accelerate ") + kVersion + " (" + kGitCommit + ")";
  input->generated_unix =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();

  const auto& run = input->runs.back();  // load_report_input ends the list with the chosen run
  std::vector<store::StoredResult> run_results;
  for (const auto& r : input->results)
    if (r.run_id == run.run_id) run_results.push_back(r);
  const auto rows = report::rows_from_store(run_results);
  const auto& trends = input->trends;

  const bool any_export = !o.csv.empty() || !o.json.empty() || !o.junit.empty() || !o.markdown.empty();
  const std::string html_path = !o.out.empty() ? o.out
                                : any_export   ? std::string()
                                               : std::string("report.html");
  // Renders only what is asked for; stops at the first file that cannot be written.
  auto write = [](const char* what, const std::string& path, auto render) {
    if (path.empty()) return true;
    if (auto wrote = report::write_text_file(path, render()); !wrote) {
      std::cerr << "ipfs-accelerate: " << wrote.error().message << "\n";
      return false;
    }
    std::cout << what << ": " << path << "\n";
    return true;
  };
  const bool ok = write("report", html_path, [&] { return report::render_html_report(*input); }) &&
                  write("csv", o.csv, [&] { return report::results_csv(run, rows); }) &&
                  write("json", o.json, [&] { return report::results_json(run, rows, trends); }) &&
                  write("junit", o.junit, [&] { return report::junit_xml(run, rows, trends); }) &&
                  write("markdown", o.markdown, [&] { return report::markdown_summary(run, rows, trends); });
  if (!ok) return static_cast<int>(ErrorCode::kInfra);
  return 0;
}

}  // namespace ipfsa::cli
