#include "auth/password.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace petrel::auth {
namespace {

TEST(Password, HashIsEncodedArgon2idWithItsCost) {
  auto h = hash_password("correct horse", kTestPasswordCost);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << *h;
  EXPECT_EQ(h->find('\0'), std::string::npos);
}

TEST(Password, DefaultCostIsT3M32MiBP1) {
  auto h = hash_password("x", PasswordCost{});
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->rfind("$argon2id$v=19$m=32768,t=3,p=1$", 0), 0u) << *h;
  auto ok = verify_password_hash(*h, "x");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

TEST(Password, VerifyGoodAndBad) {
  auto h = hash_password("s3cret", kTestPasswordCost);
  ASSERT_TRUE(h);
  auto good = verify_password_hash(*h, "s3cret");
  ASSERT_TRUE(good);
  EXPECT_TRUE(*good);
  for (const char* wrong : {"s3cret ", "S3cret", "", "s3cre"}) {
    auto bad = verify_password_hash(*h, wrong);
    ASSERT_TRUE(bad) << wrong;
    EXPECT_FALSE(*bad) << wrong;
  }
}

TEST(Password, FreshSaltEachTime) {
  auto a = hash_password("same", kTestPasswordCost);
  auto b = hash_password("same", kTestPasswordCost);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST(Password, RefusesWhatIsNotArgon2idAndOverlongInput) {
  EXPECT_FALSE(verify_password_hash("$2y$10$abcdefghijklmnopqrstuv", "x"));
  EXPECT_FALSE(verify_password_hash("plaintext", "plaintext"));
  auto garbled = verify_password_hash("$argon2id$v=19$m=8,t=1,p=1$garbage", "x");
  EXPECT_TRUE(!garbled || !*garbled);
  EXPECT_FALSE(hash_password(std::string(kMaxPasswordLength + 1, 'a'), kTestPasswordCost));
}

// The decoy is a real hash at the cost asked for (checking it costs what checking a real
// hash does), and no password that a user would type matches it by accident.
TEST(Password, DecoyIsARealHashAtTheGivenCost) {
  auto decoy = make_decoy_hash(kTestPasswordCost);
  ASSERT_TRUE(decoy) << decoy.error().message;
  EXPECT_EQ(decoy->rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << *decoy;
  auto wrong = verify_password_hash(*decoy, "");
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong);
}

}  // namespace
}  // namespace petrel::auth
