// paths_test.cc: delivery_headers() and mailbox_path().
#include <gtest/gtest.h>

#include "mailbox/maildir.h"

namespace petrel::mailbox {
namespace {

TEST(DeliveryHeadersTest, FormatsReturnPathAndDeliveredTo) {
  struct Case {
    mail::Address sender, recipient;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"alice", "example.org"}, {"bob", "example.net"},
       "Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.net\r\n"},
      {{}, {"bob", "example.net"}, "Return-Path: <>\r\nDelivered-To: bob@example.net\r\n"},
      {{"a b", "example.org"}, {"Bob.Smith", "Example.NET"},
       "Return-Path: <\"a b\"@example.org>\r\nDelivered-To: Bob.Smith@Example.NET\r\n"},
      {{"j\xc3\xb6rg", "b\xc3\xbc.example"}, {"u", "[192.0.2.1]"},
       "Return-Path: <j\xc3\xb6rg@b\xc3\xbc.example>\r\nDelivered-To: u@[192.0.2.1]\r\n"},
  };
  for (const auto& c : cases) {
    auto h = delivery_headers(c.sender, c.recipient);
    ASSERT_TRUE(h.has_value()) << h.error().message;
    EXPECT_EQ(*h, c.want);
  }
}

TEST(DeliveryHeadersTest, RefusesAnythingThatWouldSplitAHeader) {
  const mail::Address ok{"bob", "example.net"};
  const std::vector<std::pair<mail::Address, mail::Address>> cases = {
      {{"a\r\nBcc: x", "example.org"}, ok},
      {{"a\nb", "example.org"}, ok},
      {{"a\rb", "example.org"}, ok},
      {{"a", "example.org\r\nX-Evil: 1"}, ok},
      {{std::string("a\0b", 3), "example.org"}, ok},
      {ok, {"b\r\nc", "example.net"}},
      {ok, {"b", "example.net\n"}},
      {ok, {}},  // no recipient at all
  };
  for (const auto& [sender, recipient] : cases) {
    auto h = delivery_headers(sender, recipient);
    ASSERT_FALSE(h.has_value()) << *h;
    EXPECT_FALSE(h.error().temporary());
  }
}

TEST(MailboxPathTest, LowercasesTheDomainOnly) {
  EXPECT_EQ(mailbox_path("/var/petrel", "Example.NET", "Bob.Smith"), "/var/petrel/mail/example.net/Bob.Smith/");
  EXPECT_EQ(mailbox_path("/var/petrel/", "example.net", "bob"), "/var/petrel/mail/example.net/bob/");
  EXPECT_EQ(mailbox_path("data", "[192.0.2.1]", "u+tag"), "data/mail/[192.0.2.1]/u+tag/");
  EXPECT_EQ(mailbox_path("/d", "example.net", "j\xc3\xb6rg"), "/d/mail/example.net/j\xc3\xb6rg/");
  EXPECT_EQ(mailbox_path("/d", "example.net", "...x"), "/d/mail/example.net/...x/");
}

TEST(MailboxPathTest, RefusesEscapes) {
  const std::vector<std::string> bad = {
      "", ".", "..", "../x", "a/b", "/", "a/", std::string("a\0b", 3), "a\nb", "a\rb", "\x1b[31m", "a\x7f",
      std::string(256, 'a'),
  };
  for (const auto& s : bad) {
    auto as_local = checked_mailbox_path("/d", "example.net", s);
    EXPECT_FALSE(as_local.has_value()) << *as_local;
    if (!as_local) {
      EXPECT_FALSE(as_local.error().temporary());
    }
    auto as_domain = checked_mailbox_path("/d", s, "bob");
    EXPECT_FALSE(as_domain.has_value()) << *as_domain;
  }
  EXPECT_TRUE(checked_mailbox_path("/d", "example.net", std::string(255, 'a')).has_value());
}

TEST(MailboxPathDeathTest, UncheckedVariantAbortsRatherThanEscape) {
  EXPECT_DEATH((void)mailbox_path("/d", "example.net", ".."), "unsafe");
}

}  // namespace
}  // namespace petrel::mailbox
