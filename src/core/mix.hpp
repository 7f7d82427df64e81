// splitmix64 (Steele, Lea and Flood 2014; the seeding function of xoshiro): derives independent,
// well-mixed 64-bit seeds from related ones (a seed and a name hash, a seed and a node number).
// Pure header; no state; thread-safe.
#pragma once

#include <cstdint>

namespace ipfsa::core {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace ipfsa::core
