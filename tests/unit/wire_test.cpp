// Wire format: round trips of the core types, and the envelope's integrity check (M2).
#include <gtest/gtest.h>

#include <random>

#include "wire/envelope.hpp"
#include "wire/serialize.hpp"

namespace ipfsa {
namespace {

core::TaskSpec sample_task() {
  core::TaskSpec t;
  t.index = 42;
  t.id = "gemm.eigen[k=64,m=128,n=128]/cpu/fp32/b1/s0/latency";
  t.kind = "gemm.eigen";
  t.model = "gemm.eigen";
  t.priority = core::Priority::kHigh;
  t.timeout_s = 12.5;
  t.memory_mb = 4096;
  t.params = {{"k", "64"}, {"m", "128"}, {"n", "128"}};
  return t;
}

TEST(Wire, TaskSpecRoundTrip) {
  const auto t = sample_task();
  auto back = wire::decode<core::TaskSpec>(wire::encode(t));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->index, t.index);
  EXPECT_EQ(back->id, t.id);
  EXPECT_EQ(back->priority, t.priority);
  EXPECT_EQ(back->timeout_s, t.timeout_s);
  EXPECT_EQ(back->memory_mb, t.memory_mb);
  EXPECT_EQ(back->params, t.params);
}

TEST(Wire, OutcomeRoundTripKeepsNaNAndSamples) {
  core::TaskOutcome o;
  o.status = core::TaskStatus::kCrashed;
  o.signal = 11;
  o.error = "killed by signal 11 (SIGSEGV)";
  o.samples_s = {0.001, 0.002, 0.0015};
  o.metrics = {{"gflops", 12.5}};
  auto back = wire::decode<core::TaskOutcome>(wire::encode(o));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status, o.status);
  EXPECT_EQ(back->signal, 11);
  EXPECT_EQ(back->samples_s, o.samples_s);
  EXPECT_TRUE(std::isnan(back->acc_cosine));
  EXPECT_EQ(back->metrics, o.metrics);
}

// The fields added for hardware fingerprints (issue 6) travel with WorkerInfo and TaskResult.
TEST(Wire, WorkerInfoAndTaskResultCarryTheFingerprintFields) {
  core::WorkerInfo w;
  w.rank = 3;
  w.host = "node3";
  w.cpu_model = "AMD EPYC 7B13";
  w.gpus = 1;
  w.gpu_name = "NVIDIA H100 80GB HBM3";
  w.gpu_driver = "550.54.15";
  auto wb = wire::decode<core::WorkerInfo>(wire::encode(w));
  ASSERT_TRUE(wb.ok()) << wb.error().message;
  EXPECT_EQ(wb->gpu_driver, "550.54.15");
  EXPECT_EQ(wb->gpu_name, w.gpu_name);
  EXPECT_EQ(core::hardware_fingerprint(*wb), core::hardware_fingerprint(w));

  core::TaskResult r;
  r.task = 7;
  r.attempt = 1;
  r.final = true;
  r.worker = 3;
  r.host = "node3";
  r.fingerprint = core::hardware_fingerprint(w);
  r.outcome.status = core::TaskStatus::kPassed;
  r.outcome.samples_s = {0.25, 0.5};
  auto rb = wire::decode<core::TaskResult>(wire::encode(r));
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_EQ(rb->fingerprint, "cpu=AMD EPYC 7B13;gpus=1xNVIDIA H100 80GB HBM3;driver=550.54.15");
  EXPECT_EQ(rb->host, "node3");
  EXPECT_EQ(rb->outcome.samples_s, r.outcome.samples_s);
  // The new fields are the last ones: a buffer cut just before them is an error, not a result.
  const std::string bytes = wire::encode(r);
  EXPECT_FALSE(wire::decode<core::TaskResult>(std::string_view(bytes).substr(0, bytes.size() - 1)).ok());
}

TEST(Wire, TruncatedBufferIsAnErrorNotACrash) {
  const auto bytes = wire::encode(sample_task());
  for (std::size_t n = 0; n < bytes.size(); n += 7) {
    auto r = wire::decode<core::TaskSpec>(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
  }
}

core::RaftMessage sample_append() {
  core::RaftMessage m;
  m.type = core::RaftMessageType::kAppendEntries;
  m.from = 2;
  m.to = 4;
  m.term = 9;
  m.log_index = 17;
  m.log_term = 8;
  m.entries = {core::RaftEntry{9, 18, {1, 2, 3}}, core::RaftEntry{9, 19, {}}};
  m.commit = 16;
  m.snapshot = core::RaftSnapshot{12, 7, {0xAB, 0xCD}};
  m.pre_vote = true;
  m.success = true;
  m.match_index = 15;
  m.reject_index = 14;
  m.hint_index = 13;
  return m;
}

// Every field of a consensus message survives the wire (issue 5: the coordinators' MPI messages).
TEST(Wire, RaftMessageRoundTripKeepsEveryField) {
  const core::RaftMessage m = sample_append();
  auto r = wire::decode<core::RaftMessage>(wire::encode(m));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, m.type);
  EXPECT_EQ(r->from, m.from);
  EXPECT_EQ(r->to, m.to);
  EXPECT_EQ(r->term, m.term);
  EXPECT_EQ(r->log_index, m.log_index);
  EXPECT_EQ(r->log_term, m.log_term);
  EXPECT_EQ(r->entries, m.entries);
  EXPECT_EQ(r->commit, m.commit);
  EXPECT_EQ(r->snapshot, m.snapshot);
  EXPECT_EQ(r->pre_vote, m.pre_vote);
  EXPECT_EQ(r->success, m.success);
  EXPECT_EQ(r->match_index, m.match_index);
  EXPECT_EQ(r->reject_index, m.reject_index);
  EXPECT_EQ(r->hint_index, m.hint_index);
}

TEST(Wire, RaftPersistentRoundTripAndTruncation) {
  core::RaftPersistent p;
  p.hard_state = {5, 1, 3};
  p.snapshot = {2, 4, {9, 9}};
  p.entries = {core::RaftEntry{4, 3, {7}}, core::RaftEntry{5, 4, {8, 8}}};
  const std::string bytes = wire::encode(p);
  auto r = wire::decode<core::RaftPersistent>(bytes);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->hard_state, p.hard_state);
  EXPECT_EQ(r->snapshot, p.snapshot);
  EXPECT_EQ(r->entries, p.entries);
  for (std::size_t n = 0; n < bytes.size(); n += 5)
    EXPECT_FALSE(wire::decode<core::RaftPersistent>(std::string_view(bytes).substr(0, n)).ok()) << n;
}

TEST(Envelope, OpensWhatSealMade) {
  const auto sealed = wire::seal(3, 5, 77, "payload");
  auto e = wire::open(sealed, 5);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->type, 3);
  EXPECT_EQ(e->seq, 77u);
  EXPECT_EQ(e->body, "payload");
}

TEST(Envelope, EveryFlippedBitIsRejected) {
  const auto sealed = wire::seal(3, 5, 77, std::string(100, 'q'));
  int accepted = 0;
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      if (wire::open(bad, 5).ok()) ++accepted;
    }
  }
  EXPECT_EQ(accepted, 0);
}

TEST(Envelope, WrongSenderIsRejected) {
  const auto sealed = wire::seal(3, 5, 1, "x");
  auto e = wire::open(sealed, 6);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("sent by rank 6"), std::string::npos);
}

TEST(Envelope, RandomGarbageIsRejected) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    EXPECT_FALSE(wire::open(junk, 0).ok());
  }
}

}  // namespace
}  // namespace ipfsa
