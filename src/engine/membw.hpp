// A STREAM-like probe of main-memory read bandwidth: the ceiling a memory-bound kernel (a GEMV over
// weights much larger than the last-level cache) can reach with the same number of threads, so that
// kernel figures can be reported as a fraction of it (docs/kernels.md). It also serves to evict the
// caches between timed runs of a kernel.
// Thread-safety: a probe may be used from one thread at a time; it runs its sweeps on the engine's
// thread pool (thread_pool.hpp). The constructor allocates and touches the buffer; std::bad_alloc
// propagates when it does not fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ipfsa::engine {

struct ReadBandwidth {
  double gbps = 0.0;          // bytes / best seconds / 1e9
  double best_seconds = 0.0;  // fastest sweep
  std::size_t bytes = 0;      // bytes read per sweep
  int threads = 0;
  int runs = 0;
};

class ReadProbe {
 public:
  // A buffer of `bytes` (rounded up to 4 KiB; default 512 MiB, far beyond any LLC) filled with a
  // pattern, split into `threads` contiguous slices (0: default_thread_count()).
  explicit ReadProbe(std::size_t bytes = std::size_t{512} << 20, int threads = 0);
  ~ReadProbe();
  ReadProbe(const ReadProbe&) = delete;
  ReadProbe& operator=(const ReadProbe&) = delete;

  // One timed read of the whole buffer by every thread (each reads its slice with 256-bit wide
  // independent accumulators); returns its seconds.
  double sweep();
  // The best of `runs` sweeps (runs >= 1) after one untimed warm-up sweep.
  ReadBandwidth measure(int runs = 5);

  std::size_t bytes() const { return bytes_; }
  int threads() const { return threads_; }

 private:
  std::size_t bytes_ = 0;
  int threads_ = 1;
  std::uint64_t* data_ = nullptr;  // 64-byte aligned
  std::uint64_t sink_ = 0;         // keeps the sums alive
};

}  // namespace ipfsa::engine
