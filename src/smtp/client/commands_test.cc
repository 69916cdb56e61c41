#include "smtp/client/commands.h"

#include <gtest/gtest.h>

#include "smtp/client/session.h"

namespace petrel::smtp::client {
namespace {

mail::Envelope envelope() {
  mail::Envelope env;
  env.sender = mail::Address{"alice", "example.org"};
  mail::Recipient r;
  r.address = mail::Address{"bob", "example.net"};
  r.notify = mail::kNotifyFailure | mail::kNotifyDelay;
  r.orcpt_type = "rfc822";
  r.orcpt = "bob+x=y@example.net";
  env.recipients.push_back(r);
  env.body = mail::BodyType::k8BitMime;
  env.ret = mail::DsnRet::kHeaders;
  env.envid = "id=1";
  return env;
}

Capabilities all_caps() {
  Capabilities c;
  c.esmtp = c.size = c.eight_bit_mime = c.smtputf8 = c.dsn = c.pipelining = true;
  return c;
}

TEST(Commands, EveryParameterWhenOffered) {
  auto env = envelope();
  env.smtputf8 = true;
  auto mail = mail_from_line(env, 1234, all_caps());
  ASSERT_TRUE(mail);
  EXPECT_EQ(*mail, "MAIL FROM:<alice@example.org> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+3D1\r\n");
  auto rcpt = rcpt_to_line(env.recipients[0], all_caps());
  ASSERT_TRUE(rcpt);
  EXPECT_EQ(*rcpt, "RCPT TO:<bob@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob+2Bx+3Dy@example.net\r\n");
}

TEST(Commands, NothingTheServerDidNotOffer) {
  auto env = envelope();
  Capabilities none;
  EXPECT_EQ(*mail_from_line(env, 1234, none), "MAIL FROM:<alice@example.org>\r\n");
  EXPECT_EQ(*rcpt_to_line(env.recipients[0], none), "RCPT TO:<bob@example.net>\r\n");
}

TEST(Commands, NullSenderNotifyNeverAndQuotedLocalPart) {
  mail::Envelope env;
  Capabilities caps = all_caps();
  EXPECT_EQ(*mail_from_line(env, 0, caps), "MAIL FROM:<> SIZE=0\r\n");
  mail::Recipient r;
  r.address = mail::Address{"a b", "example.net"};
  r.notify = mail::kNotifyNever;
  EXPECT_EQ(*rcpt_to_line(r, caps), "RCPT TO:<\"a b\"@example.net> NOTIFY=NEVER\r\n");
}

TEST(Commands, Utf8OrcptUsesUtf8AddrXtext) {
  mail::Recipient r;
  r.address = mail::Address{"j\xc3\xb6rg", "example.net"};
  r.orcpt_type = "utf-8";
  r.orcpt = "j\xc3\xb6rg+1@example.net";
  EXPECT_EQ(*rcpt_to_line(r, all_caps()), "RCPT TO:<j\xc3\xb6rg@example.net> ORCPT=utf-8;j\\x{F6}rg\\x{2B}1@example.net\r\n");
}

TEST(Commands, CrLfOrNulAnywhereIsRefused) {
  for (std::string bad : {std::string("a\rb"), std::string("a\nb"), std::string("a\0b", 3)}) {
    auto env = envelope();
    env.sender.local = bad;
    auto mail = mail_from_line(env, 1, all_caps());
    ASSERT_FALSE(mail);
    EXPECT_TRUE(mail.error().temporary());
    env = envelope();
    env.recipients[0].address.domain = bad;
    EXPECT_FALSE(rcpt_to_line(env.recipients[0], all_caps()));
    env = envelope();
    env.recipients[0].orcpt_type = bad;
    EXPECT_FALSE(rcpt_to_line(env.recipients[0], all_caps()));
  }
}

}  // namespace
}  // namespace petrel::smtp::client
