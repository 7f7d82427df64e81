// Placeholder until the SIMD kernels land: the scalar reference, row by row of the batch.
#include "engine/qgemm.hpp"

#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace ipfsa::engine {

std::string_view to_string(KernelIsa isa) {
  return isa == KernelIsa::kAvx2 ? "avx2" : "portable";
}

KernelIsa best_isa() {
  return KernelIsa::kPortable;
}

void qgemm(const QuantMatrix& w, std::span<const float> x, int batch, std::span<float> y,
           const QGemmOptions&) {
  IPFSA_ASSERT(x.size() == static_cast<std::size_t>(batch) * w.cols);
  IPFSA_ASSERT(y.size() == static_cast<std::size_t>(batch) * w.rows);
  for (int b = 0; b < batch; ++b)
    gemv_reference(w, x.subspan(static_cast<std::size_t>(b) * w.cols, w.cols),
                   y.subspan(static_cast<std::size_t>(b) * w.rows, w.rows));
}

}  // namespace ipfsa::engine
