// sender_rights_test.cc: who may send as what, over a real accounts store.
#include "auth/sender_rights.h"

#include <gtest/gtest.h>

#include "auth/account_store.h"
#include "auth/directory_impl.h"
#include "auth/account_store_testing.h"
#include "auth/temp_dir_testing.h"

namespace petrel::auth {
namespace {

TEST(SenderRightsTest, Table) {
  TempDir dir;
  auto store = open_test_store(dir, {"example.test", "catchall.test"},
                               {{"alice@example.test", "pw"}, {"bob@example.test", "pw"}});
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE((*store)->add_alias("info@example.test", "alice@example.test"));
  ASSERT_TRUE((*store)->add_alias("team@example.test", "alice@example.test"));
  ASSERT_TRUE((*store)->add_alias("team@example.test", "bob@example.test"));
  ASSERT_TRUE((*store)->set_catch_all("catchall.test", "bob@example.test"));
  auto directory = DirectoryImpl::open(dir.db(), config::AccountsConfig{});
  ASSERT_TRUE(directory);
  SenderRights rights(**directory, {{"Alice@Example.test", {"sales@partner.test", "@brand.test"}}});

  struct Row {
    const char* account;
    mail::Address address;
    bool want;
  };
  const Row rows[] = {
      {"alice@example.test", {"alice", "example.test"}, true},
      {"ALICE@example.test", {"Alice", "EXAMPLE.test"}, true},       // folded both sides
      {"alice@example.test", {"alice+lists", "example.test"}, true},  // subaddress
      {"alice@example.test", {"info", "example.test"}, true},         // alias to her
      {"alice@example.test", {"team", "example.test"}, true},         // alias fanning out to her
      {"bob@example.test", {"team", "example.test"}, true},
      {"bob@example.test", {"info", "example.test"}, false},          // Alice's alias
      {"bob@example.test", {"alice", "example.test"}, false},
      {"alice@example.test", {"bob", "example.test"}, false},
      {"bob@example.test", {"anything", "catchall.test"}, true},      // catch-all to him
      {"alice@example.test", {"anything", "catchall.test"}, false},
      {"alice@example.test", {"sales", "partner.test"}, true},        // granted address
      {"alice@example.test", {"other", "partner.test"}, false},
      {"alice@example.test", {"x", "Brand.TEST"}, true},              // granted domain
      {"bob@example.test", {"x", "brand.test"}, false},               // granted to Alice only
      {"alice@example.test", {"alice", "elsewhere.test"}, false},     // same local part elsewhere
      {"alice@example.test", {"alice", "[127.0.0.1]"}, false},        // address literal
      {"alice@example.test", {"nobody", "example.test"}, false},      // unknown user
      {"alice@example.test", {"", ""}, true},                         // null sender
      {"not an address", {"alice", "example.test"}, false},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(rights.may_use(r.account, r.address), r.want) << r.account << " as " << r.address.str();
  }
}

}  // namespace
}  // namespace petrel::auth
