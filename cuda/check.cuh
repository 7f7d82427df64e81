// Turning CUDA and cuBLAS status codes into Result errors (cuda/lowbit.hpp: nothing in the CUDA
// backend aborts on a GPU error). Private to cuda/.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/error.hpp"
#include "cublas_dl.cuh"

namespace ipfsa::cuda {

inline Error cuda_error(const char* what, cudaError_t e) {
  return infra_error(std::string("CUDA: ") + what + ": " + cudaGetErrorName(e) + " (" +
                     cudaGetErrorString(e) + ")");
}

// Only called after a cuBLAS call failed, so the library is loaded.
inline Error cublas_error(const char* what, cublasStatus_t s) {
  auto a = blas::api();
  if (!a) return a.error();
  return infra_error(std::string("cuBLAS: ") + what + ": " + (*a)->status_name(s) + " (" +
                     (*a)->status_string(s) + ")");
}

}  // namespace ipfsa::cuda

// Returns the Error from the enclosing function (whose return type is some Result) on failure.
#define IPFSA_CUDA_TRY(call)                                                        \
  do {                                                                              \
    const cudaError_t ipfsa_e_ = (call);                                            \
    if (ipfsa_e_ != cudaSuccess) return ::ipfsa::cuda::cuda_error(#call, ipfsa_e_); \
  } while (0)

#define IPFSA_CUBLAS_TRY(call)                                                                  \
  do {                                                                                          \
    const cublasStatus_t ipfsa_s_ = (call);                                                     \
    if (ipfsa_s_ != CUBLAS_STATUS_SUCCESS) return ::ipfsa::cuda::cublas_error(#call, ipfsa_s_); \
  } while (0)

// After a kernel launch: the launch's own error (bad configuration, no kernel image for this GPU).
#define IPFSA_CUDA_LAUNCHED(what)                                                  \
  do {                                                                             \
    const cudaError_t ipfsa_e_ = cudaGetLastError();                               \
    if (ipfsa_e_ != cudaSuccess) return ::ipfsa::cuda::cuda_error(what, ipfsa_e_); \
  } while (0)
