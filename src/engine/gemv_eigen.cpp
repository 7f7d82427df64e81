// fp32 Eigen baseline for the low-bit kernels (see gemv_eigen.hpp).
#include "engine/gemv_eigen.hpp"

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics when it inlines Eigen's GEMM
// packing with -march=native on an AVX-512 machine (a false positive in the compiler's headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include <algorithm>

#include "core/error.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {

void eigen_fp32_gemm(std::span<const float> w, int rows, int cols, std::span<const float> x, int batch,
                     std::span<float> y, int threads) {
  IPFSA_ASSERT(rows > 0 && cols > 0 && batch > 0);
  IPFSA_ASSERT(w.size() == static_cast<std::size_t>(rows) * cols);
  IPFSA_ASSERT(x.size() == static_cast<std::size_t>(batch) * cols);
  IPFSA_ASSERT(y.size() == static_cast<std::size_t>(batch) * rows);
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  const int nt = std::clamp(threads > 0 ? threads : default_thread_count(), 1, rows);
  engine_thread_pool().run(nt, [&](int t) {
    // Row blocks rounded to 16 rows so that no block splits an Eigen kernel's register tile.
    const int r0 = static_cast<int>(static_cast<long long>(rows) * t / nt) / 16 * 16;
    const int r1 =
        t + 1 == nt ? rows : static_cast<int>(static_cast<long long>(rows) * (t + 1) / nt) / 16 * 16;
    if (r1 <= r0) return;
    const Eigen::Map<const RowMatrix> wb(w.data() + static_cast<std::size_t>(r0) * cols, r1 - r0, cols);
    if (batch == 1) {
      const Eigen::Map<const Eigen::VectorXf> xv(x.data(), cols);
      Eigen::Map<Eigen::VectorXf> yv(y.data() + r0, r1 - r0);
      yv.noalias() = wb * xv;
    } else {
      // Y^T (rows, batch) = W X^T: y row-major (batch, rows) is Y^T column-major, and likewise x.
      // (Measured slightly faster than Y = X W^T for skinny batches: both pack the whole W block.)
      const Eigen::Map<const Eigen::MatrixXf> xt(x.data(), cols, batch);
      Eigen::Map<Eigen::MatrixXf, 0, Stride> yt(y.data() + r0, r1 - r0, batch, Stride(rows));
      yt.noalias() = wb * xt;
    }
  });
}

}  // namespace ipfsa::engine
