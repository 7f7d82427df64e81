// Dequant-fused products with low-bit weights (docs/quantization.md, docs/kernels.md):
// Y = X W-hat^T for a batch of activation rows, reading the packed QuantMatrix directly (never
// materialising W-hat). Batch 1 is the GEMV every decoder token runs; batch > 1 is the GEMM of
// prefill and of encoders.
// Kernels: an AVX-512 VNNI path and an AVX2/FMA/F16C path chosen at run time when the CPU has
// them, and a portable C++ path that runs everywhere; all are tested against gemv_reference
// (quant.hpp).
// Threading: rows of W are split over a persistent pool of worker threads owned by the engine
// (created on first use, `threads` at most); calls from several threads at once are safe (they
// queue). Nothing here allocates per call except when the batch grows.
#pragma once

#include <span>
#include <string_view>

#include "engine/quant.hpp"

namespace ipfsa::engine {

enum class KernelIsa : std::uint8_t { kPortable = 0, kAvx2 = 1, kAvx512Vnni = 2 };
std::string_view to_string(KernelIsa isa);

// The fastest path this CPU runs: kAvx512Vnni when it has AVX-512 F, BW, VL and VNNI (and AVX2,
// FMA, F16C), else kAvx2 when it has AVX2, FMA and F16C, else kPortable. The environment variable
// IPFSA_KERNEL=portable|avx2|avx512vnni caps the choice at that path (for comparisons and tests).
KernelIsa best_isa();

struct QGemmOptions {
  int threads = 0;  // 0: all hardware threads (or IPFSA_THREADS when set)
  KernelIsa isa = best_isa();
};

// y (batch, w.rows) = x (batch, w.cols) W-hat^T, both row-major fp32. Sizes must agree
// (x.size() == batch * w.cols, y.size() == batch * w.rows); a mismatch is a bug (IPFSA_ASSERT).
// The activations may be rounded internally (e.g. to int8 per 32-block): results are within the
// tolerance documented in docs/kernels.md of gemv_reference, not bit-identical.
void qgemm(const QuantMatrix& w, std::span<const float> x, int batch, std::span<float> y,
           const QGemmOptions& options = {});

}  // namespace ipfsa::engine
