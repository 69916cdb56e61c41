#include "policy/sender_checks.h"

#include <gtest/gtest.h>

#include <optional>

#include "policy/fake_accounts_testing.h"

namespace petrel::policy {
namespace {

Verdict ask(Check& check, const Context& c) {
  std::optional<Verdict> out;
  check.check(c, [&](Verdict v) { out = std::move(v); });
  EXPECT_TRUE(out.has_value());
  return out.value_or(Verdict{});
}

FakeAccounts accounts() {
  FakeAccounts a;
  a.domains = {"example.test"};
  a.owns["alice@example.test"] = {"alice@example.test", "sales@example.test"};
  return a;
}

TEST(SenderRightsCheckTest, AuthenticatedSenderMustOwnTheAddress) {
  auto a = accounts();
  SenderRightsCheck check(a);
  EXPECT_TRUE(check.wants(Stage::kMail));
  EXPECT_FALSE(check.wants(Stage::kRcpt));
  mail::Envelope env;
  Context c;
  c.stage = Stage::kMail;
  c.envelope = &env;
  env.sender = {"bob", "example.test"};
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);  // not authenticated: not this check's business
  c.auth_user = "alice@example.test";
  auto v = ask(check, c);
  ASSERT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.reply.render(), "553 5.7.1 <bob@example.test>: Sender address rejected: not owned by the authenticated user\r\n");
  env.sender = {"sales", "example.test"};
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);
  env.sender = {};
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);  // the null sender
}

TEST(SubmittedFromCheckTest, EveryFromAddressMustBeOwned) {
  auto a = accounts();
  SubmittedFromCheck check(a);
  EXPECT_TRUE(check.wants(Stage::kData));
  std::vector<mail::Address> from{{"alice", "example.test"}, {"eve", "example.test"}, {"mallory", "example.test"}};
  Context c;
  c.stage = Stage::kData;
  c.header_from = &from;
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);  // not authenticated
  c.auth_user = "alice@example.test";
  auto v = ask(check, c);
  ASSERT_EQ(v.kind, Verdict::Kind::kReject);
  EXPECT_EQ(v.reply.render(), "553 5.7.1 <eve@example.test>: From: address not owned by the authenticated user\r\n");
  from = {{"alice", "example.test"}, {"sales", "example.test"}};
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);
  from.clear();  // no From: field: nothing to own (the session decides whether that is allowed)
  EXPECT_EQ(ask(check, c).kind, Verdict::Kind::kAccept);
}

}  // namespace
}  // namespace petrel::policy
