// The embedded default campaign (configs/default.yaml, compiled in).
#pragma once
#include <string_view>
namespace ipfsa::config {
inline constexpr std::string_view kDefaultCampaignSource = "<embedded default>";
std::string_view default_campaign_yaml();
}  // namespace ipfsa::config
