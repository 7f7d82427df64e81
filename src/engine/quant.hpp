// Group-wise weight quantization at 2, 3, 4 and 8 bits (docs/quantization.md): the packed format,
// the quantizer (with a per-group clipping search), and plain scalar references for dequantization
// and the matrix-vector product that the SIMD kernels are tested against.
// Weights are row-major (rows = output features, cols = input features); groups of `group`
// consecutive weights run along a row, each with an fp16 scale (and an fp16 offset when
// asymmetric). Codes are packed in 32-weight chunks of 4 * bits bytes (layout in the doc).
// Thread-safety: all functions are pure apart from writing their output arguments; quantize may
// use `threads` std::threads internally and joins them before returning.
// On failure quantize returns an Error (kInput) and produces nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.hpp"

namespace ipfsa::engine {

enum class QuantScheme {
  kAsymmetric,  // w ~ s * q + m, q in [0, 2^b - 1]; s and m fp16 (zeros[] holds m)
  kSymmetric,   // w ~ s * (q - 2^(b-1)), q in [0, 2^b - 1]; s fp16, no zeros
};

struct QuantParams {
  int bits = 4;    // 2, 3, 4 or 8
  int group = 64;  // 32, 64 or 128 weights per (scale, zero)
  QuantScheme scheme = QuantScheme::kAsymmetric;
  bool search_clip = true;  // false: plain min/max rounding
};

// Weights per packed chunk; every group is a whole number of chunks.
inline constexpr int kQuantChunk = 32;

struct QuantMatrix {
  int rows = 0;
  int cols = 0;
  QuantParams params;
  std::vector<std::uint8_t> packed;   // (rows, cols / 32 * 4 * bits) bytes, row-major
  std::vector<std::uint16_t> scales;  // (rows, cols / group) fp16
  std::vector<std::uint16_t> zeros;   // (rows, cols / group) fp16 offsets m; empty when symmetric

  std::size_t row_bytes() const { return static_cast<std::size_t>(cols) / kQuantChunk * 4 * params.bits; }
  int groups_per_row() const { return cols / params.group; }
  // Everything needed to dequantize: packed codes + scales + zeros (not the shape fields).
  std::size_t bytes() const;
  // bytes() * 8 / (rows * cols): bits + 16 / group (symmetric) or bits + 32 / group (asymmetric).
  double bits_per_weight() const;
};

// Checks bits, group, scheme and the shape (rows, cols > 0, cols % group == 0).
Result<void> validate_quant_params(const QuantParams& params, int rows, int cols);

// Quantizes the row-major rows x cols matrix w (w.size() == rows * cols). Error (kInput) for bad
// params or shape, a size mismatch, non-finite weights, or weights whose scale overflows fp16.
// Deterministic: the result does not depend on `threads` (rows are split between threads).
Result<QuantMatrix> quantize(std::span<const float> w, int rows, int cols, const QuantParams& params,
                             int threads = 1);

// The code (0 .. 2^bits - 1) of weight (r, c), read from the packed layout.
int quant_code(const QuantMatrix& q, int r, int c);

// Reference dequantization, plain scalar: out (rows * cols floats, row-major) = W-hat.
void dequantize(const QuantMatrix& q, std::span<float> out);

// Reference y = W-hat x, plain scalar, accumulated in double: x has cols entries, y has rows.
void gemv_reference(const QuantMatrix& q, std::span<const float> x, std::span<float> y);

// ||w - w_hat|| / ||w|| in double (0 when w is all zero); sizes must match.
double relative_rmse(std::span<const float> w, std::span<const float> w_hat);

// The figures `ipfs-accelerate quantize` prints: a seeded N(0, 1) rows x cols matrix
// (std::mt19937_64(seed) + std::normal_distribution<float>), quantized with params (clip search)
// and again with plain min/max rounding.
struct QuantErrorReport {
  double rel_rmse = 0.0;         // with params.search_clip forced on
  double minmax_rel_rmse = 0.0;  // with params.search_clip forced off
  double bits_per_weight = 0.0;
  double seconds = 0.0;  // wall time of the clip-search quantization alone
};
Result<QuantErrorReport> measure_quant_error(int rows, int cols, std::uint64_t seed, QuantParams params,
                                             int threads = 2);

}  // namespace ipfsa::engine
