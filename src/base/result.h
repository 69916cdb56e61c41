// base/result.h: Result<T> and Error, the way every recoverable failure travels in Petrel.
//
// Shaped like std::expected (C++23) so it can become an alias later: has_value(), value(),
// error(), operator*, operator->, explicit bool. Errors carry a class (temporary/permanent)
// because the protocol edge must choose between 4xx and 5xx; unclassified means temporary.
// Not done here: exceptions. Nothing on the data path throws.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace petrel::base {

enum class ErrorKind {
  kTemporary,  // may succeed later: I/O, resources, timeouts; the default
  kPermanent,  // will never succeed as asked: syntax, policy, unknown user
};

struct Error {
  ErrorKind kind = ErrorKind::kTemporary;
  std::string message;

  bool temporary() const { return kind == ErrorKind::kTemporary; }
};

inline Error temporary_error(std::string message) { return Error{ErrorKind::kTemporary, std::move(message)}; }
inline Error permanent_error(std::string message) { return Error{ErrorKind::kPermanent, std::move(message)}; }

// Error from errno after a failed system call: "what: strerror(errno)", temporary.
Error errno_error(const std::string& what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    PETREL_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(v_);
  }
  const T& value() const& {
    PETREL_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(v_);
  }
  T&& value() && {
    PETREL_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    PETREL_ASSERT(!has_value(), "Result::error() on a value");
    return std::get<1>(v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    PETREL_ASSERT(!ok_, "Result::error() on success");
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace petrel::base
