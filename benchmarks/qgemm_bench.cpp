// Dequant-fused low-bit GEMV/GEMM (src/engine/qgemm.hpp, docs/kernels.md): time and weight bytes
// per second for each bit width (group 64, asymmetric) at the shapes of a 7-8B decoder layer
// (4096 x 4096 attention projection, 4096 x 14336 MLP down-projection input side), batch 1 and 8,
// on the best ISA and on the portable path.
//
// Caches: iterations cycle through copies of the quantized matrix whose total exceeds 128 MiB, so
// each product streams its weights from DRAM (as in a real decoder step, where every layer's
// weights are evicted by the others'), not from the 32 MiB L3. `bench gemv` reports the same
// kernels against the read-bandwidth probe and Eigen fp32 (docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "engine/qgemm.hpp"
#include "engine/quant.hpp"
#include "engine/thread_pool.hpp"

namespace {

using ipfsa::engine::KernelIsa;
using ipfsa::engine::QuantMatrix;

struct Copies {
  std::vector<QuantMatrix> w;
  std::vector<float> x;
  std::vector<float> y;
};

// Quantized N(0, 1) matrices, built once per (bits, rows, cols, batch).
const Copies& copies(int bits, int rows, int cols, int batch) {
  static std::map<std::tuple<int, int, int, int>, std::unique_ptr<Copies>> cache;
  auto& slot = cache[{bits, rows, cols, batch}];
  if (!slot) {
    slot = std::make_unique<Copies>();
    std::vector<float> w(static_cast<std::size_t>(rows) * cols);
    std::mt19937_64 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : w) v = normal(rng);
    ipfsa::engine::QuantParams p;
    p.bits = bits;
    p.group = 64;
    p.search_clip = false;
    auto q = ipfsa::engine::quantize(w, rows, cols, p, ipfsa::engine::default_thread_count());
    const std::size_t n = std::clamp<std::size_t>((std::size_t{128} << 20) / q->bytes() + 1, 1, 64);
    slot->w.assign(n, *q);
    slot->x.resize(static_cast<std::size_t>(batch) * cols);
    for (float& v : slot->x) v = normal(rng);
    slot->y.resize(static_cast<std::size_t>(batch) * rows);
  }
  return *slot;
}

// Args: bits, rows, cols, batch, isa (0 portable, 1 best).
void BM_QGemm(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const int rows = static_cast<int>(state.range(1));
  const int cols = static_cast<int>(state.range(2));
  const int batch = static_cast<int>(state.range(3));
  ipfsa::engine::QGemmOptions options;
  options.isa = state.range(4) == 0 ? KernelIsa::kPortable : ipfsa::engine::best_isa();
  const Copies& c = copies(bits, rows, cols, batch);
  std::vector<float> y(c.y.size());
  std::size_t i = 0;
  for (auto _ : state) {
    ipfsa::engine::qgemm(c.w[i], c.x, batch, y, options);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % c.w.size();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(c.w[0].bytes()));
  state.SetLabel(std::string(ipfsa::engine::to_string(options.isa)) + ", " +
                 std::to_string(ipfsa::engine::default_thread_count()) + " threads, " +
                 std::to_string(c.w.size()) + " copies");
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int bits : {2, 3, 4, 8}) {
    b->Args({bits, 4096, 4096, 1, 1});
    b->Args({bits, 4096, 14336, 1, 1});
    b->Args({bits, 4096, 4096, 8, 1});
    b->Args({bits, 4096, 4096, 1, 0});
  }
  b->ArgNames({"bits", "m", "k", "batch", "best_isa"});
  b->Unit(benchmark::kMicrosecond);
  b->UseRealTime();
}

BENCHMARK(BM_QGemm)->Apply(shapes);

}  // namespace
