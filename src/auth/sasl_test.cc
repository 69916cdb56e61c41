#include "auth/sasl.h"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <map>

#include "auth/account_store.h"
#include "auth/cram_md5_state.h"
#include "auth/sasl_crypto.h"
#include "auth/sasl_mechanisms.h"
#include "auth/store_credentials.h"
#include "auth/account_store_testing.h"
#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

using namespace std::string_literals;

// RFC 7677 3 and RFC 2195 2 examples.
constexpr std::string_view kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kCramChallenge = "<1896.697170952@postoffice.reston.mci.net>";

// Accounts by name with their passwords; SCRAM keys derived with the RFC 7677 salt.
class FakeCredentials : public CredentialSource {
 public:
  std::map<std::string, std::string, std::less<>> passwords{{"user", "pencil"}, {"tim", "tanstaaftanstaaf"}};
  bool broken = false;
  int calls = 0;

  base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override {
    ++calls;
    if (broken) return base::temporary_error("disk on fire");
    auto it = passwords.find(authcid);
    return it != passwords.end() && it->second == password;
  }
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view authcid) override {
    ++calls;
    if (broken) return base::temporary_error("disk on fire");
    auto it = passwords.find(authcid);
    if (it == passwords.end()) return std::optional<ScramKeys>();
    auto keys = compute_scram_keys(it->second, *base64_decode(kRfcSalt), kScramIterations);
    EXPECT_TRUE(keys);
    return std::optional<ScramKeys>(*keys);
  }
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) override {
    ++calls;
    if (broken) return base::temporary_error("disk on fire");
    auto it = passwords.find(authcid);
    if (it == passwords.end()) return std::optional<std::string>();
    return std::optional<std::string>(cram_md5_key_state(it->second));
  }
};

// What a client sees of a step: the outcome and the bytes sent to it. The log reason is not
// part of it.
std::pair<SaslOutcome, std::string> seen(const SaslStep& s) { return {s.outcome, s.data}; }

// The client side of SCRAM-SHA-256 (RFC 5802 3), to drive the server with any password.
std::string scram_client_final(std::string_view password, std::string_view client_first_bare,
                               std::string_view server_first, std::string_view without_proof) {
  // server_first = r=...,s=...,i=...
  auto s_at = server_first.find(",s=");
  auto i_at = server_first.find(",i=");
  std::string salt = *base64_decode(server_first.substr(s_at + 3, i_at - s_at - 3));
  auto iterations = static_cast<std::uint32_t>(std::stoul(std::string(server_first.substr(i_at + 3))));
  auto salted = *crypto::pbkdf2_sha256(password, salt, iterations);
  auto client_key = *crypto::hmac("SHA256", salted, "Client Key");
  auto stored_key = *crypto::digest("SHA256", client_key);
  std::string auth_message = std::string(client_first_bare) + "," + std::string(server_first) + "," +
                             std::string(without_proof);
  auto signature = *crypto::hmac("SHA256", stored_key, auth_message);
  std::string proof = client_key;
  for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  return std::string(without_proof) + ",p=" + base64_encode(proof);
}

class SaslTest : public ::testing::Test {
 protected:
  std::unique_ptr<SaslMechanism> scram(std::string server_nonce = std::string(kRfcServerNonce)) {
    return make_scram_sha256(creds_, std::move(server_nonce), "secret");
  }

  // A whole SCRAM exchange as user/password; returns the last step.
  SaslStep scram_login(const std::string& user, const std::string& password) {
    auto m = scram();
    std::string bare = "n=" + user + ",r=" + std::string(kRfcClientNonce);
    auto first = m->start("n,," + bare);
    if (first.outcome != SaslOutcome::kContinue) return first;
    std::string without_proof = "c=biws,r=" + first.data.substr(2, first.data.find(',') - 2);
    auto final = m->step(scram_client_final(password, bare, first.data, without_proof));
    if (final.outcome != SaslOutcome::kContinue) return final;
    return m->step("");
  }

  FakeCredentials creds_;
};

// ---- base64 and line decoding ----

TEST_F(SaslTest, Base64IsStrict) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9vYg==").value_or("?"), "foob");
  EXPECT_EQ(base64_decode("").value_or("?"), "");
  for (std::string_view bad : {"Zm9", "Zm9vYg=", "Zg=a", "Zh==", "Zm8 ", "=Zm8", "Zm9v\r\n", "Z===", "Zm==Zm8="}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST_F(SaslTest, DecodeResponse) {
  auto cancel = decode_response("*");
  ASSERT_TRUE(cancel);
  EXPECT_TRUE(cancel->cancelled);
  auto empty = decode_response("=", /*initial=*/true);
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->cancelled);
  EXPECT_EQ(empty->octets, "");
  EXPECT_FALSE(decode_response("="));
  EXPECT_FALSE(decode_response("not base64!"));
  // RFC 4954 4: 12,288 octets accepted, more refused.
  std::string longest(kMaxResponseLength, 'A');
  auto ok = decode_response(longest);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->octets.size(), kMaxResponseLength / 4 * 3);
  auto too_long = decode_response(longest + "AAAA");
  ASSERT_FALSE(too_long);
  EXPECT_FALSE(too_long.error().temporary());
}

// ---- PLAIN (RFC 4616) ----

TEST_F(SaslTest, PlainGoodWithAndWithoutInitialResponse) {
  auto m = make_plain(creds_);
  auto s = m->start("\0user\0pencil"s);
  EXPECT_EQ(s.outcome, SaslOutcome::kSuccess);
  EXPECT_EQ(s.authcid, "user");
  EXPECT_EQ(m->step("\0user\0pencil"s).outcome, SaslOutcome::kMalformed);  // already finished

  m = make_plain(creds_);
  auto c = m->start(std::nullopt);
  EXPECT_EQ(seen(c), std::make_pair(SaslOutcome::kContinue, ""s));
  EXPECT_EQ(m->step("user\0user\0pencil"s).outcome, SaslOutcome::kSuccess);  // authzid = authcid
}

TEST_F(SaslTest, PlainRefusals) {
  struct Case {
    std::string message;
    SaslOutcome outcome;
  } cases[] = {
      {"\0user\0pencil2"s, SaslOutcome::kFailed},
      {"\0nobody\0pencil"s, SaslOutcome::kFailed},
      {"admin\0user\0pencil"s, SaslOutcome::kFailed},  // authzid mismatch
      {"userpencil", SaslOutcome::kMalformed},         // no NUL
      {"user\0pencil"s, SaslOutcome::kMalformed},      // one NUL
      {"\0user\0pen\0cil"s, SaslOutcome::kMalformed},  // three NULs
      {"\0\0pencil"s, SaslOutcome::kMalformed},        // empty authcid
      {"\0user\0"s, SaslOutcome::kMalformed},          // empty password
      {""s, SaslOutcome::kMalformed},
      {"\0"s + std::string(256, 'u') + "\0pencil"s, SaslOutcome::kMalformed},
      {std::string(256, 'a') + "\0user\0pencil"s, SaslOutcome::kMalformed},
      {"\0user\0"s + std::string(kMaxPasswordLength + 1, 'p'), SaslOutcome::kMalformed},
      {"\0user\0"s + std::string(kMaxResponseLength, 'p'), SaslOutcome::kMalformed},
      {"\0us\xff\0pencil"s, SaslOutcome::kMalformed},  // not UTF-8
  };
  for (const auto& c : cases) {
    auto m = make_plain(creds_);
    auto s = m->start(c.message);
    EXPECT_EQ(s.outcome, c.outcome) << base64_encode(c.message) << ": " << s.reason;
    EXPECT_EQ(s.data, "");
    // A failure names the account tried (for the per-account counters); malformed ones none.
    if (c.outcome != SaslOutcome::kFailed) {
      EXPECT_EQ(s.authcid, "");
    }
  }
}

// ---- LOGIN ----

TEST_F(SaslTest, LoginGood) {
  auto m = make_login(creds_);
  EXPECT_EQ(seen(m->start(std::nullopt)), std::make_pair(SaslOutcome::kContinue, "Username:"s));
  EXPECT_EQ(seen(m->step("user")), std::make_pair(SaslOutcome::kContinue, "Password:"s));
  auto s = m->step("pencil");
  EXPECT_EQ(s.outcome, SaslOutcome::kSuccess);
  EXPECT_EQ(s.authcid, "user");
  EXPECT_EQ(m->step("pencil").outcome, SaslOutcome::kMalformed);

  // The user name as an initial response (AUTH LOGIN dXNlcg==).
  m = make_login(creds_);
  EXPECT_EQ(seen(m->start("user")), std::make_pair(SaslOutcome::kContinue, "Password:"s));
  EXPECT_EQ(m->step("pencil").outcome, SaslOutcome::kSuccess);
}

TEST_F(SaslTest, LoginBad) {
  auto m = make_login(creds_);
  (void)m->start(std::nullopt);
  (void)m->step("user");
  EXPECT_EQ(m->step("pencil2").outcome, SaslOutcome::kFailed);
  m = make_login(creds_);
  EXPECT_EQ(m->start("").outcome, SaslOutcome::kMalformed);
  m = make_login(creds_);
  (void)m->start("user");
  EXPECT_EQ(m->step("").outcome, SaslOutcome::kMalformed);
  m = make_login(creds_);
  EXPECT_EQ(m->start(std::string(256, 'u')).outcome, SaslOutcome::kMalformed);
}

// ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) ----

TEST_F(SaslTest, ScramRfc7677ExampleByteForByte) {
  auto m = scram();
  auto first = m->start("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  EXPECT_EQ(seen(first), std::make_pair(SaslOutcome::kContinue,
                                        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                        "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"s));
  auto final = m->step(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_EQ(seen(final),
            std::make_pair(SaslOutcome::kContinue, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="s))
      << final.reason;
  auto done = m->step("");
  EXPECT_EQ(done.outcome, SaslOutcome::kSuccess);
  EXPECT_EQ(done.authcid, "user");
  EXPECT_EQ(m->step("").outcome, SaslOutcome::kMalformed);
}

TEST_F(SaslTest, ScramEmptyChallengeWithoutInitialResponse) {
  auto m = scram();
  EXPECT_EQ(seen(m->start(std::nullopt)), std::make_pair(SaslOutcome::kContinue, ""s));
  EXPECT_EQ(m->step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").outcome, SaslOutcome::kContinue);
}

TEST_F(SaslTest, ScramRoundTripAndWrongProof) {
  EXPECT_EQ(scram_login("user", "pencil").outcome, SaslOutcome::kSuccess);
  auto wrong = scram_login("user", "pencil2");
  EXPECT_EQ(wrong.outcome, SaslOutcome::kFailed);

  // A proof of the right size but flipped bits.
  auto m = scram();
  (void)m->start("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  auto s = m->step(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=");
  EXPECT_EQ(s.outcome, SaslOutcome::kFailed);
  EXPECT_EQ(s.data, "");
}

TEST_F(SaslTest, ScramTamperedNonceAndChannelBinding) {
  const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  struct Case {
    std::string first, final;
  } cases[] = {
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1" + proof},
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO" + proof},
      // c= must repeat the gs2 header: "eSws" is "y,,", sent after "n,,".
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" + proof},
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" + proof},
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"},
      {"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA"},
  };
  for (const auto& c : cases) {
    auto m = scram();
    ASSERT_EQ(m->start(c.first).outcome, SaslOutcome::kContinue);
    auto s = m->step(c.final);
    EXPECT_EQ(s.outcome, SaslOutcome::kMalformed) << c.final << ": " << s.reason;
  }

  // RFC 5802 6: "p=" asks for channel binding we do not offer; "y" (client could bind but
  // thinks we cannot) proceeds, and its c= is base64("y,,").
  EXPECT_EQ(scram()->start("p=tls-unique,,n=user,r=abc").outcome, SaslOutcome::kMalformed);
  auto m = scram();
  auto first = m->start("y,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  ASSERT_EQ(first.outcome, SaslOutcome::kContinue);
  auto final = m->step(scram_client_final("pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO", first.data,
                                          "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"));
  EXPECT_EQ(final.outcome, SaslOutcome::kContinue) << final.reason;
  EXPECT_EQ(m->step("").outcome, SaslOutcome::kSuccess);
}

TEST_F(SaslTest, ScramClientFirstSyntax) {
  for (std::string bad : {"", "n,", "x,,n=user,r=abc", "n,,m=ext,n=user,r=abc", "n,,n=,r=abc", "n,,n=us=er,r=abc",
                          "n,,n=user", "n,,n=user,r=", "n,,n=user,r=a\x01", "n,a=,n=user,r=abc", "n,,r=abc,n=user"}) {
    EXPECT_EQ(scram()->start(bad).outcome, SaslOutcome::kMalformed) << bad;
  }
  // saslname escapes, and an authzid equal to the user.
  creds_.passwords["a,b=c"] = "pw";
  auto m = scram();
  EXPECT_EQ(m->start("n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=abc").outcome, SaslOutcome::kContinue);
  EXPECT_EQ(scram()->start("n,a=admin,n=user,r=abc").outcome, SaslOutcome::kFailed);
}

TEST_F(SaslTest, ScramUnknownUserGetsAStableFakeSalt) {
  auto a = scram()->start("n,,n=nobody,r=abc");
  auto b = scram()->start("n,,n=nobody,r=abc");
  auto c = scram()->start("n,,n=other,r=abc");
  ASSERT_EQ(a.outcome, SaslOutcome::kContinue);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
  EXPECT_NE(a.data.find(",i=4096"), std::string::npos);
}

// ---- CRAM-MD5 (RFC 2195) ----

TEST_F(SaslTest, CramMd5Rfc2195Example) {
  auto m = make_cram_md5(creds_, std::string(kCramChallenge));
  auto c = m->start(std::nullopt);
  EXPECT_EQ(seen(c), std::make_pair(SaslOutcome::kContinue, std::string(kCramChallenge)));
  EXPECT_EQ(base64_encode(c.data), "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
  auto s = m->step(*base64_decode("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"));
  EXPECT_EQ(s.outcome, SaslOutcome::kSuccess) << s.reason;
  EXPECT_EQ(s.authcid, "tim");
}

TEST_F(SaslTest, CramMd5Refusals) {
  for (std::string bad : {"tim", "tim b913a602c7eda7a495b4e6e7334d389", "tim b913a602c7eda7a495b4e6e7334d389z", " b913a602c7eda7a495b4e6e7334d3890"}) {
    auto m = make_cram_md5(creds_, std::string(kCramChallenge));
    (void)m->start(std::nullopt);
    EXPECT_EQ(m->step(bad).outcome, SaslOutcome::kMalformed) << bad;
  }
  auto m = make_cram_md5(creds_, std::string(kCramChallenge));
  EXPECT_EQ(m->start("tim b913a602c7eda7a495b4e6e7334d3890").outcome, SaslOutcome::kMalformed);
  m = make_cram_md5(creds_, std::string(kCramChallenge));
  (void)m->start(std::nullopt);
  EXPECT_EQ(m->step("tim b913a602c7eda7a495b4e6e7334d3891").outcome, SaslOutcome::kFailed);
}

// ---- every mechanism: wrong password and unknown user look the same to the client ----

TEST_F(SaslTest, WrongPasswordAndUnknownUserAreIndistinguishable) {
  auto plain = [&](const std::string& u, const std::string& p) { return make_plain(creds_)->start("\0"s + u + "\0"s + p); };
  auto login = [&](const std::string& u, const std::string& p) {
    auto m = make_login(creds_);
    (void)m->start(u);
    return m->step(p);
  };
  auto scram_fn = [&](const std::string& u, const std::string& p) { return scram_login(u, p); };
  auto cram = [&](const std::string& u, const std::string& p) {
    auto m = make_cram_md5(creds_, std::string(kCramChallenge));
    (void)m->start(std::nullopt);
    auto digest = crypto::to_hex(*crypto::hmac("MD5", p, kCramChallenge));
    return m->step(u + " " + digest);
  };
  std::vector<std::pair<std::string, std::function<SaslStep(const std::string&, const std::string&)>>> all{
      {"PLAIN", plain}, {"LOGIN", login}, {"SCRAM-SHA-256", scram_fn}, {"CRAM-MD5", cram}};
  for (auto& [name, run] : all) {
    const std::string user = name == "CRAM-MD5" ? "tim" : "user";
    const std::string password = creds_.passwords[user];
    EXPECT_EQ(run(user, password).outcome, SaslOutcome::kSuccess) << name;
    auto wrong = run(user, password + "x");
    auto unknown = run("nobody", password);
    EXPECT_EQ(wrong.outcome, SaslOutcome::kFailed) << name;
    EXPECT_EQ(seen(wrong), seen(unknown)) << name;
    EXPECT_EQ(wrong.reason, unknown.reason) << name;
    EXPECT_EQ(wrong.reason.find(password), std::string::npos) << name;
  }
}

TEST_F(SaslTest, StoreTroubleIsTemporary) {
  creds_.broken = true;
  EXPECT_EQ(make_plain(creds_)->start("\0user\0pencil"s).outcome, SaslOutcome::kTemporary);
  EXPECT_EQ(scram()->start("n,,n=user,r=abc").outcome, SaslOutcome::kTemporary);
}

// ---- SaslServer ----

TEST_F(SaslTest, ServerEnablesByConfigCramMd5OffByDefault) {
  SaslServer server(creds_, SaslOptions{});
  EXPECT_EQ(server.mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256", "PLAIN", "LOGIN"}));
  EXPECT_EQ(server.start("CRAM-MD5"), nullptr);
  EXPECT_EQ(server.start("GSSAPI"), nullptr);
  ASSERT_NE(server.start("plain"), nullptr);
  EXPECT_EQ(server.start("scram-sha-256")->name(), "SCRAM-SHA-256");

  SaslOptions options;
  options.mechanisms = {"cram-md5"};
  options.hostname = "postoffice.reston.mci.net";
  options.nonce = [] { return "1896.697170952"s; };
  SaslServer cram_only(creds_, options);
  EXPECT_EQ(cram_only.mechanisms(), std::vector<std::string>{"CRAM-MD5"});
  EXPECT_EQ(cram_only.start("PLAIN"), nullptr);
  auto m = cram_only.start("CRAM-MD5");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->start(std::nullopt).data, kCramChallenge);

  // Real nonces: printable, no ',', different each time.
  auto a = server.start("SCRAM-SHA-256")->start("n,,n=user,r=abc").data;
  auto b = server.start("SCRAM-SHA-256")->start("n,,n=user,r=abc").data;
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find(','), a.find(",s="));
}

// ---- the accounts store as credential source ----

TEST(SaslStoreTest, PasswordsSetInTheStoreWorkForEveryStoredMechanism) {
  TempDir dir;
  auto store = open_test_store(dir, {"example.test"}, {{"bob@example.test", "pencil"}});
  ASSERT_TRUE(store) << store.error().message;
  StoreCredentialSource creds(**store);

  auto keys = (*store)->scram_sha256_keys("Bob@Example.TEST");
  ASSERT_TRUE(keys);
  ASSERT_TRUE(keys->has_value());
  EXPECT_EQ((*keys)->iterations, kScramIterations);
  EXPECT_EQ((*keys)->salt.size(), 16u);
  auto expected = compute_scram_keys("pencil", (*keys)->salt, kScramIterations);
  ASSERT_TRUE(expected);
  EXPECT_EQ((*keys)->stored_key, expected->stored_key);
  EXPECT_EQ((*keys)->server_key, expected->server_key);

  auto scram_as = [&](const std::string& password) {
    auto m = make_scram_sha256(creds, "srv", "secret");
    std::string bare = "n=bob@example.test,r=cli";
    auto first = m->start("n,," + bare);
    EXPECT_EQ(first.outcome, SaslOutcome::kContinue);
    auto final = m->step(scram_client_final(password, bare, first.data, "c=biws,r=clisrv"));
    return final.outcome == SaslOutcome::kContinue ? m->step("") : final;
  };
  EXPECT_EQ(scram_as("pencil").outcome, SaslOutcome::kSuccess);
  EXPECT_EQ(scram_as("crayon").outcome, SaslOutcome::kFailed);
  EXPECT_EQ(make_plain(creds)->start("\0bob@example.test\0pencil"s).outcome, SaslOutcome::kSuccess);

  // set_password draws a new salt and replaces the keys.
  ASSERT_TRUE((*store)->set_password("bob@example.test", "crayon"));
  auto again = (*store)->scram_sha256_keys("bob@example.test");
  ASSERT_TRUE(again && again->has_value());
  EXPECT_NE((*again)->salt, (*keys)->salt);
  EXPECT_EQ(scram_as("crayon").outcome, SaslOutcome::kSuccess);
  EXPECT_EQ(scram_as("pencil").outcome, SaslOutcome::kFailed);

  // Unknown accounts have no keys; with CRAM-MD5 off (the default) no key state is stored.
  auto none = (*store)->scram_sha256_keys("nobody@example.test");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto cram = creds.cram_md5_state("bob@example.test");
  ASSERT_TRUE(cram);
  EXPECT_FALSE(cram->has_value());
}

// SASLprep end to end (RFC 4013 3 examples): a password set in the store as "I<SOFT HYPHEN>X"
// or as U+2168 opens the account through PLAIN, LOGIN and SCRAM-SHA-256 when typed in another
// spelling that prepares to the same "IX" (a SCRAM client derives its proof from
// SASLprep(password), RFC 5802 2.2, so from "IX"); a control character fails.
TEST(SaslStoreTest, PasswordsMatchAfterSaslprepInEveryMechanism) {
  TempDir dir;
  AccountStoreOptions options;
  options.cram_md5 = true;
  auto store = open_test_store(dir, {"example.test"},
                               {{"soft@example.test", "I\u00ADX"}, {"roman@example.test", "\u2168"}}, options);
  ASSERT_TRUE(store) << store.error().message;
  StoreCredentialSource creds(**store);

  auto plain = [&](const std::string& user, const std::string& password) {
    return make_plain(creds)->start("\0"s + user + "\0"s + password).outcome;
  };
  auto login = [&](const std::string& user, const std::string& password) {
    auto m = make_login(creds);
    m->start(std::nullopt);
    m->step(user);
    return m->step(password).outcome;
  };
  auto scram = [&](const std::string& user, const std::string& client_normalized_password) {
    auto m = make_scram_sha256(creds, "srv", "secret");
    std::string bare = "n=" + user + ",r=cli";
    auto first = m->start("n,," + bare);
    EXPECT_EQ(first.outcome, SaslOutcome::kContinue);
    auto final = m->step(scram_client_final(client_normalized_password, bare, first.data, "c=biws,r=clisrv"));
    return final.outcome == SaslOutcome::kContinue ? m->step("").outcome : final.outcome;
  };
  auto cram = [&](const std::string& user, const std::string& password) {
    auto m = make_cram_md5(creds, std::string(kCramChallenge));
    m->start(std::nullopt);
    auto digest = crypto::hmac("MD5", password, kCramChallenge);
    return m->step(user + " " + crypto::to_hex(*digest)).outcome;
  };

  for (std::string user : {"soft@example.test", "roman@example.test"}) {
    SCOPED_TRACE(user);
    for (std::string typed : {"IX"s, "I\u00ADX"s, "\u2168"s}) {
      EXPECT_EQ(plain(user, typed), SaslOutcome::kSuccess) << typed;
      EXPECT_EQ(login(user, typed), SaslOutcome::kSuccess) << typed;
    }
    EXPECT_EQ(scram(user, "IX"), SaslOutcome::kSuccess);
    // CRAM-MD5 has no SASLprep of its own (RFC 2195): the key state is made from the prepared
    // password, so the client must type its prepared form.
    EXPECT_EQ(cram(user, "IX"), SaslOutcome::kSuccess);
    EXPECT_EQ(plain(user, "ix"), SaslOutcome::kFailed);
    EXPECT_EQ(plain(user, "I\u0007X"), SaslOutcome::kFailed);  // prohibited: fails, not an error
    EXPECT_EQ(login(user, "I\u0007X"), SaslOutcome::kFailed);
    EXPECT_EQ(scram(user, "I\u00ADX"), SaslOutcome::kFailed);   // a client that skipped SASLprep
  }
}

// RFC 2104 test vectors (RFC 2202 2): HMAC-MD5 from the stored state equals the real HMAC,
// for a short key, a key of exactly one block and a key longer than a block (hashed first).
TEST(CramMd5StateTest, MatchesHmacMd5) {
  for (std::string key : {"Jefe"s, std::string(64, 'k'), std::string(80, '\xaa'), "tanstaaftanstaaf"s}) {
    for (std::string text : {"what do ya want for nothing?"s, ""s, std::string(200, 'x')}) {
      auto real = crypto::hmac("MD5", key.size() > 64 ? *crypto::digest("MD5", key) : key, text);
      auto from_state = hmac_md5_from_state(cram_md5_key_state(key), text);
      ASSERT_TRUE(real && from_state);
      EXPECT_EQ(crypto::to_hex(*from_state), crypto::to_hex(*real)) << key.size() << " " << text.size();
    }
  }
  EXPECT_EQ(crypto::to_hex(*hmac_md5_from_state(cram_md5_key_state("Jefe"), "what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738");
  EXPECT_FALSE(hmac_md5_from_state("short", "x"));
}

// With CRAM-MD5 enabled the store keeps the key state (never the password) and the RFC 2195
// exchange works against it; a password set with it disabled clears the state.
TEST(SaslStoreTest, CramMd5AgainstStoredState) {
  TempDir dir;
  AccountStoreOptions options;
  options.cram_md5 = true;
  auto store = open_test_store(dir, {"example.test"}, {{"tim@example.test", "tanstaaftanstaaf"}}, options);
  ASSERT_TRUE(store) << store.error().message;
  StoreCredentialSource creds(**store);
  auto login = [&](const std::string& user, const std::string& password) {
    auto m = make_cram_md5(creds, std::string(kCramChallenge));
    (void)m->start(std::nullopt);
    auto digest = crypto::hmac("MD5", password, kCramChallenge);
    return m->step(user + " " + crypto::to_hex(*digest)).outcome;
  };
  EXPECT_EQ(login("tim@example.test", "tanstaaftanstaaf"), SaslOutcome::kSuccess);
  EXPECT_EQ(login("Tim@Example.TEST", "tanstaaftanstaaf"), SaslOutcome::kSuccess);
  EXPECT_EQ(login("tim@example.test", "tanstaaftanstaaF"), SaslOutcome::kFailed);
  EXPECT_EQ(login("nobody@example.test", "tanstaaftanstaaf"), SaslOutcome::kFailed);

  // The stored column holds 32 octets of state, and not the password in any spelling.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir.db().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT cram_md5_state FROM accounts", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string stored(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(raw);
  EXPECT_EQ(base64_decode(stored)->size(), 32u);
  EXPECT_EQ(stored.find("tanstaaf"), std::string::npos);
  EXPECT_EQ(stored.find(base64_encode("tanstaaftanstaaf").substr(0, 12)), std::string::npos);

  AccountStoreOptions off;
  off.password_cost = kTestPasswordCost;
  auto plain_store = AccountStore::open(dir.db(), off);
  ASSERT_TRUE(plain_store);
  ASSERT_TRUE((*plain_store)->set_password("tim@example.test", "tanstaaftanstaaf"));
  EXPECT_EQ(login("tim@example.test", "tanstaaftanstaaf"), SaslOutcome::kFailed);
}

}  // namespace
}  // namespace petrel::auth

namespace petrel::auth {
namespace {

// A petrel.db from before SCRAM (schema version 1) is migrated on open; its accounts keep
// working with PLAIN and get SCRAM keys with their next password.
TEST(SaslStoreTest, SchemaVersion1IsMigratedAndOldAccountsHaveNoScramKeys) {
  TempDir dir;
  auto hash = hash_password("pencil", kTestPasswordCost);
  ASSERT_TRUE(hash);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir.db().c_str(), &raw), SQLITE_OK);
  const std::string v1 =
      "CREATE TABLE domains (name TEXT PRIMARY KEY NOT NULL, catch_all TEXT NULL, created_at INTEGER NOT NULL);"
      "CREATE TABLE accounts (address TEXT PRIMARY KEY NOT NULL, local TEXT NOT NULL,"
      " domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, password_hash TEXT NOT NULL,"
      " quota_bytes INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
      "CREATE TABLE aliases (address TEXT NOT NULL, domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,"
      " target TEXT NOT NULL COLLATE NOCASE, created_at INTEGER NOT NULL, PRIMARY KEY (address, target));"
      "INSERT INTO domains VALUES ('example.test', NULL, 0);"
      "INSERT INTO accounts VALUES ('bob@example.test', 'bob', 'example.test', '" + *hash + "', 0, 0);"
      "PRAGMA user_version = 1;";
  ASSERT_EQ(sqlite3_exec(raw, v1.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);

  AccountStoreOptions options;
  options.password_cost = kTestPasswordCost;
  auto store = AccountStore::open(dir.db(), options);
  ASSERT_TRUE(store) << store.error().message;
  StoreCredentialSource creds(**store);
  EXPECT_EQ(make_plain(creds)->start("\0bob@example.test\0pencil"s).outcome, SaslOutcome::kSuccess);
  auto keys = (*store)->scram_sha256_keys("bob@example.test");
  ASSERT_TRUE(keys) << keys.error().message;
  EXPECT_FALSE(keys->has_value());
  // SCRAM for such an account fails like a wrong password, after the (fake) salt.
  auto m = make_scram_sha256(creds, "srv", "secret");
  auto first = m->start("n,,n=bob@example.test,r=cli");
  ASSERT_EQ(first.outcome, SaslOutcome::kContinue);
  EXPECT_EQ(m->step(scram_client_final("pencil", "n=bob@example.test,r=cli", first.data, "c=biws,r=clisrv")).outcome,
            SaslOutcome::kFailed);

  ASSERT_TRUE((*store)->set_password("bob@example.test", "pencil"));
  keys = (*store)->scram_sha256_keys("bob@example.test");
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->has_value());

  ASSERT_EQ(sqlite3_open(dir.db().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 3);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

}  // namespace
}  // namespace petrel::auth
