// base/clock.h: the seam through which Petrel reads time, so tests can move it by hand.
//
// wall() is for timestamps people read (Received:, Date:, logs); mono() is for deadlines and
// intervals. FakeClock starts at a fixed instant and moves only when told.
// Thread: RealClock any; FakeClock any (atomic), advanced by the test's thread.
#pragma once

#include <atomic>
#include <chrono>

namespace petrel::base {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point wall() const = 0;
  virtual std::chrono::steady_clock::time_point mono() const = 0;
};

class RealClock final : public Clock {
 public:
  std::chrono::system_clock::time_point wall() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point mono() const override { return std::chrono::steady_clock::now(); }
};

class FakeClock final : public Clock {
 public:
  // 2026-01-01T00:00:00Z unless told otherwise.
  explicit FakeClock(std::chrono::system_clock::time_point start =
                         std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)))
      : offset_(start.time_since_epoch().count()) {}

  std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(offset_.load()));
  }
  std::chrono::steady_clock::time_point mono() const override {
    return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::system_clock::duration(offset_.load())));
  }
  void advance(std::chrono::system_clock::duration d) { offset_ += d.count(); }

 private:
  std::atomic<std::chrono::system_clock::rep> offset_;
};

}  // namespace petrel::base
