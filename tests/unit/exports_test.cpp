// The run exports and the HTML report (issue 6), as pure functions: JUnit structure and escaping
// (and, where xmllint exists, validity against tests/data/junit.xsd), the Markdown summary
// (regressions first, escaped cells), CSV quoting and exact numbers, JSON, rows from the store, the
// HTML page's embedded data, and write_text_file's errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "report/exports.hpp"
#include "report/html_report.hpp"

namespace ipfsa::report {
namespace {

using core::TaskStatus;

core::TaskSpec spec(std::uint32_t index, std::string id, std::string kind = "selftest.sleep") {
  core::TaskSpec t;
  t.index = index;
  t.id = std::move(id);
  t.kind = kind;
  t.model = kind;
  return t;
}

core::TaskResult result(std::uint32_t task, TaskStatus status, std::string error = {}) {
  core::TaskResult r;
  r.task = task;
  r.final = true;
  r.worker = 1;
  r.host = "node1";
  r.started_unix = 1767225600.0;  // 2026-01-01T00:00:00
  r.ended_unix = 1767225600.25;
  r.outcome.status = status;
  r.outcome.error = std::move(error);
  if (status == TaskStatus::kPassed) r.outcome.samples_s = {0.010, 0.012, 0.011};
  return r;
}

core::RunInfo run_info() {
  core::RunInfo run;
  run.run_id = "20260101T000000Z-beef";
  run.campaign = "nightly";
  run.campaign_source = "configs/nightly.yaml";
  run.version = "0.1.0";
  run.git_commit = "abc123";
  run.hosts = "node1,node2";
  run.status = "failed";
  run.started_unix = 1767225600.0;
  run.ended_unix = 1767225660.0;
  run.ranks = 3;
  run.workers = 2;
  run.tasks_total = 8;
  return run;
}

SeriesTrend trend(std::string key, std::string verdict, std::string newest_run, double effect) {
  SeriesTrend t;
  t.key = std::move(key);
  t.runs = {"older", std::move(newest_run)};
  t.values = {1.0, 1.0 + effect / 100};
  t.verdict = std::move(verdict);
  t.anomaly = t.verdict != "none";
  t.newest_effect_pct = effect;
  t.newest_z = 9.5;
  return t;
}

// Eight tasks: every status, one without a final result (unfinished), hostile error text.
struct Fixture {
  std::vector<core::TaskSpec> tasks;
  std::vector<core::TaskResult> finals;
  std::vector<SeriesTrend> trends;
  core::RunInfo run = run_info();
  Fixture() {
    tasks = {spec(0, "sleep[ms=1]/cpu/fp32/b1/s0/latency"),
             spec(1, "fail/cpu/fp32/b1/s0/latency", "selftest.fail"),
             spec(2, "segv/cpu/fp32/b1/s0/latency", "selftest.segfault"),
             spec(3, "hang/cpu/fp32/b1/s0/latency", "selftest.hang"),
             spec(4, "oom/cpu/fp32/b1/s0/latency", "selftest.oom"),
             spec(5, "gpu/cuda/fp32/b1/s0/latency"),
             spec(6, "never/cpu/fp32/b1/s0/latency"),
             spec(7, "model(llama)/cpu/int4/b1/s0/decode", "model")};
    tasks[7].model = "llama";
    tasks[7].precision = "int4";
    finals.push_back(result(0, TaskStatus::kPassed));
    finals.push_back(
        result(1, TaskStatus::kFailed, "bad <tag> & \"quotes\" 'apos'\nsecond line\x01\xff end"));
    finals.push_back(result(2, TaskStatus::kCrashed, "executor died"));
    finals.back().outcome.signal = 11;
    finals.push_back(result(3, TaskStatus::kTimeout, "ran past timeout_s"));
    finals.push_back(result(4, TaskStatus::kOom, "exceeded memory_mb"));
    finals.push_back(result(5, TaskStatus::kSkipped, "no live worker can run it: needs cuda"));
    finals.back().worker = -1;
    // task 6 has no final result
    finals.push_back(result(7, TaskStatus::kPassed));
    finals.back().attempt = 1;
    finals.back().flaky = true;
    finals.back().outcome.throughput = 123.5;
    finals.back().outcome.acc_cosine = 0.9991;
    finals.back().outcome.metrics = {{"tokens_per_s", 42.0}, {"gflops", 1.5}};
    trends = {trend("sleep[ms=1]/cpu/fp32/b1/s0/latency/latency_p50", "regression", run.run_id, 25.0),
              trend("old/latency_p50", "regression", "an-older-run", 40.0),  // not this run's
              trend("model(llama)/cpu/int4/b1/s0/decode/latency_p50", "improvement", run.run_id, -20.0)};
  }
  std::vector<ResultRow> rows() const { return rows_from_results(tasks, finals); }
};

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(RowsFromResults, OneRowPerTaskWithUnfinishedForMissingFinals) {
  Fixture f;
  const auto rows = f.rows();
  ASSERT_EQ(rows.size(), 8u);
  EXPECT_EQ(rows[0].status, "passed");
  EXPECT_DOUBLE_EQ(rows[0].latency_p50_s, 0.011);
  EXPECT_EQ(rows[0].sample_count, 3u);
  EXPECT_EQ(rows[2].signal, 11);
  EXPECT_EQ(rows[6].status, kUnfinished);
  EXPECT_EQ(rows[6].attempts, 0u);
  EXPECT_EQ(rows[7].attempts, 2u);
  EXPECT_TRUE(rows[7].flaky);
  EXPECT_TRUE(std::isnan(rows[1].latency_p50_s));
}

TEST(Junit, OneTestcasePerTaskPlusOnePerRegressionOfThisRun) {
  Fixture f;
  const auto rows = f.rows();
  const std::string x = junit_xml(f.run, rows, f.trends);
  // 8 tasks + 1 regression (the other regression's newest point is another run's).
  EXPECT_EQ(count(x, "<testcase "), 9u);
  EXPECT_NE(x.find("<testsuite name=\"nightly 20260101T000000Z-beef\" id=\"20260101T000000Z-beef\""),
            std::string::npos);
  EXPECT_NE(x.find("tests=\"9\" failures=\"5\" errors=\"1\" skipped=\"1\""), std::string::npos) << x;
  // One nested suite per task and per regression, holding the properties (none on a testcase).
  EXPECT_EQ(count(x, "<testsuite "), 10u);
  for (auto at = x.find("<properties>"); at != std::string::npos; at = x.find("<properties>", at + 1)) {
    const auto line = x.rfind('\n', x.rfind('\n', at) - 1) + 1;  // the line before
    EXPECT_EQ(x.compare(x.find_first_not_of(' ', line), 10, "<testsuite"), 0) << "properties not on a suite";
  }
  EXPECT_NE(x.find("timestamp=\"2026-01-01T00:00:00\" hostname=\"node1\""), std::string::npos);
  EXPECT_NE(x.find("classname=\"selftest.fail/selftest.fail\" name=\"fail/cpu/fp32/b1/s0/latency\""),
            std::string::npos);
  EXPECT_NE(x.find("classname=\"model/llama\" name=\"model(llama)/cpu/int4/b1/s0/decode\""),
            std::string::npos);
  for (const char* type : {"failed", "crashed", "timeout", "oom", "regression"})
    EXPECT_EQ(count(x, std::string("<failure type=\"") + type + "\""), 1u) << type;
  EXPECT_EQ(count(x, "<error type=\"unfinished\""), 1u);
  EXPECT_EQ(count(x, "<skipped message=\"skipped: no live worker can run it: needs cuda\"/>"), 1u);
  EXPECT_NE(
      x.find("<testcase classname=\"regression\" name=\"sleep[ms=1]/cpu/fp32/b1/s0/latency/latency_p50\""),
      std::string::npos);
  EXPECT_EQ(x.find("<testsuites name=\"ipfs-accelerate\" tests=\"9\" failures=\"5\" errors=\"1\" time="), 39u)
      << "the root carries no skipped count (not in the Jenkins JUnit model)";
  EXPECT_EQ(x.find("old/latency_p50"), std::string::npos);
  // Metrics as properties.
  EXPECT_NE(x.find("<property name=\"latency_p50_s\" value=\"0.011\"/>"), std::string::npos);
  EXPECT_NE(x.find("<property name=\"throughput\" value=\"123.5\"/>"), std::string::npos);
  EXPECT_NE(x.find("<property name=\"metric.tokens_per_s\" value=\"42\"/>"), std::string::npos);
  EXPECT_NE(x.find("<property name=\"flaky\" value=\"1\"/>"), std::string::npos);
  EXPECT_NE(x.find("<property name=\"worker\" value=\"node1:1\"/>"), std::string::npos);
}

TEST(Junit, HostileTextIsEscapedAndInvalidCharactersReplaced) {
  Fixture f;
  const std::string x = junit_xml(f.run, f.rows(), f.trends);
  // The message attribute keeps only the first line; the element text has all of it.
  EXPECT_NE(x.find("message=\"failed: bad &lt;tag&gt; &amp; &quot;quotes&quot; &apos;apos&apos;\""),
            std::string::npos)
      << x;
  EXPECT_NE(x.find(">bad &lt;tag&gt; &amp; \"quotes\" 'apos'\nsecond line\xEF\xBF\xBD\xEF\xBF\xBD end"),
            std::string::npos);
  EXPECT_EQ(x.find('\x01'), std::string::npos);
  EXPECT_EQ(x.find('\xff'), std::string::npos);
}

TEST(Junit, ValidatesAgainstTheSchema) {
  if (std::system("xmllint --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "xmllint is not installed";
  Fixture f;
  const std::string path = ::testing::TempDir() + "/exports_test_junit.xml";
  ASSERT_TRUE(write_text_file(path, junit_xml(f.run, f.rows(), f.trends)).ok());
  const std::string cmd =
      "xmllint --noout --schema " + std::string(IPFSA_TEST_DATA_DIR) + "/junit.xsd " + path + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // An empty run is valid too.
  ASSERT_TRUE(write_text_file(path, junit_xml(core::RunInfo{}, {}, {})).ok());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(Markdown, RegressionsComeFirstAndCellsAreEscaped) {
  Fixture f;
  f.finals[1].outcome.error = "a | b <script>";
  const std::string md = markdown_summary(f.run, f.rows(), f.trends);
  EXPECT_EQ(md.rfind("## ❌ ipfs-accelerate run `20260101T000000Z-beef`", 0), 0u) << md;
  const auto regs = md.find("### Regressions (1)");
  const auto bad = md.find("### Tasks that did not pass (5)");
  ASSERT_NE(regs, std::string::npos) << md;
  ASSERT_NE(bad, std::string::npos) << md;
  EXPECT_LT(regs, bad);
  EXPECT_NE(md.find("| 8 | 2 | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("a \\| b &lt;script&gt;"), std::string::npos);
  EXPECT_EQ(md.find("<script>"), std::string::npos);
  EXPECT_NE(md.find("+25.0%"), std::string::npos);
  EXPECT_EQ(md.find("old/latency_p50"), std::string::npos);
}

TEST(Markdown, LongListsAreCutAndAPassingRunSaysSo) {
  Fixture f;
  auto md = markdown_summary(f.run, f.rows(), f.trends, 2);
  EXPECT_NE(md.find("… and 3 more."), std::string::npos) << md;
  core::RunInfo run = run_info();
  run.tasks_total = 1;
  const std::vector<core::TaskSpec> one = {spec(0, "ok")};
  const std::vector<core::TaskResult> passed = {result(0, TaskStatus::kPassed)};
  md = markdown_summary(run, rows_from_results(one, passed), {});
  EXPECT_EQ(md.rfind("## ✅ ipfs-accelerate run `20260101T000000Z-beef`: all 1 tasks passed", 0), 0u) << md;
  EXPECT_NE(md.find("No series regressed."), std::string::npos);
}

// RFC 4180 reader for the test: quoted fields may hold commas, quotes ("") and newlines.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1, std::vector<std::string>(1));
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        rows.back().back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        rows.back().back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().emplace_back();
    } else if (c == '\n') {
      rows.emplace_back(1);
    } else {
      rows.back().back() += c;
    }
  }
  if (rows.back().size() == 1 && rows.back()[0].empty()) rows.pop_back();
  return rows;
}

TEST(Csv, QuotesWhatNeedsQuotingAndNumbersReadBackExactly) {
  Fixture f;
  f.finals[1].outcome.error = "comma, \"quote\"\nnewline";
  f.tasks[0].id = " edge spaces ";
  f.finals[0].outcome.samples_s = {0.1, 0.2, 1.0 / 3.0};
  const auto rows = f.rows();
  const std::string csv = results_csv(f.run, rows);
  EXPECT_NE(csv.find("\"comma, \"\"quote\"\"\nnewline\""), std::string::npos) << csv;
  const auto table = parse_csv(csv);
  ASSERT_EQ(table.size(), 9u);  // header + 8
  const auto& header = table[0];
  for (const auto& row : table) ASSERT_EQ(row.size(), header.size());
  auto col = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return static_cast<std::size_t>(it - header.begin());
  };
  // Metric columns: the union of the rows' metric names, sorted, after the fixed columns.
  EXPECT_EQ(header[header.size() - 2], "metric.gflops");
  EXPECT_EQ(header.back(), "metric.tokens_per_s");
  EXPECT_EQ(table[1][col("task_id")], " edge spaces ");
  EXPECT_EQ(table[2][col("error")], "comma, \"quote\"\nnewline");
  EXPECT_EQ(table[1][col("run_id")], f.run.run_id);
  EXPECT_EQ(std::strtod(table[1][col("latency_mean_s")].c_str(), nullptr), rows[0].latency_mean_s);
  EXPECT_EQ(std::strtod(table[1][col("latency_p50_s")].c_str(), nullptr), rows[0].latency_p50_s);
  EXPECT_EQ(table[2][col("latency_p50_s")], "");  // NaN
  EXPECT_EQ(table[8][col("metric.tokens_per_s")], "42");
  EXPECT_EQ(table[1][col("metric.tokens_per_s")], "");
  EXPECT_EQ(table[7][col("status")], "unfinished");
}

TEST(Json, HasCountsRegressionsAndNullForNaN) {
  Fixture f;
  const auto j = nlohmann::json::parse(results_json(f.run, f.rows(), f.trends));
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(j["run"]["run_id"], f.run.run_id);
  EXPECT_EQ(j["verdict"], "failed");
  EXPECT_EQ(j["counts"]["tasks"], 8);
  EXPECT_EQ(j["counts"]["passed"], 2);
  EXPECT_EQ(j["counts"]["regressions"], 1);
  EXPECT_EQ(j["regressions"], nlohmann::json::array({"sleep[ms=1]/cpu/fp32/b1/s0/latency/latency_p50"}));
  EXPECT_EQ(j["series"].size(), 3u);
  EXPECT_TRUE(j["results"][1]["latency_p50_s"].is_null());
  EXPECT_EQ(j["results"][7]["metrics"]["gflops"], 1.5);
}

store::StoredResult stored(std::string run, std::uint32_t index, std::uint32_t attempt, bool final,
                           std::string status, double p50 = core::kNaN) {
  store::StoredResult r;
  r.run_id = std::move(run);
  r.task_index = index;
  r.task_id = "task" + std::to_string(index) + "/cpu/fp32/b1/s0/latency";
  r.kind = "selftest.sleep";
  r.model = "selftest.sleep";
  r.hardware = "cpu";
  r.precision = index % 2 ? "int8" : "fp32";
  r.attempt = attempt;
  r.final = final;
  r.status = std::move(status);
  r.latency_p50_s = p50;
  return r;
}

TEST(RowsFromStore, TakesTheFinalAttemptElseMarksTheTaskUnfinished) {
  const std::vector<store::StoredResult> results = {stored("r", 0, 0, false, "failed"),
                                                    stored("r", 0, 1, true, "passed", 0.5),
                                                    stored("r", 1, 0, false, "lost"),  // never finished
                                                    stored("r", 2, 0, true, "skipped")};
  const auto rows = rows_from_store(results);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].status, "passed");
  EXPECT_EQ(rows[0].attempts, 2u);
  EXPECT_EQ(rows[0].latency_p50_s, 0.5);
  EXPECT_EQ(rows[1].status, kUnfinished);
  EXPECT_NE(rows[1].error.find("lost"), std::string::npos);
  EXPECT_EQ(rows[2].status, "skipped");
}

HtmlReportInput html_input() {
  HtmlReportInput in;
  in.store_path = "trends.h5";
  in.generator = "ipfs-accelerate test";
  for (int i = 0; i < 20; ++i) {
    store::StoredRun run;
    run.run_id = std::string("run") + std::to_string(i);
    run.campaign = std::string("campaign");
    run.started_unix = 1767225600.0 + i;
    in.runs.push_back(run);
    const double level = i < 10 ? 1.0 : 2.0;  // a step in task 0 at run 10
    in.results.push_back(stored(run.run_id, 0, 0, true, "passed", level * (1 + 0.001 * (i % 3))));
    in.results.push_back(
        stored(run.run_id, 1, 0, true, i == 19 ? "failed" : "passed", 3.0 + 0.001 * (i % 2)));
  }
  // A task id that tries to end the data block.
  in.results.push_back(stored("run19", 2, 0, true, "failed"));
  in.results.back().task_id = "x</script><script>alert(1)</script>";
  in.results.back().error = "<!-- \xff";
  in.run_id = "run19";
  // The series the analysis would give: task 0's p50 with its step at run 10, task 1's (19 points).
  std::vector<std::string> ids0, ids1;
  std::vector<double> v0, v1;
  for (const auto& r : in.results) {
    if (r.status != "passed" || r.task_index > 1) continue;
    (r.task_index == 0 ? ids0 : ids1).push_back(r.run_id);
    (r.task_index == 0 ? v0 : v1).push_back(r.latency_p50_s);
  }
  in.trends.push_back(analyse_series("latency_p50 | task0", ids0, v0, TrendOptions{}));
  in.trends.back().task_id = in.results[0].task_id;
  in.trends.push_back(analyse_series("latency_p50 | task1", ids1, v1, TrendOptions{}));
  in.trends.back().task_id = in.results[1].task_id;
  return in;
}

TEST(HtmlReport, EmbedsUplotTheScriptAndDataThatCannotBreakOut) {
  const auto in = html_input();
  const std::string html = render_html_report(in);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("https://github.com/leeoniya/uPlot"), std::string::npos);
  EXPECT_NE(html.find("The MIT License"), std::string::npos);
  EXPECT_NE(html.find("data-ipfsa-ready"), std::string::npos);  // in the page script's comment
  EXPECT_EQ(html.find("http://"), std::string::npos);           // nothing to fetch
  EXPECT_EQ(count(html, "<script"), 3u);
  EXPECT_EQ(count(html, "</script>"), 3u);
  EXPECT_EQ(html.find("<!-- \xff"), std::string::npos);
  const std::string open = "<script type=\"application/json\" id=\"ipfsa-data\">";
  const auto a = html.find(open) + open.size();
  const auto b = html.find("</script>", a);
  const auto data = nlohmann::json::parse(html.substr(a, b - a));
  EXPECT_EQ(data["run"], 19);
  EXPECT_EQ(data["runs"].size(), 20u);
  EXPECT_EQ(data["series"].size(), 2u);
  EXPECT_EQ(data["series"][0]["config"], 0);  // linked to the task it measures
  EXPECT_EQ(data["series"][0]["change_points"][0]["index"], 10);
  EXPECT_EQ(data["configs"][2]["id"], "x</script><script>alert(1)</script>");
  EXPECT_EQ(data["runs"][19]["counts"]["failed"], 2);
  EXPECT_EQ(data["runs"][19]["results"]["status"][1], "failed");
}

TEST(LoadReportInput, NamesAMissingStore) {
  auto missing = load_report_input(::testing::TempDir() + "/no-such-store.h5");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInput);
  EXPECT_NE(missing.error().message.find("no-such-store.h5"), std::string::npos);
}

// `run` writes report.html after end_run, while its own process still has the store open for
// writing (the writer was opened first, as docs/store.md requires).
TEST(LoadReportInput, ReadsAStoreThatThisProcessIsWriting) {
  const std::string path = ::testing::TempDir() + "/exports_test_store.h5";
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".lock");
  auto writer = store::Hdf5Store::open_for_write(path);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  Fixture f;
  for (int i = 0; i < 3; ++i) {
    core::RunInfo run = f.run;
    run.run_id = "run" + std::to_string(i);
    run.started_unix += i;
    ASSERT_TRUE((*writer)->begin_run(run, f.tasks).ok());
    ASSERT_TRUE((*writer)->append(f.finals).ok());
    ASSERT_TRUE((*writer)->end_run(run).ok());
  }
  auto in = load_report_input(path);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->run_id, "run2");
  EXPECT_EQ(in->runs.size(), 3u);
  EXPECT_EQ(in->results.size(), 3 * f.finals.size());
  // Every series belongs to one of the two passed tasks, and each has its latency p50 series.
  std::set<std::string> p50_of;
  for (const auto& t : in->trends) {
    EXPECT_TRUE(t.task_id == f.tasks[0].id || t.task_id == f.tasks[7].id) << t.key;
    if (t.metric == "latency_p50") p50_of.insert(t.task_id);
  }
  EXPECT_EQ(p50_of.size(), 2u);
  in = load_report_input(path, "run1", {}, 1);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->runs.size(), 1u);
  auto unknown = load_report_input(path, "run9");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInput);
  EXPECT_NE(unknown.error().message.find("no run 'run9'"), std::string::npos) << unknown.error().message;
  ASSERT_TRUE((*writer)->close().ok());
  EXPECT_TRUE(load_report_input(path).ok());
}

TEST(WriteTextFile, WritesAtomicallyAndNamesAnUnwritablePath) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/exports_test_out";
  fs::remove_all(dir);
  ASSERT_TRUE(write_text_file(dir + "/sub/a.txt", "hello").ok());
  std::ifstream in(dir + "/sub/a.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "hello");
  ASSERT_TRUE(write_text_file(dir + "/plain", "x").ok());
  const auto bad = write_text_file(dir + "/plain/b.txt", "y");  // a file where a folder should be
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInfra);
  EXPECT_NE(bad.error().message.find("plain/b.txt"), std::string::npos);
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);  // no temporary left behind
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ipfsa::report
