// The Intake: round trips, spilling, group commit, failure atomicity, free space.
#include "queue/intake_impl.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "queue/spool_test_util.h"

namespace petrel::queue {
namespace {

using testing::commit_and_wait;
using testing::expect_same;
using testing::put_message;
using testing::sample_envelope;
using testing::TempDir;

class IntakeTest : public testing::QuietLogs {
 protected:
  void SetUp() override {
    QuietLogs::SetUp();
    io_.fdatasync = [this](int fd) {
      ++syncs_;
      if (fail_syncs_ > 0) {
        --fail_syncs_;
        errno = EIO;
        return -1;
      }
      return ::fdatasync(fd);
    };
  }

  void open() {
    intake_.reset();
    spool_.reset();
    auto s = Spool::open(dir_.path(), config_, Spool::Mode::kWritable, io_);
    ASSERT_TRUE(s) << s.error().message;
    spool_ = std::move(s).value();
    auto i = IntakeImpl::create(*spool_, clock_);
    ASSERT_TRUE(i) << i.error().message;
    intake_ = std::move(i).value();
  }

  std::vector<StoredMessage> reopen_and_list() {
    open();
    std::vector<StoredMessage> v;
    EXPECT_TRUE(spool_->for_each_message([&](const StoredMessage& m) { v.push_back(m); }));
    return v;
  }

  std::string body_of(const StoredMessage& m) {
    std::string b;
    auto s = spool_->read_body(m, b);
    EXPECT_TRUE(s) << s.error().message;
    return b;
  }

  TempDir dir_;
  config::QueueConfig config_;
  base::FakeClock clock_;
  SpoolIo io_;
  std::atomic<int> syncs_{0};
  std::atomic<int> fail_syncs_{0};
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<IntakeImpl> intake_;
};

TEST_F(IntakeTest, EnvelopesAndBodiesRoundTrip) {
  open();
  mail::Envelope odd = sample_envelope(1000);
  odd.sender = {std::string("n\0l", 3), "\xe4\xbe\x8b.jp"};
  odd.helo = "evil\r\nRCPT TO:<x@y>\r\n";
  odd.smtputf8 = true;
  std::vector<std::pair<mail::Envelope, std::string>> cases = {
      {sample_envelope(), "Subject: hi\r\n\r\nbody\r\n"},
      {odd, std::string("bin\0ary\r\n.\r\n", 12)},
      {sample_envelope(0), ""},
  };
  std::vector<std::string> ids;
  for (auto& [e, b] : cases) ids.push_back(put_message(*intake_, e, b, 3));

  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(msgs[i].id, ids[i]);
    expect_same(cases[i].first, msgs[i].envelope);
    EXPECT_EQ(msgs[i].body.kind, format::BodyKind::kInline);
    EXPECT_EQ(body_of(msgs[i]), cases[i].second);
  }
}

TEST_F(IntakeTest, EnvelopeAmendedBeforeCommitIsWhatIsStored) {
  open();
  auto w = intake_->begin(sample_envelope());
  ASSERT_TRUE(w);
  (*w)->envelope().auth_user = "late";
  ASSERT_TRUE((*w)->append("x"));
  ASSERT_TRUE(commit_and_wait(**w));
  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].envelope.auth_user, "late");
}

TEST_F(IntakeTest, LargeBodySpillsWithBoundedMemory) {
  config_.memory_per_message = 64 << 10;
  open();
  auto w = intake_->begin(sample_envelope());
  ASSERT_TRUE(w);
  std::string spill = spool_->spill_path((*w)->id());
  std::string chunk(4096, '\0');
  std::uint32_t crc = 0;
  const std::uint64_t total = 5ULL << 20;
  for (std::uint64_t sent = 0; sent < total; sent += chunk.size()) {
    for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((sent + i) * 31 % 251);
    ASSERT_TRUE((*w)->append(chunk));
    crc = format::crc32(crc, chunk);
    // What is not yet in the file is in memory: never more than the limit.
    std::uint64_t on_disk = std::filesystem::exists(spill) ? std::filesystem::file_size(spill) : 0;
    ASSERT_LE((sent + chunk.size()) - on_disk, config_.memory_per_message) << sent;
  }
  EXPECT_EQ((*w)->size(), total);
  ASSERT_TRUE(commit_and_wait(**w));
  EXPECT_EQ(std::filesystem::file_size(spill), total);

  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].body.kind, format::BodyKind::kSpill);
  EXPECT_EQ(msgs[0].body.length, total);
  EXPECT_EQ(msgs[0].body.crc, crc);
  std::string body = body_of(msgs[0]);
  ASSERT_EQ(body.size(), total);
  EXPECT_EQ(format::crc32(0, body), crc);
}

TEST_F(IntakeTest, AbortLeavesNothing) {
  config_.memory_per_message = 10;
  open();
  std::string spill;
  {
    auto w = intake_->begin(sample_envelope());
    ASSERT_TRUE(w);
    spill = spool_->spill_path((*w)->id());
    ASSERT_TRUE((*w)->append(std::string(100, 'x')));
    EXPECT_TRUE(std::filesystem::exists(spill));
    (*w)->abort();
    EXPECT_FALSE(std::filesystem::exists(spill));
    EXPECT_FALSE((*w)->append("more"));
  }
  {
    // Dropped without commit or abort: the same.
    auto w = intake_->begin(sample_envelope());
    ASSERT_TRUE(w);
    spill = spool_->spill_path((*w)->id());
    ASSERT_TRUE((*w)->append(std::string(100, 'x')));
  }
  EXPECT_FALSE(std::filesystem::exists(spill));
  EXPECT_TRUE(reopen_and_list().empty());
}

TEST_F(IntakeTest, AbortAfterSuccessfulCommitKeepsTheMessage) {
  config_.memory_per_message = 10;
  open();
  auto w = intake_->begin(sample_envelope());
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->append(std::string(100, 'x')));
  ASSERT_TRUE(commit_and_wait(**w));
  (*w)->abort();
  EXPECT_FALSE(commit_and_wait(**w)) << "a second commit fails";
  w = base::Result<MessageWriterPtr>(MessageWriterPtr());
  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(body_of(msgs[0]), std::string(100, 'x'));
}

TEST_F(IntakeTest, ConcurrentCommitsShareSyncs) {
  config_.memory_per_message = 2048;
  open();
  constexpr int kThreads = 20, kEach = 25;
  syncs_ = 0;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // Every fifth message spills, so spill syncs are part of the batches too.
        std::string body = "Subject: " + std::to_string(t) + "/" + std::to_string(i) + "\r\n\r\n" +
                           std::string(i % 5 == 0 ? 4000 : 1000, 'b');
        if (put_message(*intake_, sample_envelope(), body, 512).empty()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  const int messages = kThreads * kEach;
  auto stats = intake_->stats();
  EXPECT_EQ(stats.messages, static_cast<std::uint64_t>(messages));
  // Spill files need one sync each; the segment syncs are what group commit shares.
  int spills = kThreads * ((kEach + 4) / 5);
  int segment_syncs = syncs_.load() - spills;
  EXPECT_LT(segment_syncs, messages / 4) << "batches=" << stats.batches;

  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), static_cast<std::size_t>(messages));
  for (const auto& m : msgs) EXPECT_TRUE(spool_->read_body(m, *std::make_unique<std::string>()));
}

TEST_F(IntakeTest, FailedSegmentSyncFailsTheBatchAndLeavesNoTrace) {
  open();
  ASSERT_FALSE(put_message(*intake_, sample_envelope(), "first").empty());
  std::string seg = spool_->segment_path(1);
  auto size_before = std::filesystem::file_size(seg);

  // An inline message whose segment sync fails.
  fail_syncs_ = 1;
  auto w2 = intake_->begin(sample_envelope());
  ASSERT_TRUE(w2);
  ASSERT_TRUE((*w2)->append("doomed"));
  auto st = commit_and_wait(**w2);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().temporary());
  EXPECT_EQ(std::filesystem::file_size(seg), size_before) << "the failed batch was cut off";
  EXPECT_EQ(intake_->stats().failed_batches, 1u);

  // Later commits work, and only they and the first survive a restart.
  ASSERT_FALSE(put_message(*intake_, sample_envelope(), "after").empty());
  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(body_of(msgs[0]), "first");
  EXPECT_EQ(body_of(msgs[1]), "after");
  EXPECT_EQ(spool_->recovery().corrupt_regions + spool_->recovery().torn_tail_bytes, 0u);
}

TEST_F(IntakeTest, FailedSpillSyncFailsTheBatchAndRemovesTheSpill) {
  config_.memory_per_message = 10;
  open();
  auto w = intake_->begin(sample_envelope());
  ASSERT_TRUE(w);
  std::string spill = spool_->spill_path((*w)->id());
  ASSERT_TRUE((*w)->append(std::string(100, 'y')));
  fail_syncs_ = 1;
  EXPECT_FALSE(commit_and_wait(**w));
  EXPECT_FALSE(std::filesystem::exists(spill));
  (*w)->abort();  // allowed after a failed commit

  ASSERT_FALSE(put_message(*intake_, sample_envelope(), std::string(100, 'z')).empty());
  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(body_of(msgs[0]), std::string(100, 'z'));
}

TEST_F(IntakeTest, WhenTheUndoAlsoFailsANewSegmentIsUsed) {
  open();
  ASSERT_FALSE(put_message(*intake_, sample_envelope(), "first").empty());
  fail_syncs_ = 2;  // the batch's sync, then the sync after ftruncate
  auto w = intake_->begin(sample_envelope());
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->append("doomed"));
  EXPECT_FALSE(commit_and_wait(**w));
  ASSERT_FALSE(put_message(*intake_, sample_envelope(), "after").empty());
  EXPECT_TRUE(std::filesystem::exists(spool_->segment_path(2)));

  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(body_of(msgs[0]), "first");
  EXPECT_EQ(body_of(msgs[1]), "after");
}

TEST_F(IntakeTest, SegmentsRollOverAndStayInOrder) {
  config_.segment_size = 4096;
  open();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(put_message(*intake_, sample_envelope(), std::string(1024, 'a' + i)));
  EXPECT_GE(intake_->stats().segments_created, 5u);
  auto msgs = reopen_and_list();
  ASSERT_EQ(msgs.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(msgs[i].id, ids[i]);
    EXPECT_EQ(body_of(msgs[i]), std::string(1024, 'a' + i));
  }
  // And appending continues in the last segment after a restart.
  ASSERT_FALSE(put_message(*intake_, sample_envelope(), "more").empty());
  EXPECT_EQ(reopen_and_list().size(), 21u);
}

TEST_F(IntakeTest, FreeSpaceIsCachedForOneSecond) {
  int calls = 0;
  std::uint64_t free_blocks = 1000;
  io_.statvfs = [&](const char*, struct statvfs* st) {
    ++calls;
    *st = {};
    st->f_frsize = 4096;
    st->f_bavail = free_blocks;
    return 0;
  };
  config_.min_free_space = 1000 * 4096;
  open();
  EXPECT_TRUE(intake_->has_free_space());
  free_blocks = 999;
  EXPECT_TRUE(intake_->has_free_space()) << "cached";
  EXPECT_EQ(calls, 1);
  clock_.advance(std::chrono::milliseconds(999));
  EXPECT_TRUE(intake_->has_free_space());
  clock_.advance(std::chrono::milliseconds(1));
  EXPECT_FALSE(intake_->has_free_space());
  EXPECT_EQ(calls, 2);
}

// Not a test: `queue_test --gtest_also_run_disabled_tests --gtest_filter=*Throughput*`, with
// PETREL_TEST_DIR on the disk to measure.
TEST_F(IntakeTest, DISABLED_Throughput) {
  open();
  constexpr int kThreads = 20;
  const auto duration = std::chrono::seconds(5);
  std::atomic<bool> stop{false};
  std::atomic<int> count{0};
  std::string body(1024, 'x');
  syncs_ = 0;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        if (!put_message(*intake_, sample_envelope(1), body).empty()) ++count;
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto stats = intake_->stats();
  std::printf("throughput: %d messages in %.2f s = %.0f commits/s; %d fdatasyncs (%.3f per message); %llu batches\n",
              count.load(), secs, count / secs, syncs_.load(), double(syncs_) / count,
              static_cast<unsigned long long>(stats.batches));
}

// ---- recipient states and the commit listener ----

RecipientState deferred_state(const std::string& id, std::uint32_t rcpt) {
  RecipientState st;
  st.id = id;
  st.recipient = rcpt;
  st.status = RecipientStatus::kDeferred;
  st.attempts = 1;
  st.next_attempt = 1767225900;
  st.enhanced = "4.2.2";
  st.text = "mailbox full";
  return st;
}

base::Status record_and_wait(StateSink& sink, std::vector<RecipientState> states) {
  std::promise<base::Status> p;
  auto f = p.get_future();
  sink.record_states(std::move(states), [&p](base::Status s) { p.set_value(std::move(s)); });
  return f.get();
}

TEST_F(IntakeTest, StatesAreDurableAndInterleavedWithMessages) {
  open();
  std::string a = put_message(*intake_, sample_envelope(), "one");
  ASSERT_TRUE(record_and_wait(*intake_, {deferred_state(a, 0), deferred_state(a, 1)}));
  std::string b = put_message(*intake_, sample_envelope(), "two");
  auto done = deferred_state(a, 0);
  done.status = RecipientStatus::kDelivered;
  done.next_attempt = 0;
  ASSERT_TRUE(record_and_wait(*intake_, {done}));
  EXPECT_EQ(intake_->stats().states, 3u);
  ASSERT_TRUE(record_and_wait(*intake_, {}));  // nothing to write: done at once

  open();
  std::vector<std::string> order;
  ASSERT_TRUE(spool_->for_each_record([&](const StoredMessage& m) { order.push_back("M" + m.id); },
                                      [&](const RecipientState& st, std::uint64_t seg) {
                                        EXPECT_EQ(seg, 1u);
                                        order.push_back("S" + std::to_string(st.recipient) + st.id);
                                      }));
  EXPECT_EQ(order, (std::vector<std::string>{"M" + a, "S0" + a, "S1" + a, "M" + b, "S0" + a}));
  EXPECT_EQ(spool_->recovery().states, 3u);
}

TEST_F(IntakeTest, StatesShareTheGroupCommitWithMessages) {
  // The first batch's sync blocks until the test lets it go; meanwhile a message and a
  // state set are submitted, and must travel together in the next batch (one sync).
  std::promise<void> entered, release;
  auto release_f = release.get_future().share();
  std::atomic<bool> first{false};
  io_.fdatasync = [&](int fd) {
    if (first.exchange(false)) {
      entered.set_value();
      release_f.wait();
    }
    ++syncs_;
    return ::fdatasync(fd);
  };
  open();
  std::string a = put_message(*intake_, sample_envelope(), "one");  // creates the segment
  first = true;
  entered = {};
  auto syncs_before = intake_->stats().data_syncs;
  auto batches_before = intake_->stats().batches;

  auto w1 = intake_->begin(sample_envelope());
  ASSERT_TRUE(w1);
  ASSERT_TRUE((*w1)->append("blocker"));
  std::promise<base::Status> p1;
  (*w1)->commit([&](base::Status s) { p1.set_value(s); });
  entered.get_future().wait();

  auto w2 = intake_->begin(sample_envelope());
  ASSERT_TRUE(w2);
  ASSERT_TRUE((*w2)->append("rides along"));
  std::promise<base::Status> p2, p3;
  (*w2)->commit([&](base::Status s) { p2.set_value(s); });
  intake_->record_states({deferred_state(a, 0)}, [&](base::Status s) { p3.set_value(s); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both are queued by now
  release.set_value();
  EXPECT_TRUE(p1.get_future().get());
  EXPECT_TRUE(p2.get_future().get());
  EXPECT_TRUE(p3.get_future().get());
  EXPECT_EQ(intake_->stats().batches - batches_before, 2u);
  EXPECT_EQ(intake_->stats().data_syncs - syncs_before, 2u) << "one sync for the message and the state";
}

TEST_F(IntakeTest, FailedStateCommitLeavesNoTrace) {
  open();
  std::string a = put_message(*intake_, sample_envelope(), "one");
  auto size_before = std::filesystem::file_size(spool_->segment_path(1));
  fail_syncs_ = 1;
  auto st = record_and_wait(*intake_, {deferred_state(a, 0)});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().temporary());
  EXPECT_EQ(std::filesystem::file_size(spool_->segment_path(1)), size_before);
  ASSERT_TRUE(record_and_wait(*intake_, {deferred_state(a, 1)}));
  open();
  EXPECT_EQ(spool_->recovery().states, 1u);
  EXPECT_EQ(spool_->recovery().messages, 1u);
}

TEST_F(IntakeTest, CommitListenerHearsOfDurableMessagesWithTheirLocation) {
  config_.memory_per_message = 4096;
  open();
  std::mutex mu;
  std::vector<StoredMessage> heard;
  intake_->set_commit_listener([&](const StoredMessage& m) {
    std::lock_guard lk(mu);
    heard.push_back(m);
  });
  EXPECT_EQ(intake_->current_segment(), 0u);
  std::string small = put_message(*intake_, sample_envelope(3), "inline body");
  std::string large = put_message(*intake_, sample_envelope(1), std::string(10000, 'x'));
  EXPECT_EQ(intake_->current_segment(), 1u);
  intake_->set_commit_listener({});
  put_message(*intake_, sample_envelope(), "unheard");

  std::lock_guard lk(mu);
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0].id, small);
  EXPECT_EQ(heard[1].id, large);
  EXPECT_EQ(heard[1].body.kind, format::BodyKind::kSpill);
  std::vector<StoredMessage> on_disk;
  ASSERT_TRUE(spool_->for_each_message([&](const StoredMessage& m) { on_disk.push_back(m); }));
  ASSERT_EQ(on_disk.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    expect_same(heard[i].envelope, on_disk[i].envelope);
    EXPECT_EQ(heard[i].segment, on_disk[i].segment);
    EXPECT_EQ(heard[i].record_offset, on_disk[i].record_offset);
    EXPECT_EQ(heard[i].body_path, on_disk[i].body_path);
    EXPECT_EQ(heard[i].body_offset, on_disk[i].body_offset);
    std::string body;
    ASSERT_TRUE(spool_->read_body(heard[i], body));
    EXPECT_EQ(body, i == 0 ? "inline body" : std::string(10000, 'x'));
  }
}

}  // namespace
}  // namespace petrel::queue
