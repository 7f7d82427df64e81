// Dequant-fused GEMV/GEMM (see qgemm.hpp, docs/kernels.md): ISA dispatch, the row split over the
// engine's thread pool, the activation quantization and the portable C++ kernels. The AVX2 kernels
// are in qgemm_avx2.cpp, the AVX-512 VNNI kernels in qgemm_avx512.cpp.
#include "engine/qgemm.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "engine/fp16.hpp"
#include "engine/qgemm_kernels.hpp"
#include "engine/thread_pool.hpp"

namespace ipfsa::engine {
namespace detail {

void quantize_activations_portable(const float* x, int batch, int cols, int group, std::int8_t* q, float* d,
                                   float* dsum) {
  const int gpr = cols / group;
  for (int n = 0; n < batch; ++n) {
    for (int g = 0; g < gpr; ++g) {
      const std::size_t base = static_cast<std::size_t>(n) * cols + static_cast<std::size_t>(g) * group;
      const float* xg = x + base;
      float amax = 0.0f;
      for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(xg[i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      int sum = 0;
      for (int i = 0; i < group; ++i) {
        const int v = static_cast<int>(std::nearbyint(xg[i] * inv));
        q[base + i] = static_cast<std::int8_t>(v);
        sum += v;
      }
      const std::size_t gi = static_cast<std::size_t>(n) * gpr + g;
      d[gi] = amax / 127.0f;
      dsum[gi] = d[gi] * static_cast<float>(sum);
    }
  }
}

namespace {

inline std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u64(std::uint8_t* p, std::uint64_t v) {
  std::memcpy(p, &v, sizeof v);
}

// The 32 codes of one packed chunk, in weight order (docs/quantization.md, packed layout), with
// 64-bit SWAR (byte lanes in a uint64_t; the layouts are little-endian byte orders, and so is the
// arithmetic below only on little-endian targets, which is all we build for).
template <int Bits>
void unpack_chunk(const std::uint8_t* p, std::uint8_t* out) {
  static_assert(std::endian::native == std::endian::little, "the SWAR unpacking assumes little-endian");
  constexpr std::uint64_t kLow2 = 0x0303030303030303ull;
  constexpr std::uint64_t kLow4 = 0x0F0F0F0F0F0F0F0Full;
  if constexpr (Bits == 8) {
    std::memcpy(out, p, 32);
  } else if constexpr (Bits == 4) {
    for (int h = 0; h < 2; ++h) {  // bytes 0-7 hold weights 0-7 and 16-23; bytes 8-15: 8-15, 24-31
      const std::uint64_t v = load_u64(p + 8 * h);
      store_u64(out + 8 * h, v & kLow4);
      store_u64(out + 16 + 8 * h, (v >> 4) & kLow4);
    }
  } else {
    const std::uint64_t v = load_u64(p);
    for (int k = 0; k < 4; ++k) {
      std::uint64_t codes = (v >> (2 * k)) & kLow2;  // weights 8k .. 8k+7
      if constexpr (Bits == 3) {
        // Spread the 8 high bits of byte 8 + k over 8 bytes (bit j -> byte j), then to bit 2.
        const std::uint64_t m = (p[8 + k] * 0x0101010101010101ull) & 0x8040201008040201ull;
        codes |= ((m + 0x7F7F7F7F7F7F7F7Full) & 0x8080808080808080ull) >> 5;
      }
      store_u64(out + 8 * k, codes);
    }
  }
}

// Rows [r0, r1) for every batch row: per group the codes are unpacked once and dotted with each
// batch row's int8 activations in int32 (exact), then scaled in fp32.
template <int Bits>
void portable_rows(const detail::KernelArgs& a, int r0, int r1) {
  const QuantMatrix& w = *a.w;
  const int group = w.params.group;
  const int gpr = w.groups_per_row();
  const int batch = a.x.batch;
  const bool asym = w.params.scheme == QuantScheme::kAsymmetric;
  const float sym_offset = -static_cast<float>(1 << (Bits - 1));
  const std::size_t rb = w.row_bytes();
  constexpr int kChunkBytes = 4 * Bits;
  thread_local std::vector<float> acc;
  acc.resize(static_cast<std::size_t>(batch));
  alignas(64) std::uint8_t codes[128];
  for (int r = r0; r < r1; ++r) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const std::uint8_t* row = w.packed.data() + static_cast<std::size_t>(r) * rb;
    for (int g = 0; g < gpr; ++g) {
      const std::size_t gi = static_cast<std::size_t>(r) * gpr + g;
      for (int c = 0; c < group / kQuantChunk; ++c)
        unpack_chunk<Bits>(row + (static_cast<std::size_t>(g) * (group / kQuantChunk) + c) * kChunkBytes,
                           codes + c * kQuantChunk);
      const float s = fp16_to_float(w.scales[gi]);
      const float m = asym ? fp16_to_float(w.zeros[gi]) : sym_offset * s;
      for (int n = 0; n < batch; ++n) {
        const std::int8_t* xq =
            a.x.q + static_cast<std::size_t>(n) * w.cols + static_cast<std::size_t>(g) * group;
        std::int32_t dot = 0;
        for (int i = 0; i < group; ++i) dot += static_cast<std::int32_t>(codes[i]) * xq[i];
        const std::size_t xi = static_cast<std::size_t>(n) * gpr + g;
        acc[n] += s * a.x.d[xi] * static_cast<float>(dot) + m * a.x.dsum[xi];
      }
    }
    for (int n = 0; n < batch; ++n) a.y[static_cast<std::size_t>(n) * w.rows + r] = acc[n];
  }
}

}  // namespace

RowKernel portable_kernel(int bits, int /*group*/) {
  switch (bits) {
    case 2:
      return &portable_rows<2>;
    case 3:
      return &portable_rows<3>;
    case 4:
      return &portable_rows<4>;
    case 8:
      return &portable_rows<8>;
    default:
      IPFSA_EXPECTS(false, "qgemm: unsupported bit width");
  }
  return nullptr;
}

}  // namespace detail

namespace {

bool cpu_has_avx2() {
#if defined(IPFSA_HAVE_AVX2_KERNELS)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512vnni() {
#if defined(IPFSA_HAVE_AVX512VNNI_KERNELS)
  static const bool has = [] {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return has;
#else
  return false;
#endif
}

// Rows handed out per atomic fetch: a multiple of 4 (the widest row block of the kernels), about
// eight pieces per thread so that a thread slowed by another process does not hold up the call.
int rows_per_piece(int rows, int threads) {
  const int piece = rows / (threads * 8);
  return std::clamp((piece + 3) / 4 * 4, 4, 256);
}

struct Scratch {
  std::vector<std::int8_t> q;
  std::vector<float> d;
  std::vector<float> dsum;
};

}  // namespace

std::string_view to_string(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512Vnni:
      return "avx512vnni";
    case KernelIsa::kAvx2:
      return "avx2";
    default:
      return "portable";
  }
}

KernelIsa best_isa() {
  // IPFSA_KERNEL caps the choice (other values are ignored); the CPU still has to have the path.
  KernelIsa cap = KernelIsa::kAvx512Vnni;
  if (const char* env = std::getenv("IPFSA_KERNEL"); env != nullptr) {
    if (std::strcmp(env, "portable") == 0) cap = KernelIsa::kPortable;
    if (std::strcmp(env, "avx2") == 0) cap = KernelIsa::kAvx2;
  }
  if (cap == KernelIsa::kAvx512Vnni && cpu_has_avx512vnni()) return KernelIsa::kAvx512Vnni;
  if (cap != KernelIsa::kPortable && cpu_has_avx2()) return KernelIsa::kAvx2;
  return KernelIsa::kPortable;
}

void qgemm(const QuantMatrix& w, std::span<const float> x, int batch, std::span<float> y,
           const QGemmOptions& options) {
  IPFSA_ASSERT(batch >= 0);
  IPFSA_ASSERT(x.size() == static_cast<std::size_t>(batch) * w.cols);
  IPFSA_ASSERT(y.size() == static_cast<std::size_t>(batch) * w.rows);
  IPFSA_ASSERT(validate_quant_params(w.params, w.rows, w.cols).ok());
  IPFSA_ASSERT(w.packed.size() == w.row_bytes() * static_cast<std::size_t>(w.rows));
  if (batch == 0) return;

  // An ISA the CPU lacks falls back to the next one down.
  const bool avx512vnni = options.isa == KernelIsa::kAvx512Vnni && cpu_has_avx512vnni();
  const bool avx2 =
      (options.isa == KernelIsa::kAvx2 || options.isa == KernelIsa::kAvx512Vnni) && cpu_has_avx2();
  const int group = w.params.group;
  const std::size_t groups = static_cast<std::size_t>(batch) * w.groups_per_row();
  thread_local Scratch scratch;  // grows with the batch, reused by later calls of this thread
  if (scratch.q.size() < x.size()) scratch.q.resize(x.size());
  if (scratch.d.size() < groups) {
    scratch.d.resize(groups);
    scratch.dsum.resize(groups);
  }

  detail::KernelArgs args;
  args.w = &w;
  args.x =
      detail::ActivationsView{batch, w.cols, group, scratch.q.data(), scratch.d.data(), scratch.dsum.data()};
  args.y = y.data();
  detail::RowKernel kernel = nullptr;
#if defined(IPFSA_HAVE_AVX2_KERNELS)
  if (avx2) {
    detail::quantize_activations_avx2(x.data(), batch, w.cols, group, scratch.q.data(), scratch.d.data(),
                                      scratch.dsum.data());
    kernel = detail::avx2_kernel(w.params.bits, group);
  }
#endif
#if defined(IPFSA_HAVE_AVX512VNNI_KERNELS)
  if (avx512vnni) kernel = detail::avx512vnni_kernel(w.params.bits, group);  // same activations as AVX2
#endif
  if (kernel == nullptr) {
    detail::quantize_activations_portable(x.data(), batch, w.cols, group, scratch.q.data(), scratch.d.data(),
                                          scratch.dsum.data());
    kernel = detail::portable_kernel(w.params.bits, group);
  }

  const int requested = options.threads > 0 ? options.threads : default_thread_count();
  const int threads = std::clamp(requested, 1, (w.rows + 3) / 4);
  if (threads == 1) {
    kernel(args, 0, w.rows);
    return;
  }
  const int piece = rows_per_piece(w.rows, threads);
  std::atomic<int> next{0};
  engine_thread_pool().run(threads, [&](int) {
    for (;;) {
      const int r0 = next.fetch_add(piece, std::memory_order_relaxed);
      if (r0 >= w.rows) break;
      kernel(args, r0, std::min(w.rows, r0 + piece));
    }
  });
}

}  // namespace ipfsa::engine
