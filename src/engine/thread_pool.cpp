// The engine's persistent thread pool (see thread_pool.hpp).
//
// Protocol: the caller, holding run_mutex_, writes the job (call_, ctx_, n_), sets remaining_ to
// the number of workers, and bumps generation_ (release). Every worker, whether it has a task
// (index < n) or not, sees each generation (acquire), runs its task, and decrements remaining_
// (acq_rel); the caller waits for zero before it returns, so no worker still reads the job when the
// next one is written. Waiting (Waiter below) spins briefly, then yields the CPU for up to
// kYieldFor (back-to-back kernel calls of a decoder step find the workers awake; when the machine
// is oversubscribed the thread being waited for gets the core), then sleeps on the atomic (a futex
// on Linux).
#include "engine/thread_pool.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ipfsa::engine {
namespace {

constexpr int kMaxThreads = 1024;
// pause costs ~50 ns on the AMD EPYC VMs we use (more where the hypervisor traps it), so only a few
// dozen spins; then sched_yield until kYieldFor has passed, then the futex.
constexpr int kPauseSpins = 32;
constexpr auto kYieldFor = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Waits until `a` no longer holds `value` and returns the new value (acquire).
template <typename T>
T wait_while_equal(const std::atomic<T>& a, T value) {
  T now = a.load(std::memory_order_acquire);
  for (int i = 0; now == value && i < kPauseSpins; ++i) {
    cpu_relax();
    now = a.load(std::memory_order_acquire);
  }
  if (now != value) return now;
  const auto start = std::chrono::steady_clock::now();
  while (now == value && std::chrono::steady_clock::now() - start < kYieldFor) {
    std::this_thread::yield();
    now = a.load(std::memory_order_acquire);
  }
  while (now == value) {
    a.wait(value, std::memory_order_acquire);
    now = a.load(std::memory_order_acquire);
  }
  return now;
}

// Set on the pool's own workers and inside run(): a nested run() then executes inline.
thread_local const ThreadPool* tls_inside = nullptr;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  IPFSA_EXPECTS(threads >= 1 && threads <= kMaxThreads, "ThreadPool: thread count out of range");
  std::lock_guard lock(run_mutex_);
  grow(threads);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(run_mutex_);
    stop_ = true;
    remaining_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
  }
  for (auto& w : workers_) w.join();
}

int ThreadPool::threads() const {
  return size_.load(std::memory_order_relaxed);
}

void ThreadPool::grow(int threads) {
  const std::uint32_t seen = generation_.load(std::memory_order_relaxed);
  while (static_cast<int>(workers_.size()) + 1 < threads) {
    const int index = static_cast<int>(workers_.size()) + 1;
    workers_.emplace_back([this, index, seen] { worker_loop(index, seen); });
  }
  size_.store(static_cast<int>(workers_.size()) + 1, std::memory_order_relaxed);
}

void ThreadPool::run_erased(int n, Call call, void* ctx) {
  IPFSA_EXPECTS(n >= 1 && n <= kMaxThreads, "ThreadPool::run: task count out of range");
  if (n == 1 || tls_inside == this) {
    for (int t = 0; t < n; ++t) call(ctx, t);
    return;
  }
  std::lock_guard lock(run_mutex_);
  if (n > static_cast<int>(workers_.size()) + 1) grow(n);
  call_ = call;
  ctx_ = ctx;
  n_ = n;
  const int workers = static_cast<int>(workers_.size());
  remaining_.store(workers, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();

  const ThreadPool* outer = tls_inside;
  tls_inside = this;
  call(ctx, 0);
  tls_inside = outer;

  for (int left = remaining_.load(std::memory_order_acquire); left != 0;)
    left = wait_while_equal(remaining_, left);
}

void ThreadPool::worker_loop(int index, std::uint32_t seen) {
  tls_inside = this;
  for (;;) {
    seen = wait_while_equal(generation_, seen);
    if (stop_) return;
    if (index < n_) call_(ctx_, index);
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
  }
}

int default_thread_count() {
  if (const char* env = std::getenv("IPFSA_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) return static_cast<int>(std::min<long>(v, kMaxThreads));
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(std::min<unsigned>(hw, kMaxThreads)) : 1;
}

ThreadPool& engine_thread_pool() {
  // Intentionally leaked: workers parked at exit must not be joined during static destruction
  // (another static's destructor may still run a kernel).
  static ThreadPool* pool = new ThreadPool(default_thread_count());
  return *pool;
}

}  // namespace ipfsa::engine
