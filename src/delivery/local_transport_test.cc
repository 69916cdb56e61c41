// LocalTransport over a real spool, a real accounts database and real Maildirs: exact bytes,
// aliases, catch-alls, subaddresses, unknown users, remote targets, loops, storage failures,
// parallel jobs and shutdown.
#include "delivery/local_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "auth/account_store.h"
#include "auth/directory_impl.h"
#include "auth/password.h"
#include "base/clock.h"
#include "base/log.h"
#include "queue/intake_impl.h"
#include "queue/spool_test_util.h"

namespace petrel::delivery {
namespace {

namespace fs = std::filesystem;
using queue::RecipientResult;
using queue::testing::put_message;
using queue::testing::read_file;
using queue::testing::TempDir;
using queue::testing::write_file;
using Outcome = RecipientResult::Outcome;

const char* name(Outcome o) {
  switch (o) {
    case Outcome::kDelivered: return "delivered";
    case Outcome::kDeferred: return "deferred";
    case Outcome::kFailed: return "failed";
  }
  return "?";
}

// A message with a proper header section, so the loop check has something to read.
std::string message(std::string_view extra_headers, std::string_view text) {
  return "From: Sender <sender@example.org>\r\nSubject: test\r\n" + std::string(extra_headers) + "\r\n" +
         std::string(text);
}

class LocalTransportTest : public queue::testing::QuietLogs {
 protected:
  void SetUp() override {
    QuietLogs::SetUp();
    data_ = dir_.path();
    auto spool = queue::Spool::open(data_, queue_config_, queue::Spool::Mode::kWritable);
    ASSERT_TRUE(spool) << spool.error().message;
    spool_ = std::move(spool).value();
    auto intake = queue::IntakeImpl::create(*spool_, clock_);
    ASSERT_TRUE(intake) << intake.error().message;
    intake_ = std::move(intake).value();

    auth::AccountStoreOptions store_options;
    store_options.password_cost = auth::kTestPasswordCost;
    auto store = auth::AccountStore::open(auth::database_path(data_), store_options);
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->add_domain("example.test"));
    ASSERT_TRUE(store_->add_domain("catchall.test"));
    ASSERT_TRUE(store_->add_user("alice@example.test", "pw"));
    ASSERT_TRUE(store_->add_user("bob@example.test", "pw"));
    ASSERT_TRUE(store_->add_alias("team@example.test", "alice@example.test"));
    ASSERT_TRUE(store_->add_alias("team@example.test", "bob@example.test"));
    ASSERT_TRUE(store_->add_alias("outside@example.test", "someone@remote.test"));
    ASSERT_TRUE(store_->add_alias("half@example.test", "alice@example.test"));
    ASSERT_TRUE(store_->add_alias("half@example.test", "someone@remote.test"));
    ASSERT_TRUE(store_->add_alias("dangling@example.test", "alice@example.test"));
    ASSERT_TRUE(store_->add_alias("dangling@example.test", "ghost@example.test"));
    ASSERT_TRUE(store_->set_catch_all("catchall.test", "alice@example.test"));
    auto directory = auth::DirectoryImpl::open(auth::database_path(data_), config::AccountsConfig{});
    ASSERT_TRUE(directory) << directory.error().message;
    directory_ = std::move(directory).value();

    options_.data_dir = data_;
    options_.maildir.hostname = "test.host";
  }

  void TearDown() override {
    transport_.reset();
    QuietLogs::TearDown();
  }

  LocalTransport& transport() {
    if (!transport_) transport_ = std::make_unique<LocalTransport>(*spool_, *directory_, options_);
    return *transport_;
  }

  // Commits a message with these recipients and returns it as the spool stored it.
  queue::StoredMessage store(const std::vector<std::string>& recipients, std::string_view body,
                             mail::Address sender = {"sender", "example.org"}) {
    mail::Envelope e;
    e.sender = std::move(sender);
    for (const auto& r : recipients) {
      auto a = mail::parse_address(r);
      EXPECT_TRUE(a) << r;
      e.recipients.push_back(mail::Recipient{*a, mail::kNotifyUnspecified, "", ""});
    }
    e.received_at = 1767225600;
    std::string id = put_message(*intake_, e, body, 64 * 1024);
    EXPECT_FALSE(id.empty());
    auto m = spool_->find(id);
    EXPECT_TRUE(m && m->has_value());
    return m && m->has_value() ? **m : queue::StoredMessage{};
  }

  // Delivers to the given recipient indexes (all when empty) and waits for `done`.
  std::vector<RecipientResult> deliver(const queue::StoredMessage& m, std::vector<std::uint32_t> indexes = {}) {
    if (indexes.empty()) {
      for (std::uint32_t i = 0; i < m.envelope.recipients.size(); ++i) indexes.push_back(i);
    }
    auto promise = std::make_shared<std::promise<std::vector<RecipientResult>>>();
    auto future = promise->get_future();
    transport().deliver(queue::DeliveryJob{m, indexes},
                        [promise](std::vector<RecipientResult> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "done was not called";
      return {};
    }
    return future.get();
  }

  std::string maildir(std::string_view local, std::string_view domain = "example.test") const {
    return data_ + "/mail/" + std::string(domain) + "/" + std::string(local);
  }

  // The files in <maildir>/new/, read whole.
  std::vector<std::string> mails(std::string_view local, std::string_view domain = "example.test") const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(maildir(local, domain) + "/new", ec)) {
      out.push_back(read_file(entry.path().string()));
    }
    return out;
  }

  static std::string headers(std::string_view to, std::string_view from = "sender@example.org") {
    return "Return-Path: <" + std::string(from) + ">\r\nDelivered-To: " + std::string(to) + "\r\n";
  }

  TempDir dir_;
  std::string data_;
  config::QueueConfig queue_config_;
  base::FakeClock clock_;
  std::unique_ptr<queue::Spool> spool_;
  std::unique_ptr<queue::IntakeImpl> intake_;
  std::unique_ptr<auth::AccountStore> store_;
  std::unique_ptr<auth::DirectoryImpl> directory_;
  LocalTransportOptions options_;
  std::unique_ptr<LocalTransport> transport_;
};

// Evaluates `result` once (it may be a deliver() call).
#define EXPECT_RESULT(result, want_index, want_outcome, want_prefix)                          \
  do {                                                                                       \
    const RecipientResult& r_ = (result);                                                    \
    EXPECT_EQ(r_.index, (want_index));                                                       \
    EXPECT_STREQ(name(r_.outcome), name(want_outcome)) << r_.why();                          \
    EXPECT_TRUE(r_.why().starts_with(want_prefix)) << r_.why();                              \
  } while (false)

TEST_F(LocalTransportTest, DeliversTheStoredBytesExactly) {
  // Leading dots (the spool holds them unstuffed), 8-bit text, a line far beyond 998 octets,
  // a bare CR and LF inside, and no final line end.
  std::string body = message("", ".\r\n..two dots\r\n.\r\nCaf\xc3\xa9 \xff\xfe\r\n" + std::string(20000, 'x') +
                                     "\r\nbare\rcr and bare\nlf\r\nno final newline");
  auto m = store({"alice@example.test"}, body);
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  auto files = mails("alice");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], headers("alice@example.test") + body);
  // Nothing is left in tmp/.
  EXPECT_TRUE(fs::is_empty(maildir("alice") + "/tmp"));
}

TEST_F(LocalTransportTest, StreamsALargeSpilledBody) {
  std::string body = message("", "");
  std::string line;
  for (int i = 0; body.size() < 2 * 1024 * 1024; ++i) {
    line = std::to_string(i) + " " + std::string(70, static_cast<char>('a' + i % 26)) + "\r\n";
    if (i % 100 == 0) line = "." + line;  // dot lines survive too
    body += line;
  }
  auto m = store({"alice@example.test"}, body);
  ASSERT_EQ(m.body.kind, queue::format::BodyKind::kSpill);
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  auto files = mails("alice");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0] == headers("alice@example.test") + body) << "sizes " << files[0].size() << " vs "
                                                                << headers("alice@example.test").size() + body.size();
}

TEST_F(LocalTransportTest, NullSenderGivesAnEmptyReturnPath) {
  std::string body = message("", "bounce text\r\n");
  auto m = store({"bob@example.test"}, body, mail::Address{});
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  auto files = mails("bob");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], "Return-Path: <>\r\nDelivered-To: bob@example.test\r\n" + body);
}

TEST_F(LocalTransportTest, AliasFansOutToEachMailbox) {
  std::string body = message("", "to the team\r\n");
  auto m = store({"team@example.test"}, body);
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  EXPECT_EQ(mails("alice"), std::vector<std::string>{headers("alice@example.test") + body});
  EXPECT_EQ(mails("bob"), std::vector<std::string>{headers("bob@example.test") + body});
}

TEST_F(LocalTransportTest, CatchAllAndSubaddressReachTheAccount) {
  std::string body = message("", "hello\r\n");
  auto m = store({"nobody@catchall.test", "Alice+news@Example.TEST"}, body);
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  EXPECT_RESULT(results[1], 1u, Outcome::kDelivered, "2.0.0");
  auto files = mails("alice");
  std::multiset<std::string> got(files.begin(), files.end());
  // Delivered-To names the address that reached the mailbox, as it was written.
  std::multiset<std::string> want = {headers("alice@example.test") + body, headers("Alice+news@Example.TEST") + body};
  EXPECT_EQ(got, want);
}

TEST_F(LocalTransportTest, UnknownUserFailsAndOthersStillDeliver) {
  std::string body = message("", "hi\r\n");
  auto m = store({"alice@example.test", "nobody@example.test", "bob@example.test"}, body);
  auto results = deliver(m, {2, 1});  // only some, in the caller's order
  ASSERT_EQ(results.size(), 2u);
  EXPECT_RESULT(results[0], 2u, Outcome::kDelivered, "2.0.0");
  EXPECT_RESULT(results[1], 1u, Outcome::kFailed, "5.1.1 ");
  EXPECT_EQ(mails("bob").size(), 1u);
  EXPECT_TRUE(mails("alice").empty());  // not asked for
}

TEST_F(LocalTransportTest, RemoteTargetsWaitWhenForwardingIsNotConfigured) {
  auto m = store({"someone@remote.test", "outside@example.test", "half@example.test"}, message("", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.4.3 forwarding is not configured");
  EXPECT_RESULT(results[1], 1u, Outcome::kDeferred, "4.4.3 ");
  // An alias to a mailbox and a remote address waits whole: the mailbox gets no copy that a
  // retry would then deliver again.
  EXPECT_RESULT(results[2], 2u, Outcome::kDeferred, "4.4.3 ");
  EXPECT_TRUE(mails("alice").empty());
  // Retrying does not add copies either.
  deliver(m);
  EXPECT_TRUE(mails("alice").empty());
}

TEST_F(LocalTransportTest, RemoteTargetsAreForwardedAsANewQueuedMessage) {
  options_.forward = intake_.get();
  std::string body = message("", "forward me\r\n");
  auto m = store({"half@example.test"}, body);
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  EXPECT_EQ(mails("alice").size(), 1u) << "the local half is delivered as usual";

  // The forwarded copy: in the queue, same sender, to the remote target, ORCPT = the alias.
  std::vector<queue::StoredMessage> copies;
  ASSERT_TRUE(spool_->for_each_record(
      [&](const queue::StoredMessage& x) {
        if (x.id != m.id) copies.push_back(x);
      },
      [](const queue::RecipientState&, std::uint64_t) {}));
  ASSERT_EQ(copies.size(), 1u);
  const mail::Envelope& e = copies[0].envelope;
  EXPECT_EQ(e.sender.str(), "sender@example.org");
  ASSERT_EQ(e.recipients.size(), 1u);
  EXPECT_EQ(e.recipients[0].address.str(), "someone@remote.test");
  EXPECT_EQ(e.recipients[0].orcpt_type, "rfc822");
  EXPECT_EQ(e.recipients[0].orcpt, "half@example.test");
  std::string copy;
  ASSERT_TRUE(spool_->read_body(copies[0], copy));
  EXPECT_EQ(copy, "Delivered-To: half@example.test\r\n" + body) << "the original bytes, one header prepended";

  // That copy coming back to the alias is a loop: it fails (5.4.6) instead of going round.
  auto again = store({"half@example.test"}, copy);
  auto looped = deliver(again);
  EXPECT_RESULT(looped[0], 0u, Outcome::kFailed, "5.4.6 ");
}

TEST_F(LocalTransportTest, DanglingAliasTargetDoesNotFailTheDeliveredPart) {
  auto m = store({"dangling@example.test"}, message("", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0 delivered to 1 of 2 targets; not delivered: 5.1.1");
  EXPECT_EQ(mails("alice").size(), 1u);
}

TEST_F(LocalTransportTest, MailLoopFailsWithoutWriting) {
  // Domain case does not matter; the local part is compared as the writer formats it.
  auto looping = store({"alice@example.test"}, message("Delivered-To: alice@EXAMPLE.test\r\n", "again\r\n"));
  // A folded field still counts.
  auto folded = store({"alice@example.test"}, message("Delivered-To:\r\n alice@example.test\r\n", "again\r\n"));
  for (const auto& m : {looping, folded}) {
    auto results = deliver(m);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_RESULT(results[0], 0u, Outcome::kFailed, "5.4.6 mail loop: already delivered to alice@example.test");
  }
  EXPECT_TRUE(mails("alice").empty());

  // Another mailbox's Delivered-To, or one in the body after the header section, is no loop.
  std::string other = message("Delivered-To: bob@example.test\r\n", "x\r\n");
  std::string in_body = message("", "Delivered-To: alice@example.test\r\n");
  auto m1 = store({"alice@example.test"}, other);
  auto m2 = store({"alice@example.test"}, in_body);
  for (const auto& m : {m1, m2}) {
    auto results = deliver(m);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  }
  auto files = mails("alice");
  std::multiset<std::string> got(files.begin(), files.end());
  EXPECT_EQ(got, (std::multiset<std::string>{headers("alice@example.test") + other,
                                             headers("alice@example.test") + in_body}));
}

TEST_F(LocalTransportTest, LoopThroughAnAliasFailsOnlyThatTarget) {
  // team → alice, bob; the message already went through alice's mailbox.
  auto m = store({"team@example.test"}, message("Delivered-To: alice@example.test\r\n", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0 delivered to 1 of 2 targets; not delivered: 5.4.6");
  EXPECT_TRUE(mails("alice").empty());
  EXPECT_EQ(mails("bob").size(), 1u);
}

TEST_F(LocalTransportTest, UnwritableMailboxDefers) {
  // A regular file where alice's Maildir should be: mkdir fails whatever our privileges.
  fs::create_directories(data_ + "/mail/example.test");
  write_file(maildir("alice"), "not a directory");
  auto m = store({"alice@example.test", "bob@example.test"}, message("", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.3.0 ");
  // The diagnostic is generic: no paths or errno text for the sender.
  EXPECT_EQ(results[0].why().find(data_), std::string::npos) << results[0].why();
  EXPECT_RESULT(results[1], 1u, Outcome::kDelivered, "2.0.0");
  EXPECT_EQ(read_file(maildir("alice")), "not a directory");
}

TEST_F(LocalTransportTest, DiskFullDefersWith431) {
  options_.maildir.io.write = [](int, const void*, std::size_t) -> ssize_t {
    errno = ENOSPC;
    return -1;
  };
  auto m = store({"alice@example.test"}, message("", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.3.1 mail system full");
  EXPECT_TRUE(mails("alice").empty());
  EXPECT_TRUE(fs::is_empty(maildir("alice") + "/tmp"));
}

// The account's quota reaches the Maildir: a message that would take the mailbox past it is
// deferred with 4.2.2 and not written; once the quota is raised (and the Directory refreshed,
// as the server does every second) the same message goes in. Other accounts are not affected.
TEST_F(LocalTransportTest, OverQuotaDefersWith422UntilTheQuotaIsRaised) {
  std::string body = message("", std::string(1000, 'q') + "\r\n");
  const std::size_t size = headers("alice@example.test").size() + body.size();
  // Room for two messages, not three.
  ASSERT_TRUE(store_->set_quota("alice@example.test", 2 * size + size / 2));
  ASSERT_TRUE(directory_->refresh());
  for (int i = 0; i < 2; ++i) {
    auto results = deliver(store({"alice@example.test"}, body));
    ASSERT_EQ(results.size(), 1u);
    EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  }
  auto third = store({"alice@example.test", "bob@example.test", "team@example.test"}, body);
  auto results = deliver(third);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.2.2 mailbox full");
  EXPECT_RESULT(results[1], 1u, Outcome::kDelivered, "2.0.0");  // bob has no quota
  // The alias defers whole because one of its mailboxes is full (bob gets a copy each try:
  // the per-recipient state rule in local_transport.h).
  EXPECT_RESULT(results[2], 2u, Outcome::kDeferred, "4.2.2 ");
  // The diagnostic holds no path.
  EXPECT_EQ(results[0].why().find(data_), std::string::npos) << results[0].why();
  EXPECT_EQ(mails("alice").size(), 2u);
  EXPECT_TRUE(fs::is_empty(maildir("alice") + "/tmp"));

  // Raised in the store: nothing changes until the Directory's snapshot does.
  ASSERT_TRUE(store_->set_quota("alice@example.test", 10 * size));
  results = deliver(third, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.2.2 ");
  ASSERT_TRUE(directory_->refresh());
  results = deliver(third, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  EXPECT_EQ(mails("alice"), std::vector<std::string>(3, headers("alice@example.test") + body));

  // Unlimited again (0).
  ASSERT_TRUE(store_->set_quota("alice@example.test", 3 * size));
  ASSERT_TRUE(directory_->refresh());
  results = deliver(third, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDeferred, "4.2.2 ");
  ASSERT_TRUE(store_->set_quota("alice@example.test", 0));
  ASSERT_TRUE(directory_->refresh());
  results = deliver(third, {0});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_RESULT(results[0], 0u, Outcome::kDelivered, "2.0.0");
  EXPECT_EQ(mails("alice").size(), 4u);
}

TEST_F(LocalTransportTest, ParallelJobsDeliverEachMessageExactlyOnce) {
  constexpr int kJobs = 50;
  std::vector<queue::StoredMessage> messages;
  std::set<std::string> bodies;
  for (int i = 0; i < kJobs; ++i) {
    std::string body = message("", "message " + std::to_string(i) + "\r\n" + std::string(i * 1000, 'z') + "\r\n");
    bodies.insert(headers("alice@example.test") + body);
    messages.push_back(store({"alice@example.test", "team@example.test"}, body));
  }
  std::mutex mutex;
  std::map<std::string, std::vector<RecipientResult>> results;
  std::promise<void> all_done;
  std::atomic<int> left{kJobs};
  // Submitted from several threads at once.
  transport();  // created before the threads race on it
  std::vector<std::thread> submitters;
  for (int t = 0; t < 5; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = t; i < kJobs; i += 5) {
        transport().deliver(queue::DeliveryJob{messages[i], {0}}, [&, id = messages[i].id](std::vector<RecipientResult> r) {
          {
            std::lock_guard lock(mutex);
            EXPECT_FALSE(results.contains(id)) << "done called twice for " << id;
            results[id] = std::move(r);
          }
          if (--left == 0) all_done.set_value();
        });
      }
    });
  }
  for (auto& s : submitters) s.join();
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(120)), std::future_status::ready);
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [id, r] : results) {
    ASSERT_EQ(r.size(), 1u) << id;
    EXPECT_RESULT(r[0], 0u, Outcome::kDelivered, "2.0.0");
  }
  auto files = mails("alice");
  EXPECT_EQ(files.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()), bodies);
  EXPECT_TRUE(mails("bob").empty());
}

TEST_F(LocalTransportTest, DestructorFinishesQueuedJobs) {
  options_.workers = 1;
  auto m = store({"bob@example.test"}, message("", "x\r\n"));
  std::atomic<int> calls{0};
  for (int i = 0; i < 10; ++i) {
    transport().deliver(queue::DeliveryJob{m, {0}}, [&calls](std::vector<RecipientResult> r) {
      EXPECT_EQ(r.size(), 1u);
      ++calls;
    });
  }
  transport_.reset();
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(mails("bob").size(), 10u);
}

TEST_F(LocalTransportTest, LogsOneLinePerTarget) {
  std::string log_path = data_ + "/test.log";
  ASSERT_TRUE(base::log::init(base::log::Level::kInfo, log_path));
  auto m = store({"team@example.test", "nobody@example.test", "\"x y\"@remote.test"}, message("", "x\r\n"));
  auto results = deliver(m);
  ASSERT_EQ(results.size(), 3u);
  transport_.reset();
  base::log::flush();
  std::string log = read_file(log_path);
  ASSERT_TRUE(base::log::init(base::log::Level::kError, ""));
  std::string prefix = "delivery.local id=" + m.id + " ";
  EXPECT_NE(log.find(prefix + "rcpt=\"team@example.test\" to=\"" + maildir("alice") +
                     "/\" result=delivered why=\"2.0.0 delivered (new/"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(prefix + "rcpt=\"team@example.test\" to=\"" + maildir("bob") + "/\" result=delivered"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(prefix + "rcpt=\"nobody@example.test\" to=\"nobody@example.test\" result=failed why=\"5.1.1 "),
            std::string::npos)
      << log;
  // Peer text is escaped: the quote cannot end the field early.
  EXPECT_NE(log.find("rcpt=\"\\x22x y\\x22@remote.test\" to=\"\\x22x y\\x22@remote.test\" result=deferred"),
            std::string::npos)
      << log;
  std::size_t lines = 0;
  for (std::size_t pos = 0; (pos = log.find("delivery.local ", pos)) != std::string::npos; ++pos) ++lines;
  EXPECT_EQ(lines, 4u) << log;
}

}  // namespace
}  // namespace petrel::delivery
