// Private to src/engine (and its unit test): the gemm.eigen kind split into its measurement and its
// self-check, so a test can feed the check a wrong product and see the kind fail. No Eigen types in
// this header: Eigen is a private dependency of the engine library.
// Thread-safety: verify_gemm is pure; run_gemm_eigen sets Eigen's global thread count.
#pragma once

#include <cstdint>
#include <string>

#include "core/task.hpp"

namespace ipfsa::engine {

// A dense column-major fp32 matrix (leading dimension == rows), not owned.
struct MatrixRef {
  const float* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  float at(std::int64_t r, std::int64_t c) const { return data[c * rows + r]; }
};

struct GemmCheck {
  bool ok = false;
  double max_rel_error = 0.0;  // max over checked entries of |c - ref| / sum_l |a_il * b_lj|
  double tolerance = 0.0;
  std::string message;  // when !ok: the worst entry, expected and actual
};

// Checks c == a * b on two block x block corners of c (top-left and bottom-right, so both the
// first and the tail tiles of a blocked kernel are covered) against a naive triple loop in double
// precision. The error of each entry is relative to sum_l |a_il * b_lj|, the scale of a rounding
// error of that dot product; the tolerance 2 * k * 2^-24 bounds fp32 rounding in any summation
// order. Non-finite entries fail. Shapes must agree (a.cols == b.rows, c is a.rows x b.cols).
GemmCheck verify_gemm(MatrixRef a, MatrixRef b, MatrixRef c, std::int64_t block = 8);

// Called on the product between the timed runs and the check; tests use it to corrupt the result.
using GemmTamper = void (*)(float* c, std::int64_t rows, std::int64_t cols);

// The gemm.eigen kind. Params: m, n, k (default 256) -- C (m x n) = A (m x k) * B (k x n);
// seed (default 1) for the uniform [-1, 1) fill; threads (default 1) for Eigen::setNbThreads
// (only effective when the engine is built with OpenMP; the metric `threads` says what was used).
// Runs `warmup` untimed and `repeats` timed products; samples are seconds per product,
// throughput is products per second (1 / mean), metric gflops = 2mnk / mean / 1e9. Fails on bad
// params or a failed verify_gemm. Throws std::bad_alloc when the matrices do not fit memory_mb.
core::TaskOutcome run_gemm_eigen(const core::TaskSpec& task, GemmTamper tamper = nullptr);

}  // namespace ipfsa::engine
