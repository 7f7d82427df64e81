#include "mpi/transport.hpp"

#include <spdlog/spdlog.h>
#include <time.h>

#include "wire/envelope.hpp"

namespace ipfsa::mpi {

namespace {
constexpr int kMaxTag = 255;

void nap() {
  // Yield the core for a moment while waiting: ranks are often oversubscribed (4 ranks, 2 cores).
  timespec ts{0, 20'000};
  nanosleep(&ts, nullptr);
}
}  // namespace

double now_s() {
  return MPI_Wtime();
}

MpiTransport::MpiTransport() {
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
}

MpiTransport::~MpiTransport() {
  // Never MPI_Comm_free: it may synchronise with a dead peer. The communicator dies with MPI.
  for (auto& p : pending_)
    if (p->request != MPI_REQUEST_NULL) MPI_Request_free(&p->request);
}

void MpiTransport::send(std::int32_t to, std::uint8_t type, std::string body) {
  send_raw_for_test(to, type, wire::seal(type, rank_, ++seq_, std::move(body)));
}

void MpiTransport::send_raw_for_test(std::int32_t to, std::uint8_t type, std::string bytes) {
  auto p = std::make_unique<Pending>();
  p->to = to;
  p->bytes = std::move(bytes);
  const int rc = MPI_Isend(p->bytes.data(), static_cast<int>(p->bytes.size()), MPI_BYTE, to, type % kMaxTag,
                           comm_, &p->request);
  if (rc != MPI_SUCCESS) {
    spdlog::warn("rank {}: MPI_Isend to {} failed (code {})", rank_, to, rc);
    return;
  }
  ++counters_.sent;
  pending_.push_back(std::move(p));
  progress_sends();
}

void MpiTransport::progress_sends() {
  while (!pending_.empty()) {
    int done = 0;
    MPI_Test(&pending_.front()->request, &done, MPI_STATUS_IGNORE);
    if (!done) break;
    pending_.pop_front();
  }
  // Also retire completed sends behind a slow one, so buffers do not pile up.
  if (pending_.size() > 64) retire_completed();
}

void MpiTransport::retire_completed() {
  std::deque<std::unique_ptr<Pending>> keep;
  for (auto& p : pending_) {
    int done = 0;
    MPI_Test(&p->request, &done, MPI_STATUS_IGNORE);
    if (!done) keep.push_back(std::move(p));
  }
  pending_.swap(keep);
}

std::optional<core::Message> MpiTransport::try_receive_one(double deadline) {
  int flag = 0;
  MPI_Message handle;
  MPI_Status status;
  MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &handle, &status);
  if (!flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  std::string buf(static_cast<std::size_t>(count), '\0');
  MPI_Request req;
  MPI_Imrecv(buf.data(), count, MPI_BYTE, &handle, &req);
  for (;;) {
    int done = 0;
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (now_s() > deadline + 1.0) {  // the sender died mid-transfer
      spdlog::warn("rank {}: receive from rank {} did not complete; dropped", rank_, status.MPI_SOURCE);
      MPI_Request_free(&req);
      abandoned_recv_.push_back(std::move(buf));
      ++counters_.rejected;
      return std::nullopt;
    }
    nap();
  }
  auto env = wire::open(buf, status.MPI_SOURCE);
  if (!env) {
    ++counters_.rejected;
    spdlog::warn("rank {}: rejected message from rank {} (tag {}, {} bytes): {}", rank_, status.MPI_SOURCE,
                 status.MPI_TAG, count, env.error().message);
    return std::nullopt;
  }
  ++counters_.received;
  return core::Message{status.MPI_SOURCE, env->type, std::move(env->body)};
}

std::optional<core::Message> MpiTransport::receive(int timeout_ms) {
  const double deadline = now_s() + timeout_ms / 1000.0;
  for (;;) {
    progress_sends();
    if (auto m = try_receive_one(deadline)) return m;
    if (now_s() >= deadline) return std::nullopt;
    nap();
  }
}

void MpiTransport::forget(std::int32_t peer) {
  std::deque<std::unique_ptr<Pending>> keep;
  for (auto& p : pending_) {
    if (p->to == peer) {
      MPI_Cancel(&p->request);
      MPI_Request_free(&p->request);
      ++counters_.send_cancelled;
      abandoned_.push_back(std::move(p));
    } else {
      keep.push_back(std::move(p));
    }
  }
  pending_.swap(keep);
}

bool MpiTransport::drain(int timeout_ms) {
  const double deadline = now_s() + timeout_ms / 1000.0;
  for (;;) {
    retire_completed();
    if (pending_.empty()) return true;
    if (now_s() >= deadline) return false;
    nap();
  }
}

}  // namespace ipfsa::mpi
