#include "report/run_outputs.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/stats.hpp"

namespace ipfsa::report {

namespace {

using core::TaskStatus;

std::uint32_t final_count(const core::SchedulerCounts& c, TaskStatus s) {
  return c.by_status[static_cast<int>(s)];
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_num(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

int exit_code_for(const core::SchedulerCounts& c, const std::string& infra_error) {
  if (!infra_error.empty()) return static_cast<int>(ErrorCode::kInfra);
  const std::uint32_t bad = final_count(c, TaskStatus::kFailed) + final_count(c, TaskStatus::kCrashed) +
                            final_count(c, TaskStatus::kTimeout) + final_count(c, TaskStatus::kOom);
  return bad > 0 ? static_cast<int>(ErrorCode::kTaskFailed) : 0;
}

Result<void> write_summary_json(const std::string& path, const RunSummary& s) {
  const auto& c = s.counts;
  nlohmann::json j;
  j["run_id"] = s.run.run_id;
  j["campaign"] = s.run.campaign;
  j["campaign_source"] = s.run.campaign_source;
  j["version"] = s.run.version;
  j["git_commit"] = s.run.git_commit;
  j["store"] = s.store_path;
  j["out_dir"] = s.out_dir;
  j["status"] = s.run.status;
  j["exit_code"] = s.exit_code;
  j["tasks_total"] = c.total;
  j["tasks_passed"] = final_count(c, TaskStatus::kPassed);
  j["tasks_failed"] = final_count(c, TaskStatus::kFailed);
  j["tasks_crashed"] = final_count(c, TaskStatus::kCrashed);
  j["tasks_timeout"] = final_count(c, TaskStatus::kTimeout);
  j["tasks_oom"] = final_count(c, TaskStatus::kOom);
  j["tasks_skipped"] = final_count(c, TaskStatus::kSkipped);
  j["tasks_unfinished"] = c.total - c.finished;
  j["tasks_retried"] = c.retried;
  j["tasks_flaky"] = c.flaky;
  j["attempts_lost"] = c.lost_attempts;
  j["results_written"] = s.results_written;
  j["messages_rejected"] = s.messages_rejected;
  j["duplicate_results_ignored"] = c.ignored_events;
  j["ranks"] = s.run.ranks;
  j["coordinators"] = s.run.coordinators;
  j["workers"] = c.workers_joined;
  j["workers_lost"] = c.workers_lost;
  j["leader"] = s.leader;
  j["leader_changes"] = s.leader_changes;
  double failover_max = 0;
  for (double f : s.failover_ms) failover_max = std::max(failover_max, f);
  j["failover_ms_max"] = failover_max;
  j["failover_ms"] = s.failover_ms;
  j["prefetch"] = s.prefetch;
  j["started_unix"] = s.run.started_unix;
  j["ended_unix"] = s.run.ended_unix;
  j["wall_s"] = s.wall_s;
  j["dispatch_s"] = s.dispatch_s;
  j["tasks_per_s"] = s.dispatch_s > 0 ? nlohmann::json(c.finished / s.dispatch_s) : nlohmann::json(nullptr);
  j["hosts"] = s.run.hosts;
  if (!s.infra_error.empty()) j["infra_error"] = s.infra_error;
  if (!s.resumed_from.empty()) {
    j["resumed_from"] = s.resumed_from;
    j["results_kept"] = s.results_kept;
  }
  auto& ws = j["worker_ranks"] = nlohmann::json::array();
  for (const auto& w : s.workers) {
    ws.push_back({{"rank", w.rank},
                  {"host", w.host},
                  {"lost", w.lost},
                  {"executor_restarts", w.executor_restarts},
                  {"load1", w.load1},
                  {"mem_available_bytes", w.mem_available_bytes},
                  {"disk_free_bytes", w.disk_free_bytes},
                  {"gpu_mem_used_bytes", w.gpu_mem_used_bytes},
                  {"gpu_mem_total_bytes", w.gpu_mem_total_bytes}});
  }
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) return infra_error("cannot write " + path);
  return {};
}

Result<void> write_results_csv(const std::string& path, std::span<const core::TaskSpec> tasks,
                               std::span<const core::TaskResult> finals) {
  std::vector<const core::TaskResult*> rows;
  rows.reserve(finals.size());
  for (const auto& r : finals) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->task < b->task; });
  std::ofstream out(path);
  out << "task_index,task_id,kind,model,hardware,precision,batch,seq_len,scenario,priority,status,attempts,"
         "flaky,worker_rank,worker_host,latency_mean_s,latency_p50_s,latency_p90_s,latency_p99_s,samples,"
         "throughput,peak_memory_bytes,acc_cosine,acc_rel_error,acc_kl,acc_top1,signal,error\n";
  for (const auto* r : rows) {
    const auto& t = tasks[r->task];
    const auto s = core::summarize(r->outcome.samples_s);
    out << t.index << ',' << csv_field(t.id) << ',' << csv_field(t.kind) << ',' << csv_field(t.model) << ','
        << t.hardware << ',' << csv_field(t.precision) << ',' << t.batch << ',' << t.seq_len << ','
        << t.scenario << ',' << core::to_string(t.priority) << ',' << core::to_string(r->outcome.status)
        << ',' << (r->attempt + 1) << ',' << (r->flaky ? 1 : 0) << ',' << r->worker << ','
        << csv_field(r->host) << ',' << csv_num(s.mean) << ',' << csv_num(s.p50) << ',' << csv_num(s.p90)
        << ',' << csv_num(s.p99) << ',' << s.count << ',' << csv_num(r->outcome.throughput) << ','
        << r->outcome.peak_memory_bytes << ',' << csv_num(r->outcome.acc_cosine) << ','
        << csv_num(r->outcome.acc_rel_error) << ',' << csv_num(r->outcome.acc_kl) << ','
        << csv_num(r->outcome.acc_top1) << ',' << r->outcome.signal << ',' << csv_field(r->outcome.error)
        << '\n';
  }
  if (!out) return infra_error("cannot write " + path);
  return {};
}

}  // namespace ipfsa::report
