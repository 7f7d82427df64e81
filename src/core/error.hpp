// Error handling in three tiers (docs/design.md §Errors, ../STYLE.md §4):
//   1. bugs            -> IPFSA_ASSERT / IPFSA_EXPECTS: print condition, file, line; abort.
//   2. expected errors -> Result<T> carrying an Error{code, message}; [[nodiscard]].
//   3. exceptions      -> only at the edges (CLI parsing, library wrappers), mapped to exit codes
//                         in main.
// Pure header: no third-party includes. Thread-safe (value types only).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace ipfsa {

// Exit codes of the binary; also the coarse class of an Error.
enum class ErrorCode : int {
  kOk = 0,
  kTaskFailed = 1,  // the campaign ran, some task did not pass
  kInput = 2,       // usage or input error: bad flag, bad campaign file, corrupt store
  kInfra = 3,       // infrastructure failure: MPI, all workers lost, store not writable
};

struct Error {
  ErrorCode code = ErrorCode::kInput;
  std::string message;
};

inline Error input_error(std::string message) {
  return Error{ErrorCode::kInput, std::move(message)};
}
inline Error infra_error(std::string message) {
  return Error{ErrorCode::kInfra, std::move(message)};
}

// A value or an Error, in the manner of std::expected (C++23), which g++ 12 lacks.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{ErrorCode::kOk, {}};
  bool ok_ = true;
};

[[noreturn]] inline void assertion_failed(const char* cond, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "ipfs-accelerate: internal error: %s failed at %s:%d%s%s\n", cond, file, line,
               msg[0] ? ": " : "", msg);
  std::abort();
}

}  // namespace ipfsa

// A bug in our code, never bad user input.
#define IPFSA_ASSERT(cond)                                                 \
  do {                                                                     \
    if (!(cond)) ::ipfsa::assertion_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)
#define IPFSA_EXPECTS(cond, msg)                                              \
  do {                                                                        \
    if (!(cond)) ::ipfsa::assertion_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
