// Private to src/engine (qgemm.cpp, qgemm_avx2.cpp, qgemm_avx512.cpp): the int8 activations the kernels
// consume and the per-ISA kernel entry points. The contract (docs/kernels.md §Activations):
//   for batch row n and weight group g (the weight group size `group`, 32..128 columns):
//     d[n][g]    = max_i |x_i| / 127                          (fp32; 0 when the group is all zero)
//     q_i        = nearbyint(x_i * (127 / max_i |x_i|))       (int8 in [-127, 127], ties to even)
//     dsum[n][g] = d[n][g] * sum_i q_i                        (fp32)
// A kernel then returns, for every row r and batch row n, the fp32 evaluation of
//   y[n][r] = sum_g ( s_rg * d_ng * sum_{i in g} q_ri x_i  +  m'_rg * dsum_ng )
// where m'_rg is the offset of code 0 (asymmetric: m; symmetric: -2^(b-1) s), i.e. W-hat times the
// dequantized activations d * q, up to fp32 rounding of the per-group terms.
// Thread-safety: kernels write only y rows [r0, r1) and read shared inputs.
#pragma once

#include <cstdint>

#include "engine/quant.hpp"

namespace ipfsa::engine::detail {

struct ActivationsView {
  int batch = 0;
  int cols = 0;
  int group = 0;                   // == the weight group
  const std::int8_t* q = nullptr;  // (batch, cols)
  const float* d = nullptr;        // (batch, cols / group)
  const float* dsum = nullptr;     // (batch, cols / group)
};

struct KernelArgs {
  const QuantMatrix* w = nullptr;
  ActivationsView x;
  float* y = nullptr;  // (batch, w->rows) row-major
};

// Computes y[n][r] for every batch row n and r in [r0, r1).
using RowKernel = void (*)(const KernelArgs& args, int r0, int r1);

// The activation quantization above for `batch` rows of `cols` floats. q, d and dsum must hold
// batch * cols and batch * cols / group entries. Portable and AVX2 versions give identical results.
void quantize_activations_portable(const float* x, int batch, int cols, int group, std::int8_t* q, float* d,
                                   float* dsum);

RowKernel portable_kernel(int bits, int group);

#if defined(__x86_64__)
#define IPFSA_HAVE_AVX2_KERNELS 1
void quantize_activations_avx2(const float* x, int batch, int cols, int group, std::int8_t* q, float* d,
                               float* dsum);
RowKernel avx2_kernel(int bits, int group);
// AVX-512 F/BW/VL/VNNI kernels (256-bit vectors, vpdpbusd); they take the AVX2 activation rounding
// and give results bit-identical to avx2_kernel's.
#define IPFSA_HAVE_AVX512VNNI_KERNELS 1
RowKernel avx512vnni_kernel(int bits, int group);
#endif

}  // namespace ipfsa::engine::detail
