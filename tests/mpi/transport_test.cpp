// MpiTransport at 1, 2 and 4 ranks (CTest label `mpi`): delivery, order between a pair, integrity
// rejection of corrupted messages, bounded receives, and that a dead peer's pending sends are
// forgotten without blocking. Own main: MPI_Init, then GoogleTest.
#include <gtest/gtest.h>
#include <mpi.h>

#include "mpi_gtest_main.hpp"

#include <chrono>

#include "mpi/transport.hpp"
#include "wire/envelope.hpp"

namespace {

using ipfsa::mpi::MpiTransport;

TEST(MpiTransport, RingDeliveryInOrder) {
  MpiTransport t;
  const int next = (t.rank() + 1) % t.size();
  const int prev = (t.rank() + t.size() - 1) % t.size();
  constexpr int kN = 200;
  for (int i = 0; i < kN; ++i)
    t.send(next, 7, "msg-" + std::to_string(i) + "-from-" + std::to_string(t.rank()));
  int got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got < kN && std::chrono::steady_clock::now() < deadline) {
    auto m = t.receive(100);
    if (!m) continue;
    ASSERT_EQ(m->from, prev);
    ASSERT_EQ(m->type, 7);
    EXPECT_EQ(m->body, "msg-" + std::to_string(got) + "-from-" + std::to_string(prev));
    ++got;
  }
  EXPECT_EQ(got, kN);
  EXPECT_TRUE(t.drain(5000));
  EXPECT_EQ(t.counters().rejected, 0u);
}

TEST(MpiTransport, CorruptedMessageIsRejectedAndCounted) {
  MpiTransport t;
  const int next = (t.rank() + 1) % t.size();
  // A valid envelope with one byte of its body flipped, then a valid message.
  std::string bytes = ipfsa::wire::seal(9, t.rank(), 1, std::string(64, 'x'));
  bytes[bytes.size() / 2] ^= 0x40;
  t.send_raw_for_test(next, 9, bytes);
  t.send_raw_for_test(next, 9, "not an envelope at all");
  t.send(next, 9, "good");
  std::optional<ipfsa::core::Message> m;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!m && std::chrono::steady_clock::now() < deadline) m = t.receive(100);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->body, "good");
  EXPECT_EQ(t.counters().rejected, 2u);
  EXPECT_TRUE(t.drain(5000));
}

TEST(MpiTransport, ReceiveIsBoundedByItsTimeout) {
  MpiTransport t;
  const auto t0 = std::chrono::steady_clock::now();
  auto m = t.receive(50);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(m.has_value());
  EXPECT_GE(waited, 0.045);
}

TEST(MpiTransport, ForgetDropsPendingSendsWithoutBlocking) {
  MpiTransport t;
  if (t.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // Rank 0 sends large messages to the last rank, which never receives them on this
  // communicator; forget() must return at once and count the cancelled sends.
  if (t.rank() == 0) {
    for (int i = 0; i < 4; ++i) t.send(t.size() - 1, 3, std::string(4 << 20, 'z'));
    t.forget(t.size() - 1);
    EXPECT_EQ(t.counters().send_cancelled, 4u);
    EXPECT_TRUE(t.drain(0));
  }
}

}  // namespace

int main(int argc, char** argv) {
  return run_mpi_gtest(argc, argv);
}
