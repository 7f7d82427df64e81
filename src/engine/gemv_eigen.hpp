// The fp32 baseline that the low-bit kernels are compared with (`bench gemv`, docs/kernels.md):
// Y = X W^T with Eigen on a row-major fp32 W, split by blocks of rows of W over the engine's thread
// pool, one single-threaded Eigen product per block (the engine is built without OpenMP, so
// Eigen's own threading is off; the split gives Eigen the same threads as qgemm). Eigen is
// compiled with the engine's flags (-march=native when IPFSA_NATIVE is on). No Eigen types here:
// Eigen is a private dependency of the engine.
// Thread-safety: as qgemm (calls queue on the pool).
#pragma once

#include <span>

namespace ipfsa::engine {

// y (batch, rows) = x (batch, cols) w^T, all row-major fp32; w is (rows, cols). batch == 1 runs
// Eigen's matrix-vector product, batch > 1 its matrix-matrix product (which, for a few activation
// rows, spends most of its time packing W: Eigen's GEMM is tuned for square-ish products). Size
// mismatches are bugs (IPFSA_ASSERT). threads <= 0: default_thread_count().
void eigen_fp32_gemm(std::span<const float> w, int rows, int cols, std::span<const float> x, int batch,
                     std::span<float> y, int threads);

}  // namespace ipfsa::engine
