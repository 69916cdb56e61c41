#include "net/connection_limiter.h"

#include <gtest/gtest.h>

#include <vector>

namespace petrel::net {
namespace {

TEST(ConnectionLimiterTest, PerClientLimitCountsIpv6ByPrefix64) {
  // One host rotating through its /64 is one client: it gets max_per_client slots, not one per
  // address, and a neighbouring /64 is someone else.
  ConnectionLimiter limiter(100, 3);
  std::vector<std::unique_ptr<ConnectionLimiter::Slot>> slots;
  for (int i = 1; i <= 3; ++i) {
    auto slot = limiter.admit("2001:db8:1:2::" + std::to_string(i));
    ASSERT_NE(slot, nullptr) << i;
    slots.push_back(std::move(slot));
  }
  EXPECT_EQ(limiter.admit("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), nullptr);
  EXPECT_EQ(limiter.connections_from("2001:db8:1:2::77"), 3u);
  EXPECT_NE(limiter.admit("2001:db8:1:3::1"), nullptr);
  slots.pop_back();
  EXPECT_NE(limiter.admit("2001:db8:1:2::99"), nullptr);
}

TEST(ConnectionLimiterTest, Ipv4CountedPerAddress) {
  ConnectionLimiter limiter(100, 2);
  auto a = limiter.admit("192.0.2.1");
  auto b = limiter.admit("192.0.2.1");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(limiter.admit("192.0.2.1"), nullptr);
  EXPECT_NE(limiter.admit("192.0.2.2"), nullptr);
}

TEST(ConnectionLimiterTest, TotalLimitAndRelease) {
  ConnectionLimiter limiter(2, 10);
  auto a = limiter.admit("192.0.2.1");
  auto b = limiter.admit("192.0.2.2");
  EXPECT_EQ(limiter.admit("192.0.2.3"), nullptr);
  EXPECT_EQ(limiter.connections(), 2u);
  EXPECT_EQ(limiter.connections_from("192.0.2.3"), 0u);  // a refusal counts nothing
  a.reset();
  EXPECT_EQ(limiter.connections(), 1u);
  EXPECT_NE(limiter.admit("192.0.2.3"), nullptr);
}

TEST(ConnectionLimiterTest, SlotOutlivesLimiter) {
  std::unique_ptr<ConnectionLimiter::Slot> slot;
  {
    ConnectionLimiter limiter(1, 1);
    slot = limiter.admit("::1");
    ASSERT_NE(slot, nullptr);
  }
  slot.reset();  // must not touch freed counters (ASan would tell)
}

}  // namespace
}  // namespace petrel::net
