// The envelope every inter-rank message travels in (M2): a cereal-encoded header and body plus an
// XXH3-64 checksum over (type, from, seq, body). open() verifies before anything is decoded, so a
// corrupted or truncated message is rejected, never interpreted. (M13 replaces the checksum with
// an HMAC keyed by a per-job secret; the field is 64 bits wide today.)
// Thread-safety: pure functions.
#pragma once

#include <xxhash.h>

#include <cstdint>
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
  std::uint64_t checksum = 0;

  template <class A>
  void serialize(A& a) {
    a(version, type, from, seq, body, checksum);
  }
};

inline std::uint64_t envelope_checksum(std::uint32_t version, std::uint8_t type, std::int32_t from,
                                       std::uint64_t seq, std::string_view body) {
  // The header fields seed the hash of the body, so a change to either changes the checksum.
  struct Header {
    std::uint64_t seq;
    std::uint32_t version;
    std::int32_t from;
    std::uint64_t type;
  } h{seq, version, from, type};
  const std::uint64_t seed = XXH3_64bits(&h, sizeof h);
  return XXH3_64bits_withSeed(body.data(), body.size(), seed);
}

inline std::string seal(std::uint8_t type, std::int32_t from, std::uint64_t seq, std::string body) {
  Envelope e;
  e.type = type;
  e.from = from;
  e.seq = seq;
  e.checksum = envelope_checksum(e.version, type, from, seq, body);
  e.body = std::move(body);
  return encode(e);
}

// Decodes and verifies; an Error names what was wrong (bad encoding, version, checksum, sender).
inline Result<Envelope> open(std::string_view bytes, std::int32_t actual_from) {
  auto e = decode<Envelope>(bytes);
  if (!e) return e.error();
  if (e->version != kWireVersion)
    return input_error("wire version " + std::to_string(e->version) + ", expected " +
                       std::to_string(kWireVersion));
  if (e->checksum != envelope_checksum(e->version, e->type, e->from, e->seq, e->body))
    return input_error("checksum mismatch");
  if (e->from != actual_from)
    return input_error("sender field " + std::to_string(e->from) + " but sent by rank " +
                       std::to_string(actual_from));
  return e;
}

}  // namespace ipfsa::wire
