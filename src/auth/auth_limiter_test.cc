// auth_limiter_test.cc: tarpit, lockout, windows and bounds of AuthLimiter, on a fake clock.
#include "auth/auth_limiter.h"

#include <gtest/gtest.h>

#include <string>

#include "auth/gated_credentials.h"

namespace petrel::auth {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

AuthLimiterOptions small() {
  AuthLimiterOptions o;
  o.tarpit_after = 3;
  o.tarpit_delay = 1s;
  o.lockout_after = 6;
  o.window = 10min;
  o.lockout = 5min;
  o.max_entries = 100;
  return o;
}

TEST(AuthLimiterTest, TarpitGrowsThenLockoutThenExpires) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  EXPECT_FALSE(l.ip_locked("192.0.2.1"));
  EXPECT_EQ(l.record_failure("192.0.2.1", "a@x"), 0ms);
  EXPECT_EQ(l.record_failure("192.0.2.1", "b@x"), 0ms);
  EXPECT_EQ(l.record_failure("192.0.2.1", "c@x"), 1000ms);  // third failure: tarpit starts
  EXPECT_EQ(l.record_failure("192.0.2.1", "d@x"), 2000ms);
  EXPECT_EQ(l.record_failure("192.0.2.1", "e@x"), 3000ms);
  EXPECT_FALSE(l.ip_locked("192.0.2.1"));
  l.record_failure("192.0.2.1", "f@x");  // sixth: locked
  EXPECT_TRUE(l.ip_locked("192.0.2.1"));
  EXPECT_FALSE(l.ip_locked("192.0.2.2"));  // others are not
  EXPECT_FALSE(l.account_locked("a@x"));    // each name failed only once
  clock.advance(5min - 1s);
  EXPECT_TRUE(l.ip_locked("192.0.2.1"));
  clock.advance(1s);
  EXPECT_FALSE(l.ip_locked("192.0.2.1"));
  // After the lockout the count starts again from zero.
  EXPECT_EQ(l.record_failure("192.0.2.1", ""), 0ms);
}

TEST(AuthLimiterTest, AccountCountedAcrossAddressesCaseFolded) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  for (int i = 0; i < 5; ++i) l.record_failure("198.51.100." + std::to_string(i), i % 2 ? "Alice@X" : "alice@x");
  EXPECT_FALSE(l.account_locked("alice@x"));
  // The sixth failure, from a fresh address, is tarpitted and locks the name: the account's
  // count decides, not the address's.
  EXPECT_EQ(l.record_failure("198.51.100.77", "ALICE@x"), 4000ms);
  EXPECT_TRUE(l.account_locked("alice@x"));
  EXPECT_FALSE(l.ip_locked("198.51.100.77"));
}

// Every spelling that logs in as one account is one name: quoted and escaped local parts,
// case, a source route; failures spread over them lock the account (issue 11), a success in
// any spelling clears it, and names with no account are counted the same way.
TEST(AuthLimiterTest, AccountCountedUnderItsCanonicalKeyWhateverTheSpelling) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  const char* spellings[] = {"\"bob\"@example.test", "\"b\\ob\"@example.test", "\"BOB\"@EXAMPLE.test",
                             "Bob@Example.Test", "\"\\b\\o\\b\"@example.test"};
  for (int i = 0; i < 5; ++i) l.record_failure("198.51.100." + std::to_string(i), spellings[i]);
  EXPECT_FALSE(l.account_locked("bob@example.test"));
  EXPECT_EQ(l.tracked_accounts(), 1u);
  l.record_failure("198.51.100.99", "bob@example.test");  // the sixth: locked
  for (const char* s : spellings) EXPECT_TRUE(l.account_locked(s)) << s;
  EXPECT_FALSE(l.account_locked("bobby@example.test"));

  clock.advance(5min);
  for (int i = 0; i < 5; ++i) l.record_failure("203.0.113." + std::to_string(i), spellings[i]);
  l.record_success("\"Bob\"@example.test");  // any spelling clears the one counter
  l.record_failure("203.0.113.50", "bob@example.test");
  EXPECT_FALSE(l.account_locked("bob@example.test"));

  // Unknown names and names that are not addresses are counted too (lowercased).
  for (int i = 0; i < 6; ++i) l.record_failure("192.0.2." + std::to_string(i), i % 2 ? "NoSuchUser" : "nosuchuser");
  EXPECT_TRUE(l.account_locked("nosuchuser"));
}

TEST(AuthLimiterTest, WindowForgetsOldFailures) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  l.record_failure("192.0.2.9", "u");
  l.record_failure("192.0.2.9", "u");
  clock.advance(10min);
  EXPECT_EQ(l.record_failure("192.0.2.9", "u"), 0ms);  // a new window: the count is 1
}

TEST(AuthLimiterTest, SuccessClearsTheAccountNotTheAddress) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  for (int i = 0; i < 4; ++i) l.record_failure("192.0.2.5", "bob");
  l.record_success("Bob");
  // The address still has its four failures: the fifth is tarpitted for the address alone.
  EXPECT_EQ(l.record_failure("192.0.2.5", "carol"), 3000ms);
  EXPECT_EQ(l.record_failure("203.0.113.1", "bob"), 0ms);
}

TEST(AuthLimiterTest, Ipv6CountedPerSlash64) {
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  for (int i = 0; i < 6; ++i) l.record_failure("2001:db8:1:2::" + std::to_string(i + 1), "");
  EXPECT_TRUE(l.ip_locked("2001:db8:1:2:ffff::1"));
  EXPECT_FALSE(l.ip_locked("2001:db8:1:3::1"));
}

TEST(AuthLimiterTest, MemoryIsBounded) {
  base::FakeClock clock;
  auto o = small();
  o.max_entries = 50;
  AuthLimiter l(clock, o);
  for (int i = 0; i < 1000; ++i) {
    l.record_failure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), "user" + std::to_string(i));
    clock.advance(1ms);
  }
  EXPECT_LE(l.tracked_ips(), 50u);
  EXPECT_LE(l.tracked_accounts(), 50u);
  // A locked address survives a flood of new ones as long as something older can go first.
  for (int i = 0; i < 6; ++i) l.record_failure("192.0.2.200", "");
  for (int i = 0; i < 40; ++i) l.record_failure("172.16.0." + std::to_string(i), "");
  EXPECT_TRUE(l.ip_locked("192.0.2.200"));
}

// A locked name costs no password check; others go through; the answer is "no" either way.
TEST(AuthLimiterTest, GatedCredentialsSkipLockedNames) {
  struct Counting : CredentialSource {
    int checks = 0;
    base::Result<bool> verify_password(std::string_view, std::string_view password) override {
      ++checks;
      return password == "right";
    }
    base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view) override { return std::optional<ScramKeys>(); }
    base::Result<std::optional<std::string>> cram_md5_state(std::string_view) override { return std::optional<std::string>(); }
  } inner;
  base::FakeClock clock;
  AuthLimiter l(clock, small());
  GatedCredentials gated(inner, l);
  EXPECT_TRUE(*gated.verify_password("bob", "right"));
  for (int i = 0; i < 6; ++i) l.record_failure("192.0.2." + std::to_string(i), "bob");
  ASSERT_TRUE(l.account_locked("BOB"));
  EXPECT_FALSE(*gated.verify_password("Bob", "right"));
  EXPECT_EQ(inner.checks, 1);
  EXPECT_TRUE(*gated.verify_password("alice", "right"));
  EXPECT_EQ(inner.checks, 2);
  clock.advance(5min);
  EXPECT_TRUE(*gated.verify_password("bob", "right"));
}

}  // namespace
}  // namespace petrel::auth
