// The GPU benchmark table of issue 4: bits 2/3/4/8 x shapes (4096x4096, 4096x14336, 14336x4096,
// 8192x28672) x batch 1, 4, 16, each against cuBLAS fp16 of the same shape and the device's
// streaming-read bandwidth, all measured in this run (cuda/bench.cu: events, warm-up, median,
// rotating weight copies larger than L2, random data). Prints one markdown table to stdout and,
// with --json FILE, one JSON object per row.
//   ipfsa_gpu_bench [--runs N] [--group G] [--json FILE] [--quick] [--bits 2,4] [--batch 1,4]
//                   [--shape 4096x14336,8192x28672]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit.hpp"

namespace {

// "1,4,16" -> {1, 4, 16}; empty on a malformed list.
std::vector<int> int_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p || v <= 0) return {};
    out.push_back(static_cast<int>(v));
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return {};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ipfsa::cuda;
  int runs = 100;
  int group = 64;
  bool quick = false;
  const char* json_path = nullptr;
  std::vector<int> only_bits;
  std::vector<int> only_batch;
  std::vector<int> only_shape;  // m0, k0, m1, k1, ...
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--group" && i + 1 < argc) {
      group = std::atoi(argv[++i]);
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--bits" && i + 1 < argc) {
      only_bits = int_list(argv[++i]);
      if (only_bits.empty()) {
        std::fprintf(stderr, "ipfsa_gpu_bench: --bits takes a list such as 2,4\n");
        return 2;
      }
    } else if (a == "--batch" && i + 1 < argc) {
      only_batch = int_list(argv[++i]);
      if (only_batch.empty()) {
        std::fprintf(stderr, "ipfsa_gpu_bench: --batch takes a list of positive numbers such as 1,4\n");
        return 2;
      }
    } else if (a == "--shape" && i + 1 < argc) {
      std::string v = argv[++i];
      for (char& ch : v)
        if (ch == 'x') ch = ',';
      only_shape = int_list(v.c_str());
      if (only_shape.empty() || only_shape.size() % 2) {
        std::fprintf(stderr, "ipfsa_gpu_bench: --shape takes MxK[,MxK...]\n");
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "ipfsa_gpu_bench: unknown argument '%s'\nusage: ipfsa_gpu_bench [--runs N] [--group G] "
                   "[--json FILE] [--quick]\n",
                   argv[i]);
      return 2;
    }
  }
  if (runs <= 0 || (group != 32 && group != 64 && group != 128)) {
    std::fprintf(stderr, "ipfsa_gpu_bench: --runs must be positive and --group 32, 64 or 128\n");
    return 2;
  }
  for (int b : only_bits)
    if (b != 2 && b != 3 && b != 4 && b != 8) {
      std::fprintf(stderr, "ipfsa_gpu_bench: --bits takes 2, 3, 4 or 8, got %d\n", b);
      return 2;
    }
  for (std::size_t i = 1; i < only_shape.size(); i += 2)
    if (only_shape[i] % group != 0) {
      std::fprintf(stderr, "ipfsa_gpu_bench: --shape: k = %d is not a multiple of the group (%d)\n",
                   only_shape[i], group);
      return 2;
    }
  auto ctx = GpuContext::create(0);
  if (!ctx) {
    std::fprintf(stderr, "ipfsa_gpu_bench: %s\n", ctx.error().message.c_str());
    return 3;
  }
  auto stream = stream_read_gbps(**ctx);
  if (!stream) {
    std::fprintf(stderr, "ipfsa_gpu_bench: %s\n", stream.error().message.c_str());
    return 3;
  }
  FILE* json = json_path ? std::fopen(json_path, "w") : nullptr;
  struct Shape {
    int m, k;
  };
  std::vector<Shape> shapes = {{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 28672}};
  std::vector<int> batches = {1, 4, 16};
  std::vector<int> bits_list = {2, 3, 4, 8};
  if (quick) {
    shapes = {{4096, 14336}};
    batches = {1};
  }
  if (!only_bits.empty()) bits_list = only_bits;
  if (!only_batch.empty()) batches = only_batch;
  if (!only_shape.empty()) {
    shapes.clear();
    for (std::size_t i = 0; i + 1 < only_shape.size(); i += 2)
      shapes.push_back({only_shape[i], only_shape[i + 1]});
  }
  std::string device;
  std::vector<std::string> lines;
  for (int bits : bits_list)
    for (const Shape& s : shapes)
      for (int batch : batches) {
        GemvBenchConfig c;
        c.bits = bits;
        c.group = group;
        c.m = s.m;
        c.k = s.k;
        c.batch = batch;
        c.runs = runs;
        c.stream_gbps = *stream;
        auto r = bench_gemv(**ctx, c);
        if (!r) {
          std::fprintf(stderr, "ipfsa_gpu_bench: %d bits %dx%d batch %d: %s\n", bits, s.m, s.k, batch,
                       r.error().message.c_str());
          return 3;
        }
        device = r->device;
        char line[512];
        std::snprintf(line, sizeof line,
                      "| %d | %d x %d | %d | %s | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2g |",
                      bits, s.m, s.k, batch, r->path.c_str(), r->us, r->weight_gbps, r->fraction_of_stream,
                      r->cublas_fp16_us, r->ratio_vs_cublas_fp16, r->us_isolated, r->cublas_fp16_us_isolated,
                      r->max_rel_error);
        lines.push_back(line);
        std::fprintf(stderr, "%s\n", line);
        if (json)
          std::fprintf(
              json,
              "{\"device\":\"%s\",\"bits\":%d,\"group\":%d,\"m\":%d,\"k\":%d,\"batch\":%d,\"path\":\"%s\","
              "\"us\":%.4f,\"us_isolated\":%.4f,\"cublas_fp16_us_isolated\":%.4f,\"weight_gbps\":%.2f,"
              "\"stream_gbps\":%.2f,\"fraction_of_stream\":%.4f,"
              "\"cublas_fp16_us\":%.4f,\"ratio_vs_cublas_fp16\":%.4f,\"max_rel_error\":%.3g,\"copies\":%d}\n",
              r->device.c_str(), bits, group, s.m, s.k, batch, r->path.c_str(), r->us, r->us_isolated,
              r->cublas_fp16_us_isolated, r->weight_gbps, r->stream_gbps, r->fraction_of_stream,
              r->cublas_fp16_us, r->ratio_vs_cublas_fp16, r->max_rel_error, r->copies);
      }
  if (json) std::fclose(json);
  std::printf(
      "\nGPU GEMV/GEMM, %s, group %d asymmetric; us: per-product median of %d bursts of 10 back-to-back "
      "products; 1 launch: median of %d single launches; streaming read %.0f GB/s (same run)\n\n",
      device.c_str(), group, runs, runs, *stream);
  std::printf(
      "| bits | m x k | batch | path | us | weight GB/s | of stream | cuBLAS fp16 us | vs cuBLAS | us, 1 "
      "launch | "
      "cuBLAS, 1 launch | max rel err |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return 0;
}
