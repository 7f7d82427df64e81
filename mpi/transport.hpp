// MpiTransport: core::Transport over MPI point-to-point (M2).
//
// MPI contract: the constructor calls MPI_Comm_dup(MPI_COMM_WORLD) — a collective every rank must
// make at start-up, before the campaign starts. After that only MPI_Isend, MPI_Improbe, MPI_Imrecv
// and MPI_Test* are used: no collective, no blocking call, so a dead rank can never hang the job
// (Open MPI 4.1 has no ULFM: with --enable-recovery a dead rank's sends and receives just never
// complete). Every receive is bounded by its timeout; pending sends to a peer declared dead are
// cancelled by forget(). Every message is sealed in a wire::Envelope; a message whose checksum
// fails is dropped, counted in counters().rejected and logged.
//
// Thread-safety: none. MPI must be initialised (MPI_THREAD_SINGLE is enough).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/transport.hpp"

namespace ipfsa::mpi {

class MpiTransport final : public core::Transport {
 public:
  MpiTransport();
  ~MpiTransport() override;

  std::int32_t rank() const override { return rank_; }
  std::int32_t size() const override { return size_; }
  void send(std::int32_t to, std::uint8_t type, std::string body) override;
  std::optional<core::Message> receive(int timeout_ms) override;
  void forget(std::int32_t peer) override;
  bool drain(int timeout_ms) override;
  const core::TransportCounters& counters() const override { return counters_; }

  // For tests of the integrity check: sends raw bytes, bypassing the envelope.
  void send_raw_for_test(std::int32_t to, std::uint8_t type, std::string bytes);

 private:
  struct Pending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::int32_t to = -1;
    std::string bytes;
  };
  void progress_sends();    // retires completed sends from the front (all of them when many wait)
  void retire_completed();  // tests every pending send, drops the completed ones
  std::optional<core::Message> try_receive_one(double deadline);

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::int32_t rank_ = 0;
  std::int32_t size_ = 1;
  std::uint64_t seq_ = 0;
  std::deque<std::unique_ptr<Pending>> pending_;
  // Requests abandoned to a dead peer: their buffers must stay alive while MPI may touch them.
  std::vector<std::unique_ptr<Pending>> abandoned_;
  std::vector<std::string> abandoned_recv_;
  core::TransportCounters counters_;
};

double now_s();  // monotonic seconds (MPI_Wtime)

}  // namespace ipfsa::mpi
