#include "policy/recipient_checks.h"

#include <gtest/gtest.h>

#include <optional>

#include "policy/fake_accounts_testing.h"

namespace petrel::policy {
namespace {

struct Case {
  const char* name;
  mail::Address rcpt;
  bool trusted;
  const char* auth_user;
  int recipient_code;  // 0 = accept
  int relay_code;
};

class RecipientChecksTest : public ::testing::TestWithParam<Case> {};

Verdict ask(Check& check, const Context& c) {
  std::optional<Verdict> out;
  check.check(c, [&](Verdict v) { out = std::move(v); });
  EXPECT_TRUE(out.has_value());
  return out.value_or(Verdict{});
}

TEST_P(RecipientChecksTest, Decides) {
  FakeAccounts accounts;
  accounts.domains = {"example.test"};
  accounts.users = {"alice@example.test"};
  RecipientCheck recipient(accounts);
  RelayCheck relay(accounts);
  const Case& k = GetParam();
  Context c;
  c.stage = Stage::kRcpt;
  c.recipient = &k.rcpt;
  c.trusted = k.trusted;
  c.auth_user = k.auth_user;
  EXPECT_TRUE(recipient.wants(Stage::kRcpt));
  EXPECT_FALSE(relay.wants(Stage::kMail));
  auto v = ask(recipient, c);
  EXPECT_EQ(v.kind == Verdict::Kind::kAccept ? 0 : v.reply.code, k.recipient_code);
  v = ask(relay, c);
  EXPECT_EQ(v.kind == Verdict::Kind::kAccept ? 0 : v.reply.code, k.relay_code);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RecipientChecksTest,
    ::testing::Values(Case{"local", {"alice", "Example.Test"}, false, "", 0, 0},
                      Case{"unknown", {"nobody", "example.test"}, false, "", 550, 0},
                      Case{"relay_refused", {"x", "elsewhere.example"}, false, "", 0, 554},
                      Case{"literal_refused", {"x", "[192.0.2.1]"}, false, "", 0, 554},
                      Case{"relay_trusted", {"x", "elsewhere.example"}, true, "", 0, 0},
                      Case{"relay_authenticated", {"x", "elsewhere.example"}, false, "alice@example.test", 0, 0}),
    [](const ::testing::TestParamInfo<Case>& param_info) { return std::string(param_info.param.name); });

TEST(RecipientChecksText, RepliesAreTheOnesClientsKnow) {
  FakeAccounts accounts;
  accounts.domains = {"example.test"};
  mail::Address nobody{"nobody", "example.test"}, other{"bob", "other.example"};
  Context c;
  c.stage = Stage::kRcpt;
  c.recipient = &nobody;
  RecipientCheck recipient(accounts);
  RelayCheck relay(accounts);
  EXPECT_EQ(ask(recipient, c).reply.render(), "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown\r\n");
  c.recipient = &other;
  EXPECT_EQ(ask(relay, c).reply.render(), "554 5.7.1 <bob@other.example>: Relay access denied\r\n");
}

}  // namespace
}  // namespace petrel::policy
