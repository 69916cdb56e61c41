#include "mail/address.h"

#include <gtest/gtest.h>

#include <string>

namespace petrel::mail {
namespace {

struct GoodPath {
  std::string text;
  PathOptions options;
  std::string local;
  std::string domain;
  std::size_t consumed;
};

constexpr PathOptions kPlain{};
constexpr PathOptions kNull{.allow_null = true};
constexpr PathOptions kPostmaster{.allow_postmaster = true};
constexpr PathOptions kUtf8{.allow_utf8 = true};

TEST(ParsePath, AcceptsValidPaths) {
  const GoodPath cases[] = {
      {"<u@example.com>", kPlain, "u", "example.com", 15},
      {"<first.last@sub.example.org>", kPlain, "first.last", "sub.example.org", 28},
      {"<u@example.com> SIZE=10", kPlain, "u", "example.com", 15},
      {"<U+tag@Example.COM>", kPlain, "U+tag", "Example.COM", 19},
      {"<x@a-b.c0>", kPlain, "x", "a-b.c0", 10},
      {"<x@localhost>", kPlain, "x", "localhost", 13},
      {"<\"a b\"@x.org>", kPlain, "a b", "x.org", 13},
      {"<\"a\\\"b\\\\c\"@x.org>", kPlain, "a\"b\\c", "x.org", 17},
      {"<\"a>b\"@x.org>", kPlain, "a>b", "x.org", 13},
      {"<\"\\a\"@x.org>", kPlain, "a", "x.org", 12},
      {"<u@[192.0.2.1]>", kPlain, "u", "[192.0.2.1]", 15},
      {"<u@[IPv6:2001:db8::1]>", kPlain, "u", "[IPv6:2001:db8::1]", 22},
      {"<u@[ipv6:::ffff:192.0.2.1]>", kPlain, "u", "[ipv6:::ffff:192.0.2.1]", 27},
      {"<>", kNull, "", "", 2},
      {"<> BODY=8BITMIME", kNull, "", "", 2},
      {"<Postmaster>", kPostmaster, "Postmaster", "", 12},
      {"<postMASTER>", kPostmaster, "Postmaster", "", 12},
      {"<postmaster@x.org>", kPostmaster, "postmaster", "x.org", 18},
      // A source route is accepted and dropped (RFC 5321 4.1.1.3, Appendix C).
      {"<@a.example,@b.example:u@d.example>", kPlain, "u", "d.example", 35},
      // RFC 6531 3.3.
      {"<jos\xC3\xA9@\xC3\xA9xample.com>", kUtf8, "jos\xC3\xA9", "\xC3\xA9xample.com", 20},
      {"<\"\xE2\x82\xAC x\"@x.org>", kUtf8, "\xE2\x82\xAC x", "x.org", 15},
      {"<" + std::string(64, 'a') + "@x.org>", kPlain, std::string(64, 'a'), "x.org", 72},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_path(c.text, c.options);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->address.local, c.local);
    EXPECT_EQ(r->address.domain, c.domain);
    EXPECT_EQ(r->consumed, c.consumed);
  }
}

// Every form that an open relay has ever been tricked with, and what each means here: '%' and
// '!' are plain characters, a quoted '@' belongs to the local part, a route is dropped.
TEST(ParsePath, RelayTricksParseToTheLastDomainOnly) {
  const GoodPath cases[] = {
      {"<u%ext@local>", kPlain, "u%ext", "local", 13},
      {"<\"u@ext\"@local>", kPlain, "u@ext", "local", 15},
      {"<ext!u@local>", kPlain, "ext!u", "local", 13},
      {"<@local:u@ext>", kPlain, "u", "ext", 14},
      {"<\"u%ext\"@local>", kPlain, "u%ext", "local", 15},
      {"<u@[127.0.0.1]>", kPlain, "u", "[127.0.0.1]", 15},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_path(c.text, c.options);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->address.local, c.local);
    EXPECT_EQ(r->address.domain, c.domain);
    EXPECT_EQ(r->consumed, c.consumed);
  }
}

struct BadPath {
  std::string text;
  PathOptions options;
  PathError why;
};

TEST(ParsePath, RejectsInvalidPaths) {
  const std::string long_local(65, 'a');
  const std::string label(63, 'a');
  const std::string long_domain = label + "." + label + "." + label + "." + label + ".com";  // 256
  const BadPath cases[] = {
      {"", kPlain, PathError::kSyntax},
      {"u@x.org", kPlain, PathError::kSyntax},
      {"<u@x.org", kPlain, PathError::kSyntax},
      {"u@x.org>", kPlain, PathError::kSyntax},
      {"<u@ext@local>", kPlain, PathError::kSyntax},
      {"< u@x.org>", kPlain, PathError::kSyntax},
      {"<u @x.org>", kPlain, PathError::kSyntax},
      {"<u@x.org >", kPlain, PathError::kSyntax},
      {"<u@x .org>", kPlain, PathError::kSyntax},
      {"<@x.org>", kPlain, PathError::kSyntax},
      {"<x.org>", kPlain, PathError::kSyntax},
      {"<u>", kPlain, PathError::kSyntax},
      {"<u@>", kPlain, PathError::kSyntax},
      {"<\"\"@x.org>", kPlain, PathError::kSyntax},
      {"<u.@x.org>", kPlain, PathError::kSyntax},
      {"<.u@x.org>", kPlain, PathError::kSyntax},
      {"<u..v@x.org>", kPlain, PathError::kSyntax},
      {"<u@x..org>", kPlain, PathError::kSyntax},
      {"<u@x.org.>", kPlain, PathError::kSyntax},
      {"<u@.x.org>", kPlain, PathError::kSyntax},
      {"<u@-x.org>", kPlain, PathError::kSyntax},
      {"<u@x-.org>", kPlain, PathError::kSyntax},
      {"<u@x_y.org>", kPlain, PathError::kSyntax},
      {"<u@" + std::string(64, 'a') + ".org>", kPlain, PathError::kSyntax},
      {std::string("<u\0v@x.org>", 11), kPlain, PathError::kSyntax},
      {std::string("<\"u\0v\"@x.org>", 13), kPlain, PathError::kSyntax},
      {"<u\x01v@x.org>", kPlain, PathError::kSyntax},
      {"<\"u\rv\"@x.org>", kPlain, PathError::kSyntax},
      {"<\"u\\\nv\"@x.org>", kPlain, PathError::kSyntax},
      {"<u\r\n@x.org>", kPlain, PathError::kSyntax},
      {"<\"unterminated@x.org>", kPlain, PathError::kSyntax},
      {"<u(comment)@x.org>", kPlain, PathError::kSyntax},
      {"<u,v@x.org>", kPlain, PathError::kSyntax},
      {"<>", kPlain, PathError::kSyntax},
      {"<Postmaster>", kPlain, PathError::kSyntax},
      {"<Postmaster>", kNull, PathError::kSyntax},
      {"<@a.example u@d>", kPlain, PathError::kSyntax},
      {"<@a.example:>", kPlain, PathError::kSyntax},
      {"<@a.example,b.example:u@d>", kPlain, PathError::kSyntax},
      {"<@[1.2.3.4]:u@d>", kPlain, PathError::kSyntax},
      {"<u@[1.2.3]>", kPlain, PathError::kSyntax},
      {"<u@[256.1.1.1]>", kPlain, PathError::kSyntax},
      {"<u@[IPv6:1.2.3.4]>", kPlain, PathError::kSyntax},
      {"<u@[IPv6:fe80::1%eth0]>", kPlain, PathError::kSyntax},
      {"<u@[x-tag:whatever]>", kPlain, PathError::kSyntax},
      {"<u@[1.2.3.4>", kPlain, PathError::kSyntax},
      {"<u@[1.2.3.4].org>", kPlain, PathError::kSyntax},
      {"<" + long_local + "@x.org>", kPlain, PathError::kTooLong},
      {"<u@" + long_domain + ">", kPlain, PathError::kTooLong},
      {"<" + std::string(60, 'a') + "@" + label + "." + label + "." + label + "." + std::string(60, 'b') + ">",
       kPlain, PathError::kTooLong},
      {"<jos\xC3\xA9@x.org>", kPlain, PathError::kUtf8NotAllowed},
      {"<u@\xC3\xA9xample.com>", kPlain, PathError::kUtf8NotAllowed},
      {"<\"\xC3\xA9\"@x.org>", kPlain, PathError::kUtf8NotAllowed},
      {"<\xC0\x80@x.org>", kUtf8, PathError::kBadUtf8},
      {"<u@\xED\xA0\x80.org>", kUtf8, PathError::kBadUtf8},
      {"<\xF4\x90\x80\x80@x.org>", kUtf8, PathError::kBadUtf8},
      {"<\xFF@x.org>", kUtf8, PathError::kBadUtf8},
      {"<u@[1.2.3.\xC3\xA9]>", kUtf8, PathError::kSyntax},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    PathError why = PathError::kSyntax;
    auto r = parse_path(c.text, c.options, &why);
    ASSERT_FALSE(r.has_value()) << r->address.str();
    EXPECT_FALSE(r.error().temporary());
    EXPECT_EQ(static_cast<int>(why), static_cast<int>(c.why));
  }
}

TEST(ParsePath, PathOf256OctetsIsTheLimit) {
  const std::string label(63, 'a');
  std::string domain = label + "." + label + "." + label + "." + std::string(60, 'b');  // 252
  std::string exact = "<u@" + domain + ">";                                             // 256
  ASSERT_EQ(exact.size(), 256u);
  EXPECT_TRUE(parse_path(exact, kPlain).has_value());
  EXPECT_FALSE(parse_path("<uu@" + domain + ">", kPlain).has_value());
}

struct StrCase {
  Address address;
  std::string str;
};

TEST(Address, StrQuotesOnlyWhenNeeded) {
  const StrCase cases[] = {
      {{"u", "x.org"}, "u@x.org"},
      {{"first.last", "x.org"}, "first.last@x.org"},
      {{"u%ext", "local"}, "u%ext@local"},
      {{"u@ext", "local"}, "\"u@ext\"@local"},
      {{"a b", "x.org"}, "\"a b\"@x.org"},
      {{"a\"b\\c", "x.org"}, "\"a\\\"b\\\\c\"@x.org"},
      {{"u.", "x.org"}, "\"u.\"@x.org"},
      {{".u", "x.org"}, "\".u\"@x.org"},
      {{"u..v", "x.org"}, "\"u..v\"@x.org"},
      {{"u", "[192.0.2.1]"}, "u@[192.0.2.1]"},
      {{"jos\xC3\xA9", "x.org"}, "jos\xC3\xA9@x.org"},
      {{"Postmaster", ""}, "Postmaster"},
      {{"", ""}, ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.address.str(), c.str);
  }
}

TEST(Address, StrReparsesToTheSameAddress) {
  const std::string paths[] = {
      "<u@x.org>", "<\"a b\"@x.org>", "<\"a\\\"b\\\\c\"@x.org>", "<\"u.\"@x.org>", "<\"\\a\"@x.org>",
      "<@r.example:u@d.example>", "<u@[IPv6:2001:db8::1]>", "<\"u@ext\"@local>",
  };
  for (const auto& p : paths) {
    SCOPED_TRACE(p);
    auto first = parse_path(p, kPlain);
    ASSERT_TRUE(first.has_value());
    auto again = parse_path("<" + first->address.str() + ">", kPlain);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->address, first->address);
  }
}

TEST(Address, DomainKeyLowersAsciiOnly) {
  Address a{"User", "Mail.Example.COM"};
  EXPECT_EQ(a.domain_key(), "mail.example.com");
  EXPECT_EQ(a.local, "User");
  Address u{"u", "\xC3\x89XAMPLE.org"};
  EXPECT_EQ(u.domain_key(), "\xC3\x89xample.org");
  EXPECT_TRUE(u.has_utf8());
  EXPECT_FALSE(a.has_utf8());
}

TEST(Address, NullAndLiteral) {
  EXPECT_TRUE(Address{}.null());
  EXPECT_FALSE((Address{"Postmaster", ""}).null());
  EXPECT_TRUE((Address{"u", "[1.2.3.4]"}).is_address_literal());
  EXPECT_FALSE((Address{"u", "x.org"}).is_address_literal());
}

TEST(ParseAddress, BareAddresses) {
  struct Case {
    std::string text;
    bool ok;
    std::string local;
    std::string domain;
  };
  const Case cases[] = {
      {"u@x.org", true, "u", "x.org"},
      {"\"a b\"@x.org", true, "a b", "x.org"},
      {"u@[192.0.2.1]", true, "u", "[192.0.2.1]"},
      {"jos\xC3\xA9@\xC3\xA9xample.com", true, "jos\xC3\xA9", "\xC3\xA9xample.com"},
      {"u%ext@local", true, "u%ext", "local"},
      {"<u@x.org>", false, "", ""},
      {"u@x.org ", false, "", ""},
      {" u@x.org", false, "", ""},
      {"u@ext@local", false, "", ""},
      {"@x.org:u@y.org", false, "", ""},
      {"u", false, "", ""},
      {"", false, "", ""},
      {"\xC0\x80@x.org", false, "", ""},
      {std::string(65, 'a') + "@x.org", false, "", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = parse_address(c.text);
    ASSERT_EQ(r.has_value(), c.ok);
    if (c.ok) {
      EXPECT_EQ(r->local, c.local);
      EXPECT_EQ(r->domain, c.domain);
    }
  }
}

TEST(IsValidDomain, Table) {
  struct Case {
    std::string domain;
    bool allow_utf8;
    bool ok;
  };
  const std::string label(63, 'a');
  const Case cases[] = {
      {"example.com", false, true},
      {"a", false, true},
      {"a-b.c", false, true},
      {"123.example", false, true},
      {"[192.0.2.1]", false, true},
      {"[IPv6:::1]", false, true},
      {label + ".com", false, true},
      {std::string(64, 'a') + ".com", false, false},
      {"", false, false},
      {".", false, false},
      {"a.", false, false},
      {"-a", false, false},
      {"a_b", false, false},
      {"a b", false, false},
      {"\xC3\xA9xample.com", false, false},
      {"\xC3\xA9xample.com", true, true},
      {"\xC3xample.com", true, false},
      {"[tag:x]", false, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.domain);
    EXPECT_EQ(is_valid_domain(c.domain, c.allow_utf8), c.ok);
  }
  // RFC 5321 4.5.3.1.2: 255 octets at most.
  const std::string d255 = label + "." + label + "." + label + "." + label;
  ASSERT_EQ(d255.size(), 255u);
  EXPECT_TRUE(is_valid_domain(d255, false));
  EXPECT_FALSE(is_valid_domain(d255 + ".a", false));
}

}  // namespace
}  // namespace petrel::mail
