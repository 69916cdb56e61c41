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

// The decoy that unknown users are checked against is made once per process and cost, even
// when many threads ask for it at once, and is a real hash at that cost (so checking it costs
// what checking a real hash does).
TEST(Password, DecoyIsMadeOncePerCostEvenWhenThreadsAskAtOnce) {
  const PasswordCost cost{1, 16, 1};  // a cost no other test asks a decoy for
  const PasswordWork before = password_work_so_far();
  std::vector<const std::string*> seen(8, nullptr);
  {
    std::vector<std::jthread> threads;
    for (auto& slot : seen) {
      threads.emplace_back([&slot, cost] {
        auto decoy = decoy_password_hash(cost);
        if (decoy) slot = *decoy;
      });
    }
  }
  // At most one: none when an earlier run in this process (--gtest_repeat) made it already.
  EXPECT_LE(password_work_so_far().hashes - before.hashes, 1u);
  ASSERT_NE(seen[0], nullptr);
  for (const std::string* decoy : seen) EXPECT_EQ(decoy, seen[0]);
  EXPECT_EQ(seen[0]->rfind("$argon2id$v=19$m=16,t=1,p=1$", 0), 0u) << *seen[0];

  // Asking again costs nothing; another cost gets its own decoy, at that cost.
  const PasswordWork again = password_work_so_far();
  auto same = decoy_password_hash(cost);
  ASSERT_TRUE(same);
  EXPECT_EQ(*same, seen[0]);
  EXPECT_EQ(password_work_so_far().hashes, again.hashes);
  auto other = decoy_password_hash(kTestPasswordCost);
  ASSERT_TRUE(other);
  EXPECT_EQ((*other)->rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << **other;
}

TEST(Password, WorkCountsEachHashAndEachVerification) {
  const PasswordWork before = password_work_so_far();
  auto h = hash_password("counted", kTestPasswordCost);
  ASSERT_TRUE(h);
  EXPECT_TRUE(verify_password_hash(*h, "counted"));
  EXPECT_TRUE(verify_password_hash(*h, "wrong"));
  const PasswordWork after = password_work_so_far();
  EXPECT_EQ(after.hashes - before.hashes, 1u);
  EXPECT_EQ(after.verifications - before.verifications, 2u);
}

}  // namespace
}  // namespace petrel::auth
