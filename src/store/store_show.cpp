#include "store/store_show.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "core/task.hpp"
#include "store/hdf5_store.hpp"

namespace ipfsa::store {

std::string iso8601_utc(double unix_s) {
  if (!std::isfinite(unix_s) || unix_s <= 0) return "-";
  const auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "-";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// A table printed with columns padded to their widest cell; numeric columns right-aligned.
class TextTable {
 public:
  TextTable(std::vector<std::string> header, std::vector<bool> right_aligned)
      : right_(std::move(right_aligned)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  void print(std::string& out) const {
    std::vector<std::size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_)
      for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t c = 0; c < row.size(); ++c) {
        const std::size_t pad = widths[c] - display_width(row[c]);
        const bool last = c + 1 == row.size();
        if (c > 0) line += "  ";
        if (right_[c])
          line += std::string(pad, ' ') + row[c];
        else
          line += row[c] + (last ? std::string() : std::string(pad, ' '));
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();  // an empty last cell
      out += line + "\n";
    }
  }

 private:
  // Code points, close enough to terminal columns for ids, hosts and messages.
  static std::size_t display_width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0u) != 0x80u;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

// First line of `error`, control characters dropped, at most `max` bytes (cut on a character).
std::string snippet(const std::string& error, std::size_t max = 60) {
  std::string line = error.substr(0, error.find('\n'));
  line.erase(std::remove_if(line.begin(), line.end(),
                            [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }),
             line.end());
  if (line.size() <= max) return line;
  return truncate_utf8(line, max - 3) + "...";
}

std::string fmt_ms(double seconds) {
  return std::isfinite(seconds) ? fmt::format("{:.4g}", seconds * 1e3) : "-";
}
std::string fmt_num(double v) {
  return std::isfinite(v) ? fmt::format("{:.4g}", v) : "-";
}
std::string worker(const StoredResult& r) {
  if (r.worker_rank < 0) return "-";
  return (r.worker_host.empty() ? std::string("?") : r.worker_host) + ":" + std::to_string(r.worker_rank);
}

}  // namespace

Result<void> show_store(const std::string& path, std::string_view run_id, bool all, std::ostream& out) {
  auto reader = Hdf5Reader::open(path);
  if (!reader) return reader.error();
  auto runs = reader->runs();
  if (!runs) return runs.error();

  std::string text;
  text += fmt::format("store {}: {} run{}\n", path, runs->size(), runs->size() == 1 ? "" : "s");
  if (runs->empty()) {
    if (!run_id.empty()) return input_error(path + ": no run '" + std::string(run_id) + "' in the store");
    out << text;
    return {};
  }

  TextTable run_table({"RUN", "CAMPAIGN", "STATUS", "TASKS", "STARTED"}, {false, false, false, true, false});
  for (const auto& r : *runs)
    run_table.add(
        {r.run_id, r.campaign, r.status, std::to_string(r.tasks_total), iso8601_utc(r.started_unix)});
  text += "\n";
  run_table.print(text);

  const StoredRun* chosen = nullptr;
  if (!run_id.empty()) {
    for (const auto& r : *runs)
      if (r.run_id == run_id) chosen = &r;
    if (chosen == nullptr) return input_error(path + ": no run '" + std::string(run_id) + "' in the store");
  } else {
    chosen = &*std::max_element(runs->begin(), runs->end(), [](const StoredRun& a, const StoredRun& b) {
      return a.started_unix < b.started_unix || (a.started_unix == b.started_unix && a.row < b.row);
    });
  }

  auto results = reader->results(chosen->run_id, false);
  if (!results) return results.error();

  std::map<std::uint32_t, std::uint32_t> attempts;  // task index -> attempt rows
  for (const auto& r : *results) ++attempts[r.task_index];

  text += fmt::format("\nrun {} ({}, {}): {}\n", chosen->run_id, chosen->campaign, chosen->status,
                      all ? "all attempts" : "final results");
  std::array<std::uint32_t, core::kTaskStatusCount> counts{};
  std::map<std::string, std::uint32_t> other_counts;  // statuses this build does not know
  std::set<std::uint32_t> finished;
  std::uint32_t flaky = 0, duplicate_finals = 0;
  if (all) {
    TextTable t({"TASK", "ATTEMPT", "FINAL", "STATUS", "WORKER", "P50 MS", "THROUGHPUT", "ERROR"},
                {false, true, false, false, false, true, true, false});
    for (const auto& r : *results)
      t.add({r.task_id, std::to_string(r.attempt), r.final ? "yes" : "", r.status, worker(r),
             fmt_ms(r.latency_p50_s), fmt_num(r.throughput), snippet(r.error)});
    t.print(text);
  } else {
    TextTable t({"TASK", "STATUS", "WORKER", "ATTEMPTS", "P50 MS", "THROUGHPUT", "ERROR"},
                {false, false, false, true, true, true, false});
    for (const auto& r : *results)
      if (r.final)
        t.add({r.task_id, r.status, worker(r), std::to_string(attempts[r.task_index]),
               fmt_ms(r.latency_p50_s), fmt_num(r.throughput), snippet(r.error)});
    t.print(text);
  }
  for (const auto& r : *results) {
    if (!r.final) continue;
    if (!finished.insert(r.task_index).second) ++duplicate_finals;
    if (r.flaky) ++flaky;
    if (auto s = core::parse_task_status(r.status))
      ++counts[static_cast<int>(*s)];
    else
      ++other_counts[r.status];
  }

  std::string summary;
  for (int s = 0; s < core::kTaskStatusCount; ++s)
    if (counts[s] > 0)
      summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", counts[s],
                             core::to_string(static_cast<core::TaskStatus>(s)));
  for (const auto& [status, n] : other_counts)
    summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, status);
  text += fmt::format("\n{} task{}: {}", chosen->tasks_total, chosen->tasks_total == 1 ? "" : "s",
                      summary.empty() ? "no final results" : summary);
  text += fmt::format("; {} flaky", flaky);
  if (finished.size() < chosen->tasks_total)
    text += fmt::format("; {} without a final result", chosen->tasks_total - finished.size());
  if (duplicate_finals > 0) text += fmt::format("; {} duplicate final rows", duplicate_finals);
  text += "\n";
  out << text;
  return {};
}

}  // namespace ipfsa::store
