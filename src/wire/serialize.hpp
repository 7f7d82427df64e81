// Serialization of core types with cereal's portable binary archive (endianness-safe), used on the
// MPI wire (mpi/) and the worker <-> executor pipe (src/exec). Non-intrusive: core stays free of
// third-party headers. Field order is the format; append new fields at the end of a function and
// bump kWireVersion.
#pragma once

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <istream>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/raft.hpp"
#include "core/scheduler.hpp"
#include "core/task.hpp"

namespace ipfsa::core {

template <class A>
void serialize(A& a, TaskSpec& t) {
  a(t.index, t.id, t.kind, t.model, t.hardware, t.precision, t.batch, t.seq_len, t.scenario, t.priority,
    t.repeats, t.warmup, t.timeout_s, t.retries, t.memory_mb, t.params);
}

template <class A>
void serialize(A& a, TaskOutcome& o) {
  a(o.status, o.signal, o.error, o.samples_s, o.throughput, o.peak_memory_bytes, o.acc_cosine,
    o.acc_rel_error, o.acc_kl, o.acc_top1, o.metrics);
}

template <class A>
void serialize(A& a, WorkerInfo& w) {
  a(w.rank, w.host, w.cpu_model, w.cpu_features, w.cores, w.memory_bytes, w.gpus, w.gpu_name, w.gpu_cc,
    w.gpu_memory_bytes, w.gpu_driver);
}

template <class A>
void serialize(A& a, TaskResult& r) {
  a(r.task, r.attempt, r.final, r.flaky, r.worker, r.host, r.started_unix, r.ended_unix, r.outcome,
    r.fingerprint);
}

// The scheduler's input events: the entries of the HA quorum's replicated log (mpi/quorum.hpp).
template <class A>
void serialize(A& a, WorkerJoined& e) {
  a(e.info);
}
template <class A>
void serialize(A&, AllJoined&) {}
template <class A>
void serialize(A& a, WorkerLost& e) {
  a(e.rank);
}
template <class A>
void serialize(A& a, TaskFinished& e) {
  a(e.worker, e.task, e.attempt, e.started_unix, e.ended_unix, e.outcome);
}

// The consensus messages between coordinators (issue 5) and what a coordinator persists.
template <class A>
void serialize(A& a, RaftEntry& e) {
  a(e.term, e.index, e.data);
}

template <class A>
void serialize(A& a, RaftSnapshot& s) {
  a(s.index, s.term, s.data);
}

template <class A>
void serialize(A& a, RaftHardState& h) {
  a(h.term, h.voted_for, h.commit);
}

template <class A>
void serialize(A& a, RaftPersistent& p) {
  a(p.hard_state, p.snapshot, p.entries);
}

template <class A>
void serialize(A& a, RaftMessage& m) {
  a(m.type, m.from, m.to, m.term, m.log_index, m.log_term, m.entries, m.commit, m.snapshot, m.pre_vote,
    m.success, m.match_index, m.reject_index, m.hint_index);
}

}  // namespace ipfsa::core

namespace ipfsa::wire {

inline constexpr std::uint32_t kWireVersion = 1;

// Serializes any value that has a cereal serialize function.
template <typename T>
std::string encode(const T& value) {
  std::ostringstream os(std::ios::binary);
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(value);
  }
  return std::move(os).str();
}

// Deserializes bytes produced by encode<T>. A truncated or malformed buffer is an Error, never UB.
template <typename T>
Result<T> decode(std::string_view bytes) {
  // Reads in place: no copy of the buffer.
  struct ViewBuf : std::streambuf {
    explicit ViewBuf(std::string_view s) {
      char* p = const_cast<char*>(s.data());  // NOLINT: get area is only read
      setg(p, p, p + s.size());
    }
  };
  try {
    ViewBuf buf(bytes);
    std::istream is(&buf);
    cereal::PortableBinaryInputArchive ar(is);
    T value{};
    ar(value);
    return value;
  } catch (const std::exception& e) {
    return input_error(std::string("malformed message: ") + e.what());
  }
}

}  // namespace ipfsa::wire
