// Linear layers, norms, activations, positions and attention (layers.hpp).
#include "engine/model/layers.hpp"

// GCC 12 flags its own AVX-512 intrinsics (_mm512_undefined_ps) as maybe-uninitialized once Eigen's
// kernels are inlined under -march=native: a false positive in the compiler's headers (GCC bug
// 105593, fixed in GCC 13). The warning is issued after inlining, where a push/pop around the
// include no longer applies, so it is off for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "engine/fp16.hpp"
#include "engine/qgemm.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;
using ConstStrided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using Strided = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

// Below this many multiply-adds a product is not worth starting threads for.
constexpr double kParallelWork = 2.0 * 1024 * 1024;

int worth_threads(double work, int threads) {
  return work >= kParallelWork ? std::max(threads, 1) : 1;
}

}  // namespace

void parallel_for(int n, int threads, const std::function<void(int, int)>& fn) {
  const int t = std::clamp(threads, 1, std::max(n, 1));
  if (t <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  auto chunk = [n, t](int i) { return static_cast<int>(static_cast<long long>(n) * i / t); };
  engine_thread_pool().run(t, [&](int i) { fn(chunk(i), chunk(i + 1)); });
}

// ---- Linear ----

Result<Linear> Linear::create(std::string_view name, std::vector<float> w, int out, int in,
                              std::vector<float> bias, int bits, int group, QuantScheme scheme, int threads) {
  IPFSA_EXPECTS(w.size() == static_cast<std::size_t>(out) * in, "Linear::create: weight size");
  IPFSA_EXPECTS(bias.empty() || bias.size() == static_cast<std::size_t>(out), "Linear::create: bias size");
  Linear l;
  l.out_ = out;
  l.in_ = in;
  l.bits_ = bits;
  l.bias_ = std::move(bias);
  if (bits == 0) {
    l.w_ = std::move(w);
    return l;
  }
  QuantParams p;
  p.bits = bits;
  p.group = group;
  p.scheme = scheme;
  p.search_clip = true;
  auto q = quantize(w, out, in, p, std::max(threads, 1));
  if (!q)
    return input_error("tensor '" + std::string(name) + "' (" + std::to_string(out) + " x " +
                       std::to_string(in) + "): cannot quantize to " + std::to_string(bits) +
                       " bits: " + q.error().message);
  l.q_ = std::move(q).value();
  return l;
}

Result<void> Linear::upload(std::shared_ptr<GpuDevice> gpu) {
  IPFSA_EXPECTS(gpu != nullptr, "Linear::upload: device");
  auto w = bits_ != 0 ? gpu->upload(q_) : gpu->upload(w_, out_, in_);
  if (!w) return w.error();
  gpu_ = std::move(gpu);
  gpu_w_ = std::move(w).value();
  return {};
}

void Linear::apply(std::span<const float> x, int n, std::span<float> y, int threads) const {
  IPFSA_EXPECTS(x.size() == static_cast<std::size_t>(n) * in_, "Linear::apply: input size");
  IPFSA_EXPECTS(y.size() == static_cast<std::size_t>(n) * out_, "Linear::apply: output size");
  if (n == 0) return;
  if (gpu_w_) {
    gpu_->multiply(*gpu_w_, x, n, y);
  } else if (bits_ != 0) {
    QGemmOptions o;
    o.threads = std::max(threads, 1);
    qgemm(q_, x, n, y, o);
  } else {
    ConstMap xm(x.data(), n, in_);
    ConstMap wm(w_.data(), out_, in_);
    Map ym(y.data(), n, out_);
    const int t = worth_threads(static_cast<double>(n) * out_ * in_, threads);
    if (t <= 1) {
      ym.noalias() = xm * wm.transpose();
    } else {
      parallel_for(out_, t, [&](int b, int e) {
        ym.middleCols(b, e - b).noalias() = xm * wm.middleRows(b, e - b).transpose();
      });
    }
  }
  if (!bias_.empty()) {
    Map ym(y.data(), n, out_);
    ym.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias_.data(), out_);
  }
}

void Linear::row(int r, std::span<float> out) const {
  IPFSA_EXPECTS(r >= 0 && r < out_ && out.size() == static_cast<std::size_t>(in_), "Linear::row: bounds");
  if (bits_ == 0) {
    std::copy_n(w_.begin() + static_cast<std::ptrdiff_t>(r) * in_, in_, out.begin());
    return;
  }
  // As quant.cpp's dequantize, for one row.
  const bool sym = q_.params.scheme == QuantScheme::kSymmetric;
  const float center = static_cast<float>(1 << (q_.params.bits - 1));
  const int gpr = q_.groups_per_row();
  for (int c = 0; c < in_; ++c) {
    const std::size_t gi = static_cast<std::size_t>(r) * gpr + c / q_.params.group;
    const float s = fp16_to_float(q_.scales[gi]);
    const float code = static_cast<float>(quant_code(q_, r, c));
    out[c] = sym ? s * (code - center) : s * code + fp16_to_float(q_.zeros[gi]);
  }
}

std::size_t Linear::bytes() const {
  const std::size_t w = bits_ == 0 ? w_.size() * sizeof(float) : q_.bytes();
  return w + bias_.size() * sizeof(float);
}

// ---- norms and activations ----

void layer_norm(std::span<float> x, int cols, std::span<const float> weight, std::span<const float> bias,
                float eps) {
  IPFSA_EXPECTS(cols > 0 && x.size() % cols == 0 && weight.size() == static_cast<std::size_t>(cols),
                "layer_norm: sizes");
  IPFSA_EXPECTS(bias.empty() || bias.size() == weight.size(), "layer_norm: bias size");
  for (std::size_t r = 0; r < x.size(); r += cols) {
    float* row = x.data() + r;
    double sum = 0.0, sq = 0.0;
    for (int c = 0; c < cols; ++c) sum += row[c];
    const double mean = sum / cols;
    for (int c = 0; c < cols; ++c) sq += (row[c] - mean) * (row[c] - mean);
    const auto inv = static_cast<float>(1.0 / std::sqrt(sq / cols + eps));
    const auto m = static_cast<float>(mean);
    for (int c = 0; c < cols; ++c) row[c] = (row[c] - m) * inv * weight[c] + (bias.empty() ? 0.0f : bias[c]);
  }
}

void rms_norm(std::span<float> x, int cols, std::span<const float> weight, float eps) {
  IPFSA_EXPECTS(cols > 0 && x.size() % cols == 0 && weight.size() == static_cast<std::size_t>(cols),
                "rms_norm: sizes");
  for (std::size_t r = 0; r < x.size(); r += cols) {
    float* row = x.data() + r;
    double sq = 0.0;
    for (int c = 0; c < cols; ++c) sq += static_cast<double>(row[c]) * row[c];
    const auto inv = static_cast<float>(1.0 / std::sqrt(sq / cols + eps));
    for (int c = 0; c < cols; ++c) row[c] = row[c] * inv * weight[c];
  }
}

float activate(Activation a, float x) {
  switch (a) {
    case Activation::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(std::numbers::sqrt2 / 2)));
    case Activation::kGeluTanh: {
      constexpr float k = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case Activation::kSilu:
      return x / (1.0f + std::exp(-x));
    case Activation::kRelu:
      return x > 0.0f ? x : 0.0f;
  }
  return x;
}

void activate(Activation a, std::span<float> x) {
  for (float& v : x) v = activate(a, v);
}

// ---- positions ----

void apply_rope(float* x, int tokens, int heads, int head_dim, std::size_t row_stride, int pos0,
                float theta) {
  IPFSA_EXPECTS(head_dim % 2 == 0, "apply_rope: odd head_dim");
  const int half = head_dim / 2;
  std::vector<double> inv_freq(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) inv_freq[i] = std::pow(static_cast<double>(theta), -2.0 * i / head_dim);
  std::vector<float> cs(static_cast<std::size_t>(half)), sn(static_cast<std::size_t>(half));
  for (int t = 0; t < tokens; ++t) {
    const double pos = pos0 + t;
    for (int i = 0; i < half; ++i) {
      cs[i] = static_cast<float>(std::cos(pos * inv_freq[i]));
      sn[i] = static_cast<float>(std::sin(pos * inv_freq[i]));
    }
    for (int h = 0; h < heads; ++h) {
      float* v = x + t * row_stride + static_cast<std::size_t>(h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    }
  }
}

std::vector<float> alibi_slopes(int heads) {
  std::vector<float> s;
  if (heads <= 0) return s;
  int m = 1;
  while (m * 2 <= heads) m *= 2;
  for (int i = 0; i < m; ++i) s.push_back(static_cast<float>(std::exp2(-8.0 * (i + 1) / m)));
  for (int i = 0; static_cast<int>(s.size()) < heads; ++i)
    s.push_back(static_cast<float>(std::exp2(-8.0 * (2 * i + 1) / (2 * m))));
  return s;
}

// ---- attention ----

void attention(const AttentionArgs& a) {
  IPFSA_EXPECTS(a.heads > 0 && a.kv_heads > 0 && a.heads % a.kv_heads == 0, "attention: heads");
  IPFSA_EXPECTS(a.alibi.empty() || a.alibi.size() == static_cast<std::size_t>(a.heads),
                "attention: alibi size");
  if (a.sq <= 0) return;
  const int group = a.heads / a.kv_heads;
  const int hd = a.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const double work = 2.0 * a.sq * a.sk * hd * a.heads;
  parallel_for(a.heads, worth_threads(work, a.threads), [&](int h0, int h1) {
    RowMat s(a.sq, std::max(a.sk, 1));
    for (int h = h0; h < h1; ++h) {
      const int kvh = h / group;
      Strided o(a.out + static_cast<std::size_t>(h) * hd, a.sq, hd, Eigen::OuterStride<>(a.out_stride));
      if (a.sk <= 0) {
        o.setZero();
        continue;
      }
      ConstStrided q(a.q + static_cast<std::size_t>(h) * hd, a.sq, hd, Eigen::OuterStride<>(a.q_stride));
      ConstStrided k(a.k + static_cast<std::size_t>(kvh) * hd, a.sk, hd, Eigen::OuterStride<>(a.kv_stride));
      ConstStrided v(a.v + static_cast<std::size_t>(kvh) * hd, a.sk, hd, Eigen::OuterStride<>(a.kv_stride));
      s.noalias() = q * k.transpose();
      const float slope = a.alibi.empty() ? 0.0f : a.alibi[h];
      for (int i = 0; i < a.sq; ++i) {
        const int pos = a.q_pos0 + i;
        const int limit = a.causal ? std::clamp(pos + 1, 0, a.sk) : a.sk;
        float* row = s.data() + static_cast<std::ptrdiff_t>(i) * s.cols();
        float mx = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < limit; ++j) {
          row[j] = row[j] * scale - slope * static_cast<float>(std::abs(pos - j));
          mx = std::max(mx, row[j]);
        }
        double sum = 0.0;
        for (int j = 0; j < limit; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const float inv = limit > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
        for (int j = 0; j < limit; ++j) row[j] *= inv;
        for (int j = limit; j < a.sk; ++j) row[j] = 0.0f;
      }
      o.noalias() = s.leftCols(a.sk) * v;
    }
  });
}

}  // namespace ipfsa::engine
