#include "auth/pooled_credentials.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "auth/account_store_testing.h"
#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

// The pool makes one decoy when it is built (the server's start-up) and every store it opens
// checks unknown users against it, so no exchange, the first after start included, pays for a
// hash on top of its verification (account_store_test checks a store uses what it is given).
TEST(PooledStoreCredentials, MakesOneDecoyAtConstructionAndAnswersFromEveryThread) {
  TempDir dir;
  {
    auto store = open_test_store(dir, {"example.test"}, {{"alice@example.test", "right"}});
    ASSERT_TRUE(store) << store.error().message;
  }
  AccountStoreOptions options;
  options.password_cost = kTestPasswordCost;
  PooledStoreCredentials credentials(dir.db(), options);
  ASSERT_NE(credentials.decoy(), nullptr);
  EXPECT_EQ(credentials.decoy()->rfind("$argon2id$", 0), 0u);

  constexpr int kThreads = 4, kEach = 3;
  std::vector<int> refused(kThreads, 0);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&credentials, &count = refused[t]] {
        for (int i = 0; i < kEach; ++i) {
          auto ok = credentials.verify_password(i == 0 ? "alice@example.test" : "nobody@example.test", "wrong");
          if (ok && !*ok) ++count;
        }
      });
    }
  }
  for (int count : refused) EXPECT_EQ(count, kEach);
  auto good = credentials.verify_password("Alice@example.test", "right");
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_TRUE(*good);
}

}  // namespace
}  // namespace petrel::auth
