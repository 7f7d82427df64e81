// The binary unit tests spawn as a child process (for example `<binary> __executor`): IPFSA_BINARY,
// which tests/CMakeLists.txt sets to the ipfs-accelerate binary. Header-only; thread-safe.
#pragma once

#ifndef IPFSA_BINARY
#error "IPFSA_BINARY must name the ipfs-accelerate binary (tests/CMakeLists.txt defines it)"
#endif

namespace ipfsa::testing {

inline const char* binary_path() {
  return IPFSA_BINARY;
}

}  // namespace ipfsa::testing
