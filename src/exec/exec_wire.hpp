// Private to src/exec: the framing of the worker <-> executor pipes (see executor.hpp) and the cereal
// functions of ExecRequest / ExecReply. A frame is a little-endian uint32 body length followed by
// the body; an empty body is the executor's "ready" frame, sent once when it has started (every
// encoded message is at least one byte long, so the two cannot be confused).
// Thread-safety: pure functions; a FrameBuffer belongs to one reader.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "exec/executor.hpp"
#include "wire/serialize.hpp"

namespace ipfsa::exec {

template <class A>
void serialize(A& a, ExecRequest& r) {
  a(r.task, r.attempt);
}

template <class A>
void serialize(A& a, ExecReply& r) {
  a(r.task, r.attempt, r.started_unix, r.ended_unix, r.outcome);
}

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::uint32_t kMaxFrameBytes = 64u << 20;  // far above any real message

inline void append_frame_header(std::string& out, std::uint32_t body_bytes) {
  const char header[kFrameHeaderBytes] = {
      static_cast<char>(body_bytes & 0xff), static_cast<char>((body_bytes >> 8) & 0xff),
      static_cast<char>((body_bytes >> 16) & 0xff), static_cast<char>((body_bytes >> 24) & 0xff)};
  out.append(header, kFrameHeaderBytes);
}

// Appends one frame holding wire::encode(value) to `out`; returns the frame's size in bytes.
template <typename T>
std::size_t append_frame(std::string& out, const T& value) {
  const std::string body = wire::encode(value);
  append_frame_header(out, static_cast<std::uint32_t>(body.size()));
  out += body;
  return kFrameHeaderBytes + body.size();
}

// Bytes read from a pipe, cut into frames. Frame bodies returned by next() stay valid until the
// next call to space().
class FrameBuffer {
 public:
  enum class Next { kFrame, kNeedMore, kTooLarge };

  // Room for at least `n` more bytes, to be filled by read(2) and then commit()ed.
  char* space(std::size_t n) {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (begin_ > 0 && data_.size() - end_ < n) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (data_.size() - end_ < n) data_.resize(end_ + n);
    return data_.data() + end_;
  }
  void commit(std::size_t n) { end_ += n; }

  // The next complete frame's body in `body` (kFrame), kNeedMore when incomplete, kTooLarge when
  // the header announces more than kMaxFrameBytes (a corrupt stream).
  Next next(std::string_view& body) {
    if (end_ - begin_ < kFrameHeaderBytes) return Next::kNeedMore;
    const auto* h = reinterpret_cast<const unsigned char*>(data_.data() + begin_);
    const std::uint32_t len = std::uint32_t{h[0]} | std::uint32_t{h[1]} << 8 | std::uint32_t{h[2]} << 16 |
                              std::uint32_t{h[3]} << 24;
    if (len > kMaxFrameBytes) return Next::kTooLarge;
    if (end_ - begin_ < kFrameHeaderBytes + len) return Next::kNeedMore;
    body = std::string_view(data_.data() + begin_ + kFrameHeaderBytes, len);
    begin_ += kFrameHeaderBytes + len;
    return Next::kFrame;
  }

  std::size_t buffered() const { return end_ - begin_; }
  void clear() { begin_ = end_ = 0; }

 private:
  std::string data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace ipfsa::exec
