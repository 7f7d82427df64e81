// A small persistent thread pool for the engine's compute kernels (qgemm, the transformer layers):
// `run(n, fn)` calls fn(0) on the calling thread and fn(1) .. fn(n-1) on parked worker threads, and
// returns when all n calls have returned. Workers are created once and reused, so a call costs a
// wake-up (a spin for a short while after the previous call, else a futex), never a thread start.
// Thread-safety: run() may be called from several threads at once; the calls are serialised on an
// internal mutex (they queue). A run() issued from inside a task of the same pool runs all its
// tasks inline on that thread (no deadlock, no extra parallelism). fn must not throw (an exception
// escaping a task calls std::terminate). No MPI here; every rank has its own pools.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace ipfsa::engine {

class ThreadPool {
 public:
  // A pool for `threads` participants: the caller plus threads - 1 workers (threads >= 1).
  explicit ThreadPool(int threads);
  ~ThreadPool();  // wakes and joins the workers; no run() may be in flight
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Participants available without growing (workers + the caller).
  int threads() const;

  // Calls fn(t) for every t in [0, n) (n >= 1), each on its own thread, t == 0 on the caller; adds
  // workers first when n > threads(). Returns when every call has returned; the calls' writes are
  // then visible to the caller.
  template <typename F>
  void run(int n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_erased(
        n, [](void* ctx, int t) { (*static_cast<Fn*>(ctx))(t); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Call = void (*)(void*, int);
  void run_erased(int n, Call call, void* ctx);
  void grow(int threads);  // requires run_mutex_
  void worker_loop(int index, std::uint32_t seen);

  std::mutex run_mutex_;  // one job at a time
  std::vector<std::thread> workers_;
  // The current job, written by the caller before it bumps generation_ (release) and read by the
  // workers after they see the new generation (acquire).
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
  bool stop_ = false;
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<int> remaining_{0};  // workers yet to finish the current generation
  std::atomic<int> size_{1};
};

// Threads a kernel uses when asked for 0: IPFSA_THREADS when set to a positive integer, otherwise
// std::thread::hardware_concurrency() (at least 1).
int default_thread_count();

// The engine's shared pool (created on first use; grows on demand, never shrinks). Kernels split
// their work over it; tests and benchmarks may create their own ThreadPool instead.
ThreadPool& engine_thread_pool();

}  // namespace ipfsa::engine
