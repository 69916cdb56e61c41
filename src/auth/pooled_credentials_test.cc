#include "auth/pooled_credentials.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

// The pool makes the decoy when it is built (the server's start-up), so that from the very
// first exchange on, an unknown user costs one verification and no hash, however many stores
// the concurrent callers make the pool open. Counted, not timed.
TEST(PooledStoreCredentials, UnknownUsersNeverPayForTheDecoy) {
  TempDir dir;
  AccountStoreOptions options;
  options.password_cost = PasswordCost{1, 24, 1};  // a cost no other test asks a decoy for
  {
    auto store = AccountStore::open(dir.db(), options);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->add_domain("example.test"));
    ASSERT_TRUE((*store)->add_user("alice@example.test", "right"));
  }

  const PasswordWork built = password_work_so_far();
  PooledStoreCredentials credentials(dir.db(), options);
  // One hash at most: none when an earlier run in this process (--gtest_repeat) made it.
  EXPECT_LE(password_work_so_far().hashes - built.hashes, 1u);

  constexpr int kThreads = 4, kEach = 3;
  const PasswordWork before = password_work_so_far();
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
  const PasswordWork after = password_work_so_far();
  for (int count : refused) EXPECT_EQ(count, kEach);
  EXPECT_EQ(after.hashes - before.hashes, 0u);
  EXPECT_EQ(after.verifications - before.verifications, std::uint64_t{kThreads * kEach});

  auto good = credentials.verify_password("Alice@example.test", "right");
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_TRUE(*good);
}

}  // namespace
}  // namespace petrel::auth
