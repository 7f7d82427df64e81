// The envelope every inter-rank message travels in (M2): a cereal-encoded header and body,
// followed by the XXH3-64 checksum of those bytes in xxhash's canonical (big-endian) form.
// open() verifies the checksum before decoding anything, so a corrupted, truncated or foreign
// message is rejected without being interpreted (and never makes the decoder allocate what a
// garbled length field asks for). M13 replaces the checksum with an HMAC keyed per job.
// Thread-safety: pure functions.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "wire/serialize.hpp"

namespace ipfsa::wire {

struct Envelope {
  std::uint32_t version = kWireVersion;
  std::uint8_t type = 0;
  std::int32_t from = -1;
  std::uint64_t seq = 0;
  std::string body;

  template <class A>
  void serialize(A& a) {
    a(version, type, from, seq, body);
  }
};

inline constexpr std::size_t kChecksumBytes = sizeof(XXH64_canonical_t);

inline std::string seal(std::uint8_t type, std::int32_t from, std::uint64_t seq, std::string body) {
  Envelope e;
  e.type = type;
  e.from = from;
  e.seq = seq;
  e.body = std::move(body);
  std::string bytes = encode(e);
  XXH64_canonical_t sum;
  XXH64_canonicalFromHash(&sum, XXH3_64bits(bytes.data(), bytes.size()));
  bytes.append(reinterpret_cast<const char*>(sum.digest), kChecksumBytes);
  return bytes;
}

// Verifies, then decodes; an Error names what was wrong (checksum, encoding, version, sender).
inline Result<Envelope> open(std::string_view bytes, std::int32_t actual_from) {
  if (bytes.size() < kChecksumBytes)
    return input_error("message too short (" + std::to_string(bytes.size()) + " bytes)");
  const std::string_view payload = bytes.substr(0, bytes.size() - kChecksumBytes);
  XXH64_canonical_t sum;
  std::memcpy(sum.digest, bytes.data() + payload.size(), kChecksumBytes);
  if (XXH64_hashFromCanonical(&sum) != XXH3_64bits(payload.data(), payload.size()))
    return input_error("checksum mismatch");
  auto e = decode<Envelope>(payload);
  if (!e) return e.error();
  if (e->version != kWireVersion)
    return input_error("wire version " + std::to_string(e->version) + ", expected " +
                       std::to_string(kWireVersion));
  if (e->from != actual_from)
    return input_error("sender field " + std::to_string(e->from) + " but sent by rank " +
                       std::to_string(actual_from));
  return e;
}

}  // namespace ipfsa::wire
