#include "sys/watchdog.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace ipfsa::sys {

Watchdog::Watchdog(double seconds, int exit_code, std::function<void()> on_expire) {
  thread_ = std::thread([this, seconds, exit_code, fire = std::move(on_expire)] {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    if (cv_.wait_until(lock, deadline, [this] { return disarmed_; })) return;
    if (fire) fire();
    std::fflush(nullptr);
    _exit(exit_code);  // the stuck call holds locks of its own: no destructors, no atexit
  });
}

void Watchdog::disarm() {
  {
    std::lock_guard lock(mu_);
    disarmed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Watchdog::~Watchdog() {
  disarm();
}

}  // namespace ipfsa::sys
