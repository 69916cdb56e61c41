#include "dns/rdata.h"

#include <gtest/gtest.h>

#include <vector>

namespace petrel::dns {
namespace {

using Bytes = std::vector<std::uint8_t>;

// "mx1.Example.ORG." in wire format.
Bytes name_wire(std::initializer_list<std::string_view> labels) {
  Bytes out;
  for (auto l : labels) {
    out.push_back(static_cast<std::uint8_t>(l.size()));
    out.insert(out.end(), l.begin(), l.end());
  }
  out.push_back(0);
  return out;
}

TEST(Rdata, Addresses) {
  Bytes a{192, 0, 2, 1};
  EXPECT_EQ(parse_a(a.data(), a.size()), "192.0.2.1");
  EXPECT_FALSE(parse_a(a.data(), 3));
  Bytes five{1, 2, 3, 4, 5};
  EXPECT_FALSE(parse_a(five.data(), five.size()));
  Bytes v6(16, 0);
  v6[0] = 0x20; v6[1] = 0x01; v6[2] = 0x0d; v6[3] = 0xb8; v6[15] = 1;
  EXPECT_EQ(parse_aaaa(v6.data(), v6.size()), "2001:db8::1");
  EXPECT_FALSE(parse_aaaa(v6.data(), 15));
  EXPECT_FALSE(parse_aaaa(a.data(), a.size()));
}

TEST(Rdata, MxLowerCasesAndKeepsPreference) {
  Bytes mx{0x01, 0x02};
  auto n = name_wire({"MX1", "Example", "ORG"});
  mx.insert(mx.end(), n.begin(), n.end());
  auto r = parse_mx(mx.data(), mx.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->preference, 258);
  EXPECT_EQ(r->exchange, "mx1.example.org");
}

TEST(Rdata, NullMxIsTheRoot) {
  Bytes mx{0, 0, 0};
  auto r = parse_mx(mx.data(), mx.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->preference, 0);
  EXPECT_EQ(r->exchange, "");
}

TEST(Rdata, MalformedNamesAreRefused) {
  const std::vector<Bytes> bad = {
      {0, 10},                       // no name at all
      {0, 10, 3, 'a', 'b'},          // label runs past the end
      {0, 10, 1, 'a'},               // no root label
      {0, 10, 0xC0, 0x0C},           // compression pointer
      {0, 10, 0x40, 0},              // reserved label type
      {0, 10, 1, 'a', 0, 7},         // trailing octets after the name
      {0, 10, 3, 'a', ' ', 'b', 0},  // a space: not a host name
      {0, 10, 2, 'a', '.', 0},       // a dot inside a label
      {0, 10, 1, 0, 0},              // NUL inside a label
  };
  for (const auto& b : bad) EXPECT_FALSE(parse_mx(b.data(), b.size())) << b.size();
}

TEST(Rdata, NameLengthIsBounded) {
  // 4 labels of 63 octets = 4 * 64 + 1 = 257 octets on the wire: over 255.
  std::string l63(63, 'a');
  Bytes mx{0, 1};
  auto n = name_wire({l63, l63, l63, l63});
  mx.insert(mx.end(), n.begin(), n.end());
  EXPECT_FALSE(parse_mx(mx.data(), mx.size()));
  // 3 of 63 and one of 61: exactly 255.
  Bytes ok{0, 1};
  auto n2 = name_wire({l63, l63, l63, std::string(61, 'b')});
  ok.insert(ok.end(), n2.begin(), n2.end());
  ASSERT_EQ(n2.size(), 255u);
  auto r = parse_mx(ok.data(), ok.size());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exchange.size(), 253u);
}

TEST(Rdata, TxtConcatenatesStrings) {
  Bytes t{5, 'v', '=', 's', 'p', 'f', 3, '1', ' ', 'a', 0};
  EXPECT_EQ(parse_txt(t.data(), t.size()), "v=spf1 a");
  Bytes binary{2, 0, 0xff};
  EXPECT_EQ(parse_txt(binary.data(), binary.size()), std::string("\0\xff", 2));
  Bytes over{4, 'a', 'b'};
  EXPECT_FALSE(parse_txt(over.data(), over.size()));
  EXPECT_FALSE(parse_txt(t.data(), 0));
}

TEST(Rdata, Ptr) {
  auto n = name_wire({"Host", "example", "net"});
  EXPECT_EQ(parse_ptr(n.data(), n.size()), "host.example.net");
  Bytes root{0};
  EXPECT_FALSE(parse_ptr(root.data(), root.size()));
}

TEST(Rdata, ReverseNames) {
  EXPECT_EQ(reverse_name("192.0.2.1"), "1.2.0.192.in-addr.arpa");
  EXPECT_EQ(reverse_name("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  EXPECT_FALSE(reverse_name("example.com"));
  EXPECT_FALSE(reverse_name("192.0.2"));
  EXPECT_FALSE(reverse_name(std::string(100, '1')));
}

TEST(Rdata, NormalizeName) {
  EXPECT_EQ(normalize_name("Example.COM."), "example.com");
  EXPECT_EQ(normalize_name("example.com"), "example.com");
  EXPECT_EQ(normalize_name("."), "");
}

}  // namespace
}  // namespace petrel::dns
