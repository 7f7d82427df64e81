// Dequant-fused GEMV/GEMM (src/engine/qgemm.hpp, docs/kernels.md §Tolerance) and the engine's thread
// pool (src/engine/thread_pool.hpp) and the fp32 Eigen baseline of `bench gemv`
// (src/engine/gemv_eigen.hpp).
//
// Postconditions checked for every bit width x group x scheme, on every kernel path (portable,
// AVX2, AVX-512 VNNI; a path the CPU lacks is skipped with a reason), at shapes on and off the kernels'
// block edges (rows 1, 3, 5, 8, 67; 1 to 17 groups per row; batch 1, 2, 3, 5, 7; 1 to 4 threads):
//   1. y equals W-hat times the int8-rounded activations (modelled here independently, in double)
//      within the fp32 rounding bound (gpr + 8) * 2^-23 * sum_i (|s q_i| + 128 |s| + |m|) |x-hat_i|.
//   2. y is within the documented bound of gemv_reference on the unrounded activations:
//      sum_g d_g (1/2 + 2^-15) * sum_{i in g} |w-hat_i|, plus the bound of 1 and the reference's
//      own fp32 rounding of w-hat.
//   3. The result does not depend on the thread count (bit for bit).
//   4. A corrupted packed byte, scale or offset is detected by 1 (the tests can fail).
//   5. The AVX-512 VNNI kernels give the AVX2 kernels' results bit for bit.
#include "engine/qgemm.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/fp16.hpp"
#include "engine/gemv_eigen.hpp"
#include "engine/quant.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {
namespace {

constexpr int kBits[] = {2, 3, 4, 8};
constexpr int kGroups[] = {32, 64, 128};
constexpr QuantScheme kSchemes[] = {QuantScheme::kAsymmetric, QuantScheme::kSymmetric};

bool cpu_has_avx2() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512vnni() {
#if defined(__x86_64__)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

std::vector<KernelIsa> isas() {
  std::vector<KernelIsa> out{KernelIsa::kPortable};
  if (cpu_has_avx2()) out.push_back(KernelIsa::kAvx2);
  if (cpu_has_avx512vnni()) out.push_back(KernelIsa::kAvx512Vnni);
  return out;
}

// Why a test ran on fewer paths than it names, or "" when it ran on all of them.
std::string missing_isas() {
  if (!cpu_has_avx2()) return "the CPU lacks AVX2/FMA/F16C: only the portable kernels were tested";
  if (!cpu_has_avx512vnni())
    return "the CPU lacks AVX-512 F/BW/VL/VNNI: the avx512vnni kernels were not tested";
  return "";
}

std::vector<float> normal(std::size_t n, std::uint64_t seed, float sigma = 1.0f) {
  std::vector<float> v(n);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  for (float& x : v) x = dist(rng);
  return v;
}

QuantMatrix make_matrix(int rows, int cols, int bits, int group, QuantScheme scheme, std::uint64_t seed,
                        bool search = false) {
  QuantParams p;
  p.bits = bits;
  p.group = group;
  p.scheme = scheme;
  p.search_clip = search;
  auto q = quantize(normal(static_cast<std::size_t>(rows) * cols, seed), rows, cols, p);
  EXPECT_TRUE(q.ok());
  return std::move(*q);
}

std::string describe(const QuantMatrix& w, int batch, int threads, KernelIsa isa) {
  return std::to_string(w.params.bits) + "-bit g" + std::to_string(w.params.group) +
         (w.params.scheme == QuantScheme::kSymmetric ? " sym " : " asym ") + std::to_string(w.rows) + "x" +
         std::to_string(w.cols) + " batch " + std::to_string(batch) + " threads " + std::to_string(threads) +
         " " + std::string(to_string(isa));
}

// The activation rounding of docs/kernels.md §Activations, written independently of the kernels:
// per group d = max|x| / 127, q = nearbyint(x * (127 / max|x|)); x-hat = d * q.
std::vector<double> round_activations(const std::vector<float>& x, int batch, int cols, int group,
                                      std::vector<double>* half_steps) {
  std::vector<double> xh(x.size());
  half_steps->assign(static_cast<std::size_t>(batch) * (cols / group), 0.0);
  for (int n = 0; n < batch; ++n) {
    for (int g = 0; g < cols / group; ++g) {
      const float* xg = x.data() + static_cast<std::size_t>(n) * cols + static_cast<std::size_t>(g) * group;
      float amax = 0.0f;
      for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(xg[i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const float d = amax / 127.0f;
      for (int i = 0; i < group; ++i)
        xh[static_cast<std::size_t>(n) * cols + static_cast<std::size_t>(g) * group + i] =
            static_cast<double>(d) * std::nearbyint(xg[i] * inv);
      // |x - x-hat| <= d / 2 plus the fp32 rounding of x * inv, inv and d (3 * 2^-24 * 127 * d).
      (*half_steps)[static_cast<std::size_t>(n) * (cols / group) + g] = (0.5 + 0x1p-15) * d;
    }
  }
  return xh;
}

struct Expected {
  std::vector<double> exact;  // W-hat x-hat in double
  std::vector<double> tight;  // postcondition 1's bound per entry
  std::vector<double> loose;  // postcondition 2's bound per entry
  std::vector<double> ref;    // gemv_reference on x
};

Expected expected(const QuantMatrix& w, const std::vector<float>& x, int batch) {
  const int gpr = w.groups_per_row();
  const int group = w.params.group;
  const bool sym = w.params.scheme == QuantScheme::kSymmetric;
  const double c = static_cast<double>(1 << (w.params.bits - 1));
  std::vector<double> half_steps;
  const std::vector<double> xh = round_activations(x, batch, w.cols, group, &half_steps);
  Expected e;
  const std::size_t ny = static_cast<std::size_t>(batch) * w.rows;
  e.exact.assign(ny, 0.0);
  e.tight.assign(ny, 0.0);
  e.loose.assign(ny, 0.0);
  e.ref.assign(ny, 0.0);
  std::vector<float> yr(w.rows);
  for (int n = 0; n < batch; ++n) {
    gemv_reference(w, std::span<const float>(x).subspan(static_cast<std::size_t>(n) * w.cols, w.cols), yr);
    for (int r = 0; r < w.rows; ++r) {
      double sum = 0.0, scale = 0.0, loose = 0.0;
      for (int g = 0; g < gpr; ++g) {
        const std::size_t gi = static_cast<std::size_t>(r) * gpr + g;
        const double s = fp16_to_float(w.scales[gi]);
        const double m = sym ? -c * s : fp16_to_float(w.zeros[gi]);
        double abs_w = 0.0;
        for (int i = 0; i < group; ++i) {
          const int col = g * group + i;
          const double q = quant_code(w, r, col);
          const double xv = xh[static_cast<std::size_t>(n) * w.cols + col];
          sum += (s * q + m) * xv;
          scale += (std::fabs(s) * (q + 128.0) + std::fabs(m)) * std::fabs(xv);
          abs_w += std::fabs(s * q + m);
        }
        loose += half_steps[static_cast<std::size_t>(n) * gpr + g] * abs_w;
      }
      const std::size_t yi = static_cast<std::size_t>(n) * w.rows + r;
      e.exact[yi] = sum;
      e.tight[yi] = (gpr + 8) * 0x1p-23 * scale;
      // The reference itself rounds each w-hat to fp32 (relative 2^-24) before its double sum.
      e.loose[yi] = loose + e.tight[yi] + 0x1p-23 * scale;
      e.ref[yi] = yr[r];
    }
  }
  return e;
}

std::vector<float> run(const QuantMatrix& w, const std::vector<float>& x, int batch, int threads,
                       KernelIsa isa) {
  std::vector<float> y(static_cast<std::size_t>(batch) * w.rows, std::nanf(""));
  QGemmOptions o;
  o.threads = threads;
  o.isa = isa;
  qgemm(w, x, batch, y, o);
  return y;
}

// Postconditions 1 and 2; returns the number of entries outside the tight bound.
int count_mismatches(const std::vector<float>& y, const Expected& e, const std::string& what,
                     bool report = true) {
  int bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(static_cast<double>(y[i]) - e.exact[i]);
    if (!(err <= e.tight[i])) {
      ++bad;
      if (report && bad <= 3)
        ADD_FAILURE() << what << ": y[" << i << "] = " << y[i] << ", W-hat x-hat = " << e.exact[i]
                      << ", |error| " << err << " > bound " << e.tight[i];
    }
    const double ref_err = std::fabs(static_cast<double>(y[i]) - e.ref[i]);
    if (report && !(ref_err <= e.loose[i]))
      ADD_FAILURE() << what << ": y[" << i << "] = " << y[i] << ", gemv_reference " << e.ref[i]
                    << ", |error| " << ref_err << " > documented bound " << e.loose[i];
  }
  return bad;
}

struct Shape {
  int rows, groups, batch, threads;
};
constexpr Shape kShapes[] = {
    {1, 1, 1, 1}, {3, 2, 2, 2}, {5, 9, 3, 3}, {67, 17, 1, 2}, {67, 3, 7, 4}, {8, 8, 5, 2}, {4, 16, 1, 1},
};

TEST(QGemm, EveryFormatMatchesTheRoundedActivationModel) {
  std::uint64_t seed = 100;
  for (KernelIsa isa : isas())
    for (int bits : kBits)
      for (int group : kGroups)
        for (QuantScheme scheme : kSchemes)
          for (const Shape& s : kShapes) {
            const QuantMatrix w = make_matrix(s.rows, s.groups * group, bits, group, scheme, ++seed);
            const std::vector<float> x = normal(static_cast<std::size_t>(s.batch) * w.cols, ++seed, 2.0f);
            const Expected e = expected(w, x, s.batch);
            const std::vector<float> y = run(w, x, s.batch, s.threads, isa);
            EXPECT_EQ(count_mismatches(y, e, describe(w, s.batch, s.threads, isa)), 0);
          }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, ClipSearchedWeightsAndLargeShapes) {
  // The clipping search gives codes and metadata of another distribution (same layout); a larger
  // shape spreads the rows over many pieces of the thread split.
  for (KernelIsa isa : isas())
    for (int bits : kBits) {
      const QuantMatrix w = make_matrix(300, 512, bits, 64, QuantScheme::kAsymmetric, 7 + bits, true);
      const std::vector<float> x = normal(static_cast<std::size_t>(2) * w.cols, 99);
      const Expected e = expected(w, x, 2);
      EXPECT_EQ(count_mismatches(run(w, x, 2, 2, isa), e, describe(w, 2, 2, isa)), 0);
      std::vector<float> x1(x.begin(), x.begin() + w.cols);
      const Expected e1 = expected(w, x1, 1);
      EXPECT_EQ(count_mismatches(run(w, x1, 1, 2, isa), e1, describe(w, 1, 2, isa)), 0);
    }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, ResultDoesNotDependOnTheThreadCount) {
  for (KernelIsa isa : isas())
    for (int bits : kBits) {
      const QuantMatrix w = make_matrix(131, 256, bits, 32, QuantScheme::kSymmetric, 11);
      for (int batch : {1, 3}) {
        const std::vector<float> x = normal(static_cast<std::size_t>(batch) * w.cols, 12);
        const std::vector<float> y1 = run(w, x, batch, 1, isa);
        for (int threads : {2, 3, 5, 8})
          EXPECT_EQ(run(w, x, batch, threads, isa), y1) << describe(w, batch, threads, isa);
      }
    }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, ExtremeCodesAndActivationsDoNotSaturate) {
  // All codes at their maximum (packed bytes 0xFF) or minimum (0x00) with activations of one sign
  // at full int8 range: the largest int16 partial sums of docs/kernels.md §Bounds.
  for (KernelIsa isa : isas())
    for (int bits : kBits)
      for (int group : kGroups)
        for (QuantScheme scheme : kSchemes)
          for (std::uint8_t fill : {std::uint8_t{0x00}, std::uint8_t{0xFF}})
            for (float sign : {1.0f, -1.0f}) {
              QuantMatrix w = make_matrix(5, 2 * group, bits, group, scheme, 3);
              std::fill(w.packed.begin(), w.packed.end(), fill);
              std::fill(w.scales.begin(), w.scales.end(), fp16_from_float(0.5f));
              std::fill(w.zeros.begin(), w.zeros.end(), fp16_from_float(-1.0f));
              const std::vector<float> x(static_cast<std::size_t>(2) * w.cols, sign * 3.0f);
              const Expected e = expected(w, x, 2);
              EXPECT_EQ(count_mismatches(run(w, x, 2, 2, isa), e, describe(w, 2, 2, isa)), 0)
                  << "fill 0x" << std::hex << int{fill} << " sign " << sign;
              const Expected e1 = expected(w, std::vector<float>(x.begin(), x.begin() + w.cols), 1);
              EXPECT_EQ(count_mismatches(run(w, std::vector<float>(x.begin(), x.begin() + w.cols), 1, 1, isa),
                                         e1, describe(w, 1, 1, isa)),
                        0);
            }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, ZeroActivationsGiveZero) {
  for (KernelIsa isa : isas()) {
    const QuantMatrix w = make_matrix(9, 128, 3, 64, QuantScheme::kAsymmetric, 5);
    const std::vector<float> y = run(w, std::vector<float>(2 * 128, 0.0f), 2, 2, isa);
    for (float v : y) EXPECT_EQ(v, 0.0f);
  }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, CorruptedWeightsAreDetected) {
  // Postcondition 4: the comparison can fail. One packed byte flipped (every bit) in row 2, then a
  // scale, then an offset: row 2 must leave the bound, the other rows must not.
  for (KernelIsa isa : isas())
    for (int bits : kBits) {
      const QuantMatrix good = make_matrix(6, 256, bits, 64, QuantScheme::kAsymmetric, 21);
      const std::vector<float> x = normal(static_cast<std::size_t>(good.cols), 22);
      const Expected e = expected(good, x, 1);
      ASSERT_EQ(count_mismatches(run(good, x, 1, 2, isa), e, describe(good, 1, 2, isa)), 0);
      for (int what = 0; what < 3; ++what) {
        QuantMatrix bad = good;
        if (what == 0) bad.packed[2 * bad.row_bytes() + 5] ^= 0xFF;
        if (what == 1) bad.scales[2 * bad.groups_per_row() + 1] ^= 0x0400;  // exponent bit: x2 or /2
        if (what == 2) bad.zeros[2 * bad.groups_per_row() + 3] ^= 0x0400;
        const std::vector<float> y = run(bad, x, 1, 2, isa);
        for (int r = 0; r < bad.rows; ++r) {
          const double err = std::fabs(static_cast<double>(y[r]) - e.exact[r]);
          if (r == 2)
            EXPECT_GT(err, e.tight[r])
                << describe(bad, 1, 2, isa) << " corruption " << what << " not detected";
          else
            EXPECT_LE(err, e.tight[r]) << describe(bad, 1, 2, isa) << " row " << r;
        }
      }
    }
  if (const std::string why = missing_isas(); !why.empty()) GTEST_SKIP() << why;
}

TEST(QGemm, EnvironmentForcesAPath) {
  const char* old = std::getenv("IPFSA_KERNEL");
  const std::string saved = old ? old : "";
  const KernelIsa best = cpu_has_avx512vnni() ? KernelIsa::kAvx512Vnni
                         : cpu_has_avx2()     ? KernelIsa::kAvx2
                                              : KernelIsa::kPortable;
  ::setenv("IPFSA_KERNEL", "portable", 1);
  EXPECT_EQ(best_isa(), KernelIsa::kPortable);
  EXPECT_EQ(QGemmOptions{}.isa, KernelIsa::kPortable);
  ::setenv("IPFSA_KERNEL", "avx2", 1);
  EXPECT_EQ(best_isa(), cpu_has_avx2() ? KernelIsa::kAvx2 : KernelIsa::kPortable);
  EXPECT_EQ(QGemmOptions{}.isa, best_isa());
  ::setenv("IPFSA_KERNEL", "avx512vnni", 1);
  EXPECT_EQ(best_isa(), best);
  ::setenv("IPFSA_KERNEL", "something-else", 1);
  EXPECT_EQ(best_isa(), best);
  ::unsetenv("IPFSA_KERNEL");
  EXPECT_EQ(best_isa(), best);
  if (old) ::setenv("IPFSA_KERNEL", saved.c_str(), 1);
  EXPECT_EQ(to_string(KernelIsa::kAvx512Vnni), "avx512vnni");
  EXPECT_EQ(to_string(KernelIsa::kAvx2), "avx2");
  EXPECT_EQ(to_string(KernelIsa::kPortable), "portable");
}

TEST(QGemm, Avx512VnniMatchesAvx2BitForBit) {
  // Postcondition 5: the same int32 lanes and the same fp32 operations (docs/kernels.md).
  if (!cpu_has_avx512vnni()) GTEST_SKIP() << "the CPU lacks AVX-512 F/BW/VL/VNNI";
  std::uint64_t seed = 500;
  for (int bits : kBits)
    for (int group : kGroups)
      for (QuantScheme scheme : kSchemes)
        for (const Shape& s : kShapes) {
          const QuantMatrix w = make_matrix(s.rows, s.groups * group, bits, group, scheme, ++seed);
          const std::vector<float> x = normal(static_cast<std::size_t>(s.batch) * w.cols, ++seed, 2.0f);
          EXPECT_EQ(run(w, x, s.batch, s.threads, KernelIsa::kAvx512Vnni),
                    run(w, x, s.batch, s.threads, KernelIsa::kAvx2))
              << describe(w, s.batch, s.threads, KernelIsa::kAvx512Vnni);
        }
}

// ---- the fp32 Eigen baseline of `bench gemv` ----

TEST(EigenFp32Gemm, MatchesANaiveProduct) {
  for (int batch : {1, 3}) {
    const int rows = 37, cols = 96;
    const std::vector<float> w = normal(static_cast<std::size_t>(rows) * cols, 31);
    const std::vector<float> x = normal(static_cast<std::size_t>(batch) * cols, 32);
    for (int threads : {1, 2, 3}) {
      std::vector<float> y(static_cast<std::size_t>(batch) * rows, std::nanf(""));
      eigen_fp32_gemm(w, rows, cols, x, batch, y, threads);
      for (int n = 0; n < batch; ++n)
        for (int r = 0; r < rows; ++r) {
          double sum = 0.0, scale = 0.0;
          for (int c = 0; c < cols; ++c) {
            const double p = static_cast<double>(w[static_cast<std::size_t>(r) * cols + c]) *
                             x[static_cast<std::size_t>(n) * cols + c];
            sum += p;
            scale += std::fabs(p);
          }
          EXPECT_NEAR(y[static_cast<std::size_t>(n) * rows + r], sum, 2.0 * cols * 0x1p-24 * scale)
              << "batch " << batch << " threads " << threads << " row " << r;
        }
    }
  }
}

// ---- thread pool ----

TEST(ThreadPool, RunsEveryTaskOnceOnItsOwnThread) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.threads(), 4);
  for (int n = 1; n <= 4; ++n) {
    std::vector<std::thread::id> ids(n);
    std::vector<int> calls(n, 0);
    pool.run(n, [&](int t) {
      ids[t] = std::this_thread::get_id();
      ++calls[t];
    });
    EXPECT_EQ(ids[0], std::this_thread::get_id());
    EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), static_cast<std::size_t>(n));
    for (int c : calls) EXPECT_EQ(c, 1);
  }
}

TEST(ThreadPool, ManyRunsSeeEachOthersWrites) {
  // Each run reads what another thread wrote in the previous run (no data race within a run).
  ThreadPool pool(3);
  std::vector<long> prev(3, 0), next(3, 0);
  for (int i = 0; i < 20000; ++i) {
    pool.run(3, [&](int t) { next[t] = prev[(t + 1) % 3] + 1; });
    std::swap(prev, next);
  }
  for (long v : prev) EXPECT_EQ(v, 20000);
}

TEST(ThreadPool, GrowsOnDemandAndRunsNestedCallsInline) {
  ThreadPool pool(1);
  std::atomic<int> count{0};
  pool.run(5, [&](int) { ++count; });
  EXPECT_EQ(count.load(), 5);
  EXPECT_EQ(pool.threads(), 5);
  std::atomic<int> inner{0};
  pool.run(2, [&](int) {
    const auto id = std::this_thread::get_id();
    pool.run(3, [&](int) {
      EXPECT_EQ(std::this_thread::get_id(), id);
      ++inner;
    });
  });
  EXPECT_EQ(inner.load(), 6);
}

TEST(ThreadPool, ConcurrentCallersQueue) {
  ThreadPool pool(2);
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) pool.run(2, [&](int t) { sum += t + 1; });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4L * 2000 * 3);
}

TEST(ThreadPool, DefaultThreadCountHonoursTheEnvironment) {
  const char* old = std::getenv("IPFSA_THREADS");
  const std::string saved = old ? old : "";
  ::setenv("IPFSA_THREADS", "3", 1);
  EXPECT_EQ(default_thread_count(), 3);
  ::setenv("IPFSA_THREADS", "zero", 1);
  EXPECT_GE(default_thread_count(), 1);
  ::unsetenv("IPFSA_THREADS");
  EXPECT_GE(default_thread_count(), 1);
  if (old) ::setenv("IPFSA_THREADS", saved.c_str(), 1);
}

}  // namespace
}  // namespace ipfsa::engine
