#include "auth/directory_impl.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "auth/account_store.h"
#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

using RS = RecipientStatus;

const char* name(RS s) {
  switch (s) {
    case RS::kLocal: return "kLocal";
    case RS::kUnknownUser: return "kUnknownUser";
    case RS::kNotOurDomain: return "kNotOurDomain";
  }
  return "?";
}

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AccountStoreOptions options;
    options.password_cost = kTestPasswordCost;
    auto s = AccountStore::open(dir_.db(), options);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->add_domain("example.test"));
    ASSERT_TRUE(store_->add_domain("catchall.test"));
    ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
    ASSERT_TRUE(store_->add_user("Bob.Smith@example.test", "pw"));
    ASSERT_TRUE(store_->add_alias("info@example.test", "alice@example.test"));
    ASSERT_TRUE(store_->add_alias("outside@example.test", "someone@remote.test"));
    ASSERT_TRUE(store_->set_catch_all("catchall.test", "alice@example.test"));
  }

  std::unique_ptr<DirectoryImpl> open_directory(std::string separator = "+") {
    config::AccountsConfig config;
    config.subaddress_separator = std::move(separator);
    auto d = DirectoryImpl::open(dir_.db(), config);
    EXPECT_TRUE(d) << d.error().message;
    return d ? std::move(d).value() : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<AccountStore> store_;
};

TEST_F(DirectoryTest, LookupTable) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  struct Case {
    mail::Address address;
    RS want;
  };
  const Case cases[] = {
      {{"alice", "example.test"}, RS::kLocal},                // account
      {{"ALICE", "Example.TEST"}, RS::kLocal},                // case-folded
      {{"bob.smith", "example.test"}, RS::kLocal},            // stored folded
      {{"info", "example.test"}, RS::kLocal},                 // alias
      {{"Outside", "example.test"}, RS::kLocal},              // alias to a remote target
      {{"alice+news", "example.test"}, RS::kLocal},           // subaddress of an account
      {{"Alice+News+More", "example.test"}, RS::kLocal},      // first separator counts
      {{"info+x", "example.test"}, RS::kLocal},               // subaddress of an alias
      {{"nobody", "example.test"}, RS::kUnknownUser},
      {{"nobody+alice", "example.test"}, RS::kUnknownUser},   // the part before '+' decides
      {{"+alice", "example.test"}, RS::kUnknownUser},         // empty user part
      {{"alice.", "example.test"}, RS::kUnknownUser},
      {{"u%alice", "example.test"}, RS::kUnknownUser},
      {{"anything", "catchall.test"}, RS::kLocal},            // catch-all
      {{"x+y", "CATCHALL.test"}, RS::kLocal},
      {{"alice", "elsewhere.test"}, RS::kNotOurDomain},
      {{"alice", "sub.example.test"}, RS::kNotOurDomain},
      {{"alice", "[192.0.2.1]"}, RS::kNotOurDomain},           // address literal
      {{"alice", "[IPv6:2001:db8::1]"}, RS::kNotOurDomain},
      {{"Postmaster", ""}, RS::kLocal},                        // RFC 5321 4.5.1
      {{"POSTMASTER", ""}, RS::kLocal},
      {{"postmaster", "Example.test"}, RS::kLocal},            // RFC 5321 4.5.1, per domain
      {{"postmaster", "elsewhere.test"}, RS::kNotOurDomain},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(name(directory->lookup(c.address)), std::string(name(c.want)))
        << c.address.local << "@" << c.address.domain;
  }
}

TEST_F(DirectoryTest, SubaddressingOff) {
  auto directory = open_directory("");
  ASSERT_TRUE(directory);
  EXPECT_EQ(directory->lookup({"alice+news", "example.test"}), RS::kUnknownUser);
  EXPECT_EQ(directory->lookup({"alice", "example.test"}), RS::kLocal);
}

TEST_F(DirectoryTest, OtherSeparator) {
  auto directory = open_directory("-");
  ASSERT_TRUE(directory);
  EXPECT_EQ(directory->lookup({"alice-news", "example.test"}), RS::kLocal);
  EXPECT_EQ(directory->lookup({"alice+news", "example.test"}), RS::kUnknownUser);
}

TEST_F(DirectoryTest, ServesDomain) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  EXPECT_TRUE(directory->serves_domain("example.test"));
  EXPECT_TRUE(directory->serves_domain("EXAMPLE.Test"));
  EXPECT_TRUE(directory->serves_domain("catchall.test"));
  EXPECT_FALSE(directory->serves_domain("elsewhere.test"));
  EXPECT_FALSE(directory->serves_domain(""));
  EXPECT_FALSE(directory->serves_domain("[192.0.2.1]"));
}

TEST_F(DirectoryTest, RefreshPicksUpChangesFromAnotherConnection) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  const mail::Address carol{"carol", "example.test"};
  EXPECT_EQ(directory->lookup(carol), RS::kUnknownUser);
  ASSERT_TRUE(directory->refresh());  // nothing changed: still unknown
  EXPECT_EQ(directory->lookup(carol), RS::kUnknownUser);

  // A second store, as `petrel user add` in another process would be.
  AccountStoreOptions options;
  options.password_cost = kTestPasswordCost;
  auto other = AccountStore::open(dir_.db(), options);
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->add_user("carol@example.test", "pw"));
  ASSERT_TRUE((*other)->add_domain("new.test"));
  EXPECT_EQ(directory->lookup(carol), RS::kUnknownUser);  // the snapshot until refresh()
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(directory->lookup(carol), RS::kLocal);
  EXPECT_TRUE(directory->serves_domain("new.test"));

  ASSERT_TRUE((*other)->del_user("carol@example.test"));
  ASSERT_TRUE((*other)->set_catch_all("example.test", "alice@example.test"));
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(directory->lookup({"carol+x", "example.test"}), RS::kLocal);  // now by the catch-all
  ASSERT_TRUE((*other)->set_catch_all("example.test", ""));
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(directory->lookup(carol), RS::kUnknownUser);

  ASSERT_TRUE((*other)->del_domain("example.test", /*force=*/true));
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(directory->lookup({"alice", "example.test"}), RS::kNotOurDomain);
}

TEST_F(DirectoryTest, OpenOnAFreshFileCreatesTheSchema) {
  TempDir empty;
  auto d = DirectoryImpl::open(empty.db(), config::AccountsConfig{});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ((*d)->lookup({"alice", "example.test"}), RS::kNotOurDomain);
  EXPECT_EQ((*d)->lookup({"Postmaster", ""}), RS::kLocal);
}

TEST_F(DirectoryTest, OpenFailsOnAMissingDirectory) {
  EXPECT_FALSE(DirectoryImpl::open(dir_.path() + "/no/such/dir/petrel.db", config::AccountsConfig{}));
}

// lookup() on other threads while refresh() swaps snapshots: every answer is one of the two
// states, never a crash or a torn read.
TEST_F(DirectoryTest, LookupsDuringRefresh) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (directory->lookup({"alice", "example.test"}) != RS::kLocal) ++bad;
        auto dave = directory->lookup({"dave", "example.test"});
        if (dave == RS::kNotOurDomain) ++bad;
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(i % 2 == 0 ? store_->add_user("dave@example.test", "pw") : store_->del_user("dave@example.test"));
    ASSERT_TRUE(directory->refresh());
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace petrel::auth
