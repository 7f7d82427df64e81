// The engine's CUDA backend from the host side (issue 4; src/engine/model/gpu.hpp, docs/cuda.md
// §Engine backend): the kernels' view of a QuantMatrix, the GPU index a worker hands its executor,
// and a `hardware: cuda` model task that never runs on the CPU instead. Parts that need a GPU run
// where GpuDevice::open(0) succeeds (a Linear and a whole model against the CPU); elsewhere they
// skip with the reason, and the no-GPU behaviour (exit 3 reasons, kInput before the GPU) is checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../test_helpers.hpp"
#include "engine/kinds.hpp"
#include "engine/model/gpu.hpp"
#include "engine/model/layers.hpp"
#include "engine/model_kind.hpp"
#include "engine/quant.hpp"

namespace ipfsa::engine {
namespace {

using ::ipfsa::testing::normal;

using core::TaskStatus;

core::TaskSpec cuda_task(std::string model, std::string precision = "int4") {
  core::TaskSpec t;
  t.kind = "model";
  t.model = std::move(model);
  t.hardware = "cuda";
  t.precision = std::move(precision);
  t.batch = 2;
  t.seq_len = 6;
  t.repeats = 1;
  t.warmup = 0;
  return t;
}

// GPU 0 when this machine has one (and this build can use it); the reason otherwise.
std::shared_ptr<GpuDevice> gpu0(std::string* why) {
  auto d = GpuDevice::open(0);
  if (!d) {
    *why = d.error().message;
    return nullptr;
  }
  return *d;
}

#if IPFSA_HAVE_CUDA
TEST(CudaView, AsymmetricAliasesTheMatrix) {
  const auto w = normal(8 * 128, 1);
  QuantParams p;
  p.bits = 3;
  p.group = 32;
  auto q = quantize(w, 8, 128, p);
  ASSERT_TRUE(q.ok()) << q.error().message;
  const cuda::QuantView v = cuda_view(*q);
  EXPECT_EQ(v.rows, 8);
  EXPECT_EQ(v.cols, 128);
  EXPECT_EQ(v.bits, 3);
  EXPECT_EQ(v.group, 32);
  EXPECT_FALSE(v.symmetric);
  EXPECT_EQ(v.packed, q->packed.data());
  EXPECT_EQ(v.scales, q->scales.data());
  EXPECT_EQ(v.zeros, q->zeros.data());
  ASSERT_NE(v.zeros, nullptr);
  EXPECT_TRUE(cuda::validate(v).ok());
  // The sizes lowbit.hpp documents for the view.
  EXPECT_EQ(q->packed.size(), static_cast<std::size_t>(v.rows) * (v.cols / 32 * 4 * v.bits));
  EXPECT_EQ(q->scales.size(), static_cast<std::size_t>(v.rows) * (v.cols / v.group));
}

TEST(CudaView, SymmetricHasNoZeros) {
  const auto w = normal(4 * 256, 2);
  QuantParams p;
  p.bits = 8;
  p.group = 128;
  p.scheme = QuantScheme::kSymmetric;
  auto q = quantize(w, 4, 256, p);
  ASSERT_TRUE(q.ok()) << q.error().message;
  const cuda::QuantView v = cuda_view(*q);
  EXPECT_TRUE(v.symmetric);
  EXPECT_EQ(v.zeros, nullptr);
  EXPECT_EQ(v.bits, 8);
  EXPECT_EQ(v.group, 128);
  EXPECT_EQ(v.packed, q->packed.data());
  EXPECT_TRUE(cuda::validate(v).ok());
}
#else
TEST(CudaView, NotInThisBuild) {
  GTEST_SKIP() << kNoCudaBuild;
}
#endif

TEST(CudaDeviceEnv, ParsesAGpuIndex) {
  EXPECT_EQ(*parse_cuda_device(nullptr), 0);
  EXPECT_EQ(*parse_cuda_device(""), 0);
  EXPECT_EQ(*parse_cuda_device("3"), 3);
  EXPECT_EQ(*parse_cuda_device("1023"), 1023);
  for (const char* bad : {"-1", "x", "3a", " 3", "1024", "99999999999"}) {
    auto r = parse_cuda_device(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInput);
    EXPECT_NE(r.error().message.find("IPFSA_CUDA_DEVICE"), std::string::npos) << r.error().message;
  }
}

TEST(GpuDevice, OpeningAnAbsentDeviceIsAnErrorWithTheReason) {
  auto d = GpuDevice::open(1023);
  ASSERT_FALSE(d.ok());
  EXPECT_FALSE(d.error().message.empty());
  if (!cuda_built()) {
    EXPECT_EQ(d.error().code, ErrorCode::kInput);
    EXPECT_EQ(d.error().message, kNoCudaBuild);
  } else {
    EXPECT_EQ(d.error().code, ErrorCode::kInfra) << d.error().message;
  }
}

// A bad task is kInput whatever the machine: the GPU is opened only after the inputs are checked.
TEST(ModelTaskCuda, BadInputIsInputErrorBeforeTheGpu) {
  for (core::TaskSpec t :
       {cuda_task("no-such-model"), cuda_task("gpt2", "no-such-precision"), cuda_task("bert", "int4")}) {
    if (t.model == "bert") t.scenario = "decode";  // an encoder cannot decode
    auto r = run_model_task(t, 0);
    ASSERT_FALSE(r.ok()) << t.model;
    EXPECT_EQ(r.error().code, ErrorCode::kInput) << r.error().message;
  }
}

// Without a usable GPU a cuda task is an error naming the device and the reason, never a CPU run.
TEST(ModelTaskCuda, WithoutAGpuItFailsWithTheReason) {
  std::string why;
  if (gpu0(&why)) GTEST_SKIP() << "this machine has a GPU: see tests/gpu/engine_test.cpp";
  auto r = run_model_task(cuda_task("gpt2"), 0);
  ASSERT_FALSE(r.ok()) << "a cuda task ran without a GPU";
  EXPECT_EQ(r.error().code, cuda_built() ? ErrorCode::kInfra : ErrorCode::kInput);
  EXPECT_NE(r.error().message.find("hardware cuda (GPU 0)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message << " / " << why;

  // Through the kind (what the executor runs): failed with that message, device from the env.
  const Kind* k = find_kind("model");
  ASSERT_NE(k, nullptr);
  ::setenv(kCudaDeviceEnv, "5", 1);
  const core::TaskOutcome o = k->run(cuda_task("gpt2"));
  ::setenv(kCudaDeviceEnv, "five", 1);
  const core::TaskOutcome bad = k->run(cuda_task("gpt2"));
  ::unsetenv(kCudaDeviceEnv);
  EXPECT_EQ(o.status, TaskStatus::kFailed);
  EXPECT_NE(o.error.find("hardware cuda (GPU 5)"), std::string::npos) << o.error;
  EXPECT_EQ(bad.status, TaskStatus::kFailed);
  EXPECT_NE(bad.error.find("IPFSA_CUDA_DEVICE='five'"), std::string::npos) << bad.error;
}

// The tests that need a GPU (a Linear and every model family on the device against the CPU) are
// in tests/gpu/engine_test.cpp, which also runs on GPU machines without our Debian packages.

}  // namespace
}  // namespace ipfsa::engine
