// login_guard_test.cc: the protocol-independent authentication attempt (login_guard.h), driven
// table by table through a fake credential source and a fake clock.
#include "auth/login_guard.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "auth/address_key.h"
#include "base/clock.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// Accounts by canonical key with their passwords; names fold as the store folds them.
class FakeCredentials final : public CredentialSource {
 public:
  std::map<std::string, std::string, std::less<>> passwords{{"bob@example.test", "pencil"}};
  bool broken = false;

  base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override {
    if (broken) return base::temporary_error("disk on fire");
    auto it = passwords.find(login_key(authcid));
    return it != passwords.end() && it->second == password;
  }
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view) override {
    return std::optional<ScramKeys>();
  }
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view) override {
    return std::optional<std::string>();
  }
};

std::string plain(const std::string& user, const std::string& password) {
  return base64_encode("\0"s + user + "\0"s + password);
}

AuthLimiterOptions limits() {
  AuthLimiterOptions o;
  o.tarpit_after = 2;
  o.tarpit_delay = 1s;
  o.lockout_after = 3;
  o.window = 10min;
  o.lockout = 5min;
  return o;
}

class LoginGuardTest : public ::testing::Test {
 protected:
  LoginGuardTest() : limiter_(clock_, limits()), sasl_(creds_, SaslOptions{}), guard_(sasl_, &limiter_) {}

  // One whole attempt: begin, then start, then each line of `lines` while challenges come.
  AuthStep attempt(std::string_view ip, std::string_view mechanism, std::optional<std::string> initial,
                   std::vector<std::string> lines = {}) {
    auto begun = guard_.begin(ip, mechanism, initial);
    if (!begun.exchange) return begun.refusal;
    auto step = begun.exchange->start();
    for (const auto& line : lines) {
      if (step.final()) break;
      step = begun.exchange->respond(line);
    }
    return step;
  }

  base::FakeClock clock_;
  FakeCredentials creds_;
  AuthLimiter limiter_;
  SaslServer sasl_;
  LoginGuard guard_;
};

// Each outcome, from a fresh guard and limiter, with what the caller needs to answer and log.
TEST_F(LoginGuardTest, OutcomesTable) {
  struct Row {
    const char* what;
    std::string mechanism;
    std::optional<std::string> initial;
    std::vector<std::string> lines;
    bool broken;
    AuthResult result;
    std::string account;
    AbortReason abort;
  };
  const std::vector<Row> rows = {
      {"right password", "PLAIN", plain("bob@example.test", "pencil"), {}, false, AuthResult::kSuccess,
       "bob@example.test", AbortReason::kNone},
      {"success names the canonical key", "plain", plain("\"B\\ob\"@Example.TEST", "pencil"), {}, false,
       AuthResult::kSuccess, "bob@example.test", AbortReason::kNone},
      {"wrong password", "PLAIN", plain("bob@example.test", "crayon"), {}, false, AuthResult::kFailed,
       "bob@example.test", AbortReason::kNone},
      {"unknown user looks the same", "PLAIN", plain("nobody@example.test", "pencil"), {}, false,
       AuthResult::kFailed, "nobody@example.test", AbortReason::kNone},
      {"challenge then response", "PLAIN", std::nullopt, {plain("bob@example.test", "pencil")}, false,
       AuthResult::kSuccess, "bob@example.test", AbortReason::kNone},
      {"LOGIN over two challenges", "LOGIN", std::nullopt, {base64_encode("BOB@example.test"), base64_encode("pencil")},
       false, AuthResult::kSuccess, "bob@example.test", AbortReason::kNone},
      {"malformed PLAIN", "PLAIN", base64_encode("no nul"), {}, false, AuthResult::kMalformed, "",
       AbortReason::kNone},
      {"store trouble", "PLAIN", plain("bob@example.test", "pencil"), {}, true, AuthResult::kTemporary, "",
       AbortReason::kNone},
      {"unknown mechanism", "X-MAGIC", std::nullopt, {}, false, AuthResult::kUnsupported, "", AbortReason::kNone},
      {"CRAM-MD5 not enabled", "CRAM-MD5", std::nullopt, {}, false, AuthResult::kUnsupported, "",
       AbortReason::kNone},
      {"initial response cancels", "PLAIN", "*", {}, false, AuthResult::kAborted, "", AbortReason::kCancelled},
      {"initial response not base64", "PLAIN", "%%%", {}, false, AuthResult::kAborted, "",
       AbortReason::kUndecodable},
      {"response cancels", "LOGIN", std::nullopt, {"*"}, false, AuthResult::kAborted, "", AbortReason::kCancelled},
      {"response not base64", "LOGIN", std::nullopt, {"bm9"}, false, AuthResult::kAborted, "",
       AbortReason::kUndecodable},
      {"response too long for SASL", "LOGIN", std::nullopt, {std::string(kMaxResponseLength + 4, 'A')}, false,
       AuthResult::kAborted, "", AbortReason::kUndecodable},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.what);
    base::FakeClock clock;
    AuthLimiter limiter(clock, limits());
    FakeCredentials creds;
    creds.broken = row.broken;
    SaslServer sasl(creds, SaslOptions{});
    LoginGuard guard(sasl, &limiter);
    auto begun = guard.begin("192.0.2.1", row.mechanism, row.initial);
    AuthStep step = begun.refusal;
    if (begun.exchange) {
      EXPECT_TRUE(base::iequals(begun.exchange->mechanism(), row.mechanism));
      step = begun.exchange->start();
      for (const auto& line : row.lines) {
        ASSERT_EQ(step.result, AuthResult::kChallenge);
        step = begun.exchange->respond(line);
      }
    }
    EXPECT_EQ(step.result, row.result) << step.reason;
    EXPECT_EQ(step.account, row.account);
    EXPECT_EQ(step.abort, row.abort);
    EXPECT_EQ(step.tarpit, 0ms);  // a first failure is not tarpitted
    // Only kFailed counts: one address, one name.
    EXPECT_EQ(limiter.tracked_ips(), row.result == AuthResult::kFailed ? 1u : 0u);
  }
}

TEST_F(LoginGuardTest, TarpitThenLockedAddressIsRefusedBeforeAnyMechanism) {
  EXPECT_EQ(attempt("192.0.2.1", "PLAIN", plain("a@example.test", "x")).tarpit, 0ms);
  auto second = attempt("192.0.2.1", "PLAIN", plain("b@example.test", "x"));
  EXPECT_EQ(second.result, AuthResult::kFailed);
  EXPECT_EQ(second.tarpit, 1000ms);  // tarpit_after = 2
  EXPECT_EQ(attempt("192.0.2.1", "PLAIN", plain("c@example.test", "x")).result, AuthResult::kFailed);
  // Locked: refused at begin, even with the right password, for any mechanism.
  auto locked = guard_.begin("192.0.2.1", "PLAIN", plain("bob@example.test", "pencil"));
  EXPECT_FALSE(locked.exchange);
  EXPECT_EQ(locked.refusal.result, AuthResult::kLocked);
  EXPECT_EQ(attempt("192.0.2.1", "X-MAGIC", std::nullopt).result, AuthResult::kLocked);
  EXPECT_EQ(attempt("192.0.2.2", "PLAIN", plain("bob@example.test", "pencil")).result, AuthResult::kSuccess);
  clock_.advance(5min);
  EXPECT_EQ(attempt("192.0.2.1", "PLAIN", plain("bob@example.test", "pencil")).result, AuthResult::kSuccess);
}

// Failures spread over spellings of one account, from many addresses, lock the account; the
// right password is then refused too (kLocked, not kSuccess), and counts against the address.
TEST_F(LoginGuardTest, LockedNameIsRefusedWhateverThePasswordAndSpelling) {
  const std::vector<std::string> spellings = {"\"bob\"@example.test", "BOB@Example.Test", "\"b\\ob\"@example.test"};
  for (std::size_t i = 0; i < spellings.size(); ++i) {
    auto s = attempt("198.51.100." + std::to_string(i), "PLAIN", plain(spellings[i], "guess"));
    EXPECT_EQ(s.result, AuthResult::kFailed);
    EXPECT_EQ(s.account, "bob@example.test");
  }
  for (const auto& mechanism : {"PLAIN"s, "LOGIN"s}) {
    SCOPED_TRACE(mechanism);
    auto right = mechanism == "PLAIN"
                     ? attempt("203.0.113.9", "PLAIN", plain("bob@example.test", "pencil"))
                     : attempt("203.0.113.9", "LOGIN", std::nullopt,
                               {base64_encode("bob@EXAMPLE.test"), base64_encode("pencil")});
    EXPECT_EQ(right.result, AuthResult::kLocked);
    EXPECT_EQ(right.account, "bob@example.test");
  }
  EXPECT_FALSE(limiter_.ip_locked("203.0.113.9"));  // two failures so far, lockout_after = 3
  EXPECT_EQ(attempt("203.0.113.9", "PLAIN", plain("bob@example.test", "pencil")).result, AuthResult::kLocked);
  EXPECT_TRUE(limiter_.ip_locked("203.0.113.9"));
  clock_.advance(5min);
  EXPECT_EQ(attempt("203.0.113.10", "PLAIN", plain("\"bob\"@example.test", "pencil")).result, AuthResult::kSuccess);
}

TEST_F(LoginGuardTest, SuccessClearsTheNameCounterForEverySpelling) {
  attempt("198.51.100.1", "PLAIN", plain("\"bob\"@example.test", "guess"));
  attempt("198.51.100.2", "PLAIN", plain("BOB@example.test", "guess"));
  EXPECT_EQ(attempt("198.51.100.3", "PLAIN", plain("bob@example.test", "pencil")).result, AuthResult::kSuccess);
  // Cleared: two more failures do not lock (lockout_after = 3).
  attempt("198.51.100.4", "PLAIN", plain("b\\ob@example.test", "guess"));
  attempt("198.51.100.5", "PLAIN", plain("\"Bob\"@example.test", "guess"));
  EXPECT_FALSE(limiter_.account_locked("bob@example.test"));
}

TEST_F(LoginGuardTest, WithoutLimiterNothingIsCountedOrLocked) {
  LoginGuard open(sasl_, nullptr);
  for (int i = 0; i < 10; ++i) {
    auto begun = open.begin("192.0.2.1", "PLAIN", plain("bob@example.test", "guess"));
    ASSERT_TRUE(begun.exchange);
    auto s = begun.exchange->start();
    EXPECT_EQ(s.result, AuthResult::kFailed);
    EXPECT_EQ(s.tarpit, 0ms);
  }
  auto begun = open.begin("192.0.2.1", "PLAIN", plain("bob@example.test", "pencil"));
  ASSERT_TRUE(begun.exchange);
  EXPECT_EQ(begun.exchange->start().result, AuthResult::kSuccess);
}

TEST_F(LoginGuardTest, AFinishedExchangeTakesNoMoreAndAbortEnds) {
  auto begun = guard_.begin("192.0.2.1", "LOGIN", std::nullopt);
  ASSERT_TRUE(begun.exchange);
  EXPECT_EQ(begun.exchange->start().result, AuthResult::kChallenge);
  auto abort = begun.exchange->abort(AbortReason::kLineTooLong);
  EXPECT_EQ(abort.result, AuthResult::kAborted);
  EXPECT_EQ(abort.abort, AbortReason::kLineTooLong);
  EXPECT_EQ(begun.exchange->respond(base64_encode("bob@example.test")).result, AuthResult::kMalformed);
  EXPECT_EQ(limiter_.tracked_ips(), 0u);
}

}  // namespace
}  // namespace petrel::auth
