#include "engine/model/accuracy.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ipfsa::engine {

namespace {

// log-softmax of one row, in double.
void log_softmax(std::span<const float> row, std::vector<double>& out) {
  out.resize(row.size());
  double mx = -INFINITY;
  for (float v : row) mx = std::max(mx, static_cast<double>(v));
  double sum = 0.0;
  for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = mx + std::log(sum);
  for (std::size_t i = 0; i < row.size(); ++i) out[i] = static_cast<double>(row[i]) - lse;
}

}  // namespace

Result<Accuracy> compare_outputs(const ModelOutput& ref, const ModelOutput& out) {
  if (ref.hidden.empty() || ref.hidden_size <= 0)
    return input_error("accuracy: the reference has no hidden states");
  if (ref.hidden.size() != out.hidden.size() || ref.hidden_size != out.hidden_size)
    return input_error("accuracy: hidden states differ in shape from the reference");
  if (ref.logits_shape != out.logits_shape || ref.logits.size() != out.logits.size())
    return input_error("accuracy: logits differ in shape from the reference");

  Accuracy acc;
  const std::size_t d = static_cast<std::size_t>(ref.hidden_size);
  const std::size_t rows = ref.hidden.size() / d;
  double cos_sum = 0.0, diff2 = 0.0, ref2 = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    double dot = 0.0, a2 = 0.0, b2 = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
      const double a = ref.hidden[r * d + i], b = out.hidden[r * d + i];
      dot += a * b;
      a2 += a * a;
      b2 += b * b;
      diff2 += (a - b) * (a - b);
    }
    ref2 += a2;
    // Two zero vectors agree; one zero vector against a non-zero one does not.
    cos_sum += (a2 == 0.0 && b2 == 0.0) ? 1.0 : (a2 == 0.0 || b2 == 0.0) ? 0.0 : dot / std::sqrt(a2 * b2);
  }
  acc.cosine = cos_sum / static_cast<double>(rows);
  acc.rel_error = ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);

  if (!ref.logits.empty() && !ref.logits_shape.empty()) {
    const auto width = static_cast<std::size_t>(ref.logits_shape.back());
    const std::size_t lrows = width > 0 ? ref.logits.size() / width : 0;
    std::vector<double> lp, lq;
    double kl_sum = 0.0;
    std::size_t agree = 0;
    for (std::size_t r = 0; r < lrows; ++r) {
      std::span<const float> a(ref.logits.data() + r * width, width), b(out.logits.data() + r * width, width);
      log_softmax(a, lp);
      log_softmax(b, lq);
      double kl = 0.0;
      for (std::size_t i = 0; i < width; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
      kl_sum += std::max(0.0, kl);
      agree += std::max_element(a.begin(), a.end()) - a.begin() ==
               std::max_element(b.begin(), b.end()) - b.begin();
    }
    if (lrows > 0) {
      acc.kl = kl_sum / static_cast<double>(lrows);
      acc.top1 = static_cast<double>(agree) / static_cast<double>(lrows);
    }
  } else {
    acc.kl = NAN;
    acc.top1 = NAN;
  }
  return acc;
}

}  // namespace ipfsa::engine
