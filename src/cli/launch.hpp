// `ipfs-accelerate launch`: runs `mpirun --enable-recovery -np N ipfs-accelerate run ...` and
// exits with the run's own exit code. Needed because Open MPI 4.1's mpirun, once a job is marked
// recoverable (--enable-recovery), exits 0 whatever its ranks return (ORTE skips exit-status
// tracking for recoverable jobs). Rank 0 writes its exit code to a status file (`run
// --status-file`), which the launcher reads after mpirun returns.
#pragma once

#include "core/launch_line.hpp"

namespace ipfsa::cli {

using core::LaunchOptions;

// Runs it; returns rank 0's exit code, or 3 when mpirun could not start or rank 0 left none.
int launch_command(const LaunchOptions& o);

}  // namespace ipfsa::cli
