// `ipfs-accelerate store show`: a human-readable view of a trend store (M10) — the runs table, then
// the final results (or, with `all`, every attempt) of one run as an aligned table with status
// counts. Reads through Hdf5Reader, so it works while a run is writing the store and after a
// writer crashed.
// Thread-safety: as Hdf5Reader (none). On failure nothing has been written to `out`.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ipfsa::store {

// Prints the runs table (run id, campaign, status, tasks, start time in ISO-8601 UTC) and the
// results of `run_id`, or of the newest run (latest start) when it is empty. `all` shows every
// attempt instead of only final results. Errors (kInput): missing file, a file that is not a
// trend store, an unknown run id (named in the message).
Result<void> show_store(const std::string& path, std::string_view run_id, bool all, std::ostream& out);

// `unix_s` as "YYYY-MM-DDTHH:MM:SSZ" (UTC), or "-" for 0 and non-finite values. Pure.
std::string iso8601_utc(double unix_s);

}  // namespace ipfsa::store
