// Fault injection for `run --chaos SPEC` (issue 5): what to kill, and when. Tests use it to make
// failover happen at a known point; users use it to see that it does. Pure; the loops in mpi/
// act on it (docs/design.md §HA quorum).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace ipfsa::core {

struct Chaos {
  // The leader SIGKILLs itself when the quorum commits the Nth final result (0: off). Fires once
  // per job: only the coordinator that proposed the crossing entry acts on it.
  std::uint64_t kill_leader_after = 0;
  // (R, N): rank R SIGKILLs itself once N final results are committed (coordinators count what
  // they apply, workers what the leader's heartbeat reports).
  std::vector<std::pair<std::int32_t, std::uint64_t>> kill_rank;

  bool any() const { return kill_leader_after > 0 || !kill_rank.empty(); }
};

// Parses the `--chaos` values: `kill-leader-after=N` (N >= 1, at most once) and
// `kill-rank=R@N` (R >= 0, N >= 1; repeatable). Errors (kInput) quote the bad value and say what
// is expected.
Result<Chaos> parse_chaos(std::span<const std::string> specs);

}  // namespace ipfsa::core
