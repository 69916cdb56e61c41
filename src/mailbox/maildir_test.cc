// maildir_test.cc: the delivery procedure: content, layout, names, failures leave nothing.
#include "mailbox/maildir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "mailbox/maildir_test_util.h"

namespace petrel::mailbox {
namespace {

using testing::list_dir;
using testing::read_file;
using testing::string_source;
using testing::TempDir;

const std::string kHeaders = "Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.net\r\n";

std::string fd_path(int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
}

bool is_dir_fd(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

MaildirOptions fast_options() {
  MaildirOptions o;
  o.hostname = "mx.example.test";
  o.io.fsync = [](int) { return 0; };  // names, not durability, are under test there
  return o;
}

void make_dirs(const std::string& root) {
  for (const char* sub : {"/tmp", "/new", "/cur"}) std::filesystem::create_directories(root + sub);
}

struct ContentCase {
  const char* name;
  std::string body;
  std::size_t piece;
};

std::string all_bytes_but_nul() {
  std::string s;
  for (int round = 0; round < 3; ++round) {
    for (int c = 1; c < 256; ++c) s += static_cast<char>(c);
  }
  return s;
}

TEST(MaildirTest, DeliveredFileIsHeadersPlusBodyByteForByte) {
  const std::vector<ContentCase> cases = {
      {"empty body", "", 7},
      {"dot lines stay as given", ".\r\n..\r\n.leading dot\r\n..double\r\n.\r\n", 3},
      {"8-bit and every other non-NUL byte", "Subject: caf\xc3\xa9\r\n\r\n" + all_bytes_but_nul(), 100},
      {"bare LF and bare CR kept", "a\nb\rc\r\n\n\r", 1},
      {"one line of 1 MiB", std::string(1 << 20, 'x') + "\r\n", 4096},
      {"exactly 64 KiB minus the headers", std::string(64 * 1024 - kHeaders.size(), 'y'), 65536},
      {"exactly 64 KiB of body", std::string(64 * 1024, 'z'), 10000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    Maildir md(dir.path() + "/box");
    DeliveryFailure why = DeliveryFailure::kIo;
    auto r = md.deliver({kHeaders, string_source(c.body, c.piece), c.body.size(), 0}, &why);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(why, DeliveryFailure::kNone);
    EXPECT_EQ(read_file(r->path), kHeaders + c.body);
    EXPECT_EQ(r->size, kHeaders.size() + c.body.size());
    EXPECT_EQ(r->path, dir.path() + "/box/new/" + r->name);
  }
}

TEST(MaildirTest, FiveMegabytesStreamThroughABoundedBuffer) {
  TempDir dir;
  std::string body;
  for (int i = 0; body.size() < 5 * 1024 * 1024; ++i) body += "line " + std::to_string(i) + " of a large message\r\n";
  std::size_t writes = 0;
  std::size_t largest = 0;
  MaildirOptions o;
  o.io.write = [&](int fd, const void* b, std::size_t n) {
    ++writes;
    largest = std::max(largest, n);
    return ::write(fd, b, n);
  };
  Maildir md(dir.path(), std::move(o));
  auto r = md.deliver({kHeaders, string_source(body, 999), std::nullopt, 0});  // size unknown
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read_file(r->path), kHeaders + body);
  EXPECT_LE(largest, 64u * 1024);
  EXPECT_LE(writes, (kHeaders.size() + body.size()) / (64 * 1024) + 1);
}

TEST(MaildirTest, ShortWritesAreContinued) {
  TempDir dir;
  std::string body(300000, 'q');
  MaildirOptions o;
  o.io.write = [](int fd, const void* b, std::size_t n) { return ::write(fd, b, std::min<std::size_t>(n, 1000)); };
  Maildir md(dir.path(), std::move(o));
  auto r = md.deliver({kHeaders, string_source(body), body.size(), 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read_file(r->path), kHeaders + body);
}

// Maildir layout rules a reader (mutt, Dovecot) relies on.
TEST(MaildirTest, LayoutNamesAndModes) {
  TempDir dir;
  std::string root = dir.path() + "/mail/example.net/bob";
  MaildirOptions o;
  o.hostname = "mx/a:b,c";
  Maildir md(root, std::move(o));
  std::string body = "Subject: hi\r\n\r\nhello\r\n";
  auto r = md.deliver({kHeaders, string_source(body), body.size(), 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;

  for (const char* sub : {"", "/tmp", "/new", "/cur"}) {
    struct stat st;
    ASSERT_EQ(::stat((root + sub).c_str(), &st), 0) << sub;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0700u) << sub;
  }
  struct stat st;
  ASSERT_EQ(::stat(r->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), r->size);

  EXPECT_EQ(list_dir(root + "/new"), std::vector<std::string>{r->name});
  EXPECT_TRUE(list_dir(root + "/tmp").empty());
  EXPECT_TRUE(list_dir(root + "/cur").empty());
  EXPECT_EQ(r->name.find('/'), std::string::npos);
  EXPECT_EQ(r->name.find(':'), std::string::npos);  // no info part in new/, and none in the name
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r->name, m, std::regex(R"(^(\d+)\.M(\d+)P(\d+)Q(\d+)\.(.+),S=(\d+)$)"))) << r->name;
  EXPECT_EQ(m[3].str(), std::to_string(::getpid()));
  EXPECT_EQ(m[5].str(), "mx\\057a\\072b\\054c");
  EXPECT_EQ(std::stoull(m[6].str()), static_cast<std::uint64_t>(st.st_size));
  EXPECT_NEAR(std::stoll(m[1].str()), static_cast<long long>(::time(nullptr)), 5);
}

TEST(MaildirTest, CreatedDirectoriesAndTheirParentsAreSynced) {
  TempDir dir;
  std::string root = dir.path() + "/mail/example.net/bob";
  std::multiset<std::string> synced;
  MaildirOptions o;
  o.io.fsync = [&](int fd) {
    if (is_dir_fd(fd)) synced.insert(fd_path(fd));
    return ::fsync(fd);
  };
  Maildir md(root, std::move(o));
  auto r = md.deliver({kHeaders, string_source("x"), 1, 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  for (std::string p : {dir.path(), dir.path() + "/mail", dir.path() + "/mail/example.net", root, root + "/tmp",
                        root + "/new", root + "/cur"}) {
    EXPECT_TRUE(synced.count(p) > 0) << p;
  }
  // The second delivery creates nothing: only new/ is synced, after the rename.
  synced.clear();
  ASSERT_TRUE(md.deliver({kHeaders, string_source("y"), 1, 0}).has_value());
  EXPECT_EQ(synced, std::multiset<std::string>{root + "/new"});
}

TEST(MaildirTest, MailboxRemovedBehindOurBackIsCreatedAgain) {
  TempDir dir;
  Maildir md(dir.path() + "/box");
  ASSERT_TRUE(md.deliver({kHeaders, string_source("1"), 1, 0}).has_value());
  std::filesystem::remove_all(dir.path() + "/box");
  auto r = md.deliver({kHeaders, string_source("2"), 1, 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(read_file(r->path), kHeaders + "2");
}

TEST(MaildirTest, ThousandDeliveriesInALoopGetThousandNames) {
  TempDir dir;
  base::FakeClock clock;  // time stands still: only the counter tells names apart
  auto o = fast_options();
  o.clock = &clock;
  Maildir md(dir.path(), std::move(o));
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    auto r = md.deliver({kHeaders, string_source("m"), 1, 0});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    names.insert(r->name);
  }
  EXPECT_EQ(names.size(), 1000u);
  EXPECT_EQ(list_dir(dir.path() + "/new").size(), 1000u);
}

TEST(MaildirTest, FourThreadsAtOnceGetDistinctNames) {
  TempDir dir;
  base::FakeClock clock;
  auto o = fast_options();
  o.clock = &clock;
  Maildir shared(dir.path(), o);
  std::vector<std::vector<std::string>> names(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Two threads share one Maildir, two have their own for the same directory.
      Maildir own(dir.path(), o);
      const Maildir& md = t < 2 ? shared : own;
      for (int i = 0; i < 250; ++i) {
        auto r = md.deliver({kHeaders, string_source("t"), 1, 0});
        if (r) names[t].push_back(r->name);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : names) {
    EXPECT_EQ(v.size(), 250u);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(list_dir(dir.path() + "/new").size(), 1000u);
  EXPECT_TRUE(list_dir(dir.path() + "/tmp").empty());
}

// Concurrent deliveries into one mailbox share the fsync of new/: every file is durable
// before its delivery returns (a sync began after its rename), with fewer syncs than files.
TEST(MaildirTest, ConcurrentDeliveriesShareTheSyncOfNew) {
  TempDir dir;
  std::atomic<int> dir_syncs{0};
  std::mutex mu;
  std::set<std::string> in_new_when_synced;  // what each new/ sync covered
  MaildirOptions o;
  o.io.fsync = [&](int fd) {
    if (is_dir_fd(fd) && fd_path(fd) == dir.path() + "/new") {
      ++dir_syncs;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow disk: others queue up
      std::lock_guard lk(mu);
      for (const auto& n : list_dir(dir.path() + "/new")) in_new_when_synced.insert(n);
      return 0;
    }
    return 0;
  };
  Maildir md(dir.path(), o);
  ASSERT_TRUE(md.deliver({kHeaders, string_source("warm"), 4, 0}).has_value());  // creates the dirs
  dir_syncs = 0;
  std::vector<std::string> names[8];
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = md.deliver({kHeaders, string_source("c"), 1, 0});
        ASSERT_TRUE(r.has_value()) << r.error().message;
        std::lock_guard lk(mu);
        // Durable before it returns: some sync of new/ ran after this file was there.
        EXPECT_TRUE(in_new_when_synced.count(r->name)) << r->name;
        names[t].push_back(r->name);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(list_dir(dir.path() + "/new").size(), 201u);
  EXPECT_LT(dir_syncs.load(), 200) << "some syncs were shared";
  std::printf("[ syncs    ] 200 deliveries from 8 threads: %d syncs of new/\n", dir_syncs.load());
}

// A failed shared sync fails every delivery it was to cover: none is reported delivered.
TEST(MaildirTest, AFailedSharedSyncFailsEveryDeliveryItCovered) {
  TempDir dir;
  std::atomic<bool> fail{false};
  MaildirOptions o;
  o.io.fsync = [&](int fd) {
    if (fail && is_dir_fd(fd) && fd_path(fd) == dir.path() + "/new") {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      errno = EIO;
      return -1;
    }
    return 0;
  };
  Maildir md(dir.path(), o);
  ASSERT_TRUE(md.deliver({kHeaders, string_source("warm"), 4, 0}).has_value());
  fail = true;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) ok += md.deliver({kHeaders, string_source("f"), 1, 0}).has_value();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 0);
  EXPECT_EQ(list_dir(dir.path() + "/new").size(), 1u) << "every failed delivery took its file back";
}

TEST(MaildirTest, NameCollisionInTmpTakesTheNextName) {
  TempDir dir;
  make_dirs(dir.path());
  int opens = 0;
  MaildirOptions o;
  o.io.open = [&](const char* p, int f, mode_t m) {
    if ((f & O_EXCL) && ++opens == 1) {
      errno = EEXIST;
      return -1;
    }
    return ::open(p, f, m);
  };
  Maildir md(dir.path(), std::move(o));
  auto r = md.deliver({kHeaders, string_source("b"), 1, 0});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(opens, 2);
}

// Every failure after tmp/ was opened: an error, the right class, and nothing left behind.
struct FailureCase {
  const char* name;
  const char* syscall;  // which seam entry fails
  int err;
  DeliveryFailure expected;
};

TEST(MaildirTest, InjectedFailuresLeaveNoFile) {
  const std::vector<FailureCase> cases = {
      {"open tmp EACCES", "open", EACCES, DeliveryFailure::kIo},
      {"open tmp ENOSPC", "open", ENOSPC, DeliveryFailure::kDiskFull},
      {"write EIO", "write", EIO, DeliveryFailure::kIo},
      {"write ENOSPC", "write", ENOSPC, DeliveryFailure::kDiskFull},
      {"write EDQUOT", "write", EDQUOT, DeliveryFailure::kDiskFull},
      {"fsync file EIO", "fsync-file", EIO, DeliveryFailure::kIo},
      {"fsync file ENOSPC", "fsync-file", ENOSPC, DeliveryFailure::kDiskFull},
      {"rename EIO", "rename", EIO, DeliveryFailure::kIo},
      {"rename ENOSPC", "rename", ENOSPC, DeliveryFailure::kDiskFull},
      {"fsync new/ EIO", "fsync-dir", EIO, DeliveryFailure::kIo},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    make_dirs(dir.path());
    std::string which = c.syscall;
    MaildirOptions o;
    o.io.open = [&](const char* p, int f, mode_t m) {
      if (which == "open" && (f & O_CREAT)) {
        errno = c.err;
        return -1;
      }
      return ::open(p, f, m);
    };
    o.io.write = [&](int fd, const void* b, std::size_t n) -> ssize_t {
      if (which == "write") {
        errno = c.err;
        return -1;
      }
      return ::write(fd, b, n);
    };
    o.io.fsync = [&](int fd) {
      if (which == (is_dir_fd(fd) ? "fsync-dir" : "fsync-file")) {
        errno = c.err;
        return -1;
      }
      return ::fsync(fd);
    };
    o.io.rename = [&](const char* f, const char* t) {
      if (which == "rename") {
        errno = c.err;
        return -1;
      }
      return ::rename(f, t);
    };
    Maildir md(dir.path(), std::move(o));
    std::string body(200000, 'b');  // more than one buffer
    DeliveryFailure why = DeliveryFailure::kNone;
    auto r = md.deliver({kHeaders, string_source(body), body.size(), 0}, &why);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().temporary());
    EXPECT_EQ(why, c.expected) << failure_name(why);
    EXPECT_NE(r.error().message.find(std::strerror(c.err)), std::string::npos) << r.error().message;
    EXPECT_TRUE(list_dir(dir.path() + "/tmp").empty());
    EXPECT_TRUE(list_dir(dir.path() + "/new").empty());
    EXPECT_TRUE(list_dir(dir.path() + "/cur").empty());
  }
}

TEST(MaildirTest, DiskFullWhileCreatingTheMailboxIsFlagged) {
  TempDir dir;
  MaildirOptions o;
  o.io.mkdir = [](const char*, mode_t) {
    errno = ENOSPC;
    return -1;
  };
  Maildir md(dir.path() + "/box", std::move(o));
  DeliveryFailure why = DeliveryFailure::kNone;
  auto r = md.deliver({kHeaders, string_source("x"), 1, 0}, &why);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().temporary());
  EXPECT_EQ(why, DeliveryFailure::kDiskFull);
  EXPECT_EQ(failure_name(why), "disk full");
}

TEST(MaildirTest, BodySourceErrorsAndWrongSizesLeaveNoFile) {
  struct Case {
    const char* name;
    std::string body;
    std::optional<std::uint64_t> expected;
    bool source_fails;
    bool permanent;
  };
  const std::vector<Case> cases = {
      {"source error passes through", std::string(100000, 'e'), std::nullopt, true, true},
      {"body shorter than expected", "short", 10, false, false},
      {"body longer than expected", std::string(200000, 'l'), 100, false, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    Maildir md(dir.path());
    BodySource source = string_source(c.body, 4096);
    if (c.source_fails) {
      int calls = 0;
      source = [inner = source, calls](char* buf, std::size_t len) mutable -> base::Result<std::size_t> {
        if (++calls == 20) return base::permanent_error("spool body CRC mismatch");
        return inner(buf, len);
      };
    }
    DeliveryFailure why = DeliveryFailure::kNone;
    auto r = md.deliver({kHeaders, source, c.expected, 0}, &why);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().temporary(), !c.permanent) << r.error().message;
    EXPECT_EQ(why, DeliveryFailure::kIo);
    EXPECT_TRUE(list_dir(dir.path() + "/tmp").empty());
    EXPECT_TRUE(list_dir(dir.path() + "/new").empty());
  }
}

TEST(MaildirTest, MissingBodySourceIsPermanent) {
  TempDir dir;
  Maildir md(dir.path());
  DeliveryFailure why = DeliveryFailure::kNone;
  auto r = md.deliver({kHeaders, nullptr, std::nullopt, 0}, &why);
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(r.error().temporary());
  EXPECT_EQ(why, DeliveryFailure::kBadInput);
}

}  // namespace
}  // namespace petrel::mailbox
