#pragma once
// A deadline for a call that may never return: MPI start-up and MPI_Finalize are collective, and a
// rank that dies inside them leaves every other rank waiting forever. Armed around such a call, the
// watchdog runs `on_expire` (write what must survive, say why) and ends the process with
// `exit_code` if the call has not finished by the deadline. Disarming (or destroying) it is cheap.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace ipfsa::sys {

class Watchdog {
 public:
  Watchdog(double seconds, int exit_code, std::function<void()> on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Stops the deadline; after this the watchdog never fires.
  void disarm();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

}  // namespace ipfsa::sys
