// net/input_buffer.h: a fixed-capacity input buffer with bounded line extraction.
//
// Promise: memory is fixed at construction, whatever the peer sends. next_line() hands out
// complete lines (without the line end) and reports over-long ones instead of growing.
// Thread: owned by one session.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>

namespace petrel::net {

class InputBuffer {
 public:
  explicit InputBuffer(std::size_t capacity) : data_(new char[capacity]), capacity_(capacity) {}

  // Space to read into (compacts first); never empty while size() < capacity().
  char* write_ptr() {
    compact();
    return data_.get() + end_;
  }
  // Valid after write_ptr(): before the compaction it undercounts (down to 0).
  std::size_t write_space() const { return capacity_ - end_; }
  void commit(std::size_t n) { end_ += n; }

  std::string_view unread() const { return {data_.get() + begin_, end_ - begin_}; }
  void consume(std::size_t n) { begin_ += n; if (begin_ == end_) begin_ = end_ = 0; }
  void clear() { begin_ = end_ = 0; }
  std::size_t size() const { return end_ - begin_; }
  std::size_t capacity() const { return capacity_; }

  enum class LineStatus { kLine, kNeedMore, kTooLong };
  // A line ends at LF; a CR before the LF is dropped. With max_len (including the line end)
  // exceeded and no LF in sight, returns kTooLong; the caller then discards with skip_line().
  LineStatus next_line(std::size_t max_len, std::string_view& line) {
    std::string_view u = unread();
    const void* lf = std::memchr(u.data(), '\n', u.size());
    if (!lf) return u.size() >= max_len ? LineStatus::kTooLong : LineStatus::kNeedMore;
    std::size_t n = static_cast<std::size_t>(static_cast<const char*>(lf) - u.data());
    if (n + 1 > max_len) return LineStatus::kTooLong;
    line = u.substr(0, (n > 0 && u[n - 1] == '\r') ? n - 1 : n);
    consume(n + 1);
    return LineStatus::kLine;
  }
  // Drops input up to and including the next LF; true when one was found.
  bool skip_line() {
    std::string_view u = unread();
    const void* lf = std::memchr(u.data(), '\n', u.size());
    if (!lf) {
      clear();
      return false;
    }
    consume(static_cast<std::size_t>(static_cast<const char*>(lf) - u.data()) + 1);
    return true;
  }

 private:
  void compact() {
    if (begin_ == 0) return;
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }

  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace petrel::net
