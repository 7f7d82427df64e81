// The engine's CUDA backend on a GPU (docs/cuda.md §Engine backend): a Linear on the device against
// the same Linear on the CPU, and every model of the catalog through the `model` kind with
// `hardware: cuda` against the same task on the CPU, at fp32 and int4 for every class and at every
// precision profile for the smallest model of each family. Skips with the reason without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../test_helpers.hpp"
#include "engine/model/catalog.hpp"
#include "engine/model/gpu.hpp"
#include "engine/model/layers.hpp"
#include "engine/model/precision.hpp"
#include "engine/model_kind.hpp"

namespace ipfsa::engine {
namespace {

using ::ipfsa::testing::metric;
using ::ipfsa::testing::normal;

using core::TaskStatus;

// GPU 0 when this machine has one (and this build can use it); the reason otherwise.
std::shared_ptr<GpuDevice> gpu0(std::string* why) {
  static std::shared_ptr<GpuDevice> dev;
  static std::string reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto d = GpuDevice::open(0);
    if (d)
      dev = std::move(d).value();
    else
      reason = d.error().message;
  }
  *why = reason;
  return dev;
}

// y = x W^T + b on the GPU against the CPU Linear: quantized (dp4a GEMV at batch <= 8, GEMM
// above; activations rounded to int8 per group on both sides) and fp32 (fp16 cuBLAS).
TEST(LinearGpu, MatchesTheCpu) {
  std::string why;
  auto gpu = gpu0(&why);
  if (!gpu) GTEST_SKIP() << "no CUDA device: " << why;
  const int out = 96, in = 256;
  for (int bits : {0, 2, 3, 4, 8}) {
    for (int n : {1, 3, 16}) {
      const auto w = normal(static_cast<std::size_t>(out) * in, 10 + bits, 0.05f);
      const auto b = normal(out, 20 + bits, 0.01f);
      const auto x = normal(static_cast<std::size_t>(n) * in, 30 + n);
      auto cpu = Linear::create("w", w, out, in, b, bits, 64, QuantScheme::kAsymmetric, 1);
      auto dev = Linear::create("w", w, out, in, b, bits, 64, QuantScheme::kAsymmetric, 1);
      ASSERT_TRUE(cpu.ok() && dev.ok());
      ASSERT_TRUE(dev->upload(gpu).ok());
      EXPECT_TRUE(dev->on_gpu());
      EXPECT_FALSE(cpu->on_gpu());
      std::vector<float> y_cpu(static_cast<std::size_t>(n) * out), y_gpu(y_cpu.size());
      cpu->apply(x, n, y_cpu, 1);
      dev->apply(x, n, y_gpu, 1);
      ASSERT_TRUE(gpu->take_error().ok());
      double max_err = 0.0, max_ref = 0.0;
      for (std::size_t i = 0; i < y_cpu.size(); ++i) {
        max_err = std::max(max_err, std::abs(static_cast<double>(y_gpu[i]) - y_cpu[i]));
        max_ref = std::max(max_ref, std::abs(static_cast<double>(y_cpu[i])));
      }
      // fp16 operands: ~2^-11 per product; quantized: the same int8 activations, only the
      // summation order (and the tensor-core GEMM's fp16 activations) differ.
      EXPECT_LT(max_err / max_ref, bits == 0 || n > 8 ? 1e-2 : 1e-3) << "bits " << bits << " batch " << n;
    }
  }
  EXPECT_GT(gpu->weight_bytes(), 0u);
}

core::TaskSpec task(const std::string& model, const std::string& precision, const std::string& hardware,
                    const std::string& scenario) {
  core::TaskSpec t;
  t.kind = "model";
  t.model = model;
  t.hardware = hardware;
  t.precision = precision;
  t.scenario = scenario;
  t.batch = 2;
  t.seq_len = 6;
  t.repeats = 1;
  t.warmup = 0;
  return t;
}

// One model at one precision on the GPU and on the CPU: both pass, and the GPU's accuracy against
// the CPU fp32 model is the CPU's own (same weights, same int8 activations) up to fp16/fp32
// rounding; at fp32 the GPU runs fp16 products, so its cosine is just under 1.
void expect_gpu_like_cpu(const std::string& model, const std::string& precision,
                         const std::string& scenario) {
  const std::string what = model + " " + precision + " " + scenario;
  std::string name;
  auto g = run_model_task(task(model, precision, "cuda", scenario), 0, &name);
  ASSERT_TRUE(g.ok()) << what << ": " << g.error().message;
  auto c = run_model_task(task(model, precision, "cpu", scenario), 0);
  ASSERT_TRUE(c.ok()) << what << ": " << c.error().message;
  EXPECT_EQ(g->status, TaskStatus::kPassed) << what << ": " << g->error;
  EXPECT_EQ(c->status, TaskStatus::kPassed) << what << ": " << c->error;
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(metric(*g, "gpu_device"), 0.0) << what;
  EXPECT_GT(metric(*g, "gpu_weight_bytes"), 0.0) << what;
  EXPECT_TRUE(std::isfinite(g->acc_cosine)) << what;
  if (precision == "fp32") {
    EXPECT_GT(g->acc_cosine, 0.999) << what;
  } else {
    EXPECT_NEAR(g->acc_cosine, c->acc_cosine, 0.01 + 0.1 * (1.0 - c->acc_cosine)) << what;
  }
}

TEST(ModelTaskCuda, EveryCatalogModelAtFp32AndInt4) {
  std::string why;
  if (!gpu0(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  for (const CatalogEntry& e : model_catalog())
    for (const char* precision : {"fp32", "int4"}) {
      expect_gpu_like_cpu(e.name, precision, "latency");
      if (HasFailure()) return;
    }
}

TEST(ModelTaskCuda, EveryPrecisionProfileOnTheSmallestModelOfEachFamily) {
  std::string why;
  if (!gpu0(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  std::map<Family, const CatalogEntry*> smallest;
  for (const CatalogEntry& e : model_catalog()) {
    auto& s = smallest[e.family];
    if (!s || e.tiny.parameters() < s->tiny.parameters()) s = &e;
  }
  for (const auto& [family, e] : smallest)
    for (const std::string& precision : precision_names()) {
      expect_gpu_like_cpu(e->name, precision, "latency");
      if (HasFailure()) return;
    }
}

TEST(ModelTaskCuda, DecoderPrefillAndDecodeOnTheGpu) {
  std::string why;
  if (!gpu0(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  for (const char* precision : {"fp32", "int4", "mixed-a4f3"})
    for (const char* scenario : {"prefill", "decode"}) expect_gpu_like_cpu("llama", precision, scenario);
}

}  // namespace
}  // namespace ipfsa::engine
