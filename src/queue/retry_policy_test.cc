// The retry policy, one row per rule (queue/retry_policy.h).
#include "queue/retry_policy.h"

#include <gtest/gtest.h>

namespace petrel::queue {
namespace {

using namespace std::chrono_literals;

TEST(RetryPolicy, BackoffDoublesFromRetryFirstUpToRetryMax) {
  struct Row {
    std::chrono::seconds first, max;
    std::uint32_t attempts;
    RetryPolicy::Seconds want;
  };
  const Row rows[] = {
      {300s, 3600s, 0, 300},  {300s, 3600s, 1, 300},   {300s, 3600s, 2, 600},  {300s, 3600s, 3, 1200},
      {300s, 3600s, 4, 2400}, {300s, 3600s, 5, 3600},  {300s, 3600s, 50, 3600}, {300s, 3600s, 4000000000u, 3600},
      {1s, 1s, 9, 1},         {10s, 25s, 2, 20},       {10s, 25s, 3, 25},      {7s, 7s, 1, 7},
  };
  for (const Row& r : rows) {
    RetryPolicy p;
    p.retry_first = r.first;
    p.retry_max = r.max;
    EXPECT_EQ(p.backoff(r.attempts), r.want) << r.first.count() << " " << r.max.count() << " " << r.attempts;
  }
}

TEST(RetryPolicy, NormalizedClampsTheSettings) {
  struct Row {
    std::chrono::seconds first, max, want_first, want_max;
  };
  const Row rows[] = {{0s, 0s, 1s, 1s}, {-5s, 10s, 1s, 10s}, {300s, 60s, 300s, 300s}, {300s, 3600s, 300s, 3600s}};
  for (const Row& r : rows) {
    RetryPolicy p;
    p.retry_first = r.first;
    p.retry_max = r.max;
    RetryPolicy n = p.normalized();
    EXPECT_EQ(n.retry_first, r.want_first) << r.first.count();
    EXPECT_EQ(n.retry_max, r.want_max) << r.first.count();
  }
}

TEST(RetryPolicy, ExpiryAndTheLastAttempt) {
  RetryPolicy p;
  p.lifetime = 1000s;
  struct Row {
    RetryPolicy::Seconds received, now, due;
    bool expired, still_tried;
  };
  const Row rows[] = {
      {5000, 5999, 5999, false, true},  // inside the lifetime
      {5000, 6000, 6000, true, true},   // at the end: expired, and an attempt due then is made
      {5000, 9000, 5500, true, true},   // after downtime: due before the end, tried once more
      {5000, 9000, 6001, true, false},  // due after the end: not tried
  };
  for (const Row& r : rows) {
    EXPECT_EQ(p.expire_at(r.received), r.received + 1000);
    EXPECT_EQ(p.expired(r.received, r.now), r.expired) << r.now;
    EXPECT_EQ(p.still_tried(r.received, r.due), r.still_tried) << r.due;
  }
}

TEST(RetryPolicy, DelayWarningIsDueOnceTheDelayHasPassed) {
  struct Row {
    std::chrono::seconds delay_warning;
    RetryPolicy::Seconds received, now;
    bool want;
  };
  const Row rows[] = {
      {4h, 0, 4 * 3600 - 1, false}, {4h, 0, 4 * 3600, true}, {4h, 100, 100 + 5 * 3600, true}, {0s, 0, 99999999, false},
  };
  for (const Row& r : rows) {
    RetryPolicy p;
    p.delay_warning = r.delay_warning;
    EXPECT_EQ(p.delay_warning_due(r.received, r.now), r.want) << r.delay_warning.count() << " " << r.now;
  }
}

}  // namespace
}  // namespace petrel::queue
