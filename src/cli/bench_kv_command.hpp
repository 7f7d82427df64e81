// `ipfs-accelerate bench kv`: memory and accuracy of the 2-bit (or 4-bit) KIVI-style KV cache
// against the fp16 cache on seeded synthetic keys and values (src/engine/kv_cache.hpp,
// docs/kv_cache.md). Single process, no MPI.
// Thread-safety: writes to std::cout / std::cerr; call from one thread.
#pragma once

#include <cstdint>

namespace ipfsa::cli {

struct BenchKvOptions {
  int bits = 2;        // 2 or 4
  int tokens = 4096;   // T
  int heads = 32;      // H
  int head_dim = 128;  // D
  int group = 128;     // keys: tokens per block; values: channels per group (must divide D)
  int window = 0;      // newest tokens kept in fp16
  std::uint64_t seed = 42;
  bool json = false;  // one JSON object on stdout; otherwise one human-readable line
};

// Fills a quantized cache and an fp16 cache with the same synthetic tokens, runs attention for
// one seeded query over both, and prints bytes, fp16_bytes, reduction (1 - bytes / fp16_bytes),
// bits_per_value, cosine and rel_error of the quantized output against the fp16 one (all heads
// concatenated), and attention_us / fp16_attention_us (median of 5 calls). Returns 0, or 2 with a
// message on stderr for bad options (bits not 2 or 4, tokens/heads/head_dim not positive, group
// not dividing head_dim, negative window, more than 2^31 values).
int bench_kv_command(const BenchKvOptions& options);

}  // namespace ipfsa::cli
