#include "engine/gemm_eigen.hpp"

// GCC 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics when it inlines Eigen's GEMM
// with -march=native on an AVX-512 machine (a false positive in the compiler's headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>

#include "engine/kind_util.hpp"

namespace ipfsa::engine {

namespace {

using Clock = std::chrono::steady_clock;

void fill_uniform(Eigen::MatrixXf& m, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
}

MatrixRef ref(const Eigen::MatrixXf& m) {
  return MatrixRef{m.data(), m.rows(), m.cols()};
}

core::TaskOutcome gemm_kind(const core::TaskSpec& task) {
  return run_gemm_eigen(task);
}

constexpr Kind kGemmKinds[] = {
    {"gemm.eigen", "fp32 matrix multiply C(m,n) = A(m,k) B(k,n) with Eigen; params m, n, k, seed, threads",
     &gemm_kind},
};

}  // namespace

std::span<const Kind> gemm_kinds() {
  return kGemmKinds;
}

GemmCheck verify_gemm(MatrixRef a, MatrixRef b, MatrixRef c, std::int64_t block) {
  GemmCheck check;
  if (a.cols != b.rows || c.rows != a.rows || c.cols != b.cols) {
    check.message = "gemm.eigen: shape mismatch in self-check";
    return check;
  }
  const std::int64_t k = a.cols;
  check.tolerance = 2.0 * static_cast<double>(std::max<std::int64_t>(k, 1)) * 0x1p-24;
  const std::int64_t br = std::min(block, c.rows), bc = std::min(block, c.cols);
  const std::int64_t row_starts[] = {0, c.rows - br};
  const std::int64_t col_starts[] = {0, c.cols - bc};
  std::int64_t worst_r = -1, worst_c = -1;
  double worst_expected = 0.0;
  for (int corner = 0; corner < 2; ++corner) {
    for (std::int64_t j = col_starts[corner]; j < col_starts[corner] + bc; ++j) {
      for (std::int64_t i = row_starts[corner]; i < row_starts[corner] + br; ++i) {
        double sum = 0.0, scale = 0.0;
        for (std::int64_t l = 0; l < k; ++l) {
          const double p = static_cast<double>(a.at(i, l)) * static_cast<double>(b.at(l, j));
          sum += p;
          scale += std::abs(p);
        }
        const double actual = c.at(i, j);
        // A zero scale means an exact zero is expected; any deviation then counts in full.
        const double err = std::isfinite(actual) ? std::abs(actual - sum) / (scale > 0.0 ? scale : 1.0)
                                                 : std::numeric_limits<double>::infinity();
        if (worst_r < 0 || err > check.max_rel_error) {
          check.max_rel_error = err;
          worst_r = i;
          worst_c = j;
          worst_expected = sum;
        }
      }
    }
  }
  check.ok = worst_r >= 0 && check.max_rel_error <= check.tolerance;
  if (!check.ok) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "gemm.eigen: self-check failed: C(%lld,%lld) = %.9g, naive product gives %.9g "
                  "(relative error %.3g > tolerance %.3g)",
                  static_cast<long long>(worst_r), static_cast<long long>(worst_c),
                  worst_r >= 0 ? static_cast<double>(c.at(worst_r, worst_c)) : 0.0, worst_expected,
                  check.max_rel_error, check.tolerance);
    check.message = buf;
  }
  return check;
}

core::TaskOutcome run_gemm_eigen(const core::TaskSpec& task, GemmTamper tamper) {
  constexpr std::int64_t kMaxDim = 1 << 16;
  const auto m = int_param(task, "m", 256, 1, kMaxDim);
  const auto n = int_param(task, "n", 256, 1, kMaxDim);
  const auto k = int_param(task, "k", 256, 1, kMaxDim);
  const auto seed = int_param(task, "seed", 1, 0, std::numeric_limits<std::int64_t>::max());
  const auto threads = int_param(task, "threads", 1, 1, 1024);
  for (const auto* p : {&m, &n, &k, &seed, &threads})
    if (!*p) return failed_outcome(p->error().message);

  Eigen::setNbThreads(static_cast<int>(*threads));
  std::mt19937_64 rng(static_cast<std::uint64_t>(*seed));
  Eigen::MatrixXf a(*m, *k), b(*k, *n), c(*m, *n);  // may throw std::bad_alloc -> oom
  fill_uniform(a, rng);
  fill_uniform(b, rng);

  for (std::uint32_t i = 0; i < task.warmup; ++i) c.noalias() = a * b;
  core::TaskOutcome o;
  o.samples_s.reserve(task.repeats);
  for (std::uint32_t i = 0; i < task.repeats; ++i) {
    const auto t0 = Clock::now();
    c.noalias() = a * b;
    o.samples_s.push_back(seconds_between(t0, Clock::now()));
  }
  if (task.warmup + task.repeats == 0) c.noalias() = a * b;  // always check a real product

  if (tamper != nullptr) tamper(c.data(), c.rows(), c.cols());
  const GemmCheck check = verify_gemm(ref(a), ref(b), ref(c));
  if (!check.ok) {
    core::TaskOutcome failed = failed_outcome(check.message);
    failed.samples_s = std::move(o.samples_s);
    failed.metrics = {{"check_max_rel_error", check.max_rel_error}};
    return failed;
  }

  o.status = core::TaskStatus::kPassed;
  o.metrics.emplace_back("threads", static_cast<double>(Eigen::nbThreads()));
  o.metrics.emplace_back("check_max_rel_error", check.max_rel_error);
  if (!o.samples_s.empty()) {
    const double mean = std::accumulate(o.samples_s.begin(), o.samples_s.end(), 0.0) /
                        static_cast<double>(o.samples_s.size());
    const double flops = 2.0 * static_cast<double>(*m) * static_cast<double>(*n) * static_cast<double>(*k);
    if (mean > 0.0) {
      o.throughput = 1.0 / mean;
      o.metrics.emplace_back("gflops", flops / mean / 1e9);
    }
  }
  return o;
}

}  // namespace ipfsa::engine
