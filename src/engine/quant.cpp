// Group-wise weight quantization: packing, the per-group fit (min/max or clipping search) and the
// scalar references. Format and search are described in docs/quantization.md.
#include "engine/quant.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <thread>

#include "engine/fp16.hpp"

namespace ipfsa::engine {
namespace {

bool supported_bits(int b) {
  return b == 2 || b == 3 || b == 4 || b == 8;
}
bool supported_group(int g) {
  return g == 32 || g == 64 || g == 128;
}

// ---- packing of one 32-weight chunk (4 * bits bytes); codes are < 2^bits ----

void pack_chunk(const std::uint8_t* q, int bits, std::uint8_t* out) {
  switch (bits) {
    case 8:
      std::copy(q, q + 32, out);
      break;
    case 4:  // byte j: weight j (low nibble), weight j + 16 (high nibble)
      for (int j = 0; j < 16; ++j) out[j] = static_cast<std::uint8_t>(q[j] | (q[j + 16] << 4));
      break;
    case 3:    // bytes 0-7: low two bits as in the 2-bit layout; bytes 8-11: bit 2 of weight i at bit i
    case 2: {  // byte j: weights j, j + 8, j + 16, j + 24 at bits 0-1, 2-3, 4-5, 6-7
      for (int j = 0; j < 8; ++j)
        out[j] = static_cast<std::uint8_t>((q[j] & 3) | ((q[j + 8] & 3) << 2) | ((q[j + 16] & 3) << 4) |
                                           ((q[j + 24] & 3) << 6));
      if (bits == 3) {
        std::uint32_t high = 0;
        for (int i = 0; i < 32; ++i) high |= static_cast<std::uint32_t>((q[i] >> 2) & 1) << i;
        for (int k = 0; k < 4; ++k) out[8 + k] = static_cast<std::uint8_t>(high >> (8 * k));
      }
      break;
    }
    default:
      IPFSA_EXPECTS(false, "pack_chunk: unsupported bit width");
  }
}

int chunk_code(const std::uint8_t* chunk, int bits, int i) {
  switch (bits) {
    case 8:
      return chunk[i];
    case 4:
      return i < 16 ? (chunk[i] & 0x0F) : (chunk[i - 16] >> 4);
    case 2:
      return (chunk[i % 8] >> (2 * (i / 8))) & 3;
    case 3:
      return ((chunk[i % 8] >> (2 * (i / 8))) & 3) | (((chunk[8 + i / 8] >> (i % 8)) & 1) << 2);
    default:
      IPFSA_EXPECTS(false, "chunk_code: unsupported bit width");
  }
  return 0;
}

// ---- the per-group fit ----
//
// A fit is the pair of stored fp16 values (scale s, offset m; m unused when symmetric), carried as
// the floats they decode to so that every error evaluated here is the error of what is stored.
// Codes are always the nearest representable level: q = clamp(round(x), 0, qmax) with
// x = (w - m) / s (asymmetric) or x = w / s + c (symmetric, c = 2^(bits-1)).

struct Fit {
  float s = 0.0f;
  float m = 0.0f;
};

struct Level {
  float qmax;  // 2^bits - 1
  float c;     // 2^(bits-1), the symmetric zero code
  bool sym;
};

inline float nearest_code(float w, float inv, const Fit& f, const Level& lv) {
  float x = lv.sym ? w * inv + lv.c : (w - f.m) * inv;
  x = std::min(std::max(x, 0.0f), lv.qmax);
  return std::floor(x + 0.5f);
}
inline float level_value(float q, const Fit& f, const Level& lv) {
  return lv.sym ? f.s * (q - lv.c) : f.s * q + f.m;
}
inline float inverse(float s) {
  return s != 0.0f ? 1.0f / s : 0.0f;
}

// Sums for the least-squares refit of (s, m) given the codes. Symmetric uses d = q - c.
struct Eval {
  double sse = 0.0;
  double sq = 0.0, sqq = 0.0, sqw = 0.0;
};

// n is a multiple of 32; eight independent accumulators let the compiler vectorise the loop.
template <bool kSums>
Eval evaluate(const float* w, int n, const Fit& f, const Level& lv) {
  const float inv = inverse(f.s);
  float e2[8] = {}, aq[8] = {}, aqq[8] = {}, aqw[8] = {};
  for (int i = 0; i < n; i += 8) {
    for (int l = 0; l < 8; ++l) {
      const float wi = w[i + l];
      const float q = nearest_code(wi, inv, f, lv);
      const float e = wi - level_value(q, f, lv);
      e2[l] += e * e;
      if constexpr (kSums) {
        const float d = lv.sym ? q - lv.c : q;
        aq[l] += d;
        aqq[l] += d * d;
        aqw[l] += d * wi;
      }
    }
  }
  Eval out;
  for (int l = 0; l < 8; ++l) {
    out.sse += e2[l];
    out.sq += aq[l];
    out.sqq += aqq[l];
    out.sqw += aqw[l];
  }
  return out;
}

Fit stored(float s, float m) {
  return Fit{fp16_to_float(fp16_from_float(s)), fp16_to_float(fp16_from_float(m))};
}

// Plain min/max rounding, with the metadata rounded outwards to fp16 so that the stored range
// still covers [min, max] (every weight then lies within s/2 of its level, asymmetric) or the
// largest magnitude maps exactly onto the extreme code (symmetric).
Fit minmax_fit(const float* w, int n, const Level& lv) {
  if (lv.sym) {
    float amax = 0.0f;  // signed value of largest magnitude
    for (int i = 0; i < n; ++i)
      if (std::fabs(w[i]) > std::fabs(amax)) amax = w[i];
    const float s = -amax / lv.c;
    const std::uint16_t h = s >= 0.0f ? fp16_from_float_up(s) : fp16_from_float_down(s);
    return Fit{fp16_to_float(h), 0.0f};
  }
  const auto [lo, hi] = std::minmax_element(w, w + n);
  const float m = fp16_to_float(fp16_from_float_down(*lo));
  const float s = fp16_to_float(fp16_from_float_up((*hi - m) / lv.qmax));
  return Fit{s, m};
}

// Least-squares (s, m) for fixed codes, rounded to fp16; false when degenerate.
bool refit(const Eval& e, const float* w, int n, const Level& lv, Fit* out) {
  if (lv.sym) {
    if (e.sqq <= 0.0) return false;
    *out = stored(static_cast<float>(e.sqw / e.sqq), 0.0f);
    return true;
  }
  double sw = 0.0;
  for (int i = 0; i < n; ++i) sw += w[i];
  const double det = n * e.sqq - e.sq * e.sq;
  if (det <= 0.0) return false;
  const double s = (n * e.sqw - e.sq * sw) / det;
  const double m = (sw - s * e.sq) / n;
  *out = stored(static_cast<float>(s), static_cast<float>(m));
  return true;
}

// The largest fraction of the min/max range the search may clip away, by bit width: the optimum
// for Gaussian-like groups moves inwards as levels get coarser.
double max_shrink(int bits) {
  switch (bits) {
    case 2:
      return 0.45;
    case 3:
      return 0.35;
    case 4:
      return 0.25;
    default:
      return 0.06;
  }
}

// Clipping search: candidate ranges shrunk from min/max by a grid of factors (and, asymmetric,
// placed at three offsets inside the min/max range; symmetric, with the extreme on either side),
// each followed by a least-squares refit of (s, m) to its codes; then a few refit iterations from
// the best. The min/max fit is the first candidate, so the result is never worse than it.
Fit search_fit(const float* w, int n, const Level& lv, int bits) {
  Fit best = minmax_fit(w, n, lv);
  Eval best_e = evaluate<true>(w, n, best, lv);
  auto consider = [&](const Fit& f) {
    if (!std::isfinite(f.s) || !std::isfinite(f.m)) return;
    const Eval e = evaluate<true>(w, n, f, lv);
    if (e.sse < best_e.sse) {
      best = f;
      best_e = e;
    }
    Fit r;
    if (refit(e, w, n, lv, &r)) {
      const Eval er = evaluate<true>(w, n, r, lv);
      if (er.sse < best_e.sse) {
        best = r;
        best_e = er;
      }
    }
  };
  constexpr int kSteps = 15;
  const double shrink = max_shrink(bits);
  const auto [lo_it, hi_it] = std::minmax_element(w, w + n);
  const double lo = *lo_it, hi = *hi_it, range = hi - lo;
  if (range == 0.0) return best;
  const double amax = std::max(std::fabs(lo), std::fabs(hi));
  for (int k = 0; k <= kSteps; ++k) {
    const double alpha = 1.0 - shrink * k / kSteps;
    if (lv.sym) {
      for (double sign : {-1.0, 1.0}) consider(stored(static_cast<float>(sign * alpha * amax / lv.c), 0.0f));
    } else {
      const double width = alpha * range;
      for (double t : {0.0, 0.5, 1.0}) {
        if (k == 0 && t > 0.0) break;
        consider(stored(static_cast<float>(width / lv.qmax), static_cast<float>(lo + t * (range - width))));
      }
    }
  }
  for (int it = 0; it < 4; ++it) {
    Fit r;
    if (!refit(best_e, w, n, lv, &r)) break;
    const Eval er = evaluate<true>(w, n, r, lv);
    if (!(er.sse < best_e.sse)) break;
    best = r;
    best_e = er;
  }
  return best;
}

// Quantizes rows [r0, r1); false when some metadata overflowed fp16.
bool quantize_rows(const float* w, QuantMatrix& q, int r0, int r1) {
  const QuantParams& p = q.params;
  const Level lv{static_cast<float>((1 << p.bits) - 1), static_cast<float>(1 << (p.bits - 1)),
                 p.scheme == QuantScheme::kSymmetric};
  const int gpr = q.groups_per_row();
  const std::size_t rb = q.row_bytes();
  std::uint8_t codes[128];
  for (int r = r0; r < r1; ++r) {
    const float* row = w + static_cast<std::size_t>(r) * q.cols;
    std::uint8_t* out = q.packed.data() + static_cast<std::size_t>(r) * rb;
    for (int g = 0; g < gpr; ++g) {
      const float* gw = row + static_cast<std::size_t>(g) * p.group;
      const Fit f = p.search_clip ? search_fit(gw, p.group, lv, p.bits) : minmax_fit(gw, p.group, lv);
      if (!std::isfinite(f.s) || !std::isfinite(f.m)) return false;
      const std::size_t gi = static_cast<std::size_t>(r) * gpr + g;
      q.scales[gi] = fp16_from_float(f.s);  // exact: f holds decoded halves
      if (!lv.sym) q.zeros[gi] = fp16_from_float(f.m);
      const float inv = inverse(f.s);
      for (int i = 0; i < p.group; ++i) codes[i] = static_cast<std::uint8_t>(nearest_code(gw[i], inv, f, lv));
      for (int c = 0; c < p.group; c += kQuantChunk) {
        pack_chunk(codes + c, p.bits, out);
        out += 4 * p.bits;
      }
    }
  }
  return true;
}

}  // namespace

std::size_t QuantMatrix::bytes() const {
  return packed.size() + sizeof(std::uint16_t) * (scales.size() + zeros.size());
}

double QuantMatrix::bits_per_weight() const {
  const double n = static_cast<double>(rows) * cols;
  return n > 0 ? 8.0 * static_cast<double>(bytes()) / n : 0.0;
}

Result<void> validate_quant_params(const QuantParams& p, int rows, int cols) {
  if (!supported_bits(p.bits))
    return input_error("unsupported bit width " + std::to_string(p.bits) + " (expected 2, 3, 4 or 8)");
  if (!supported_group(p.group))
    return input_error("unsupported group size " + std::to_string(p.group) + " (expected 32, 64 or 128)");
  if (p.scheme != QuantScheme::kAsymmetric && p.scheme != QuantScheme::kSymmetric)
    return input_error("unknown quantization scheme");
  if (rows <= 0 || cols <= 0)
    return input_error("matrix shape " + std::to_string(rows) + "x" + std::to_string(cols) +
                       " must be positive");
  if (cols % p.group != 0)
    return input_error("cols " + std::to_string(cols) + " is not a multiple of the group size " +
                       std::to_string(p.group));
  return {};
}

Result<QuantMatrix> quantize(std::span<const float> w, int rows, int cols, const QuantParams& params,
                             int threads) {
  if (auto v = validate_quant_params(params, rows, cols); !v) return v.error();
  const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (w.size() != n)
    return input_error("weight buffer holds " + std::to_string(w.size()) + " values, expected " +
                       std::to_string(rows) + "x" + std::to_string(cols));
  for (float x : w)
    if (!std::isfinite(x)) return input_error("weights contain a NaN or infinity");

  QuantMatrix q;
  q.rows = rows;
  q.cols = cols;
  q.params = params;
  q.packed.assign(q.row_bytes() * rows, 0);
  q.scales.assign(static_cast<std::size_t>(rows) * q.groups_per_row(), 0);
  if (params.scheme == QuantScheme::kAsymmetric) q.zeros.assign(q.scales.size(), 0);

  const int nt = std::clamp(threads, 1, rows);
  std::vector<char> ok(nt, 1);
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t)
    pool.emplace_back([&, t] {
      ok[t] = quantize_rows(w.data(), q, static_cast<int>(static_cast<long long>(rows) * t / nt),
                            static_cast<int>(static_cast<long long>(rows) * (t + 1) / nt));
    });
  ok[0] = quantize_rows(w.data(), q, 0, static_cast<int>(static_cast<long long>(rows) / nt));
  for (auto& th : pool) th.join();
  if (std::find(ok.begin(), ok.end(), 0) != ok.end())
    return input_error("weights too large: a group's scale or offset overflows fp16 (|w| > 65504)");
  return q;
}

int quant_code(const QuantMatrix& q, int r, int c) {
  const std::uint8_t* chunk = q.packed.data() + static_cast<std::size_t>(r) * q.row_bytes() +
                              static_cast<std::size_t>(c / kQuantChunk) * 4 * q.params.bits;
  return chunk_code(chunk, q.params.bits, c % kQuantChunk);
}

void dequantize(const QuantMatrix& q, std::span<float> out) {
  IPFSA_EXPECTS(out.size() == static_cast<std::size_t>(q.rows) * q.cols, "dequantize: output size");
  const bool sym = q.params.scheme == QuantScheme::kSymmetric;
  const Level lv{static_cast<float>((1 << q.params.bits) - 1), static_cast<float>(1 << (q.params.bits - 1)),
                 sym};
  const int gpr = q.groups_per_row();
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < q.cols; ++c) {
      const std::size_t gi = static_cast<std::size_t>(r) * gpr + c / q.params.group;
      const Fit f{fp16_to_float(q.scales[gi]), sym ? 0.0f : fp16_to_float(q.zeros[gi])};
      out[static_cast<std::size_t>(r) * q.cols + c] =
          level_value(static_cast<float>(quant_code(q, r, c)), f, lv);
    }
  }
}

void gemv_reference(const QuantMatrix& q, std::span<const float> x, std::span<float> y) {
  IPFSA_EXPECTS(x.size() == static_cast<std::size_t>(q.cols), "gemv_reference: x size");
  IPFSA_EXPECTS(y.size() == static_cast<std::size_t>(q.rows), "gemv_reference: y size");
  const bool sym = q.params.scheme == QuantScheme::kSymmetric;
  const Level lv{static_cast<float>((1 << q.params.bits) - 1), static_cast<float>(1 << (q.params.bits - 1)),
                 sym};
  const int gpr = q.groups_per_row();
  for (int r = 0; r < q.rows; ++r) {
    double acc = 0.0;
    for (int c = 0; c < q.cols; ++c) {
      const std::size_t gi = static_cast<std::size_t>(r) * gpr + c / q.params.group;
      const Fit f{fp16_to_float(q.scales[gi]), sym ? 0.0f : fp16_to_float(q.zeros[gi])};
      acc += static_cast<double>(level_value(static_cast<float>(quant_code(q, r, c)), f, lv)) * x[c];
    }
    y[r] = static_cast<float>(acc);
  }
}

double relative_rmse(std::span<const float> w, std::span<const float> w_hat) {
  IPFSA_EXPECTS(w.size() == w_hat.size(), "relative_rmse: sizes differ");
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - w_hat[i];
    num += d * d;
    den += static_cast<double>(w[i]) * w[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : 0.0;
}

Result<QuantErrorReport> measure_quant_error(int rows, int cols, std::uint64_t seed, QuantParams params,
                                             int threads) {
  if (auto v = validate_quant_params(params, rows, cols); !v) return v.error();
  std::vector<float> w(static_cast<std::size_t>(rows) * cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : w) x = normal(rng);
  std::vector<float> w_hat(w.size());

  QuantErrorReport report;
  params.search_clip = true;
  const auto t0 = std::chrono::steady_clock::now();
  auto searched = quantize(w, rows, cols, params, threads);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!searched) return searched.error();
  dequantize(*searched, w_hat);
  report.rel_rmse = relative_rmse(w, w_hat);
  report.bits_per_weight = searched->bits_per_weight();

  params.search_clip = false;
  auto minmax = quantize(w, rows, cols, params, threads);
  if (!minmax) return minmax.error();
  dequantize(*minmax, w_hat);
  report.minmax_rel_rmse = relative_rmse(w, w_hat);
  return report;
}

}  // namespace ipfsa::engine
