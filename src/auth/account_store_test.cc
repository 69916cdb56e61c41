#include "auth/account_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <thread>

#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

class AccountStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = open_store();
    ASSERT_TRUE(store_->add_domain("example.test"));
  }

  std::unique_ptr<AccountStore> open_store() {
    AccountStoreOptions options;
    options.password_cost = kTestPasswordCost;
    options.clock = &clock_;
    auto s = AccountStore::open(dir_.db(), options);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(s).value() : nullptr;
  }

  std::vector<std::string> users(std::optional<std::string_view> domain = std::nullopt) {
    auto list = store_->list_users(domain);
    EXPECT_TRUE(list) << list.error().message;
    std::vector<std::string> out;
    if (list) {
      for (const auto& u : *list) out.push_back(u.address);
    }
    return out;
  }

  std::vector<std::string> aliases() {
    auto list = store_->list_aliases();
    EXPECT_TRUE(list) << list.error().message;
    std::vector<std::string> out;
    if (list) {
      for (const auto& a : *list) out.push_back(a.address + " " + a.target);
    }
    return out;
  }

  static void expect_refused(const base::Status& s, std::string_view why) {
    ASSERT_FALSE(s) << "expected refusal: " << why;
    EXPECT_FALSE(s.error().temporary()) << s.error().message;
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
  }

  TempDir dir_;
  base::FakeClock clock_;
  std::unique_ptr<AccountStore> store_;
};

TEST_F(AccountStoreTest, SchemaPragmasAndFileMode) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.db().c_str(), &db), SQLITE_OK);
  auto one_int = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string v(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(one_int("PRAGMA user_version"), "3");
  EXPECT_EQ(one_int("PRAGMA journal_mode"), "wal");  // persistent in the file
  EXPECT_EQ(one_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('domains', 'accounts', 'aliases')"), "3");
  sqlite3_close(db);

  struct stat st{};
  ASSERT_EQ(::stat(dir_.db().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640, 0u) << std::oct << (st.st_mode & 0777);
}

TEST_F(AccountStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.db().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = AccountStore::open(dir_.db());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("schema version 99"), std::string::npos) << s.error().message;
}

TEST_F(AccountStoreTest, Domains) {
  ASSERT_TRUE(store_->add_domain("Other.TEST"));
  expect_refused(store_->add_domain("example.test"), "already exists");
  expect_refused(store_->add_domain("EXAMPLE.test"), "already exists");
  expect_refused(store_->add_domain("[192.0.2.1]"), "invalid domain");
  expect_refused(store_->add_domain("x'; DROP TABLE domains; --"), "invalid domain");
  auto list = store_->list_domains();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "example.test");
  EXPECT_EQ((*list)[1].name, "other.test");
  EXPECT_EQ((*list)[1].catch_all, "");
  ASSERT_TRUE(store_->del_domain("other.test"));
  expect_refused(store_->del_domain("other.test"), "no such domain");
  EXPECT_EQ(store_->list_domains()->size(), 1u);
}

TEST_F(AccountStoreTest, DomainInUseIsKeptUnlessForced) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
  expect_refused(store_->del_domain("example.test"), "still has accounts or aliases");
  ASSERT_TRUE(store_->del_user("alice@example.test"));
  ASSERT_TRUE(store_->add_alias("info@example.test", "someone@remote.test"));
  expect_refused(store_->del_domain("example.test"), "still has accounts or aliases");
  ASSERT_TRUE(store_->add_user("bob@example.test", "pw"));
  ASSERT_TRUE(store_->del_domain("example.test", /*force=*/true));
  EXPECT_TRUE(users().empty());
  EXPECT_TRUE(aliases().empty());
  EXPECT_TRUE(store_->list_domains()->empty());
}

TEST_F(AccountStoreTest, UsersAreKeyedCaseInsensitively) {
  ASSERT_TRUE(store_->add_user("Alice@Example.TEST", "pw"));
  expect_refused(store_->add_user("alice@example.test", "pw"), "already exists");
  expect_refused(store_->add_user("ALICE@EXAMPLE.TEST", "pw"), "already exists");
  ASSERT_TRUE(store_->add_user("o'brien@example.test", "pw"));  // a quote in data, bound not spliced
  EXPECT_EQ(users(), (std::vector<std::string>{"alice@example.test", "o'brien@example.test"}));
  auto list = store_->list_users();
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)[0].local, "alice");
  EXPECT_EQ((*list)[0].domain, "example.test");
  EXPECT_EQ((*list)[0].quota_bytes, 0u);
  EXPECT_EQ((*list)[0].created_at, 1767225600);
}

TEST_F(AccountStoreTest, UserValidation) {
  expect_refused(store_->add_user("alice@missing.test", "pw"), "no such domain");
  expect_refused(store_->add_user("alice@example.test", ""), "empty password");
  expect_refused(store_->add_user("alice@example.test", std::string(1025, 'x')), "longer than");
  for (const char* bad : {"u%x@example.test", "u!x@example.test", "\"u@x\"@example.test", "\"a b\"@example.test",
                          "\"a/b\"@example.test", "\"..\"@example.test", "\"a\\\"b\"@example.test",
                          "u@[192.0.2.1]", "not an address"}) {
    auto s = store_->add_user(bad, "pw");
    EXPECT_FALSE(s) << bad;
    if (!s) {
      EXPECT_FALSE(s.error().temporary()) << bad;
    }
  }
  EXPECT_TRUE(users().empty());
}

TEST_F(AccountStoreTest, ListUsersByDomain) {
  ASSERT_TRUE(store_->add_domain("other.test"));
  ASSERT_TRUE(store_->add_user("b@other.test", "pw"));
  ASSERT_TRUE(store_->add_user("a@example.test", "pw"));
  EXPECT_EQ(users(), (std::vector<std::string>{"a@example.test", "b@other.test"}));
  EXPECT_EQ(users("Other.Test"), (std::vector<std::string>{"b@other.test"}));
  EXPECT_TRUE(users("nowhere.test").empty());
  EXPECT_FALSE(store_->list_users("[1.2.3.4]"));
}

TEST_F(AccountStoreTest, Passwords) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "first"));
  auto check = [&](std::string_view address, std::string_view password) {
    auto r = store_->verify_password(address, password);
    EXPECT_TRUE(r) << r.error().message;
    return r && *r;
  };
  EXPECT_TRUE(check("alice@example.test", "first"));
  EXPECT_TRUE(check("ALICE@example.TEST", "first"));
  EXPECT_FALSE(check("alice@example.test", "First"));
  EXPECT_FALSE(check("alice@example.test", ""));
  EXPECT_FALSE(check("nobody@example.test", "first"));
  EXPECT_FALSE(check("u%x@example.test", "first"));
  EXPECT_FALSE(check("", "first"));

  ASSERT_TRUE(store_->set_password("alice@example.test", "second"));
  EXPECT_FALSE(check("alice@example.test", "first"));
  EXPECT_TRUE(check("alice@example.test", "second"));
  expect_refused(store_->set_password("nobody@example.test", "x"), "no such account");
  expect_refused(store_->set_password("alice@example.test", ""), "empty password");

  ASSERT_TRUE(store_->del_user("Alice@example.test"));
  EXPECT_FALSE(check("alice@example.test", "second"));
  expect_refused(store_->del_user("alice@example.test"), "no such account");
}

// Passwords are kept SASLprep'd (RFC 4013) as stored strings and checked SASLprep'd as queries:
// every spelling that prepares to the same string opens the account (RFC 4013 3 examples).
TEST_F(AccountStoreTest, PasswordsAreComparedAfterSaslprep) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "I\u00ADX"));  // SOFT HYPHEN: mapped to nothing
  ASSERT_TRUE(store_->add_user("bob@example.test", "\u2168"));       // ROMAN NUMERAL NINE: NFKC "IX"
  for (const char* address : {"alice@example.test", "bob@example.test"}) {
    // NO-BREAK SPACE maps to SPACE: "I X" is another password.
    for (auto [typed, opens] : {std::pair{"IX", true}, {"I\u00ADX", true}, {"\u2168", true}, {"I\u00A0X", false}}) {
      auto r = store_->verify_password(address, typed);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(*r, opens) << address << " " << typed;
    }
    auto lower = store_->verify_password(address, "ix");  // no case folding in SASLprep
    ASSERT_TRUE(lower);
    EXPECT_FALSE(*lower);
  }
  // Prohibited output fails the check (and is refused when set), as do passwords with
  // unassigned code points when set (RFC 3454 7: stored strings).
  auto bell = store_->verify_password("alice@example.test", "I\u0007X");
  ASSERT_TRUE(bell);
  EXPECT_FALSE(*bell);
  expect_refused(store_->set_password("alice@example.test", "bell\u0007"), "prohibited");
  expect_refused(store_->set_password("alice@example.test", "x\u0221"), "unassigned");
  expect_refused(store_->set_password("alice@example.test", "\u00AD"), "empty");
  // ASCII passwords are unchanged by SASLprep: a hash made from the raw password (as every
  // hash was before SASLprep was applied) still verifies.
  EXPECT_TRUE(store_->set_password("alice@example.test", "plain ASCII ~!"));
  auto ascii = store_->verify_password("alice@example.test", "plain ASCII ~!");
  ASSERT_TRUE(ascii);
  EXPECT_TRUE(*ascii);
}

// An unknown (or malformed) user is checked against a decoy, as a wrong password is checked
// against the real hash (issue: "535 5.7.8 with the same timing whether the user exists or
// not"). A store given the server's shared decoy uses it and never makes one of its own, so no
// store's first unknown user pays for a hash as well; a store without one makes its own once.
TEST_F(AccountStoreTest, UnknownUsersAreCheckedAgainstTheSharedDecoyOrTheStoresOwn) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "right"));
  AccountStoreOptions options;
  options.password_cost = kTestPasswordCost;
  auto made = make_decoy_hash(kTestPasswordCost);
  ASSERT_TRUE(made);
  options.decoy_hash = std::make_shared<const std::string>(*made);
  for (int i = 0; i < 3; ++i) {
    auto store = AccountStore::open(dir_.db(), options);  // a new store, as the pool opens one per caller
    ASSERT_TRUE(store) << store.error().message;
    for (std::string_view who : {"nobody@example.test", "u%x@example.test", "", "alice@example.test"}) {
      auto ok = (*store)->verify_password(who, "wrong");
      ASSERT_TRUE(ok) << ok.error().message;
      EXPECT_FALSE(*ok) << who;
      EXPECT_EQ((*store)->decoy(), options.decoy_hash.get()) << "store " << i << ", '" << who << "'";
    }
    // The decoy's own password opens nothing either.
    auto decoy_text = (*store)->verify_password("nobody@example.test", "petrel-decoy-password");
    ASSERT_TRUE(decoy_text);
    EXPECT_FALSE(*decoy_text);
  }
  // Without a shared decoy: none until the first unknown user, then the same one every time.
  EXPECT_EQ(store_->decoy(), nullptr);
  ASSERT_TRUE(store_->verify_password("nobody@example.test", "x"));
  const std::string* own = store_->decoy();
  ASSERT_NE(own, nullptr);
  ASSERT_TRUE(store_->verify_password("other@example.test", "x"));
  EXPECT_EQ(store_->decoy(), own);
}

TEST_F(AccountStoreTest, PasswordsAreStoredHashed) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "hunter2-unique"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.db().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT password_hash FROM accounts", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string hash(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(hash.rfind("$argon2id$v=19$", 0), 0u) << hash;
  EXPECT_EQ(hash.find("hunter2"), std::string::npos);
}

TEST_F(AccountStoreTest, Aliases) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
  ASSERT_TRUE(store_->add_alias("Info@example.test", "alice@example.test"));
  ASSERT_TRUE(store_->add_alias("info@example.test", "Bob@Remote.TEST"));
  expect_refused(store_->add_alias("INFO@example.test", "alice@example.test"), "already exists");
  expect_refused(store_->add_alias("info@example.test", "bob@remote.test"), "already exists");
  EXPECT_EQ(aliases(), (std::vector<std::string>{"info@example.test alice@example.test", "info@example.test Bob@remote.test"}));

  expect_refused(store_->add_alias("alice@example.test", "x@remote.test"), "is an account");
  expect_refused(store_->add_user("info@example.test", "pw"), "is an alias");
  expect_refused(store_->add_alias("loop@example.test", "LOOP@example.test"), "itself");
  expect_refused(store_->add_alias("x@missing.test", "alice@example.test"), "no such domain");
  expect_refused(store_->add_alias("u%x@example.test", "alice@example.test"), "source routing");
  expect_refused(store_->add_alias("u!x@example.test", "alice@example.test"), "source routing");
  expect_refused(store_->add_alias("sales@example.test", "not an address"), "invalid target");
  expect_refused(store_->add_alias("sales@example.test", ""), "invalid target");

  ASSERT_TRUE(store_->del_alias("info@example.test", "bob@remote.test"));
  EXPECT_EQ(aliases(), (std::vector<std::string>{"info@example.test alice@example.test"}));
  expect_refused(store_->del_alias("info@example.test", "bob@remote.test"), "no such alias");
  ASSERT_TRUE(store_->add_alias("info@example.test", "carol@remote.test"));
  ASSERT_TRUE(store_->del_alias("info@example.test"));
  EXPECT_TRUE(aliases().empty());
  expect_refused(store_->del_alias("info@example.test"), "no such alias");
}

TEST_F(AccountStoreTest, CatchAll) {
  ASSERT_TRUE(store_->set_catch_all("Example.test", "Admin@Example.TEST"));
  auto list = store_->list_domains();
  ASSERT_TRUE(list);
  EXPECT_EQ((*list)[0].catch_all, "Admin@example.test");
  expect_refused(store_->set_catch_all("missing.test", "admin@example.test"), "no such domain");
  expect_refused(store_->set_catch_all("example.test", "nonsense"), "invalid target");
  ASSERT_TRUE(store_->set_catch_all("example.test", ""));
  EXPECT_EQ((*store_->list_domains())[0].catch_all, "");
}

TEST_F(AccountStoreTest, Quotas) {
  auto quota_of = [&](std::string_view address) -> std::optional<std::uint64_t> {
    auto list = store_->list_users();
    EXPECT_TRUE(list) << list.error().message;
    if (!list) return std::nullopt;
    for (const auto& u : *list) {
      if (u.address == address) return u.quota_bytes;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
  ASSERT_TRUE(store_->add_user("bob@example.test", "pw", 10u << 20));
  EXPECT_EQ(quota_of("alice@example.test"), 0u);  // unlimited by default
  EXPECT_EQ(quota_of("bob@example.test"), 10u << 20);

  ASSERT_TRUE(store_->set_quota("ALICE@Example.test", 4096));  // the key is folded, as for passwords
  EXPECT_EQ(quota_of("alice@example.test"), 4096u);
  ASSERT_TRUE(store_->set_quota("bob@example.test", 0));
  EXPECT_EQ(quota_of("bob@example.test"), 0u);
  ASSERT_TRUE(store_->set_quota("bob@example.test", kMaxQuotaBytes));  // the largest there is
  EXPECT_EQ(quota_of("bob@example.test"), kMaxQuotaBytes);

  expect_refused(store_->set_quota("nobody@example.test", 1), "no such account");
  expect_refused(store_->set_quota("not an address", 1), "");
  // Past INT64_MAX SQLite would store a negative number: refused, nothing changed.
  expect_refused(store_->set_quota("alice@example.test", kMaxQuotaBytes + 1), "quota larger than");
  expect_refused(store_->add_user("carol@example.test", "pw", ~std::uint64_t{0}), "quota larger than");
  EXPECT_EQ(quota_of("alice@example.test"), 4096u);
  EXPECT_EQ(quota_of("carol@example.test"), std::nullopt);

  // Stored, not cached: another store sees it.
  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(quota_of("alice@example.test"), 4096u);
}

TEST_F(AccountStoreTest, DataSurvivesReopen) {
  ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
  store_.reset();
  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(users(), (std::vector<std::string>{"alice@example.test"}));
  auto ok = store_->verify_password("alice@example.test", "pw");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
}

// Two connections writing at once (two `petrel` commands): each waits for the other's write
// lock instead of failing with SQLITE_BUSY.
TEST_F(AccountStoreTest, ConcurrentWritersDoNotFailBusy) {
  constexpr int kPerWriter = 40;
  auto writer = [&](char tag, std::vector<std::string>* errors) {
    auto store = open_store();
    if (!store) {
      errors->push_back("open failed");
      return;
    }
    for (int i = 0; i < kPerWriter; ++i) {
      std::string name = std::string(1, tag) + std::to_string(i) + "@example.test";
      if (auto s = store->add_user(name, "pw"); !s) errors->push_back(s.error().message);
      if (auto s = store->add_alias("alias-" + name, name); !s) errors->push_back(s.error().message);
      if (auto s = store->set_password(name, "pw2"); !s) errors->push_back(s.error().message);
    }
  };
  std::vector<std::string> errors_a, errors_b;
  std::thread a(writer, 'a', &errors_a);
  std::thread b(writer, 'b', &errors_b);
  a.join();
  b.join();
  EXPECT_TRUE(errors_a.empty()) << errors_a.front();
  EXPECT_TRUE(errors_b.empty()) << errors_b.front();
  EXPECT_EQ(users().size(), 2u * kPerWriter);
  EXPECT_EQ(aliases().size(), 2u * kPerWriter);
}

}  // namespace
}  // namespace petrel::auth
