// base/unique_fd.h: a file descriptor that is closed when its owner goes, on every path out.
//
// Promise: exactly one UniqueFd owns a descriptor at a time (move-only); the destructor closes
// it and ignores close()'s result, so callers check close() themselves where its error matters
// (after writes they must sync: fsync, not close, reports the data's fate). release() gives the
// descriptor up without closing it.
#pragma once

#include <unistd.h>

#include <utility>

namespace petrel::base {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace petrel::base
