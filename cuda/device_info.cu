#include <cuda_runtime.h>

#include <cstring>

#include "device_info.cuh"

namespace ipfsa::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error (no driver / no device)
    return 0;
  }
  return n;
}

bool device_info(int dev, GpuInfo* out) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  std::strncpy(out->name, prop.name, sizeof(out->name) - 1);
  out->cc_major = prop.major;
  out->cc_minor = prop.minor;
  out->total_memory_bytes = prop.totalGlobalMem;
  out->multiprocessors = prop.multiProcessorCount;
  return true;
}

bool device_memory(int dev, std::uint64_t* free_bytes, std::uint64_t* total_bytes) {
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess || (current != dev && cudaSetDevice(dev) != cudaSuccess)) {
    cudaGetLastError();
    return false;
  }
  size_t f = 0, t = 0;
  if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *free_bytes = f;
  *total_bytes = t;
  return true;
}

}  // namespace ipfsa::cuda
