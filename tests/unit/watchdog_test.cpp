#include "sys/watchdog.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace ipfsa::sys {
namespace {

TEST(WatchdogDeathTest, EndsAStuckProcessWithItsCodeAfterRunningTheHook) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Watchdog dog(0.05, 7, [] { std::fputs("stuck call abandoned\n", stderr); });
        for (;;) pause();  // the call that never returns
      },
      testing::ExitedWithCode(7), "stuck call abandoned");
}

TEST(Watchdog, DisarmedBeforeTheDeadlineNeverFires) {
  int fired = 0;
  {
    Watchdog dog(0.05, 7, [&] { ++fired; });
    dog.disarm();
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
  }
  EXPECT_EQ(fired, 0);
}

TEST(Watchdog, DestroyedIsDisarmed) {
  int fired = 0;
  {
    Watchdog dog(0.05, 7, [&] { ++fired; });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace ipfsa::sys
