#include "core/changepoint.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ipfsa::core {

namespace {

constexpr double kOutlierSigmas = 5.0;
constexpr std::size_t kRunningMedianHalf = 3;  // window 7

// Replaces isolated outliers by the centred running median (a level shift keeps its step:
// the centred median switches exactly at the step).
std::vector<double> clean_outliers(std::span<const double> x) {
  const std::size_t n = x.size();
  std::vector<double> runmed(n), resid(n), window;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t lo = i >= kRunningMedianHalf ? i - kRunningMedianHalf : 0;
    const std::size_t hi = std::min(n, i + kRunningMedianHalf + 1);
    runmed[i] = median(x.subspan(lo, hi - lo));
    resid[i] = x[i] - runmed[i];
  }
  const double sigma = robust_sigma(resid);
  std::vector<double> out(x.begin(), x.end());
  if (sigma <= 0) return out;
  for (std::size_t i = 0; i < n; ++i)
    if (std::abs(resid[i]) > kOutlierSigmas * sigma) out[i] = runmed[i];
  return out;
}

struct SegmentCost {
  std::vector<double> s1, s2;  // prefix sums of x and x^2
  explicit SegmentCost(std::span<const double> x) : s1(x.size() + 1, 0), s2(x.size() + 1, 0) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      s1[i + 1] = s1[i] + x[i];
      s2[i + 1] = s2[i] + x[i] * x[i];
    }
  }
  // Sum of squared deviations from the mean over [s, t).
  double operator()(std::size_t s, std::size_t t) const {
    const double n = static_cast<double>(t - s);
    const double a = s1[t] - s1[s];
    return std::max(0.0, (s2[t] - s2[s]) - a * a / n);
  }
};

std::vector<std::size_t> pelt(std::span<const double> x, double beta, std::size_t m) {
  const std::size_t n = x.size();
  if (n < 2 * m) return {};
  const SegmentCost cost(x);
  std::vector<double> f(n + 1, std::numeric_limits<double>::infinity());
  std::vector<std::size_t> last(n + 1, 0);
  f[0] = -beta;
  std::vector<std::size_t> candidates = {0}, kept;
  for (std::size_t t = m; t <= n; ++t) {
    if (t >= 2 * m) candidates.push_back(t - m);  // F[t - m] is final now
    double best = std::numeric_limits<double>::infinity();
    std::size_t arg = 0;
    for (std::size_t s : candidates) {
      const double v = f[s] + cost(s, t) + beta;
      if (v < best) best = v, arg = s;
    }
    f[t] = best;
    last[t] = arg;
    kept.clear();
    for (std::size_t s : candidates)
      if (f[s] + cost(s, t) <= f[t]) kept.push_back(s);  // PELT pruning (K = 0 for this cost)
    candidates.swap(kept);
  }
  std::vector<std::size_t> cps;
  for (std::size_t t = n; t > 0 && last[t] > 0; t = last[t]) cps.push_back(last[t]);
  std::reverse(cps.begin(), cps.end());
  return cps;
}

}  // namespace

double median(std::span<const double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> v(values.begin(), values.end());
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  return (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)) + hi) / 2;
}

double robust_sigma(std::span<const double> values) {
  if (values.empty()) return 0;
  const double med = median(values);
  std::vector<double> dev(values.size());
  std::transform(values.begin(), values.end(), dev.begin(), [&](double v) { return std::abs(v - med); });
  return 1.4826 * median(dev);
}

double mann_whitney_p(std::span<const double> a, std::span<const double> b) {
  const std::size_t n1 = a.size(), n2 = b.size(), n = n1 + n2;
  if (n1 == 0 || n2 == 0) return 1.0;
  std::vector<std::pair<double, int>> all;
  all.reserve(n);
  for (double v : a) all.emplace_back(v, 0);
  for (double v : b) all.emplace_back(v, 1);
  std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  double rank_sum_a = 0, tie_term = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j < n && all[j].first == all[i].first) ++j;
    const double avg_rank = (static_cast<double>(i + j) + 1.0) / 2.0;  // ranks i+1..j
    const double ties = static_cast<double>(j - i);
    tie_term += ties * ties * ties - ties;
    for (std::size_t k = i; k < j; ++k)
      if (all[k].second == 0) rank_sum_a += avg_rank;
    i = j;
  }
  const double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2), dn = static_cast<double>(n);
  const double u = rank_sum_a - d1 * (d1 + 1) / 2;
  const double mean = d1 * d2 / 2;
  const double var = d1 * d2 / 12.0 * ((dn + 1) - tie_term / (dn * (dn - 1)));
  if (var <= 0) return 1.0;
  const double diff = std::abs(u - mean);
  const double z = std::max(0.0, diff - 0.5) / std::sqrt(var);  // continuity correction
  return std::erfc(z / std::sqrt(2.0));
}

std::vector<ChangePoint> detect_change_points(std::span<const double> series, const ChangePointOptions& o) {
  const std::size_t n = series.size();
  const std::size_t m = std::max<std::size_t>(2, o.min_segment);
  if (n < 2 * m) return {};
  const auto clean = clean_outliers(series);
  std::vector<double> diff(n - 1);
  for (std::size_t i = 0; i + 1 < n; ++i) diff[i] = clean[i + 1] - clean[i];
  double sigma = robust_sigma(diff) / std::sqrt(2.0);
  if (sigma <= 0) {  // constant stretches: fall back to the spread of the values themselves
    sigma = robust_sigma(clean);
    if (sigma <= 0) sigma = 1e-12 * std::max(1.0, std::abs(median(clean)));
  }
  const double beta = o.penalty_factor * sigma * sigma * std::log(static_cast<double>(n));
  std::vector<std::size_t> cps = pelt(clean, beta, m);

  // Drop the least significant change point until every remaining one passes alpha.
  auto segment = [&](std::size_t k) {  // segment k spans [bounds[k], bounds[k+1])
    return std::pair<std::size_t, std::size_t>(k == 0 ? 0 : cps[k - 1], k == cps.size() ? n : cps[k]);
  };
  std::vector<double> p(cps.size());
  for (;;) {
    if (cps.empty()) break;
    std::size_t worst = 0;
    for (std::size_t k = 0; k < cps.size(); ++k) {
      const auto [a0, a1] = segment(k);
      const auto [b0, b1] = segment(k + 1);
      p[k] = mann_whitney_p(series.subspan(a0, a1 - a0), series.subspan(b0, b1 - b0));
      if (p[k] > p[worst]) worst = k;
    }
    if (p[worst] < o.alpha) break;
    cps.erase(cps.begin() + static_cast<std::ptrdiff_t>(worst));
    p.resize(cps.size());
  }
  std::vector<ChangePoint> out;
  for (std::size_t k = 0; k < cps.size(); ++k) {
    const auto [a0, a1] = segment(k);
    const auto [b0, b1] = segment(k + 1);
    const double before = median(series.subspan(a0, a1 - a0));
    const double after = median(series.subspan(b0, b1 - b0));
    const double denom = std::max(std::abs(before), 1e-300);
    out.push_back(ChangePoint{cps[k], (after - before) / denom * 100.0, p[k]});
  }
  return out;
}

double newest_robust_z(std::span<const double> series, const AnomalyOptions& o) {
  if (series.size() < 4) return 0;
  const std::size_t w = std::min(o.window, series.size() - 1);
  const auto trailing = series.subspan(series.size() - 1 - w, w);
  const double med = median(trailing);
  double sigma = robust_sigma(trailing);
  if (sigma <= 0) {
    // More than half the window holds one value (quantised data: a timer's resolution, integer
    // counts). As in Iglewicz and Hoaglin's modified z-score, fall back to the mean absolute
    // deviation (scaled to sigma for normal data), so that a history that does vary is not
    // treated as noiseless; only a truly constant one is.
    double sum = 0;
    for (double v : trailing) sum += std::abs(v - med);
    sigma = 1.2533141373155 * sum / static_cast<double>(trailing.size());
  }
  const double x = series.back();
  if (sigma <= 0) return x == med ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), x - med);
  return (x - med) / sigma;
}

bool newest_is_anomaly(std::span<const double> series, const AnomalyOptions& o) {
  return std::abs(newest_robust_z(series, o)) > o.z_threshold;
}

}  // namespace ipfsa::core
