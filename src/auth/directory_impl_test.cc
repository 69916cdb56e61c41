#include "auth/directory_impl.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "auth/account_store.h"
#include "auth/sqlite_db.h"
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

// ---- resolve() ----

// One line per target, so a table can say what the user would get: the mailbox (folded name and
// the address as written), the remote address, or the failed address with its status code.
std::string describe(const DeliveryTarget& t) {
  switch (t.kind) {
    case DeliveryTarget::Kind::kMailbox:
      return "mailbox " + t.mailbox_local + "@" + t.mailbox_domain + " <" + t.address.local + "@" + t.address.domain + ">";
    case DeliveryTarget::Kind::kRemote: return "remote <" + t.address.local + "@" + t.address.domain + ">";
    case DeliveryTarget::Kind::kFailed:
      return "failed <" + t.address.local + "@" + t.address.domain + "> " + t.reason.substr(0, 5);
  }
  return "?";
}

std::vector<std::string> describe(const base::Result<Resolution>& r) {
  std::vector<std::string> out;
  if (!r) {
    out.push_back(std::string(r.error().temporary() ? "temporary" : "permanent") + " error: " + r.error().message);
    return out;
  }
  for (const auto& t : *r) out.push_back(describe(t));
  return out;
}

class ResolveTest : public DirectoryTest {
 protected:
  void SetUp() override {
    DirectoryTest::SetUp();
    if (HasFatalFailure()) return;
    // Inherited: alice, Bob.Smith; info -> alice; outside -> someone@remote.test;
    // catchall.test's catch-all -> alice.
    ASSERT_TRUE(store_->add_domain("loop.test"));
    ASSERT_TRUE(store_->add_domain("nopm.test"));
    ASSERT_TRUE(store_->add_user("carol@example.test", "pw"));
    ASSERT_TRUE(store_->add_user("dan@nopm.test", "pw"));
    alias("postmaster@example.test", {"alice@example.test"});
    alias("team@example.test", {"alice@example.test", "Carol@example.test", "Friend@Remote.test"});
    alias("n1@example.test", {"n2@example.test"});
    alias("n2@example.test", {"n3@example.test"});
    alias("n3@example.test", {"bob.smith@example.test"});
    alias("la@example.test", {"lb@example.test", "alice@example.test"});
    alias("lb@example.test", {"la@example.test", "carol@example.test"});
    alias("pa@example.test", {"pb@example.test"});
    alias("pb@example.test", {"pa@example.test"});
    alias("broken@example.test", {"ghost@example.test", "alice@example.test"});
    alias("dup@example.test", {"alice@example.test", "team@example.test", "info@example.test", "alice+x@example.test",
                               "friend@remote.test", "n1@example.test", "n3@example.test"});
    alias("tagged@example.test", {"carol+lists@example.test"});
    // A catch-all whose target would be caught by itself.
    ASSERT_TRUE(store_->set_catch_all("loop.test", "ghost@loop.test"));
  }

  void alias(const std::string& address, const std::vector<std::string>& targets) {
    for (const auto& t : targets) ASSERT_TRUE(store_->add_alias(address, t)) << address << " -> " << t;
  }

  // Many targets in one transaction (add_alias syncs each one).
  void bulk_alias(const std::string& local, const std::string& domain, const std::vector<std::string>& targets) {
    auto db = sqlite::Db::open(dir_.db());
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("BEGIN"));
    for (const auto& t : targets) {
      auto stmt = db->prepare("INSERT INTO aliases (address, domain, target, created_at) VALUES (?1, ?2, ?3, 0)");
      ASSERT_TRUE(stmt);
      stmt->bind(1, local + "@" + domain).bind(2, domain).bind(3, t);
      ASSERT_TRUE(stmt->run());
    }
    ASSERT_TRUE(db->exec("COMMIT"));
  }
};

TEST_F(ResolveTest, Table) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  struct Case {
    mail::Address recipient;
    std::vector<std::string> want;  // describe() of each target, or of the error
  };
  const Case cases[] = {
      // Accounts; case folded for the mailbox, kept in the address.
      {{"alice", "example.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      {{"ALICE", "Example.TEST"}, {"mailbox alice@example.test <ALICE@Example.TEST>"}},
      {{"Bob.Smith", "EXAMPLE.test"}, {"mailbox bob.smith@example.test <Bob.Smith@EXAMPLE.test>"}},
      // Aliases: two locals and a remote, in the order added; a remote keeps its local part.
      {{"team", "example.test"},
       {"mailbox alice@example.test <alice@example.test>", "mailbox carol@example.test <Carol@example.test>",
        "remote <Friend@remote.test>"}},
      {{"Outside", "example.test"}, {"remote <someone@remote.test>"}},
      // Nested three deep.
      {{"n1", "example.test"}, {"mailbox bob.smith@example.test <bob.smith@example.test>"}},
      // a -> b -> a: the loop is skipped, the other targets stay (b's first: depth first).
      {{"la", "example.test"},
       {"mailbox carol@example.test <carol@example.test>", "mailbox alice@example.test <alice@example.test>"}},
      {{"lb", "example.test"},
       {"mailbox alice@example.test <alice@example.test>", "mailbox carol@example.test <carol@example.test>"}},
      // Only a loop: nothing to deliver to.
      {{"pa", "example.test"},
       {"permanent error: 5.4.6 <pa@example.test>: alias expansion yields no target (alias loop)"}},
      // RFC 5233 subaddresses, of an account and of an alias; the address keeps the tag.
      {{"Alice+News", "example.test"}, {"mailbox alice@example.test <Alice+News@example.test>"}},
      {{"alice+a+b", "example.test"}, {"mailbox alice@example.test <alice+a+b@example.test>"}},
      {{"info+x", "example.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      {{"tagged", "example.test"}, {"mailbox carol@example.test <carol+lists@example.test>"}},
      {{"+alice", "example.test"}, {"permanent error: 5.1.1 <+alice@example.test>: unknown user"}},
      // Unknown users.
      {{"nobody", "example.test"}, {"permanent error: 5.1.1 <nobody@example.test>: unknown user"}},
      {{"nobody+alice", "example.test"}, {"permanent error: 5.1.1 <nobody+alice@example.test>: unknown user"}},
      // Catch-all: its target is resolved like any address.
      {{"Anything", "CatchAll.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      {{"x+y", "catchall.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      // A catch-all pointing into its own domain at nobody: that target fails, no loop.
      {{"someone", "loop.test"}, {"failed <ghost@loop.test> 5.1.1"}},
      {{"ghost", "loop.test"}, {"failed <ghost@loop.test> 5.1.1"}},
      // Postmaster: defined, by catch-all, missing.
      {{"PostMaster", "example.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      {{"postmaster", "catchall.test"}, {"mailbox alice@example.test <alice@example.test>"}},
      {{"postmaster", "nopm.test"},
       {"permanent error: 5.1.1 <postmaster@nopm.test>: postmaster is not defined; RFC 5321 4.5.1 requires it "
        "and this server accepts it, so the operator must add an account or alias for it"}},
      {{"Postmaster", ""},
       {"permanent error: 5.1.1 <Postmaster>: no domain to deliver it in; address postmaster@ one of our "
        "domains"}},
      // A dangling target fails alone; the rest is delivered.
      {{"broken", "example.test"},
       {"failed <ghost@example.test> 5.1.1", "mailbox alice@example.test <alice@example.test>"}},
      // Duplicates: one mailbox once, one remote address once (the first kept).
      {{"dup", "example.test"},
       {"mailbox alice@example.test <alice@example.test>", "mailbox carol@example.test <Carol@example.test>",
        "remote <Friend@remote.test>", "remote <friend@remote.test>",
        "mailbox bob.smith@example.test <bob.smith@example.test>"}},
      // Not ours: the recipient as given, for the caller's relay policy.
      {{"Bob", "Elsewhere.TEST"}, {"remote <Bob@Elsewhere.TEST>"}},
      {{"alice", "sub.example.test"}, {"remote <alice@sub.example.test>"}},
      {{"alice", "[192.0.2.1]"}, {"remote <alice@[192.0.2.1]>"}},
      {{"postmaster", "elsewhere.test"}, {"remote <postmaster@elsewhere.test>"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(describe(directory->resolve(c.recipient)), c.want) << c.recipient.local << "@" << c.recipient.domain;
  }
}

TEST_F(ResolveTest, ErrorsArePermanentAndFailedPartsSayWhy) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  for (const mail::Address& a : {mail::Address{"nobody", "example.test"}, mail::Address{"postmaster", "nopm.test"},
                                 mail::Address{"pa", "example.test"}}) {
    auto r = directory->resolve(a);
    ASSERT_FALSE(r) << a.str();
    EXPECT_FALSE(r.error().temporary()) << a.str();
  }
  auto r = directory->resolve({"broken", "example.test"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].kind, DeliveryTarget::Kind::kFailed);
  // The sender sees the failed address, not the alias that led to it.
  EXPECT_EQ((*r)[0].reason, "5.1.1 <ghost@example.test>: unknown user");
  EXPECT_TRUE((*r)[0].mailbox_local.empty());
}

TEST_F(ResolveTest, SubaddressingOff) {
  auto directory = open_directory("");
  ASSERT_TRUE(directory);
  EXPECT_EQ(describe(directory->resolve({"alice+news", "example.test"})),
            std::vector<std::string>{"permanent error: 5.1.1 <alice+news@example.test>: unknown user"});
  EXPECT_EQ(describe(directory->resolve({"info+x", "example.test"})),
            std::vector<std::string>{"permanent error: 5.1.1 <info+x@example.test>: unknown user"});
  // With the catch-all, the whole "x+y" is an unknown user it catches.
  EXPECT_EQ(describe(directory->resolve({"alice+news", "catchall.test"})),
            std::vector<std::string>{"mailbox alice@example.test <alice@example.test>"});
  // An alias target with a tag is now a dangling target.
  EXPECT_EQ(describe(directory->resolve({"tagged", "example.test"})),
            std::vector<std::string>{"failed <carol+lists@example.test> 5.1.1"});
}

TEST_F(ResolveTest, OtherSeparator) {
  auto directory = open_directory("-");
  ASSERT_TRUE(directory);
  EXPECT_EQ(describe(directory->resolve({"alice-news", "example.test"})),
            std::vector<std::string>{"mailbox alice@example.test <alice-news@example.test>"});
  EXPECT_FALSE(directory->resolve({"alice+news", "example.test"}));
}

// Depth: a chain of 10 aliases is delivered, 11 is refused (permanent: it will not fix itself).
TEST_F(ResolveTest, ChainLimit) {
  for (int i = 1; i <= 11; ++i) {
    alias("c" + std::to_string(i) + "@example.test", {i == 11 ? "carol@example.test" : "c" + std::to_string(i + 1) + "@example.test"});
  }
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  EXPECT_EQ(describe(directory->resolve({"c2", "example.test"})),
            std::vector<std::string>{"mailbox carol@example.test <carol@example.test>"});
  EXPECT_EQ(describe(directory->resolve({"c1", "example.test"})),
            std::vector<std::string>{"permanent error: 5.2.4 <c1@example.test>: alias expansion too deep (more than 10 levels)"});
  // A catch-all counts as a level: catchall.test -> c2 is 1 + 10.
  ASSERT_TRUE(store_->set_catch_all("catchall.test", "c2@example.test"));
  ASSERT_TRUE(directory->refresh());
  auto r = directory->resolve({"anyone", "catchall.test"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("too deep"), std::string::npos) << r.error().message;
}

// Fan-out: 1000 targets are delivered, 1001 refused; duplicates do not count.
TEST_F(ResolveTest, FanOutLimit) {
  std::vector<std::string> targets;
  for (int i = 0; i < 1000; ++i) targets.push_back("r" + std::to_string(i) + "@remote.test");
  bulk_alias("wide", "example.test", targets);
  bulk_alias("wide2", "example.test", {"wide@example.test", "r0@remote.test", "r999@remote.test"});
  targets.push_back("r1000@remote.test");
  bulk_alias("wider", "example.test", targets);
  bulk_alias("wider2", "example.test", {"wide@example.test", "alice@example.test"});
  auto directory = open_directory();
  ASSERT_TRUE(directory);

  auto wide = directory->resolve({"wide", "example.test"});
  ASSERT_TRUE(wide) << wide.error().message;
  ASSERT_EQ(wide->size(), 1000u);
  EXPECT_EQ(describe(wide->front()), "remote <r0@remote.test>");
  EXPECT_EQ(describe(wide->back()), "remote <r999@remote.test>");
  auto wide2 = directory->resolve({"wide2", "example.test"});
  ASSERT_TRUE(wide2) << wide2.error().message;
  EXPECT_EQ(wide2->size(), 1000u);

  const std::string too_large = " alias expansion too large (more than 1000 targets)";
  EXPECT_EQ(describe(directory->resolve({"wider", "example.test"})),
            std::vector<std::string>{"permanent error: 5.2.4 <wider@example.test>:" + too_large});
  EXPECT_EQ(describe(directory->resolve({"wider2", "example.test"})),
            std::vector<std::string>{"permanent error: 5.2.4 <wider2@example.test>:" + too_large});
}

// An alias reachable by many paths is expanded once: nine levels of ten aliases, each pointing
// to all ten of the next level, is 10^9 paths (a walk that followed each would never end) but
// 900 steps, and one mailbox.
TEST_F(ResolveTest, DiamondsAreExpandedOnce) {
  const auto name = [](int level, int i) { return "d" + std::to_string(level) + "x" + std::to_string(i); };
  for (int level = 0; level < 9; ++level) {
    for (int i = 0; i < 10; ++i) {
      std::vector<std::string> next;
      for (int j = 0; j < 10; ++j) next.push_back(level == 8 ? "alice@example.test" : name(level + 1, j) + "@example.test");
      if (level == 8) next.resize(1);
      bulk_alias(name(level, i), "example.test", next);
    }
  }
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  EXPECT_EQ(describe(directory->resolve({"d0x0", "example.test"})),
            std::vector<std::string>{"mailbox alice@example.test <alice@example.test>"});
}

TEST_F(ResolveTest, SeesRefreshedSnapshot) {
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  EXPECT_FALSE(directory->resolve({"erin", "example.test"}));
  ASSERT_TRUE(store_->add_alias("erin@example.test", "carol@example.test"));
  EXPECT_FALSE(directory->resolve({"erin", "example.test"}));  // the snapshot until refresh()
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(describe(directory->resolve({"erin", "example.test"})),
            std::vector<std::string>{"mailbox carol@example.test <carol@example.test>"});
}

// Rule 7: every kMailbox target carries its account's quota, by whatever way it was reached;
// a change in the store reaches resolve() with the next refresh().
TEST_F(ResolveTest, MailboxTargetsCarryTheAccountQuota) {
  ASSERT_TRUE(store_->set_quota("alice@example.test", 5000));
  ASSERT_TRUE(store_->add_user("quota@example.test", "pw", 1u << 20));
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  auto quotas = [&](const mail::Address& recipient) {
    std::vector<std::string> out;
    auto r = directory->resolve(recipient);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return out;
    for (const auto& t : *r) {
      out.push_back(describe(t) + " quota=" + std::to_string(t.quota_bytes));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(quotas({"alice", "example.test"}), V{"mailbox alice@example.test <alice@example.test> quota=5000"});
  EXPECT_EQ(quotas({"Quota+tag", "example.test"}),
            V{"mailbox quota@example.test <Quota+tag@example.test> quota=1048576"});
  EXPECT_EQ(quotas({"carol", "example.test"}), V{"mailbox carol@example.test <carol@example.test> quota=0"});
  EXPECT_EQ(quotas({"x", "catchall.test"}), V{"mailbox alice@example.test <alice@example.test> quota=5000"});
  EXPECT_EQ(quotas({"team", "example.test"}),
            (V{"mailbox alice@example.test <alice@example.test> quota=5000",
               "mailbox carol@example.test <Carol@example.test> quota=0", "remote <Friend@remote.test> quota=0"}));

  // Another connection changes the quota (as `petrel user quota` would): seen after refresh().
  AccountStoreOptions options;
  options.password_cost = kTestPasswordCost;
  auto other = AccountStore::open(dir_.db(), options);
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->set_quota("alice@example.test", 0));
  ASSERT_TRUE((*other)->set_quota("carol@example.test", 123));
  EXPECT_EQ(quotas({"alice", "example.test"}), V{"mailbox alice@example.test <alice@example.test> quota=5000"});
  ASSERT_TRUE(directory->refresh());
  EXPECT_EQ(quotas({"alice", "example.test"}), V{"mailbox alice@example.test <alice@example.test> quota=0"});
  EXPECT_EQ(quotas({"carol", "example.test"}), V{"mailbox carol@example.test <carol@example.test> quota=123"});
}

// A hand-edited negative quota reads as unlimited, not as an enormous unsigned number.
TEST_F(ResolveTest, NegativeStoredQuotaIsUnlimited) {
  auto db = sqlite::Db::open(dir_.db());
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("UPDATE accounts SET quota_bytes = -5 WHERE address = 'alice@example.test'"));
  auto directory = open_directory();
  ASSERT_TRUE(directory);
  auto r = directory->resolve({"alice", "example.test"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].quota_bytes, 0u);
}

}  // namespace
}  // namespace petrel::auth
