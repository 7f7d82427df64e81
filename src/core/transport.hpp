// The edge between the coordinator/worker loops and the network (../STYLE.md §1, leveldb's Env):
// MpiTransport (mpi/transport.hpp) on real ranks; an in-process simulated transport for tests of
// pure logic. Messages are opaque bytes tagged with a type; integrity (checksum) is the
// transport's job: a message that fails verification is never delivered, only counted.
// Thread-safety: none; owned by one loop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ipfsa::core {

struct Message {
  std::int32_t from = -1;
  std::uint8_t type = 0;
  std::string body;
};

struct TransportCounters {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t rejected = 0;        // failed checksum or malformed envelope
  std::uint64_t send_cancelled = 0;  // pending sends to a dead peer, cancelled
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::int32_t rank() const = 0;
  virtual std::int32_t size() const = 0;
  // Queues `body` for `to` without blocking. The transport owns the bytes until delivered.
  virtual void send(std::int32_t to, std::uint8_t type, std::string body) = 0;
  // Returns the next verified message, waiting at most timeout_ms (0 = just look).
  virtual std::optional<Message> receive(int timeout_ms) = 0;
  // Drops whatever is still pending to `peer` (it is dead); never blocks.
  virtual void forget(std::int32_t peer) = 0;
  // Completes pending sends for up to timeout_ms; true when none is left.
  virtual bool drain(int timeout_ms) = 0;
  virtual const TransportCounters& counters() const = 0;
};

}  // namespace ipfsa::core
