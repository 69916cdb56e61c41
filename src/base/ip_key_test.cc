#include "base/ip_key.h"

#include <gtest/gtest.h>

namespace petrel::base {
namespace {

TEST(IpKeyTest, Ipv6GroupedBySlash64) {
  EXPECT_EQ(ip_key("2001:db8:1:2::5"), "2001:db8:1:2::/64");
  EXPECT_EQ(ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(ip_key("2001:DB8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_NE(ip_key("2001:db8:1:3::1"), ip_key("2001:db8:1:2::1"));
  EXPECT_EQ(ip_key("::1"), "::/64");
}

TEST(IpKeyTest, Ipv4AndJunkUnchanged) {
  EXPECT_EQ(ip_key("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(ip_key("not:an address"), "not:an address");
  EXPECT_EQ(ip_key(""), "");
}

}  // namespace
}  // namespace petrel::base
