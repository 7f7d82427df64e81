// cuBLAS, loaded on first use with dlopen rather than linked. Linking it maps the cuBLAS and
// cuBLASLt libraries (~0.5 GB of code) into every process of the binary, about 160 MiB resident in
// each executor, on machines with and without a GPU alike; loaded here, only a process that creates
// a GpuContext pays for it. Private to cuda/.
// Thread-safety: api() loads once (function-local static); the table is immutable afterwards.
#pragma once

#include <cublas_v2.h>

#include "core/error.hpp"

namespace ipfsa::cuda::blas {

// The entry points the backend calls (their _v2 symbols, as cublas_v2.h maps them).
struct Api {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  // The C symbol (the compute-type signature; the cudaDataType one is a C++ overload in the header).
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*,
                            void*, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// The loaded table, or an Error (kInfra) naming the library and dlopen's reason. Searched as
// libcublas.so.<major of the headers built against>, then in the toolkit's library folder of the
// build machine, then /usr/local/cuda/lib64.
Result<const Api*> api();

}  // namespace ipfsa::cuda::blas
