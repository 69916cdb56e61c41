// queue/retry_policy.h: when a deferred recipient is tried again, and when it expires.
//
// What it is: pure functions of the [queue] retry settings and the attempt history; no clock,
// no state, no I/O, so every rule is one row of a table test (retry_policy_test.cc).
// Promise: the first retry comes retry_first after the first attempt, then the delay doubles
// per attempt, capped at retry_max; a recipient not delivered `lifetime` after its message
// arrived expires, except that an attempt that fell due before that moment is still made once
// (after downtime, a flush or a release, as Postfix does). A delay warning is due once the
// first deferral ends delay_warning or more after arrival (0: never).
// Not done here: keeping the times (scheduler.cc), writing the states (the scheduler's tick).
// Failure: none; out-of-range settings are clamped (retry_first at least 1 s, retry_max at
// least retry_first).
#pragma once

#include <chrono>
#include <cstdint>

namespace petrel::queue {

struct RetryPolicy {
  using Seconds = std::int64_t;  // seconds since the epoch, or a duration in seconds

  std::chrono::seconds retry_first{std::chrono::minutes(5)};
  std::chrono::seconds retry_max{std::chrono::hours(1)};
  std::chrono::seconds lifetime{std::chrono::hours(24 * 5)};
  std::chrono::seconds delay_warning{std::chrono::hours(4)};

  // The same settings with retry_first ≥ 1 s and retry_max ≥ retry_first.
  RetryPolicy normalized() const;
  // The wait after a deferral that was attempt number `attempts` (1 = the first attempt).
  Seconds backoff(std::uint32_t attempts) const;
  // The moment a message received at `received_at` has been queued for its whole lifetime.
  Seconds expire_at(Seconds received_at) const { return received_at + lifetime.count(); }
  // Whether a recipient whose attempt ended deferred at `now` has expired instead.
  bool expired(Seconds received_at, Seconds now) const { return now >= expire_at(received_at); }
  // Whether an attempt due at `due` is still made although the lifetime may be over: it fell
  // due before the message expired.
  bool still_tried(Seconds received_at, Seconds due) const { return due <= expire_at(received_at); }
  // Whether a deferral at `now` of a message received at `received_at` calls for the delay
  // warning (if none was sent yet).
  bool delay_warning_due(Seconds received_at, Seconds now) const {
    return delay_warning.count() > 0 && now - received_at >= delay_warning.count();
  }
};

}  // namespace petrel::queue
