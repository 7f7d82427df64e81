// The engine's CUDA backend (gpu.hpp): a GpuContext behind a mutex, weight uploads, and the
// products Linear::apply hands over. Compiled in every build; without IPFSA_HAVE_CUDA it only
// reports kNoCudaBuild.
#include "engine/model/gpu.hpp"

#include <limits>
#include <mutex>
#include <optional>
#include <utility>

#if IPFSA_HAVE_CUDA
#include <variant>

#include "device_info.cuh"
#endif

namespace ipfsa::engine {

bool cuda_built() {
#if IPFSA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

#if IPFSA_HAVE_CUDA

struct GpuWeights {
  std::variant<cuda::GpuQuantMatrix, cuda::GpuHalfMatrix> m;
};

struct GpuDevice::Impl {
  int device = 0;
  std::string name;
  std::unique_ptr<cuda::GpuContext> ctx;
  std::mutex mu;  // guards ctx, bytes and error
  std::size_t bytes = 0;
  std::optional<Error> error;
};

cuda::QuantView cuda_view(const QuantMatrix& q) {
  cuda::QuantView v;
  v.rows = q.rows;
  v.cols = q.cols;
  v.bits = q.params.bits;
  v.group = q.params.group;
  v.symmetric = q.params.scheme == QuantScheme::kSymmetric;
  v.packed = q.packed.data();
  v.scales = q.scales.data();
  v.zeros = q.zeros.empty() ? nullptr : q.zeros.data();
  return v;
}

Result<std::shared_ptr<GpuDevice>> GpuDevice::open(int device) {
  auto ctx = cuda::GpuContext::create(device);
  if (!ctx) return Error{ErrorCode::kInfra, ctx.error().message};
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  impl->ctx = std::move(ctx).value();
  cuda::GpuInfo info;
  impl->name =
      cuda::device_info(device, &info) ? std::string(info.name) : "CUDA device " + std::to_string(device);
  return std::shared_ptr<GpuDevice>(new GpuDevice(std::move(impl)));
}

int GpuDevice::device() const {
  return impl_->device;
}

const std::string& GpuDevice::name() const {
  return impl_->name;
}

std::size_t GpuDevice::weight_bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bytes;
}

Result<std::shared_ptr<const GpuWeights>> GpuDevice::upload(const QuantMatrix& q) {
  std::lock_guard lock(impl_->mu);
  auto m = cuda::GpuQuantMatrix::upload(*impl_->ctx, cuda_view(q));
  if (!m) return m.error();
  impl_->bytes += m->device_bytes();
  return std::make_shared<const GpuWeights>(GpuWeights{std::move(m).value()});
}

Result<std::shared_ptr<const GpuWeights>> GpuDevice::upload(std::span<const float> w, int rows, int cols) {
  std::lock_guard lock(impl_->mu);
  auto m = cuda::GpuHalfMatrix::upload(*impl_->ctx, w, rows, cols);
  if (!m) return m.error();
  impl_->bytes += m->device_bytes();
  return std::make_shared<const GpuWeights>(GpuWeights{std::move(m).value()});
}

void GpuDevice::multiply(const GpuWeights& w, std::span<const float> x, int n, std::span<float> y) {
  std::lock_guard lock(impl_->mu);
  Result<void> ok;
  if (!impl_->error) {
    if (const auto* q = std::get_if<cuda::GpuQuantMatrix>(&w.m)) {
      auto path = impl_->ctx->qgemm_host(*q, x, n, y);
      if (!path) ok = path.error();
    } else {
      ok = impl_->ctx->gemm_fp16_host(std::get<cuda::GpuHalfMatrix>(w.m), x, n, y);
    }
    if (!ok) impl_->error = ok.error();
  }
  if (impl_->error)
    for (float& v : y) v = std::numeric_limits<float>::quiet_NaN();
}

Result<void> GpuDevice::take_error() {
  std::lock_guard lock(impl_->mu);
  std::optional<Error> e = std::exchange(impl_->error, std::nullopt);
  if (e) return *e;
  return {};
}

#else  // no CUDA backend in this build

struct GpuWeights {};

struct GpuDevice::Impl {
  int device = 0;
  std::string name;
};

Result<std::shared_ptr<GpuDevice>> GpuDevice::open(int) {
  return input_error(kNoCudaBuild);  // like `bench gemv --device cuda`: this binary cannot, exit 2
}

int GpuDevice::device() const {
  return impl_->device;
}

const std::string& GpuDevice::name() const {
  return impl_->name;
}

std::size_t GpuDevice::weight_bytes() const {
  return 0;
}

Result<std::shared_ptr<const GpuWeights>> GpuDevice::upload(const QuantMatrix&) {
  return infra_error(kNoCudaBuild);
}

Result<std::shared_ptr<const GpuWeights>> GpuDevice::upload(std::span<const float>, int, int) {
  return infra_error(kNoCudaBuild);
}

void GpuDevice::multiply(const GpuWeights&, std::span<const float>, int, std::span<float> y) {
  for (float& v : y) v = std::numeric_limits<float>::quiet_NaN();
}

Result<void> GpuDevice::take_error() {
  return {};
}

#endif

GpuDevice::GpuDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuDevice::~GpuDevice() = default;

}  // namespace ipfsa::engine
