// GPU discovery for worker capabilities and heartbeats (M2, M3). Host-callable entry points only.
// Safe to call on machines without a GPU or driver: they report zero devices.
// Thread-safety: callable from any thread (CUDA runtime calls only).
#pragma once

#include <cstdint>

namespace ipfsa::cuda {

struct GpuInfo {
  char name[256] = {};
  int cc_major = 0;
  int cc_minor = 0;
  std::uint64_t total_memory_bytes = 0;
  int multiprocessors = 0;
};

// Number of usable CUDA devices; 0 when there is no device or no driver.
int device_count();
// Fills `out` for device `dev`; false when the device cannot be queried.
bool device_info(int dev, GpuInfo* out);
// Free and total memory of device `dev` right now; false on failure.
bool device_memory(int dev, std::uint64_t* free_bytes, std::uint64_t* total_bytes);

}  // namespace ipfsa::cuda
