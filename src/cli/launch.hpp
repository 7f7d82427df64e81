// `ipfs-accelerate launch`: runs `mpirun --enable-recovery -np N ipfs-accelerate run ...` and
// exits with the run's own exit code. Needed because Open MPI 4.1's mpirun, once a job is marked
// recoverable (--enable-recovery), exits 0 whatever its ranks return (ORTE skips exit-status
// tracking for recoverable jobs). The coordinator that ends the run (rank 0 before the campaign
// starts) writes its exit code to a status file (`run
// --status-file`), which the launcher reads after mpirun returns.
#pragma once

#include "core/launch_line.hpp"

namespace ipfsa::cli {

using core::LaunchOptions;

// Runs it; returns the run's exit code, or 3 when mpirun could not start or no coordinator left one.
int launch_command(const LaunchOptions& o);

}  // namespace ipfsa::cli
