// The low-bit GEMV/GEMM kernels, the plain device kernel and the cuBLAS fp16 path against the CPU
// references (quant.hpp: quantize, dequantize, gemv_reference) on seeded N(0, 1) data, for every
// bits x group x scheme, with sizes on and off the kernels' edges (4-row blocks, 16/32-byte
// segments, 64 x 64 tensor-core tiles). Tolerances are derived in docs/cuda.md §Tolerance.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../test_helpers.hpp"
#include "engine/fp16.hpp"
#include "engine/quant.hpp"
#include "gpu_test_util.hpp"

namespace ipfsa::cuda {
namespace {

using ::ipfsa::testing::normal;

using engine::QuantMatrix;
using engine::QuantParams;
using engine::QuantScheme;

constexpr double kU = 1.0 / (1 << 24);  // fp32 unit roundoff

QuantMatrix make_matrix(int rows, int cols, int bits, int group, QuantScheme scheme, std::uint64_t seed) {
  QuantParams p;
  p.bits = bits;
  p.group = group;
  p.scheme = scheme;
  p.search_clip = false;
  auto q = engine::quantize(normal(static_cast<std::size_t>(rows) * cols, seed), rows, cols, p, 2);
  EXPECT_TRUE(q.ok()) << q.error().message;
  return std::move(q).value();
}

QuantView view_of(const QuantMatrix& q) {
  return QuantView{q.rows,
                   q.cols,
                   q.params.bits,
                   q.params.group,
                   q.params.scheme == QuantScheme::kSymmetric,
                   q.packed.data(),
                   q.scales.data(),
                   q.zeros.empty() ? nullptr : q.zeros.data()};
}

// Device buffers for one product.
struct Io {
  float* x = nullptr;
  float* y = nullptr;
  Io(std::span<const float> hx, std::size_t ny) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&x), hx.size_bytes()), cudaSuccess);
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&y), ny * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(x, hx.data(), hx.size_bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemset(y, 0xFF, ny * sizeof(float)), cudaSuccess);  // NaN: unwritten outputs fail
  }
  ~Io() {
    cudaFree(x);
    cudaFree(y);
  }
  std::vector<float> result(std::size_t ny) const {
    std::vector<float> h(ny);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), y, ny * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

// The activations as the kernels round them: per weight group, d = max|x| / 127,
// q = nearbyint(x * (127 / max|x|)), x-hat = d * q.
std::vector<double> rounded_activations(std::span<const float> x, int group) {
  std::vector<double> out(x.size());
  for (std::size_t g = 0; g < x.size(); g += group) {
    float amax = 0.0f;
    for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(x[g + i]));
    const float d = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < group; ++i) out[g + i] = static_cast<double>(d) * std::nearbyint(x[g + i] * inv);
  }
  return out;
}

struct Case {
  int bits;
  int group;
  QuantScheme scheme;
};

std::vector<Case> all_formats() {
  std::vector<Case> v;
  for (int bits : {2, 3, 4, 8})
    for (int group : {32, 64, 128})
      for (QuantScheme s : {QuantScheme::kAsymmetric, QuantScheme::kSymmetric}) v.push_back({bits, group, s});
  return v;
}

std::string name(const Case& c, int rows, int cols, int batch) {
  return std::to_string(c.bits) + "b g" + std::to_string(c.group) +
         (c.scheme == QuantScheme::kSymmetric ? " sym " : " asym ") + std::to_string(rows) + "x" +
         std::to_string(cols) + " batch " + std::to_string(batch);
}

// Checks the dp4a GEMV against W-hat x-hat (docs/cuda.md §Tolerance, bound 1); returns the rows
// that fail.
std::vector<int> check_gemv(GpuContext& ctx, const QuantMatrix& q, const QuantMatrix& uploaded, int batch,
                            std::uint64_t seed, const std::string& what, bool report = true) {
  const int rows = q.rows;
  const int cols = q.cols;
  auto dev = GpuQuantMatrix::upload(ctx, view_of(uploaded));
  EXPECT_TRUE(dev.ok()) << dev.error().message;
  const std::vector<float> x = normal(static_cast<std::size_t>(batch) * cols, seed);
  Io io(x, static_cast<std::size_t>(batch) * rows);
  auto path = ctx.qgemm(*dev, io.x, batch, io.y);
  EXPECT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(*path, GpuPath::kGemvDp4a);
  const std::vector<float> y = io.result(static_cast<std::size_t>(batch) * rows);
  std::vector<float> w(static_cast<std::size_t>(rows) * cols);
  engine::dequantize(q, w);
  const int gpr = cols / q.params.group;
  const double cmax = (1 << q.params.bits) - 1;
  std::vector<int> bad;
  for (int b = 0; b < batch; ++b) {
    const std::vector<double> xh = rounded_activations(
        std::span<const float>(x).subspan(static_cast<std::size_t>(b) * cols, cols), q.params.group);
    for (int r = 0; r < rows; ++r) {
      double ref = 0.0;
      double mag = 0.0;
      for (int g = 0; g < gpr; ++g) {
        const double s = engine::fp16_to_float(q.scales[static_cast<std::size_t>(r) * gpr + g]);
        const double m = q.zeros.empty()
                             ? -s * (1 << (q.params.bits - 1))
                             : engine::fp16_to_float(q.zeros[static_cast<std::size_t>(r) * gpr + g]);
        for (int i = g * q.params.group; i < (g + 1) * q.params.group; ++i) {
          ref += static_cast<double>(w[static_cast<std::size_t>(r) * cols + i]) * xh[i];
          mag += (std::fabs(s) * cmax + std::fabs(m)) * std::fabs(xh[i]);
        }
      }
      const double tol = 2.0 * (cols / 32.0 + 8.0) * kU * mag + 1e-30;
      const float got = y[static_cast<std::size_t>(b) * rows + r];
      if (!(std::fabs(got - ref) <= tol)) {
        if (report && bad.size() < 3)
          ADD_FAILURE() << what << ": y[" << b << "][" << r << "] = " << got << ", W-hat x-hat = " << ref
                        << ", tolerance " << tol;
        bad.push_back(r);
      }
    }
  }
  return bad;
}

TEST(GpuGemv, MatchesRoundedReferenceForEveryFormatAndEdge) {
  IPFSA_GPU_CONTEXT(ctx);
  const std::pair<int, int> shapes[] = {{1, 1}, {67, 3}, {130, 35}};  // rows, cols in groups
  std::uint64_t seed = 11;
  for (const Case& c : all_formats())
    for (auto [rows, gcols] : shapes)
      for (int batch : {1, 3, 8}) {
        const int cols = gcols * c.group;
        const QuantMatrix q = make_matrix(rows, cols, c.bits, c.group, c.scheme, ++seed);
        const auto bad = check_gemv(ctx, q, q, batch, ++seed, name(c, rows, cols, batch));
        EXPECT_TRUE(bad.empty()) << name(c, rows, cols, batch) << ": " << bad.size() << " outputs off";
        if (HasFailure()) return;
      }
}

TEST(GpuGemv, LargeShape) {
  IPFSA_GPU_CONTEXT(ctx);
  for (int bits : {2, 3, 4, 8}) {
    const Case c{bits, 64, QuantScheme::kAsymmetric};
    const QuantMatrix q = make_matrix(515, 4096 + 64, bits, 64, c.scheme, 100 + bits);
    EXPECT_TRUE(check_gemv(ctx, q, q, 2, 200 + bits, name(c, 515, 4160, 2)).empty());
  }
}

// The comparison can fail: one flipped code byte, one scale with a flipped exponent bit, or one
// flipped offset is caught in that row, and only there.
TEST(GpuGemv, DetectsCorruptedWeights) {
  IPFSA_GPU_CONTEXT(ctx);
  for (int bits : {2, 3, 4, 8}) {
    const QuantMatrix q = make_matrix(37, 256, bits, 64, QuantScheme::kAsymmetric, 300 + bits);
    for (int what = 0; what < 3; ++what) {
      QuantMatrix bad = q;
      const int row = 17;
      if (what == 0) bad.packed[static_cast<std::size_t>(row) * q.row_bytes() + 5] ^= 0x5A;
      if (what == 1) bad.scales[static_cast<std::size_t>(row) * q.groups_per_row() + 1] ^= 0x0400;
      if (what == 2) bad.zeros[static_cast<std::size_t>(row) * q.groups_per_row() + 2] ^= 0x0400;
      const auto rows_off = check_gemv(ctx, q, bad, 1, 400 + bits, "corrupted", /*report=*/false);
      ASSERT_EQ(rows_off, std::vector<int>{row}) << bits << " bits, corruption " << what;
    }
  }
}

// Checks y (batch, rows) against gemv_reference on the unrounded x with tolerance
// factor * sum |w-hat| |x| per output.
void expect_close_to_reference(const QuantMatrix& q, std::span<const float> x, int batch,
                               std::span<const float> y, double factor, const std::string& what) {
  std::vector<float> w(static_cast<std::size_t>(q.rows) * q.cols);
  engine::dequantize(q, w);
  int reported = 0;
  for (int b = 0; b < batch; ++b) {
    std::vector<float> ref(q.rows);
    engine::gemv_reference(q, x.subspan(static_cast<std::size_t>(b) * q.cols, q.cols), ref);
    for (int r = 0; r < q.rows; ++r) {
      double mag = 0.0;
      for (int i = 0; i < q.cols; ++i)
        mag += std::fabs(static_cast<double>(w[static_cast<std::size_t>(r) * q.cols + i]) *
                         x[static_cast<std::size_t>(b) * q.cols + i]);
      const double tol = factor * mag + 1e-30;
      const float got = y[static_cast<std::size_t>(b) * q.rows + r];
      if (!(std::fabs(got - ref[r]) <= tol) && reported++ < 3)
        ADD_FAILURE() << what << ": y[" << b << "][" << r << "] = " << got << ", reference " << ref[r]
                      << ", tolerance " << tol;
    }
  }
}

TEST(GpuGemm, TensorCorePathMatchesReference) {
  IPFSA_GPU_CONTEXT(ctx);
  std::uint64_t seed = 500;
  for (const Case& c : all_formats())
    for (auto [rows, gcols, batch] : {std::tuple{63, 3, 9}, std::tuple{130, 5, 70}}) {
      const int cols = gcols * c.group;
      const QuantMatrix q = make_matrix(rows, cols, c.bits, c.group, c.scheme, ++seed);
      auto dev = GpuQuantMatrix::upload(ctx, view_of(q));
      ASSERT_TRUE(dev.ok()) << dev.error().message;
      const std::vector<float> x = normal(static_cast<std::size_t>(batch) * cols, ++seed);
      Io io(x, static_cast<std::size_t>(batch) * rows);
      auto path = ctx.qgemm(*dev, io.x, batch, io.y);
      ASSERT_TRUE(path.ok()) << path.error().message;
      EXPECT_EQ(*path, GpuPath::kGemmTensorCore);
      // fp16 operands: x and w-hat each rounded once (2^-11 relative), fp32 accumulation.
      expect_close_to_reference(q, x, batch, io.result(static_cast<std::size_t>(batch) * rows), 3.0 / 2048,
                                "tensor core " + name(c, rows, cols, batch));
      if (HasFailure()) return;
    }
}

TEST(GpuGemm, ForcedPathsAgreeAtSmallBatch) {
  IPFSA_GPU_CONTEXT(ctx);
  const QuantMatrix q = make_matrix(96, 512, 4, 64, QuantScheme::kAsymmetric, 77);
  auto dev = GpuQuantMatrix::upload(ctx, view_of(q));
  ASSERT_TRUE(dev.ok());
  const std::vector<float> x = normal(4 * 512, 78);
  Io io(x, 4 * 96);
  ASSERT_TRUE(ctx.qgemm(*dev, io.x, 4, io.y, GpuPath::kGemmTensorCore).ok());
  expect_close_to_reference(q, x, 4, io.result(4 * 96), 3.0 / 2048, "forced tensor core, batch 4");
}

TEST(GpuNaive, PlainKernelMatchesReference) {
  IPFSA_GPU_CONTEXT(ctx);
  std::uint64_t seed = 700;
  for (const Case& c : all_formats()) {
    const int rows = 41;
    const int cols = 3 * c.group;
    const QuantMatrix q = make_matrix(rows, cols, c.bits, c.group, c.scheme, ++seed);
    auto dev = GpuQuantMatrix::upload(ctx, view_of(q));
    ASSERT_TRUE(dev.ok());
    const std::vector<float> x = normal(2 * static_cast<std::size_t>(cols), ++seed);
    Io io(x, 2 * rows);
    ASSERT_TRUE(ctx.qgemm_naive(*dev, io.x, 2, io.y).ok());
    expect_close_to_reference(q, x, 2, io.result(2 * rows), 2.0 * (cols + 8) * kU,
                              "naive " + name(c, rows, cols, 2));
  }
}

TEST(GpuHostApi, CopiesInAndOutAndRejectsBadSizes) {
  IPFSA_GPU_CONTEXT(ctx);
  const QuantMatrix q = make_matrix(70, 256, 3, 32, QuantScheme::kSymmetric, 801);
  auto dev = GpuQuantMatrix::upload(ctx, view_of(q));
  ASSERT_TRUE(dev.ok());
  const std::vector<float> x = normal(5 * 256, 802);
  std::vector<float> y(5 * 70, std::nanf(""));
  auto path = ctx.qgemm_host(*dev, x, 5, y);
  ASSERT_TRUE(path.ok()) << path.error().message;
  expect_close_to_reference(q, x, 5, y, 0.02, "host api");
  std::vector<float> small(3);
  auto bad = ctx.qgemm_host(*dev, x, 5, small);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInput);
  EXPECT_GT(dev->device_bytes(), q.packed.size());
}

TEST(GpuUpload, RejectsBadViews) {
  IPFSA_GPU_CONTEXT(ctx);
  const QuantMatrix q = make_matrix(4, 64, 4, 64, QuantScheme::kAsymmetric, 901);
  QuantView v = view_of(q);
  v.bits = 5;
  EXPECT_FALSE(GpuQuantMatrix::upload(ctx, v).ok());
  v = view_of(q);
  v.cols = 96;  // not a multiple of the group
  EXPECT_FALSE(GpuQuantMatrix::upload(ctx, v).ok());
}

TEST(GpuCublas, Fp16GemmMatchesDoubleReference) {
  IPFSA_GPU_CONTEXT(ctx);
  for (auto [rows, cols, batch] :
       {std::tuple{33, 70, 1}, std::tuple{257, 1000, 4}, std::tuple{64, 4096, 17}}) {
    const std::vector<float> w = normal(static_cast<std::size_t>(rows) * cols, rows);
    const std::vector<float> x = normal(static_cast<std::size_t>(batch) * cols, cols);
    auto m = GpuHalfMatrix::upload(ctx, w, rows, cols);
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::vector<float> y(static_cast<std::size_t>(batch) * rows, std::nanf(""));
    ASSERT_TRUE(ctx.gemm_fp16_host(*m, x, batch, y).ok());
    for (int b = 0; b < batch; ++b)
      for (int r = 0; r < rows; ++r) {
        double ref = 0.0;
        double mag = 0.0;
        for (int i = 0; i < cols; ++i) {
          const double p = static_cast<double>(w[static_cast<std::size_t>(r) * cols + i]) *
                           x[static_cast<std::size_t>(b) * cols + i];
          ref += p;
          mag += std::fabs(p);
        }
        ASSERT_NEAR(y[static_cast<std::size_t>(b) * rows + r], ref, 3.0 / 2048 * mag)
            << rows << "x" << cols << " b" << b << " r" << r;
      }
  }
}

TEST(GpuBench, StreamProbeAndBenchReportConsistentFigures) {
  IPFSA_GPU_CONTEXT(ctx);
  auto gbps = stream_read_gbps(ctx, std::size_t{256} << 20, 5);
  ASSERT_TRUE(gbps.ok()) << gbps.error().message;
  EXPECT_GT(*gbps, 0.0);
  GemvBenchConfig c;
  c.bits = 4;
  c.m = 1024;
  c.k = 2048;
  c.runs = 5;
  c.rotate_bytes = 8 << 20;
  c.stream_gbps = *gbps;
  auto r = bench_gemv(ctx, c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GT(r->us, 0.0);
  EXPECT_GT(r->cublas_fp16_us, 0.0);
  EXPECT_NEAR(r->ratio_vs_cublas_fp16, r->cublas_fp16_us / r->us, 1e-9);
  EXPECT_NEAR(r->fraction_of_stream, r->weight_gbps / *gbps, 1e-9);
  EXPECT_GE(r->copies, 2);
  EXPECT_LT(r->max_rel_error, 0.05);  // int8 activation rounding (docs/kernels.md §Tolerance)
  EXPECT_EQ(r->path, std::string("gemv_dp4a"));
}

}  // namespace
}  // namespace ipfsa::cuda
