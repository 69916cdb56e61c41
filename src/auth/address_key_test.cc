#include "auth/address_key.h"

#include <gtest/gtest.h>

namespace petrel::auth {
namespace {

TEST(AddressKey, FoldsLocalPartAndDomain) {
  EXPECT_EQ(address_key(mail::Address{"Alice.Smith", "Example.TEST"}), "alice.smith@example.test");
  EXPECT_EQ(address_key(mail::Address{"Postmaster", ""}), "postmaster");
  // Only ASCII letters fold; UTF-8 octets are kept.
  EXPECT_EQ(fold_local("J\xC3\x9CRGEN"), "j\xC3\x9Crgen");
}

TEST(AddressKey, LoginKeyIsTheStoresKeyForEverySpelling) {
  for (const char* s : {"bob@example.test", "BOB@Example.TEST", "\"bob\"@example.test", "\"b\\ob\"@example.test",
                        "\"B\\O\\B\"@example.test"}) {
    EXPECT_EQ(login_key(s), "bob@example.test") << s;
  }
  // Not an address: lowercased as is; long text is capped.
  EXPECT_EQ(login_key("Not An Address"), "not an address");
  EXPECT_EQ(login_key("bob"), "bob");
  EXPECT_EQ(login_key(std::string(5000, 'A')).size(), kMaxLoginKey);
  // A quoted local part that is not a Dot-string keeps its content (no account has one).
  EXPECT_EQ(login_key("\"B ob\"@example.test"), "b ob@example.test");
}

TEST(AddressKey, LocalPartRules) {
  struct Case {
    const char* local;
    bool ok;
  };
  const Case cases[] = {
      {"alice", true},        {"a.b", true},          {"a+b", true},       {"o'brien", true},
      {"a_b-c=d", true},      {"j\xC3\xBCrgen", true}, {"u%x", false},      {"u!x", false},
      {"a/b", false},         {"../x", false},        {"a b", false},      {"a\tb", false},
      {"a\nb", false},        {"a\"b", false},        {"a@b", false},      {".a", false},
      {"a.", false},          {"a..b", false},        {"", false},         {"a\\b", false},
      {"a(b)", false},        {"a\x7f", false},
  };
  for (const auto& c : cases) {
    auto s = check_local_part(c.local);
    EXPECT_EQ(static_cast<bool>(s), c.ok) << "local part: " << c.local;
    if (!s) {
      EXPECT_FALSE(s.error().temporary()) << c.local;
    }
  }
}

TEST(AddressKey, ParseMailboxAddress) {
  auto a = parse_mailbox_address("Alice@Example.TEST");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->local, "Alice");
  EXPECT_EQ(a->domain, "example.test");

  for (const char* bad : {"u%x@example.test", "u!x@example.test", "\"a b\"@example.test", "\"..\"@example.test",
                          "\"a/b\"@example.test", "u@[192.0.2.1]", "example.test", "@example.test", "u@",
                          "a@b@example.test", "u@example..test"}) {
    auto r = parse_mailbox_address(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_FALSE(r.error().temporary()) << bad;
    }
  }
}

TEST(AddressKey, ParseDomain) {
  auto d = parse_domain("Mail.Example.TEST");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, "mail.example.test");
  for (const char* bad : {"", "[192.0.2.1]", "exa mple.test", "example..test", "-x.test", "a/b.test", "x'; DROP TABLE domains; --"}) {
    EXPECT_FALSE(parse_domain(bad)) << bad;
  }
}

}  // namespace
}  // namespace petrel::auth
