// usage_test.cc: usage() and its cache, and the quota check of deliver().
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>

#include "mailbox/maildir.h"
#include "mailbox/maildir_test_util.h"

namespace petrel::mailbox {
namespace {

using testing::list_dir;
using testing::read_file;
using testing::string_source;
using testing::TempDir;
using testing::write_file;

const std::string kHeaders = "Return-Path: <>\r\nDelivered-To: bob@example.net\r\n";

void make_dirs(const std::string& root) {
  for (const char* sub : {"/tmp", "/new", "/cur"}) std::filesystem::create_directories(root + sub);
}

// Moves a directory's (or file's) mtime `ago` into the past, as if the mailbox had been
// quiet for a while; the cache is only written for such a mailbox.
void age(const std::string& path, std::chrono::seconds ago) {
  timespec t[2];
  ::clock_gettime(CLOCK_REALTIME, &t[0]);
  t[0].tv_sec -= ago.count();
  t[1] = t[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), t, 0), 0) << path;
}

timespec mtime_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mtim;
}

void set_mtime(const std::string& path, timespec m) {
  timespec t[2] = {{0, UTIME_OMIT}, m};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), t, 0), 0) << path;
}

// A clock an hour ahead of the real one: scans look long after the last change.
base::FakeClock later_clock() { return base::FakeClock(std::chrono::system_clock::now() + std::chrono::hours(1)); }

TEST(UsageTest, MissingMailboxIsEmpty) {
  TempDir dir;
  Maildir md(dir.path() + "/nobody");
  auto u = md.usage();
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->bytes, 0u);
  EXPECT_EQ(u->count, 0u);
}

TEST(UsageTest, SumsSizeFieldsAndStatsTheRest) {
  TempDir dir;
  std::string root = dir.path();
  make_dirs(root);
  write_file(root + "/new/1.M1P1Q1.h,S=1000", "ignored: the name says 1000");
  write_file(root + "/cur/2.M1P1Q2.h,S=250:2,S", "x");            // S= before the info part
  write_file(root + "/cur/3.M1P1Q3.h,W=99,S=40,X=1:2,RS", "x");   // S= among other fields
  write_file(root + "/cur/4.old-style.h:2,S", std::string(77, 'a'));  // no S=: the ",S" is a flag
  write_file(root + "/new/5.h,S=", std::string(5, 'a'));            // empty S=: stat'ed
  write_file(root + "/cur/.hidden", std::string(1000, 'h'));        // dot files are not mail
  write_file(root + "/tmp/6.h,S=5000", "in tmp: not counted");
  std::filesystem::create_directories(root + "/cur/subdir");        // not a regular file
  Maildir md(root);
  auto u = md.usage();
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->bytes, 1000u + 250 + 40 + 77 + 5);
  EXPECT_EQ(u->count, 5u);
}

TEST(UsageTest, CacheIsWrittenUsedAndInvalidatedWhenCurChanges) {
  TempDir dir;
  std::string root = dir.path();
  make_dirs(root);
  write_file(root + "/new/1.M1P1Q1.h,S=100", "");
  write_file(root + "/cur/2.M1P1Q2.h,S=200:2,S", "");
  write_file(root + "/cur/3.M1P1Q3.h,S=300:2,", "");
  age(root + "/new", std::chrono::seconds(100));
  age(root + "/cur", std::chrono::seconds(50));
  auto clock = later_clock();
  MaildirOptions o;
  o.clock = &clock;
  Maildir md(root, std::move(o));

  auto u = md.usage();
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->bytes, 600u);
  EXPECT_EQ(u->count, 3u);
  std::string cache = root + "/petrel-usage";
  EXPECT_EQ(read_file(cache), "600 3\n");
  auto cur_mtime = mtime_of(root + "/cur");
  auto cache_mtime = mtime_of(cache);
  EXPECT_EQ(cache_mtime.tv_sec, cur_mtime.tv_sec);  // stamped with the newest directory mtime
  EXPECT_EQ(cache_mtime.tv_nsec, cur_mtime.tv_nsec);

  // The cache is what answers while the directories are unchanged (a forged value shows it).
  write_file(cache, "12345 6\n");
  set_mtime(cache, cache_mtime);
  u = md.usage();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->bytes, 12345u);

  // An IMAP client expunges a message from cur/: the count is made again.
  std::filesystem::remove(root + "/cur/2.M1P1Q2.h,S=200:2,S");
  u = md.usage();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->bytes, 400u);
  EXPECT_EQ(u->count, 2u);
}

TEST(UsageTest, CacheFollowsDeliveriesAndMovesToCur) {
  TempDir dir;
  std::string root = dir.path();
  make_dirs(root);
  age(root + "/new", std::chrono::seconds(100));
  age(root + "/cur", std::chrono::seconds(100));
  auto clock = later_clock();
  MaildirOptions o;
  o.clock = &clock;
  Maildir md(root, std::move(o));
  ASSERT_EQ(md.usage()->bytes, 0u);
  EXPECT_EQ(read_file(root + "/petrel-usage"), "0 0\n");

  auto r = md.deliver({kHeaders, string_source("hello"), 5, 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto u = md.usage();
  EXPECT_EQ(u->bytes, r->size);
  EXPECT_EQ(u->count, 1u);

  // A reader moves it to cur/ with flags: same size, now counted from cur/.
  std::filesystem::rename(r->path, root + "/cur/" + r->name + ":2,S");
  u = md.usage();
  EXPECT_EQ(u->bytes, r->size);
  EXPECT_EQ(u->count, 1u);
}

TEST(UsageTest, RacySnapshotIsNotCached) {
  TempDir dir;
  std::string root = dir.path();
  make_dirs(root);
  write_file(root + "/new/1.h,S=10", "");  // new/ changed just now; real clock
  Maildir md(root);
  ASSERT_EQ(md.usage()->bytes, 10u);
  EXPECT_FALSE(std::filesystem::exists(root + "/petrel-usage"));
}

TEST(UsageTest, MalformedCacheIsIgnored) {
  for (std::string junk : {"", "12", "12 3", "x 3\n", "12  3\n", "-1 3\n", "1 2 3\n", "99999999999999999999999 1\n"}) {
    SCOPED_TRACE(junk);
    TempDir dir;
    std::string root = dir.path();
    make_dirs(root);
    write_file(root + "/new/1.h,S=10", "");
    age(root + "/new", std::chrono::seconds(100));
    age(root + "/cur", std::chrono::seconds(100));
    write_file(root + "/petrel-usage", junk);
    set_mtime(root + "/petrel-usage", mtime_of(root + "/new"));
    Maildir md(root);
    auto u = md.usage();
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->bytes, 10u);
    EXPECT_EQ(u->count, 1u);
  }
}

TEST(QuotaTest, UnderAndAtQuotaDelivers) {
  TempDir dir;
  make_dirs(dir.path());
  write_file(dir.path() + "/cur/1.h,S=1000:2,S", "");
  Maildir md(dir.path());
  std::string body(100, 'b');
  std::uint64_t size = kHeaders.size() + body.size();
  auto r = md.deliver({kHeaders, string_source(body), body.size(), 1000 + size + 1});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // Now usage is 1000 + size; exactly filling the quota is allowed.
  r = md.deliver({kHeaders, string_source(body), body.size(), 1000 + 2 * size});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(list_dir(dir.path() + "/new").size(), 2u);
}

TEST(QuotaTest, OverQuotaIsTemporary422AndLeavesNothing) {
  for (bool size_known : {true, false}) {
    SCOPED_TRACE(size_known ? "size known" : "size found while writing");
    TempDir dir;
    make_dirs(dir.path());
    write_file(dir.path() + "/cur/1.h,S=1000:2,S", "");
    int writes = 0;
    MaildirOptions o;
    o.io.write = [&](int fd, const void* b, std::size_t n) {
      ++writes;
      return ::write(fd, b, n);
    };
    Maildir md(dir.path(), std::move(o));
    std::string body(100, 'b');
    DeliveryFailure why = DeliveryFailure::kNone;
    std::optional<std::uint64_t> expected;
    if (size_known) expected = body.size();
    auto r = md.deliver({kHeaders, string_source(body), expected, 1000 + kHeaders.size() + body.size() - 1}, &why);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().temporary());
    EXPECT_EQ(r.error().message.rfind("4.2.2 mailbox full", 0), 0u) << r.error().message;
    EXPECT_EQ(why, DeliveryFailure::kOverQuota);
    EXPECT_EQ(writes, size_known ? 0 : 1);  // a known size costs no writing
    EXPECT_TRUE(list_dir(dir.path() + "/tmp").empty());
    EXPECT_TRUE(list_dir(dir.path() + "/new").empty());
  }
}

TEST(QuotaTest, FreeingSpaceInCurLetsMailIn) {
  TempDir dir;
  std::string root = dir.path();
  make_dirs(root);
  write_file(root + "/cur/1.h,S=1000:2,S", "");
  age(root + "/new", std::chrono::seconds(100));
  age(root + "/cur", std::chrono::seconds(100));
  auto clock = later_clock();
  MaildirOptions o;
  o.clock = &clock;
  Maildir md(root, std::move(o));
  DeliveryFailure why = DeliveryFailure::kNone;
  ASSERT_FALSE(md.deliver({kHeaders, string_source("x"), 1, 1000}, &why).has_value());
  EXPECT_EQ(why, DeliveryFailure::kOverQuota);
  EXPECT_EQ(read_file(root + "/petrel-usage"), "1000 1\n");
  std::filesystem::remove(root + "/cur/1.h,S=1000:2,S");
  auto r = md.deliver({kHeaders, string_source("x"), 1, 1000}, &why);
  ASSERT_TRUE(r.has_value()) << r.error().message;
}

}  // namespace
}  // namespace petrel::mailbox
