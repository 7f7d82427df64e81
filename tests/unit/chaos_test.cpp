// `run --chaos` specs (core/chaos.hpp): what parses, and that every bad value is refused with a
// message quoting it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/chaos.hpp"

namespace {

using ipfsa::core::parse_chaos;

TEST(Chaos, NothingGivenIsNoFault) {
  const auto c = parse_chaos({});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->any());
}

TEST(Chaos, ParsesKillLeaderAfterAndRepeatedKillRank) {
  const std::vector<std::string> specs{"kill-leader-after=20", "kill-rank=1@5", "kill-rank=4@30"};
  const auto c = parse_chaos(specs);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->kill_leader_after, 20u);
  ASSERT_EQ(c->kill_rank.size(), 2u);
  EXPECT_EQ(c->kill_rank[0], (std::pair<std::int32_t, std::uint64_t>{1, 5}));
  EXPECT_EQ(c->kill_rank[1], (std::pair<std::int32_t, std::uint64_t>{4, 30}));
  EXPECT_TRUE(c->any());
}

TEST(Chaos, RefusesBadSpecsNamingThem) {
  const char* bad[] = {
      "kill-leader-after",    "kill-leader-after=0", "kill-leader-after=x", "kill-leader-after=-3",
      "kill-leader-after=5x", "kill-rank=3",         "kill-rank=@4",        "kill-rank=-1@4",
      "kill-rank=2@0",        "kill-rank=2@",        "explode=1",           ""};
  for (const char* spec : bad) {
    const std::vector<std::string> specs{spec};
    const auto c = parse_chaos(specs);
    ASSERT_FALSE(c.ok()) << "accepted '" << spec << "'";
    EXPECT_EQ(c.error().code, ipfsa::ErrorCode::kInput);
    EXPECT_NE(c.error().message.find("--chaos " + std::string(spec) + ":"), std::string::npos)
        << c.error().message;
  }
  const std::vector<std::string> twice{"kill-leader-after=3", "kill-leader-after=4"};
  EXPECT_FALSE(parse_chaos(twice).ok());
}

}  // namespace
