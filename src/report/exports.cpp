#include "report/exports.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "core/stats.hpp"

namespace ipfsa::report {

namespace {

// ---- text helpers ----

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i, or returns
// 0xFFFFFFFF (and advances one byte) for an invalid, overlong or truncated sequence.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = 0;
  char32_t cp = 0, min = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return 0xFFFFFFFF;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFFFFFF;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFFFFFF;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFFFFFF;
  }
  i += len;
  return cp;
}

// Characters XML 1.0 allows (§2.2 Char).
bool xml_char(char32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
         (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

std::string xml_escape(std::string_view s, bool attribute) {
  return markup_escape(s, attribute);
}

}  // namespace

std::string markup_escape(std::string_view s, bool attribute) {
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size();) {
    const char32_t cp = next_code_point(s, i);
    if (cp == 0xFFFFFFFF || !xml_char(cp)) {
      out += kReplacement;
      continue;
    }
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += attribute ? "&quot;" : "\"";
        break;
      case '\'':
        out += attribute ? "&apos;" : "'";
        break;
      case '\n':
        out += attribute ? "&#10;" : "\n";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\t':
        out += attribute ? "&#9;" : "\t";
        break;
      default:
        append_utf8(out, cp);
    }
  }
  return out;
}

namespace {

std::string attr(std::string_view s) {
  return xml_escape(s, true);
}

// Shortest decimal that reads back as the same double ("" for NaN and infinities).
std::string num(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string();
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string sig(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string signed_pct(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%+.1f%%", v);
  return buf;
}

// ISO 8601 UTC without a zone designator ("2026-01-02T03:04:05"), the form junit-10.xsd allows.
std::string iso_utc(double unix_s) {
  if (!(unix_s > 0)) return "";
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

double duration_s(double started, double ended) {
  return ended > started && started > 0 ? ended - started : 0.0;
}

std::string first_line(std::string_view s, std::size_t max_bytes) {
  auto end = s.find_first_of("\r\n");
  std::string out(s.substr(0, end));
  if (out.size() > max_bytes) out = store::truncate_utf8(out, max_bytes) + "…";
  return out;
}

// The measurements of a row as (name, value) pairs; NaN ones left out.
std::vector<std::pair<std::string, std::string>> measurements(const ResultRow& r) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& name, double v) {
    if (std::isfinite(v)) out.emplace_back(name, num(v));
  };
  add("latency_mean_s", r.latency_mean_s);
  add("latency_p50_s", r.latency_p50_s);
  add("latency_p90_s", r.latency_p90_s);
  add("latency_p99_s", r.latency_p99_s);
  add("latency_min_s", r.latency_min_s);
  add("latency_max_s", r.latency_max_s);
  add("latency_stddev_s", r.latency_stddev_s);
  if (r.sample_count > 0) out.emplace_back("samples", std::to_string(r.sample_count));
  add("throughput", r.throughput);
  if (r.peak_memory_bytes > 0) out.emplace_back("peak_memory_bytes", std::to_string(r.peak_memory_bytes));
  add("acc_cosine", r.acc_cosine);
  add("acc_rel_error", r.acc_rel_error);
  add("acc_kl", r.acc_kl);
  add("acc_top1", r.acc_top1);
  for (const auto& [name, v] : r.metrics) add("metric." + name, v);
  return out;
}

ResultRow row_from_stored(const store::StoredResult& s) {
  ResultRow r;
  r.task_index = s.task_index;
  r.task_id = s.task_id;
  r.kind = s.kind;
  r.model = s.model;
  r.hardware = s.hardware;
  r.precision = s.precision;
  r.batch = s.batch;
  r.seq_len = s.seq_len;
  r.scenario = s.scenario;
  r.priority = s.priority;
  r.status = s.status;
  r.attempts = s.attempt + 1;
  r.flaky = s.flaky;
  r.worker_rank = s.worker_rank;
  r.worker_host = s.worker_host;
  r.signal = s.signal;
  r.started_unix = s.started_unix;
  r.ended_unix = s.ended_unix;
  r.sample_count = s.sample_count;
  r.latency_mean_s = s.latency_mean_s;
  r.latency_p50_s = s.latency_p50_s;
  r.latency_p90_s = s.latency_p90_s;
  r.latency_p99_s = s.latency_p99_s;
  r.latency_min_s = s.latency_min_s;
  r.latency_max_s = s.latency_max_s;
  r.latency_stddev_s = s.latency_stddev_s;
  r.throughput = s.throughput;
  r.peak_memory_bytes = s.peak_memory_bytes;
  r.acc_cosine = s.acc_cosine;
  r.acc_rel_error = s.acc_rel_error;
  r.acc_kl = s.acc_kl;
  r.acc_top1 = s.acc_top1;
  r.metrics = s.metrics;
  r.error = s.error;
  return r;
}

std::string csv_field(std::string_view s) {
  const bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

nlohmann::json jnum(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string md_cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '|':
        out += "\\|";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string md_code(std::string_view s) {
  std::string body = md_cell(s);
  std::replace(body.begin(), body.end(), '`', '\'');
  return "`" + body + "`";
}

std::string run_verdict(const StatusCounts& c) {
  const std::uint32_t bad = c.failed + c.crashed + c.timeout + c.oom + c.other;
  return bad > 0 || c.regressions > 0 ? "failed" : "passed";
}

// "2 failed, 1 crashed, 1 regression" or "all 8 tasks passed".
std::string problems_phrase(const StatusCounts& c) {
  std::string out;
  auto add = [&](std::uint32_t n, std::string_view what) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += std::to_string(n) + " " + std::string(what);
  };
  add(c.failed, "failed");
  add(c.crashed, "crashed");
  add(c.timeout, "timed out");
  add(c.oom, "out of memory");
  add(c.other, "without a verdict");
  add(c.regressions, c.regressions == 1 ? "regression" : "regressions");
  if (out.empty()) {
    out = c.skipped > 0 ? std::to_string(c.passed) + " passed, " + std::to_string(c.skipped) + " skipped"
                        : "all " + std::to_string(c.passed) + " tasks passed";
  }
  return out;
}

std::string regression_message(const SeriesTrend& t) {
  std::string msg = t.key + ": newest value " + sig(t.values.empty() ? core::kNaN : t.values.back(), 6) +
                    " is " + signed_pct(t.newest_effect_pct) + " against its baseline (robust z " +
                    sig(t.newest_z, 3) + ")";
  if (!t.runs.empty()) msg += " in run " + t.runs.back();
  return msg;
}

// One nested <testsuite> holding one <testcase> for a series (indented inside a <testsuite>): its
// figures as the suite's properties (the Jenkins schema allows no properties on a testcase) and,
// for a regression, a <failure> with the newest points and the change points.
std::string series_suite(const SeriesTrend& t, std::string_view classname) {
  const bool failed = t.verdict == "regression";
  std::string x = "    <testsuite name=\"" + attr(t.key) + "\" tests=\"1\" failures=\"" +
                  (failed ? "1" : "0") + "\" errors=\"0\" skipped=\"0\" time=\"0\">\n      <properties>\n";
  auto prop = [&](std::string_view name, const std::string& value) {
    x += "        <property name=\"" + attr(name) + "\" value=\"" + attr(value) + "\"/>\n";
  };
  prop("verdict", t.verdict);
  if (!t.values.empty()) prop("newest_value", num(t.values.back()));
  prop("newest_effect_pct", num(t.newest_effect_pct));
  prop("newest_z", num(t.newest_z));
  if (!t.verdict_test.empty()) {
    prop("verdict_test", t.verdict_test);
    prop("verdict_p_value", num(t.verdict_p_value));
  }
  prop("points", std::to_string(t.values.size()));
  prop("change_points", std::to_string(t.change_points.size()));
  x += "      </properties>\n      <testcase classname=\"" + attr(classname) + "\" name=\"" + attr(t.key) +
       "\" time=\"0\"";
  if (!failed) return x + "/>\n    </testsuite>\n";
  std::string detail = "run\tvalue\n";
  const std::size_t from = t.values.size() > 10 ? t.values.size() - 10 : 0;
  for (std::size_t i = from; i < t.values.size(); ++i)
    detail += (i < t.runs.size() ? t.runs[i] : std::to_string(i)) + "\t" + num(t.values[i]) + "\n";
  for (const auto& cp : t.change_points)
    detail += "change point before point " + std::to_string(cp.index) + ": " + signed_pct(cp.magnitude_pct) +
              " (p=" + sig(cp.p_value, 3) + ")\n";
  return x + ">\n        <failure type=\"regression\" message=\"" + attr(regression_message(t)) + "\">" +
         xml_escape(detail, false) + "</failure>\n      </testcase>\n    </testsuite>\n";
}

}  // namespace

bool is_failure(std::string_view status) {
  return status == "failed" || status == "crashed" || status == "timeout" || status == "oom" ||
         status == "lost" || status == kUnfinished;
}

std::vector<ResultRow> rows_from_results(std::span<const core::TaskSpec> tasks,
                                         std::span<const core::TaskResult> finals) {
  std::vector<const core::TaskResult*> by_task(tasks.size(), nullptr);
  for (const auto& r : finals)
    if (r.task < tasks.size()) by_task[r.task] = &r;
  std::vector<ResultRow> rows;
  rows.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto& t = tasks[i];
    ResultRow row;
    row.task_index = t.index;
    row.task_id = t.id;
    row.kind = t.kind;
    row.model = t.model;
    row.hardware = t.hardware;
    row.precision = t.precision;
    row.batch = t.batch;
    row.seq_len = t.seq_len;
    row.scenario = t.scenario;
    row.priority = std::string(core::to_string(t.priority));
    const core::TaskResult* r = by_task[i];
    if (r == nullptr) {
      row.status = std::string(kUnfinished);
      row.error = "no final result recorded (the run ended before this task finished)";
      rows.push_back(std::move(row));
      continue;
    }
    const auto& o = r->outcome;
    row.status = std::string(core::to_string(o.status));
    row.attempts = r->attempt + 1;
    row.flaky = r->flaky;
    row.worker_rank = r->worker;
    row.worker_host = r->host;
    row.signal = o.signal;
    row.started_unix = r->started_unix;
    row.ended_unix = r->ended_unix;
    core::copy_latency_summary(core::summarize(o.samples_s), row);  // NaN and 0 without samples
    row.throughput = o.throughput;
    row.peak_memory_bytes = o.peak_memory_bytes;
    row.acc_cosine = o.acc_cosine;
    row.acc_rel_error = o.acc_rel_error;
    row.acc_kl = o.acc_kl;
    row.acc_top1 = o.acc_top1;
    row.metrics = o.metrics;
    row.error = o.error;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<ResultRow> rows_from_store(std::span<const store::StoredResult> results) {
  // task index -> (final row, last attempt row)
  std::map<std::uint32_t, std::pair<const store::StoredResult*, const store::StoredResult*>> by_task;
  for (const auto& r : results) {
    auto& [fin, last] = by_task[r.task_index];
    if (r.final) fin = &r;
    if (last == nullptr || r.attempt >= last->attempt) last = &r;
  }
  std::vector<ResultRow> rows;
  rows.reserve(by_task.size());
  for (const auto& [index, pair] : by_task) {
    const auto& [fin, last] = pair;
    if (fin != nullptr) {
      rows.push_back(row_from_stored(*fin));
      continue;
    }
    ResultRow row = row_from_stored(*last);
    row.status = std::string(kUnfinished);
    row.error = "no final result recorded (last attempt " + std::to_string(last->attempt) + ": " +
                last->status + (last->error.empty() ? "" : ": " + last->error) + ")";
    rows.push_back(std::move(row));
  }
  return rows;
}

StatusCounts count_statuses(std::span<const ResultRow> rows, std::span<const SeriesTrend> trends,
                            std::string_view run_id) {
  StatusCounts c;
  for (const auto& r : rows) {
    ++c.tasks;
    if (r.flaky) ++c.flaky;
    if (r.status == "passed")
      ++c.passed;
    else if (r.status == "failed")
      ++c.failed;
    else if (r.status == "crashed")
      ++c.crashed;
    else if (r.status == "timeout")
      ++c.timeout;
    else if (r.status == "oom")
      ++c.oom;
    else if (r.status == "skipped")
      ++c.skipped;
    else
      ++c.other;
  }
  c.regressions = static_cast<std::uint32_t>(regressions(trends, run_id).size());
  return c;
}

std::vector<const SeriesTrend*> regressions(std::span<const SeriesTrend> trends, std::string_view run_id) {
  std::vector<const SeriesTrend*> out;
  for (const auto& t : trends)
    if (t.verdict == "regression" && (t.runs.empty() || t.runs.back() == run_id)) out.push_back(&t);
  std::stable_sort(out.begin(), out.end(), [](const SeriesTrend* a, const SeriesTrend* b) {
    return std::abs(a->newest_effect_pct) > std::abs(b->newest_effect_pct);
  });
  return out;
}

std::string junit_xml(const core::RunInfo& run, std::span<const ResultRow> rows,
                      std::span<const SeriesTrend> trends) {
  const auto c = count_statuses(rows, trends, run.run_id);
  const auto regs = regressions(trends, run.run_id);
  const std::uint32_t tests = c.tasks + c.regressions;
  const std::uint32_t failures = c.failed + c.crashed + c.timeout + c.oom + c.regressions;
  const std::uint32_t errors = c.other;
  const std::string time = fixed(duration_s(run.started_unix, run.ended_unix), 3);
  const std::string suite_name =
      (run.campaign.empty() ? std::string("run") : run.campaign) + " " + run.run_id;
  const std::string host = run.hosts.substr(0, run.hosts.find(','));
  const std::string timestamp = iso_utc(run.started_unix);

  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites name=\"ipfs-accelerate\" tests=\"" + std::to_string(tests) + "\" failures=\"" +
       std::to_string(failures) + "\" errors=\"" + std::to_string(errors) + "\" time=\"" + time + "\">\n";
  x += "  <testsuite name=\"" + attr(suite_name) + "\" id=\"" + attr(run.run_id) + "\" package=\"" +
       attr(run.campaign) + "\" tests=\"" + std::to_string(tests) + "\" failures=\"" +
       std::to_string(failures) + "\" errors=\"" + std::to_string(errors) + "\" skipped=\"" +
       std::to_string(c.skipped) + "\" time=\"" + time + "\"";
  if (!timestamp.empty()) x += " timestamp=\"" + timestamp + "\"";
  if (!host.empty()) x += " hostname=\"" + attr(host) + "\"";
  x += ">\n    <properties>\n";
  auto suite_prop = [&](std::string_view name, const std::string& value) {
    x += "      <property name=\"" + attr(name) + "\" value=\"" + attr(value) + "\"/>\n";
  };
  suite_prop("run_id", run.run_id);
  suite_prop("campaign", run.campaign);
  suite_prop("campaign_source", run.campaign_source);
  suite_prop("status", run.status);
  suite_prop("version", run.version);
  suite_prop("git_commit", run.git_commit);
  suite_prop("hosts", run.hosts);
  suite_prop("ranks", std::to_string(run.ranks));
  suite_prop("workers", std::to_string(run.workers));
  suite_prop("tasks_total", std::to_string(run.tasks_total));
  suite_prop("tasks_flaky", std::to_string(c.flaky));
  suite_prop("regressions", std::to_string(c.regressions));
  x += "    </properties>\n";

  // One nested <testsuite> per task: its measurements as the suite's properties (the Jenkins
  // schema allows no properties on a testcase; Jenkins and GitLab read nested suites), then the
  // testcase.
  for (const auto& r : rows) {
    const std::string classname = r.kind + "/" + (r.model.empty() ? r.kind : r.model);
    const bool skipped = r.status == "skipped";
    const bool error = !skipped && r.status != "passed" &&
                       (r.status == "lost" || r.status == kUnfinished || !is_failure(r.status));
    const bool failure = !skipped && r.status != "passed" && !error;
    const std::string case_time = fixed(duration_s(r.started_unix, r.ended_unix), 6);
    x += "    <testsuite name=\"" + attr(r.task_id) + "\" tests=\"1\" failures=\"" + (failure ? "1" : "0") +
         "\" errors=\"" + (error ? "1" : "0") + "\" skipped=\"" + (skipped ? "1" : "0") + "\" time=\"" +
         case_time + "\">\n      <properties>\n";
    auto prop = [&](std::string_view name, const std::string& value) {
      x += "        <property name=\"" + attr(name) + "\" value=\"" + attr(value) + "\"/>\n";
    };
    prop("status", r.status);
    prop("attempts", std::to_string(r.attempts));
    prop("flaky", r.flaky ? "1" : "0");
    if (r.worker_rank >= 0) prop("worker", r.worker_host + ":" + std::to_string(r.worker_rank));
    for (const auto& [name, value] : measurements(r)) prop(name, value);
    x += "      </properties>\n      <testcase classname=\"" + attr(classname) + "\" name=\"" +
         attr(r.task_id) + "\" time=\"" + case_time + "\"";
    const std::string headline = r.status + (r.error.empty() ? "" : ": " + first_line(r.error, 300));
    if (skipped) {
      x += ">\n        <skipped message=\"" + attr(headline) + "\"/>\n      </testcase>\n";
    } else if (error || failure) {
      std::string detail = r.error;
      if (r.signal != 0) detail += "\nsignal: " + std::to_string(r.signal);
      detail += "\nattempts: " + std::to_string(r.attempts);
      if (r.worker_rank >= 0) detail += "\nworker: " + r.worker_host + ":" + std::to_string(r.worker_rank);
      const char* tag = error ? "error" : "failure";
      x += ">\n        <" + std::string(tag) + " type=\"" + attr(r.status) + "\" message=\"" +
           attr(headline) + "\">" + xml_escape(detail, false) + "</" + tag + ">\n      </testcase>\n";
    } else {
      x += "/>\n";
    }
    x += "    </testsuite>\n";
  }

  for (const SeriesTrend* t : regs) x += series_suite(*t, "regression");
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

std::string markdown_summary(const core::RunInfo& run, std::span<const ResultRow> rows,
                             std::span<const SeriesTrend> trends, std::size_t max_rows) {
  const auto c = count_statuses(rows, trends, run.run_id);
  const bool ok = run_verdict(c) == "passed";
  std::string md = std::string("## ") + (ok ? "✅" : "❌") + " ipfs-accelerate run " + md_code(run.run_id) +
                   ": " + md_cell(problems_phrase(c)) + "\n\n";
  md += "Campaign " + md_code(run.campaign) + " · status " + md_code(run.status);
  if (run.started_unix > 0) md += " · started " + iso_utc(run.started_unix) + " UTC";
  const double wall = duration_s(run.started_unix, run.ended_unix);
  if (wall > 0) md += " · " + fixed(wall, 1) + " s";
  if (!run.version.empty()) md += " · ipfs-accelerate " + md_cell(run.version);
  if (!run.git_commit.empty()) md += " (" + md_code(run.git_commit) + ")";
  md += "\n\n";

  md += "| tasks | passed | failed | crashed | timeout | oom | skipped | other | flaky | regressions |\n";
  md += "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  md += "| " + std::to_string(c.tasks) + " | " + std::to_string(c.passed) + " | " + std::to_string(c.failed) +
        " | " + std::to_string(c.crashed) + " | " + std::to_string(c.timeout) + " | " +
        std::to_string(c.oom) + " | " + std::to_string(c.skipped) + " | " + std::to_string(c.other) + " | " +
        std::to_string(c.flaky) + " | " + std::to_string(c.regressions) + " |\n\n";
  if (run.tasks_total > c.tasks)
    md += "⚠️ " + std::to_string(run.tasks_total - c.tasks) + " of the campaign's " +
          std::to_string(run.tasks_total) + " tasks have no recorded result.\n\n";

  const auto regs = regressions(trends, run.run_id);
  md += "### Regressions (" + std::to_string(regs.size()) + ")\n\n";
  if (regs.empty()) {
    md += "No series regressed.\n\n";
  } else {
    md += "| series | newest | effect | robust z | run |\n|---|--:|--:|--:|---|\n";
    for (std::size_t i = 0; i < regs.size() && i < max_rows; ++i) {
      const auto& t = *regs[i];
      md += "| " + md_code(t.key) + " | " + sig(t.values.empty() ? core::kNaN : t.values.back()) + " | " +
            signed_pct(t.newest_effect_pct) + " | " + sig(t.newest_z, 3) + " | " +
            md_cell(t.runs.empty() ? "" : t.runs.back()) + " |\n";
    }
    if (regs.size() > max_rows) md += "\n… and " + std::to_string(regs.size() - max_rows) + " more.\n";
    md += "\n";
  }

  std::vector<const ResultRow*> bad;
  for (const auto& r : rows)
    if (r.status != "passed" && r.status != "skipped") bad.push_back(&r);
  md += "### Tasks that did not pass (" + std::to_string(bad.size()) + ")\n\n";
  if (bad.empty()) {
    md += "None.\n";
  } else {
    md += "| task | status | attempts | error |\n|---|---|--:|---|\n";
    for (std::size_t i = 0; i < bad.size() && i < max_rows; ++i) {
      const auto& r = *bad[i];
      md += "| " + md_code(r.task_id) + " | " + md_cell(r.status) + " | " + std::to_string(r.attempts) +
            " | " + md_cell(first_line(r.error, 200)) + " |\n";
    }
    if (bad.size() > max_rows) md += "\n… and " + std::to_string(bad.size() - max_rows) + " more.\n";
  }
  return md;
}

std::string results_csv(const core::RunInfo& run, std::span<const ResultRow> rows) {
  std::set<std::string> metric_names;
  for (const auto& r : rows)
    for (const auto& [name, v] : r.metrics) metric_names.insert(name);
  std::string out =
      "run_id,task_index,task_id,kind,model,hardware,precision,batch,seq_len,scenario,priority,status,"
      "attempts,"
      "flaky,worker_rank,worker_host,started_unix,ended_unix,latency_mean_s,latency_p50_s,latency_p90_s,"
      "latency_p99_s,latency_min_s,latency_max_s,latency_stddev_s,samples,throughput,peak_memory_bytes,"
      "acc_cosine,acc_rel_error,acc_kl,acc_top1,signal,error";
  for (const auto& name : metric_names) {
    out += ',';
    out += csv_field("metric." + name);
  }
  out += "\n";
  const std::string run_id = csv_field(run.run_id);
  for (const auto& r : rows) {
    std::string line = run_id;
    auto f = [&](const std::string& v) {
      line += ',';
      line += v;
    };
    f(std::to_string(r.task_index));
    f(csv_field(r.task_id));
    f(csv_field(r.kind));
    f(csv_field(r.model));
    f(csv_field(r.hardware));
    f(csv_field(r.precision));
    f(std::to_string(r.batch));
    f(std::to_string(r.seq_len));
    f(csv_field(r.scenario));
    f(csv_field(r.priority));
    f(csv_field(r.status));
    f(std::to_string(r.attempts));
    f(r.flaky ? "1" : "0");
    f(std::to_string(r.worker_rank));
    f(csv_field(r.worker_host));
    f(num(r.started_unix));
    f(num(r.ended_unix));
    f(num(r.latency_mean_s));
    f(num(r.latency_p50_s));
    f(num(r.latency_p90_s));
    f(num(r.latency_p99_s));
    f(num(r.latency_min_s));
    f(num(r.latency_max_s));
    f(num(r.latency_stddev_s));
    f(std::to_string(r.sample_count));
    f(num(r.throughput));
    f(std::to_string(r.peak_memory_bytes));
    f(num(r.acc_cosine));
    f(num(r.acc_rel_error));
    f(num(r.acc_kl));
    f(num(r.acc_top1));
    f(std::to_string(r.signal));
    f(csv_field(r.error));
    for (const auto& name : metric_names) {
      double v = core::kNaN;
      for (const auto& [n, value] : r.metrics)
        if (n == name) v = value;
      f(num(v));
    }
    out += line + "\n";
  }
  return out;
}

std::string results_json(const core::RunInfo& run, std::span<const ResultRow> rows,
                         std::span<const SeriesTrend> trends) {
  const auto c = count_statuses(rows, trends, run.run_id);
  nlohmann::json j;
  j["format"] = "ipfs-accelerate run results";
  j["format_version"] = 1;
  j["run"] = {{"run_id", run.run_id},
              {"campaign", run.campaign},
              {"campaign_source", run.campaign_source},
              {"version", run.version},
              {"git_commit", run.git_commit},
              {"hosts", run.hosts},
              {"status", run.status},
              {"started_unix", run.started_unix},
              {"ended_unix", run.ended_unix},
              {"ranks", run.ranks},
              {"coordinators", run.coordinators},
              {"workers", run.workers},
              {"tasks_total", run.tasks_total}};
  j["verdict"] = run_verdict(c);
  j["counts"] = {{"tasks", c.tasks},     {"passed", c.passed},
                 {"failed", c.failed},   {"crashed", c.crashed},
                 {"timeout", c.timeout}, {"oom", c.oom},
                 {"skipped", c.skipped}, {"other", c.other},
                 {"flaky", c.flaky},     {"regressions", c.regressions}};
  auto& results = j["results"] = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [name, v] : r.metrics) m[name] = jnum(v);
    nlohmann::json entry = task_config_json(r);
    entry.update({{"task_index", r.task_index},
                  {"task_id", r.task_id},
                  {"status", r.status},
                  {"attempts", r.attempts},
                  {"flaky", r.flaky},
                  {"worker_rank", r.worker_rank},
                  {"worker_host", r.worker_host},
                  {"signal", r.signal},
                  {"started_unix", r.started_unix},
                  {"ended_unix", r.ended_unix},
                  {"samples", r.sample_count},
                  {"latency_mean_s", jnum(r.latency_mean_s)},
                  {"latency_p50_s", jnum(r.latency_p50_s)},
                  {"latency_p90_s", jnum(r.latency_p90_s)},
                  {"latency_p99_s", jnum(r.latency_p99_s)},
                  {"latency_min_s", jnum(r.latency_min_s)},
                  {"latency_max_s", jnum(r.latency_max_s)},
                  {"latency_stddev_s", jnum(r.latency_stddev_s)},
                  {"throughput", jnum(r.throughput)},
                  {"peak_memory_bytes", r.peak_memory_bytes},
                  {"acc_cosine", jnum(r.acc_cosine)},
                  {"acc_rel_error", jnum(r.acc_rel_error)},
                  {"acc_kl", jnum(r.acc_kl)},
                  {"acc_top1", jnum(r.acc_top1)},
                  {"metrics", m},
                  {"error", r.error}});
    results.push_back(std::move(entry));
  }
  auto& regs = j["regressions"] = nlohmann::json::array();
  for (const SeriesTrend* t : regressions(trends, run.run_id)) regs.push_back(t->key);
  j["series"] = trends_series_json(trends);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json task_config_json(const ResultRow& r) {
  return {{"kind", r.kind},   {"model", r.model},     {"hardware", r.hardware}, {"precision", r.precision},
          {"batch", r.batch}, {"seq_len", r.seq_len}, {"scenario", r.scenario}, {"priority", r.priority}};
}

Result<void> write_text_file(const std::string& path, std::string_view text) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) return infra_error(path + ": cannot create the folder: " + ec.message());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return infra_error(path + ": cannot write: " + std::generic_category().message(errno));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) {
      const std::string why = std::generic_category().message(errno);
      out.close();
      fs::remove(tmp, ec);
      return infra_error(path + ": cannot write: " + why);
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return infra_error(path + ": cannot write: " + ec.message());
  }
  return {};
}

std::string trends_junit(std::string_view source, std::string_view judged_run,
                         std::span<const SeriesTrend> trends) {
  std::vector<const SeriesTrend*> judged;
  std::size_t failures = 0;
  for (const auto& t : trends) {
    if (!judged_run.empty() && !t.newest_run.empty() && t.newest_run != judged_run) continue;
    judged.push_back(&t);
    if (t.verdict == "regression") ++failures;
  }
  const std::string n = std::to_string(judged.size()), f = std::to_string(failures);
  const std::string name = "trends " + std::string(judged_run.empty() ? source : judged_run);
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites name=\"ipfs-accelerate trends\" tests=\"" + n + "\" failures=\"" + f +
       "\" errors=\"0\" time=\"0\">\n";
  x += "  <testsuite name=\"" + attr(name) + "\" tests=\"" + n + "\" failures=\"" + f +
       "\" errors=\"0\" skipped=\"0\" time=\"0\">\n    <properties>\n";
  x += "      <property name=\"source\" value=\"" + attr(source) + "\"/>\n";
  x += "      <property name=\"judged_run\" value=\"" + attr(judged_run) + "\"/>\n    </properties>\n";
  for (const SeriesTrend* t : judged)
    x += series_suite(*t, t->metric.empty() ? std::string("trends") : "trends." + t->metric);
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

std::string trends_markdown(std::string_view source, std::string_view judged_run,
                            std::span<const SeriesTrend> trends, std::size_t max_rows) {
  std::vector<const SeriesTrend*> reg, imp, moved;
  for (const auto& t : trends) {
    if (!judged_run.empty() && !t.newest_run.empty() && t.newest_run != judged_run) continue;
    if (t.verdict == "regression") reg.push_back(&t);
    if (t.verdict == "improvement") imp.push_back(&t);
    if (!t.change_points.empty() && t.change_points.back().index + 1 == t.values.size()) moved.push_back(&t);
  }
  std::string md = std::string("## ") + (reg.empty() ? "✅" : "❌") + " Trends of " + md_code(source);
  if (!judged_run.empty()) md += ", run " + md_code(judged_run);
  md += ": " + std::to_string(reg.size()) + " regression" + (reg.size() == 1 ? "" : "s") + ", " +
        std::to_string(imp.size()) + " improvement" + (imp.size() == 1 ? "" : "s") + "\n\n";
  auto table = [&](const char* title, const std::vector<const SeriesTrend*>& list) {
    md += "### " + std::string(title) + " (" + std::to_string(list.size()) + ")\n\n";
    if (list.empty()) {
      md += "None.\n\n";
      return;
    }
    md += "| series | newest | effect | test | p |\n|---|--:|--:|---|--:|\n";
    for (std::size_t i = 0; i < list.size() && i < max_rows; ++i) {
      const auto& t = *list[i];
      md += "| " + md_code(t.key) + " | " + sig(t.values.empty() ? core::kNaN : t.values.back()) + " | " +
            signed_pct(t.newest_effect_pct) + " | " +
            md_cell(t.verdict_test.empty() ? "robust z" : t.verdict_test) + " | " +
            (t.verdict_test.empty() ? sig(t.newest_z, 3) : sig(t.verdict_p_value, 3)) + " |\n";
    }
    if (list.size() > max_rows) md += "\n… and " + std::to_string(list.size() - max_rows) + " more.\n";
    md += "\n";
  };
  table("Regressions", reg);
  table("Improvements", imp);
  md += "### Change points at the newest run (" + std::to_string(moved.size()) + ")\n\n";
  if (moved.empty()) md += "None.\n";
  for (std::size_t i = 0; i < moved.size() && i < max_rows; ++i) {
    const auto& cp = moved[i]->change_points.back();
    md += "- " + md_code(moved[i]->key) + ": " + signed_pct(cp.magnitude_pct) + " (p=" + sig(cp.p_value, 3) +
          ")\n";
  }
  return md;
}

}  // namespace ipfsa::report
