// `ipfs-accelerate bench gemv` (see bench_gemv_command.hpp).
#include "cli/bench_gemv_command.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "engine/gemv_eigen.hpp"
#include "engine/membw.hpp"
#include "engine/model/gpu.hpp"
#include "engine/qgemm.hpp"
#include "engine/quant.hpp"
#include "engine/thread_pool.hpp"

#if IPFSA_HAVE_CUDA
#include "lowbit.hpp"
#endif

namespace ipfsa::cli {
namespace {

int fail(const std::string& message, int code = 2) {
  std::cerr << "ipfs-accelerate: bench gemv: " << message << "\n";
  return code;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median wall time of `repeats` calls of fn, in microseconds; before each call the probe's buffer
// is swept once (timed separately, into *sweep_gbps), evicting the weights from every cache level,
// unless `warm`.
double median_us(const std::function<void()>& fn, int repeats, engine::ReadProbe& probe, bool warm,
                 std::vector<double>* sweep_gbps) {
  fn();  // warm-up: page faults, pool wake-up
  std::vector<double> us;
  for (int i = 0; i < repeats; ++i) {
    if (!warm) sweep_gbps->push_back(static_cast<double>(probe.bytes()) / probe.sweep() / 1e9);
    const auto start = std::chrono::steady_clock::now();
    fn();
    const auto stop = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  return median(us);
}

// The shape and format fields every --json line of bench gemv has, CPU and GPU alike.
void put_shape(nlohmann::ordered_json& j, const BenchGemvOptions& o) {
  j["bits"] = o.bits;
  j["group"] = o.group;
  j["scheme"] = o.scheme;
  j["m"] = o.m;
  j["k"] = o.k;
  j["batch"] = o.batch;
}

int bench_gemv_cpu(const BenchGemvOptions& o) {
  engine::QuantParams params;
  params.bits = o.bits;
  params.group = o.group;
  params.search_clip = false;
  if (o.scheme == "asym") {
    params.scheme = engine::QuantScheme::kAsymmetric;
  } else if (o.scheme == "sym") {
    params.scheme = engine::QuantScheme::kSymmetric;
  } else {
    return fail("--scheme must be asym or sym, got " + o.scheme);
  }
  if (auto v = engine::validate_quant_params(params, o.m, o.k); !v) return fail(v.error().message);
  if (o.batch < 1 || o.repeats < 1 || o.threads < 0 || o.stream_mib < 1)
    return fail("--batch, --repeats and --stream-mib must be positive, --threads not negative");
  const double limit = static_cast<double>(1 << 28);
  if (static_cast<double>(o.m) * o.k > limit) return fail("m * k must stay within 2^28");
  if (static_cast<double>(o.batch) * (static_cast<double>(o.m) + o.k) > limit)
    return fail("batch * (m + k) must stay within 2^28");
  const int threads = o.threads > 0 ? o.threads : engine::default_thread_count();

  std::vector<float> w(static_cast<std::size_t>(o.m) * o.k);
  std::vector<float> x(static_cast<std::size_t>(o.batch) * o.k);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  auto q = engine::quantize(w, o.m, o.k, params, threads);
  if (!q) return fail(q.error().message);

  const std::size_t ny = static_cast<std::size_t>(o.batch) * o.m;
  std::vector<float> y(ny), y_ref(ny), y_eigen(ny);
  for (int n = 0; n < o.batch; ++n)
    engine::gemv_reference(*q, std::span<const float>(x).subspan(static_cast<std::size_t>(n) * o.k, o.k),
                           std::span<float>(y_ref).subspan(static_cast<std::size_t>(n) * o.m, o.m));

  engine::QGemmOptions qo;
  qo.threads = threads;
  engine::ReadProbe probe(static_cast<std::size_t>(o.stream_mib) << 20, threads);
  std::vector<double> sweeps, eigen_sweeps;
  const double us =
      median_us([&] { engine::qgemm(*q, x, o.batch, y, qo); }, o.repeats, probe, o.warm, &sweeps);
  const double eigen_us =
      median_us([&] { engine::eigen_fp32_gemm(w, o.m, o.k, x, o.batch, y_eigen, threads); }, o.repeats, probe,
                o.warm, &eigen_sweeps);
  const engine::ReadBandwidth stream = probe.measure(5);

  double max_err = 0.0, max_ref = 0.0, err2 = 0.0, ref2 = 0.0;
  for (std::size_t i = 0; i < ny; ++i) {
    const double e = std::abs(static_cast<double>(y[i]) - y_ref[i]);
    max_err = std::max(max_err, std::isfinite(e) ? e : HUGE_VAL);
    max_ref = std::max(max_ref, std::abs(static_cast<double>(y_ref[i])));
    err2 += e * e;
    ref2 += static_cast<double>(y_ref[i]) * y_ref[i];
  }
  const double max_rel_error = max_ref > 0.0 ? max_err / max_ref : max_err;
  const double rel_rmse = ref2 > 0.0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  const double weight_bytes = static_cast<double>(q->bytes());
  const double weight_gbps = weight_bytes / (us * 1e-6) / 1e9;
  const double ratio = eigen_us / us;
  const double fraction = weight_gbps / stream.gbps;
  const std::string isa(engine::to_string(qo.isa));

  if (o.json) {
    nlohmann::ordered_json j;
    put_shape(j, o);
    j["threads"] = threads;
    j["isa"] = isa;
    j["repeats"] = o.repeats;
    j["cache"] = o.warm ? "warm" : "cold";
    j["us"] = us;
    j["weight_bytes"] = q->bytes();
    j["weight_gbps"] = weight_gbps;
    j["bits_per_weight"] = q->bits_per_weight();
    j["eigen_fp32_us"] = eigen_us;
    j["eigen_fp32_threads"] = threads;
    j["eigen_fp32_split"] = "row blocks over the engine thread pool (Eigen without OpenMP)";
    j["ratio_vs_eigen_fp32"] = ratio;
    j["stream_gbps"] = stream.gbps;
    j["stream_bytes"] = stream.bytes;
    j["fraction_of_stream"] = fraction;
    // The eviction sweeps between the timed products, as a read-bandwidth figure: the median shows
    // what the machine delivered while the kernel was measured (other tenants, frequency).
    if (!o.warm) j["stream_gbps_during_median"] = median(sweeps);
    j["max_rel_error"] = max_rel_error;
    j["rel_rmse"] = rel_rmse;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << o.bits << "-bit g" << o.group << " " << o.scheme << " " << o.m << "x" << o.k << " batch "
              << o.batch << ", " << isa << ", " << threads << " threads: " << us << " us, " << weight_gbps
              << " GB/s on " << q->bytes() << " weight bytes (" << fraction * 100.0 << "% of read bandwidth "
              << stream.gbps << " GB/s); Eigen fp32 " << eigen_us << " us (" << ratio << "x); max_rel_error "
              << max_rel_error << "\n";
  }
  return 0;
}

// --device cuda: every check first (exit 2, naming the flag), then the GPU (exit 3 on its errors).
int bench_gemv_cuda(const BenchGemvOptions& o) {
  if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
    return fail("--bits " + std::to_string(o.bits) + " is not 2, 3, 4 or 8");
  if (o.group != 32 && o.group != 64 && o.group != 128)
    return fail("--group " + std::to_string(o.group) + " is not 32, 64 or 128");
  if (o.scheme != "asym" && o.scheme != "sym") return fail("--scheme must be asym or sym, got " + o.scheme);
  if (o.m < 1) return fail("--m " + std::to_string(o.m) + " must be positive");
  if (o.k < 1) return fail("--k " + std::to_string(o.k) + " must be positive");
  if (o.k % o.group != 0)
    return fail("--k " + std::to_string(o.k) + " is not a multiple of the group size (--group " +
                std::to_string(o.group) + ")");
  if (o.batch < 1) return fail("--batch " + std::to_string(o.batch) + " must be positive");
  if (o.repeats < 1) return fail("--runs " + std::to_string(o.repeats) + " must be positive");
  if (o.stream_mib < 1) return fail("--stream-mib " + std::to_string(o.stream_mib) + " must be positive");
  if (o.threads != 0) return fail("--threads applies to --device cpu only");
  if (o.warm) return fail("--warm applies to --device cpu only");
  const double limit = static_cast<double>(1 << 28);
  if (static_cast<double>(o.m) * o.k > limit) return fail("--m * --k must stay within 2^28");
  if (static_cast<double>(o.batch) * (static_cast<double>(o.m) + o.k) > limit)
    return fail("--batch * (--m + --k) must stay within 2^28");
#if IPFSA_HAVE_CUDA
  auto ctx = cuda::GpuContext::create(0);
  if (!ctx) return fail("--device cuda: " + ctx.error().message, 3);
  cuda::GemvBenchConfig c;
  c.bits = o.bits;
  c.group = o.group;
  c.symmetric = o.scheme == "sym";
  c.m = o.m;
  c.k = o.k;
  c.batch = o.batch;
  if (o.repeats_given) c.runs = o.repeats;
  c.seed = o.seed;
  if (o.stream_mib_given) {
    auto gbps = cuda::stream_read_gbps(**ctx, static_cast<std::size_t>(o.stream_mib) << 20);
    if (!gbps) return fail("--device cuda: " + gbps.error().message, 3);
    c.stream_gbps = *gbps;
  }
  auto r = cuda::bench_gemv(**ctx, c);
  if (!r) return fail("--device cuda: " + r.error().message, r.error().code == ErrorCode::kInput ? 2 : 3);
  if (o.json) {
    nlohmann::ordered_json j;
    j["device"] = r->device;
    j["path"] = r->path;
    j["us"] = r->us;
    j["weight_gbps"] = r->weight_gbps;
    j["us_isolated"] = r->us_isolated;
    j["cublas_fp16_us"] = r->cublas_fp16_us;
    j["cublas_fp16_us_isolated"] = r->cublas_fp16_us_isolated;
    j["ratio_vs_cublas_fp16"] = r->ratio_vs_cublas_fp16;
    j["stream_gbps"] = r->stream_gbps;
    j["fraction_of_stream"] = r->fraction_of_stream;
    j["max_rel_error"] = r->max_rel_error;
    put_shape(j, o);
    j["runs"] = c.runs;
    j["copies"] = r->copies;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << o.bits << "-bit g" << o.group << " " << o.scheme << " " << o.m << "x" << o.k << " batch "
              << o.batch << " on " << r->device << ", " << r->path << ": " << r->us << " us, "
              << r->weight_gbps << " GB/s (" << r->fraction_of_stream * 100.0 << "% of read bandwidth "
              << r->stream_gbps << " GB/s); cuBLAS fp16 " << r->cublas_fp16_us << " us ("
              << r->ratio_vs_cublas_fp16 << "x); max_rel_error " << r->max_rel_error << "; " << r->copies
              << " weight copies rotated\n";
  }
  return 0;
#else
  return fail(engine::kNoCudaBuild);
#endif
}

}  // namespace

int bench_gemv_command(const BenchGemvOptions& o) {
  if (o.device == "cuda") return bench_gemv_cuda(o);
  if (o.device != "cpu") return fail("--device must be cpu or cuda, got " + o.device);
  return bench_gemv_cpu(o);
}

}  // namespace ipfsa::cli
