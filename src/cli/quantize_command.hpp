// `ipfs-accelerate quantize`: the quantization error of a seeded N(0, 1) matrix, with the clipping
// search and with plain min/max rounding (docs/quantization.md). Single process, no MPI.
// Thread-safety: writes to std::cout / std::cerr; call from one thread.
#pragma once

#include <cstdint>

namespace ipfsa::cli {

struct QuantizeOptions {
  int bits = 4;
  int group = 64;
  int rows = 4096;
  int cols = 4096;
  std::uint64_t seed = 42;
  bool symmetric = false;
  bool json = false;  // one JSON object on stdout; otherwise one human-readable line
};

// Returns 0 after printing the figures, or 2 with a message on stderr for bad options (bits not in
// {2, 3, 4, 8}, group not in {32, 64, 128}, non-positive sizes, cols not a multiple of group).
int quantize_command(const QuantizeOptions& options);

}  // namespace ipfsa::cli
