// Result sinks for tests (../shared/STYLE.md §1, after leveldb's fault-injection Env): MemorySink
// keeps runs and result rows in vectors and separates what was flushed (durable) from what was only
// appended, so a test can "crash" it and see what a real store would have kept; FaultySink wraps
// any sink and fails chosen calls with an infrastructure error, optionally after passing part of
// a batch through (a torn write). Header-only, pure: no I/O, no clock.
// Thread-safety: none; like every ResultSink, one caller (the coordinator loop).
// On failure: MemorySink records nothing of the failed call; FaultySink forwards nothing of the
// failed call except the `keep_rows` prefix of a torn append.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/result_sink.hpp"
#include "core/task.hpp"

namespace ipfsa::core {

class MemorySink final : public ResultSink {
 public:
  // Records the run (durable at once, as Hdf5Store flushes in begin_run) and makes it current.
  // Error (kInput): empty run id or one already recorded.
  Result<void> begin_run(const RunInfo& run, std::span<const TaskSpec> tasks) override {
    if (run.run_id.empty()) return input_error("memory sink: begin_run: empty run id");
    if (find_run(run.run_id) != nullptr)
      return input_error("memory sink: begin_run: run id '" + run.run_id + "' already recorded");
    runs_.push_back(run);
    tasks_.assign(tasks.begin(), tasks.end());
    current_ = run.run_id;
    return {};
  }

  // Buffers rows until flush(). Error (kInput, nothing buffered): no current run, or a task index
  // outside the current run's task list.
  Result<void> append(std::span<const TaskResult> results) override {
    ++append_calls_;
    if (current_.empty()) return input_error("memory sink: append: no run in progress");
    for (const auto& r : results)
      if (r.task >= tasks_.size())
        return input_error("memory sink: append: task index " + std::to_string(r.task) + " out of range");
    for (const auto& r : results) pending_.push_back(Row{current_, r});
    return {};
  }

  Result<void> flush() override {
    ++flush_calls_;
    rows_.insert(rows_.end(), pending_.begin(), pending_.end());
    pending_.clear();
    return {};
  }

  // Flushes, then replaces the run's record. Error (kInput): unknown run id (nothing changed).
  Result<void> end_run(const RunInfo& run) override {
    RunInfo* stored = find_run_mut(run.run_id);
    if (stored == nullptr) return input_error("memory sink: end_run: unknown run id '" + run.run_id + "'");
    (void)flush();
    *stored = run;
    if (current_ == run.run_id) current_.clear();
    return {};
  }

  // A result row and the run it was recorded under.
  struct Row {
    std::string run_id;
    TaskResult result;
  };

  // Drops everything appended since the last flush, as a crash of a real store would.
  void crash() { pending_.clear(); }

  const std::vector<RunInfo>& runs() const { return runs_; }
  const std::vector<Row>& rows() const { return rows_; }         // flushed (durable)
  const std::vector<Row>& pending() const { return pending_; }   // appended, not yet flushed
  const std::vector<TaskSpec>& tasks() const { return tasks_; }  // of the current (or last) run
  std::uint64_t append_calls() const { return append_calls_; }
  std::uint64_t flush_calls() const { return flush_calls_; }

  const RunInfo* find_run(const std::string& run_id) const {
    const auto it =
        std::find_if(runs_.begin(), runs_.end(), [&](const RunInfo& r) { return r.run_id == run_id; });
    return it == runs_.end() ? nullptr : &*it;
  }
  // Flushed final rows of `run_id`.
  std::vector<TaskResult> finals(const std::string& run_id) const {
    std::vector<TaskResult> out;
    for (const auto& row : rows_)
      if (row.run_id == run_id && row.result.final) out.push_back(row.result);
    return out;
  }

 private:
  RunInfo* find_run_mut(const std::string& run_id) {
    const auto it =
        std::find_if(runs_.begin(), runs_.end(), [&](const RunInfo& r) { return r.run_id == run_id; });
    return it == runs_.end() ? nullptr : &*it;
  }

  std::vector<RunInfo> runs_;
  std::vector<TaskSpec> tasks_;
  std::string current_;
  std::vector<Row> rows_;
  std::vector<Row> pending_;
  std::uint64_t append_calls_ = 0;
  std::uint64_t flush_calls_ = 0;
};

// Forwards to `inner` (not owned; must outlive this) and fails the chosen calls with kInfra.
// Calls are counted from 1 per operation; a failed call is counted too.
class FaultySink final : public ResultSink {
 public:
  explicit FaultySink(ResultSink& inner) : inner_(inner) {}

  // The `nth` append fails. With keep_rows > 0 its first keep_rows rows are forwarded before it
  // fails (a torn batch: the caller cannot tell how much was taken).
  void fail_append(std::uint64_t nth, std::size_t keep_rows = 0) {
    fail_append_at_ = nth;
    keep_rows_ = keep_rows;
  }
  void fail_flush(std::uint64_t nth) { fail_flush_at_ = nth; }
  void fail_begin_run(std::uint64_t nth) { fail_begin_at_ = nth; }
  void fail_end_run(std::uint64_t nth) { fail_end_at_ = nth; }
  // After the first injected failure every later call fails too (a dead disk), when set.
  void set_sticky(bool sticky) { sticky_ = sticky; }

  Result<void> begin_run(const RunInfo& run, std::span<const TaskSpec> tasks) override {
    if (should_fail(++begin_calls_, fail_begin_at_)) return injected("begin_run", begin_calls_);
    return inner_.begin_run(run, tasks);
  }

  Result<void> append(std::span<const TaskResult> results) override {
    const std::uint64_t call = ++append_calls_;
    if (!should_fail(call, fail_append_at_)) return inner_.append(results);
    if (call == fail_append_at_ && keep_rows_ > 0)
      (void)inner_.append(results.first(std::min(keep_rows_, results.size())));
    return injected("append", call);
  }

  Result<void> flush() override {
    if (should_fail(++flush_calls_, fail_flush_at_)) return injected("flush", flush_calls_);
    return inner_.flush();
  }

  Result<void> end_run(const RunInfo& run) override {
    if (should_fail(++end_calls_, fail_end_at_)) return injected("end_run", end_calls_);
    return inner_.end_run(run);
  }

  std::uint64_t append_calls() const { return append_calls_; }
  std::uint64_t flush_calls() const { return flush_calls_; }
  std::uint64_t failures() const { return failures_; }

 private:
  bool should_fail(std::uint64_t call, std::uint64_t at) {
    if ((at != 0 && call == at) || (sticky_ && broken_)) {
      broken_ = true;
      return true;
    }
    return false;
  }
  Error injected(const char* op, std::uint64_t call) {
    ++failures_;
    return infra_error("injected failure: " + std::string(op) + " call " + std::to_string(call));
  }

  ResultSink& inner_;
  std::uint64_t fail_append_at_ = 0, fail_flush_at_ = 0, fail_begin_at_ = 0, fail_end_at_ = 0;
  std::size_t keep_rows_ = 0;
  bool sticky_ = false;
  bool broken_ = false;  // an injected failure has happened
  std::uint64_t begin_calls_ = 0, append_calls_ = 0, flush_calls_ = 0, end_calls_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace ipfsa::core
