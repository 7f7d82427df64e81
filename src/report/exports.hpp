// Exports of one run for CI systems and notebooks (M12, issue 6): JUnit XML (Jenkins' junit
// plugin, GitLab's test reports), a Markdown summary (for $GITHUB_STEP_SUMMARY), a results CSV
// (pandas-readable) and JSON. docs/report.md describes each format.
//
// `trends` everywhere: the series analysed up to this run; regressions() picks the ones that
// concern it. Both callers feed the same neutral row: `run` has core::TaskSpec + final core::TaskResult
// (rows_from_results), `report --store` has store::StoredResult (rows_from_store). Regressions
// come as report::SeriesTrend (verdict "regression"); the JUnit file gives each one its own failing
// testcase (classname "regression", name = the series key), so a regression is reported whatever
// shape the series key has and even when no task of the run matches it.
//
// Thread-safety: pure functions of their arguments, plus write_text_file (one file).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/error.hpp"
#include "core/result_sink.hpp"
#include "core/task.hpp"
#include "report/trends.hpp"
#include "store/hdf5_store.hpp"

namespace ipfsa::report {

// The status of a task the run expanded but never recorded a final result for (an aborted or
// killed run). Not a core::TaskStatus: it never reaches the store.
inline constexpr std::string_view kUnfinished = "unfinished";

// One task of one run: its final result (or, when it has none, its last attempt with status
// kUnfinished). Every number that a run did not measure is NaN.
struct ResultRow {
  std::uint32_t task_index = 0;
  std::string task_id;
  std::string kind;
  std::string model;
  std::string hardware;
  std::string precision;
  std::uint32_t batch = 1;
  std::uint32_t seq_len = 0;
  std::string scenario;
  std::string priority;
  std::string status;          // passed failed crashed timeout oom skipped (lost) unfinished
  std::uint32_t attempts = 0;  // attempts recorded for the task in this run (0: none)
  bool flaky = false;
  std::int32_t worker_rank = -1;
  std::string worker_host;
  std::int32_t signal = 0;
  double started_unix = 0;
  double ended_unix = 0;
  std::uint32_t sample_count = 0;
  double latency_mean_s = core::kNaN;
  double latency_p50_s = core::kNaN;
  double latency_p90_s = core::kNaN;
  double latency_p99_s = core::kNaN;
  double latency_min_s = core::kNaN;
  double latency_max_s = core::kNaN;
  double latency_stddev_s = core::kNaN;
  double throughput = core::kNaN;
  std::uint64_t peak_memory_bytes = 0;
  double acc_cosine = core::kNaN;
  double acc_rel_error = core::kNaN;
  double acc_kl = core::kNaN;
  double acc_top1 = core::kNaN;
  std::vector<std::pair<std::string, double>> metrics;  // the kind's extra metrics, as recorded
  std::string error;                                    // why it did not pass; empty when passed
};

// True for the statuses that fail a run: failed, crashed, timeout, oom (exit code 1, see
// exit_code_for), and for lost and unfinished, which mean the task has no verdict.
bool is_failure(std::string_view status);

// Rows of a run as `run` holds it: one per task of `tasks`, in task order; a task without a final
// result in `finals` gets status kUnfinished. `finals` index tasks by TaskResult::task (campaign
// indices); a result whose index is outside `tasks` is ignored.
std::vector<ResultRow> rows_from_results(std::span<const core::TaskSpec> tasks,
                                         std::span<const core::TaskResult> finals);

// Rows of one run as the store holds it: every attempt row of the run (Hdf5Reader::results(run_id),
// samples not needed). One row per task index that has any attempt, in task order: the final
// attempt, else the last attempt with status kUnfinished. `attempts` counts the task's rows.
std::vector<ResultRow> rows_from_store(std::span<const store::StoredResult> results);

struct StatusCounts {
  std::uint32_t tasks = 0;  // rows
  std::uint32_t passed = 0, failed = 0, crashed = 0, timeout = 0, oom = 0, skipped = 0, other = 0;
  std::uint32_t flaky = 0;
  std::uint32_t regressions = 0;  // regressions(trends, run_id).size()
};
StatusCounts count_statuses(std::span<const ResultRow> rows, std::span<const SeriesTrend> trends,
                            std::string_view run_id);

// The regressions of run `run_id`: series with verdict "regression" whose newest point is from that
// run (or that name no runs) — a series whose newest point is older says nothing about this run.
// Worst effect first.
std::vector<const SeriesTrend*> regressions(std::span<const SeriesTrend> trends, std::string_view run_id);

// JUnit XML, one <testsuites> with one <testsuite> for the run (name "CAMPAIGN RUN_ID", id RUN_ID,
// timestamp, hostname, run facts as suite properties) holding one nested <testsuite> per task
// (name the task id; the measurements — latency summary, samples, throughput, peak memory,
// accuracy, attempts, flaky, worker, the kind's metrics — as its <properties>) with its one
// <testcase> (classname "KIND/MODEL", name the task id, time the final attempt's wall time):
// failed/crashed/timeout/oom -> <failure type=STATUS message=...>; lost and unfinished -> <error>;
// skipped -> <skipped message=.../>. Then one nested suite per regression of this run, whose
// testcase (classname "regression", name the series key) fails. Nested suites carry the
// properties because the Jenkins JUnit model (the xunit plugin's junit-10.xsd) allows none on a
// testcase; Jenkins' junit plugin and GitLab read nested suites. Valid against
// tests/data/junit.xsd. Text is XML-escaped; invalid UTF-8 and characters XML 1.0 forbids become
// U+FFFD.
std::string junit_xml(const core::RunInfo& run, std::span<const ResultRow> rows,
                      std::span<const SeriesTrend> trends);

// GitHub-flavoured Markdown: a title line with the run's verdict, the counts table, the
// regressions (first), then the tasks that did not pass (at most `max_rows` rows per table, the
// rest counted). Table cells are escaped (|, newlines, <). Well under GitHub's 1 MiB step-summary
// limit for max_rows <= 1000.
std::string markdown_summary(const core::RunInfo& run, std::span<const ResultRow> rows,
                             std::span<const SeriesTrend> trends, std::size_t max_rows = 50);

// CSV (RFC 4180: fields with , " CR LF or edge spaces are quoted, quotes doubled; rows end in
// \n), one row per ResultRow in the given order. Columns: run_id, the task columns, status,
// attempts, flaky, worker, times, the latency summary, samples, throughput, peak memory, accuracy,
// signal, error, then one `metric.NAME` column per metric name of any row (sorted). Numbers in
// the shortest form that reads back exactly; NaN is an empty field.
std::string results_csv(const core::RunInfo& run, std::span<const ResultRow> rows);

// JSON: {"format": "ipfs-accelerate run results", "format_version": 1, "run": {...},
// "counts": {...}, "results": [{...}], "regressions": [KEY...], "series": [...]} where "series"
// has the shape of `trends --format json`. NaN is null.
std::string results_json(const core::RunInfo& run, std::span<const ResultRow> rows,
                         std::span<const SeriesTrend> trends);

// `trends --format junit`: one <testsuite> ("trends RUN") with one nested suite per series judged
// for `judged_run` (every series when it is empty, as for CSV input): the verdict and its figures
// as the suite's properties, one <testcase> (classname "trends.METRIC", name the series key), a
// regression as <failure>.
// Valid against tests/data/junit.xsd.
std::string trends_junit(std::string_view source, std::string_view judged_run,
                         std::span<const SeriesTrend> trends);

// `trends --format markdown`: a title with the counts, then regressions, improvements and the
// series whose newest point starts a new segment (a change point at the judged run).
std::string trends_markdown(std::string_view source, std::string_view judged_run,
                            std::span<const SeriesTrend> trends, std::size_t max_rows = 50);

// `s` escaped for XML (and HTML) text, or for an attribute value when `attribute` (quotes, and
// tab/CR/LF as character references so attribute normalisation keeps them). Invalid UTF-8 and
// characters XML 1.0 forbids become U+FFFD. Pure.
std::string markup_escape(std::string_view s, bool attribute);

// A task's configuration as JSON: kind, model, hardware, precision, batch, seq_len, scenario,
// priority (results_json's rows and report.html's configurations).
nlohmann::json task_config_json(const ResultRow& r);

// Writes `text` to `path` through a temporary file in the same folder renamed into place, so a
// reader never sees half a file. Error (kInfra) naming the path when it cannot be written; nothing
// is left behind then.
Result<void> write_text_file(const std::string& path, std::string_view text);

}  // namespace ipfsa::report
