// STREAM-like read bandwidth probe (see membw.hpp). The read loop is plain C++ over 64-bit words with
// eight independent accumulators per 64-byte line, which the compiler turns into wide vector loads;
// it is memory-bound by a wide margin on any CPU of the last decade.
#include "engine/membw.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <vector>

#include "core/error.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {
namespace {

std::uint64_t read_slice(const std::uint64_t* p, std::size_t words) {
  std::uint64_t a[8] = {};
  for (std::size_t i = 0; i + 8 <= words; i += 8)
    for (int k = 0; k < 8; ++k) a[k] += p[i + k];
  std::uint64_t s = 0;
  for (int k = 0; k < 8; ++k) s ^= a[k];
  return s;
}

}  // namespace

ReadProbe::ReadProbe(std::size_t bytes, int threads) {
  constexpr std::size_t kPage = 4096;
  bytes_ = std::max<std::size_t>((bytes + kPage - 1) / kPage * kPage, kPage);
  threads_ = threads > 0 ? threads : default_thread_count();
  data_ = static_cast<std::uint64_t*>(std::aligned_alloc(64, bytes_));
  if (data_ == nullptr) throw std::bad_alloc();
  // First touch from the threads that will read each slice (NUMA-local pages where it matters).
  const std::size_t words = bytes_ / sizeof(std::uint64_t);
  engine_thread_pool().run(threads_, [&](int t) {
    const std::size_t lo = words * t / threads_, hi = words * (t + 1) / threads_;
    for (std::size_t i = lo; i < hi; ++i) data_[i] = i * 0x9E3779B97F4A7C15ull;
  });
}

ReadProbe::~ReadProbe() {
  std::free(data_);
}

double ReadProbe::sweep() {
  const std::size_t words = bytes_ / sizeof(std::uint64_t);
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads_) * 8);  // one cache line each
  const auto t0 = std::chrono::steady_clock::now();
  engine_thread_pool().run(threads_, [&](int t) {
    // Slices of whole 64-byte lines.
    const std::size_t lo = words * t / threads_ / 8 * 8, hi = words * (t + 1) / threads_ / 8 * 8;
    sums[static_cast<std::size_t>(t) * 8] = read_slice(data_ + lo, hi - lo);
  });
  const auto t1 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads_; ++t) sink_ ^= sums[static_cast<std::size_t>(t) * 8];
  return std::chrono::duration<double>(t1 - t0).count();
}

ReadBandwidth ReadProbe::measure(int runs) {
  IPFSA_EXPECTS(runs >= 1, "ReadProbe::measure: runs must be positive");
  sweep();
  double best = sweep();
  for (int i = 1; i < runs; ++i) best = std::min(best, sweep());
  ReadBandwidth r;
  r.best_seconds = best;
  r.bytes = bytes_;
  r.threads = threads_;
  r.runs = runs;
  r.gbps = best > 0.0 ? static_cast<double>(bytes_) / best / 1e9 : 0.0;
  return r;
}

}  // namespace ipfsa::engine
