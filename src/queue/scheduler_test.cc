// The delivery scheduler: immediate delivery, per-recipient outcomes, the retry schedule,
// expiry, permanent failures, the concurrency limit, crash recovery, failed state commits,
// retiring segments, and the memory of a long queue. FakeClock and a fake Transport; the
// spool and the committer are the real ones, in a temp dir.
#include "queue/scheduler.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/ids.h"
#include "queue/intake_impl.h"
#include "queue/spool_test_util.h"

namespace petrel::queue {
namespace {

using namespace std::chrono_literals;
using testing::put_message;
using testing::sample_envelope;
using testing::TempDir;
using Outcome = RecipientResult::Outcome;

// Records every job; the test answers them when it likes.
class FakeTransport final : public Transport {
 public:
  struct Job {
    DeliveryJob job;
    std::function<void(std::vector<RecipientResult>)> done;
    bool answered = false;
  };

  void deliver(DeliveryJob job, std::function<void(std::vector<RecipientResult>)> done) override {
    std::lock_guard lk(mu_);
    jobs_.push_back({std::move(job), std::move(done)});
  }

  std::size_t count() {
    std::lock_guard lk(mu_);
    return jobs_.size();
  }
  mail::Reply deferred_reply = mail::reply(451, "4.2.2", "mailbox full");  // of kDeferred answers
  bool deferred_storage_trouble = false;                                  // of kDeferred answers
  RecipientResult::Handoff handoff = RecipientResult::Handoff::kFinal;  // of kDelivered answers
  // Lanes by the first recipient's domain, each `lane_limit` wide; 0: no lanes (the default).
  std::size_t lane_limit = 0;
  Lane lane(const DeliveryJob& job) const override {
    if (lane_limit == 0) return {};
    return {job.message.envelope.recipients.at(job.recipients.front()).address.domain_key(), lane_limit};
  }
  DeliveryJob job(std::size_t i) {
    std::lock_guard lk(mu_);
    return jobs_.at(i).job;
  }
  std::size_t unanswered() {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    for (auto& j : jobs_) n += !j.answered;
    return n;
  }
  // Answers job `i`: `outcome(index)` for each of its recipients.
  void answer(std::size_t i, const std::function<Outcome(std::uint32_t)>& outcome) {
    std::function<void(std::vector<RecipientResult>)> done;
    std::vector<RecipientResult> results;
    {
      std::lock_guard lk(mu_);
      Job& j = jobs_.at(i);
      EXPECT_FALSE(j.answered);
      j.answered = true;
      done = std::move(j.done);
      for (std::uint32_t r : j.job.recipients) {
        Outcome o = outcome(r);
        RecipientResult res = o == Outcome::kDelivered ? RecipientResult::local(r, o, "2.0.0", "ok")
                              : o == Outcome::kFailed  ? RecipientResult::local(r, o, "5.1.1", "no such user")
                                                       : RecipientResult::local(r, o, deferred_reply.enhanced,
                                                                                deferred_reply.text, deferred_storage_trouble);
        res.handoff = handoff;
        results.push_back(std::move(res));
      }
    }
    done(std::move(results));
  }
  void answer_all(std::size_t i, Outcome o) {
    answer(i, [o](std::uint32_t) { return o; });
  }

 private:
  std::mutex mu_;
  std::vector<Job> jobs_;
};

class SchedulerTest : public testing::QuietLogs {
 protected:
  void SetUp() override {
    QuietLogs::SetUp();
    io_.fdatasync = [this](int fd) {
      if (fail_syncs_ > 0) {
        --fail_syncs_;
        errno = EIO;
        return -1;
      }
      return ::fdatasync(fd);
    };
  }
  void TearDown() override {
    close();
    QuietLogs::TearDown();
  }

  // Opens (or reopens, as after a crash) the spool, the intake and a fresh scheduler.
  void open() {
    close();
    transport_ = std::make_unique<FakeTransport>();
    auto s = Spool::open(dir_.path(), config_, Spool::Mode::kWritable, io_);
    ASSERT_TRUE(s) << s.error().message;
    spool_ = std::move(s).value();
    auto i = IntakeImpl::create(*spool_, clock_);
    ASSERT_TRUE(i) << i.error().message;
    intake_ = std::move(i).value();
    sched_ = std::make_unique<Scheduler>(*spool_, *intake_, *transport_, clock_, sconfig_,
                                         notices_ ? intake_.get() : nullptr);
    auto l = sched_->load();
    ASSERT_TRUE(l) << l.error().message;
  }
  void close() {
    sched_.reset();
    intake_.reset();
    spool_.reset();
  }

  // Ticks until every state record submitted has been committed (or failed).
  void settle() {
    for (int i = 0; i < 10000; ++i) {
      sched_->tick();
      if (sched_->stats().recording == 0) return;
      std::this_thread::sleep_for(1ms);
    }
    FAIL() << "state records never committed";
  }

  std::string put(int recipients = 1, std::string_view body = "Subject: t\r\n\r\nhi\r\n") {
    auto e = sample_envelope(recipients);
    e.received_at = std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
    return put_message(*intake_, e, body);
  }

  // Eight messages over three or more 4 KiB segments, then closed, and the first record of
  // segment 1 damaged (the one after it stays readable).
  void eight_messages_first_one_damaged() {
    config_.segment_size = 4096;
    open();
    std::string body(1500, 'x');
    for (int i = 0; i < 8; ++i) put(1, body);
    auto before = spool_->list_segments();
    ASSERT_TRUE(before);
    ASSERT_GE(before->size(), 3u);
    close();
    std::string seg1 = dir_.path() + "/queue/log/0000000000000001.seg";
    std::string bytes = testing::read_file(seg1);
    bytes[format::kSegmentHeaderSize + 30] ^= 1;
    testing::write_file(seg1, bytes);
  }

  std::vector<RecipientState> states_on_disk() {
    std::vector<RecipientState> v;
    EXPECT_TRUE(spool_->for_each_record([](const StoredMessage&) {},
                                        [&](const RecipientState& st, std::uint64_t) { v.push_back(st); }));
    return v;
  }

  TempDir dir_;
  config::QueueConfig config_;
  SchedulerConfig sconfig_;
  bool notices_ = false;  // queue DSNs through the intake
  base::FakeClock clock_;
  SpoolIo io_;
  std::atomic<int> fail_syncs_{0};
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<IntakeImpl> intake_;
  std::unique_ptr<FakeTransport> transport_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTest, NewMessageIsDeliveredAtOnceAndRetired) {
  open();
  std::string id = put(2);
  ASSERT_FALSE(id.empty());
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  DeliveryJob job = transport_->job(0);
  EXPECT_EQ(job.message.id, id);
  EXPECT_EQ(job.recipients, (std::vector<std::uint32_t>{0, 1}));
  std::string body;
  ASSERT_TRUE(spool_->read_body(job.message, body));
  EXPECT_EQ(body, "Subject: t\r\n\r\nhi\r\n");
  EXPECT_EQ(sched_->stats().in_flight, 1u);

  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  auto st = sched_->stats();
  EXPECT_EQ(st.delivered, 2u);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.in_flight, 0u);
  auto disk = states_on_disk();
  ASSERT_EQ(disk.size(), 2u);
  for (const auto& s : disk) {
    EXPECT_EQ(s.id, id);
    EXPECT_EQ(s.status, RecipientStatus::kDelivered);
    EXPECT_EQ(s.attempts, 1u);
    EXPECT_EQ(s.enhanced, "2.0.0");
  }
  clock_.advance(24h);
  EXPECT_EQ(sched_->tick(), Scheduler::TimePoint::max());
  EXPECT_EQ(transport_->count(), 1u);
}

TEST_F(SchedulerTest, RecipientsAreIndependent) {
  open();
  put(3);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  transport_->answer(0, [](std::uint32_t i) { return i == 1 ? Outcome::kDeferred : Outcome::kDelivered; });
  settle();
  EXPECT_EQ(sched_->stats().delivered, 2u);
  EXPECT_EQ(sched_->stats().deferred, 1u);
  auto snap = sched_->snapshot();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].recipients[1].state, MessageSummary::State::kDeferred);
  EXPECT_EQ(snap[0].next_attempt, clock_.wall() + 5min);

  clock_.advance(5min - 1s);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u) << "not before its time";
  clock_.advance(1s);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  EXPECT_EQ(transport_->job(1).recipients, std::vector<std::uint32_t>{1}) << "delivered ones are not retried";
  transport_->answer_all(1, Outcome::kDelivered);
  settle();
  EXPECT_EQ(sched_->stats().pending, 0u);
}

TEST_F(SchedulerTest, BackoffDoublesFromRetryFirstUpToRetryMax) {
  open();
  put(1);
  std::vector<std::chrono::minutes> waits;
  sched_->tick();
  for (int attempt = 0; attempt < 6; ++attempt) {
    ASSERT_EQ(transport_->count(), static_cast<std::size_t>(attempt + 1));
    transport_->answer_all(attempt, Outcome::kDeferred);
    settle();
    // Step a minute at a time until the next attempt starts.
    int minutes = 0;
    while (transport_->count() == static_cast<std::size_t>(attempt + 1) && minutes < 200) {
      clock_.advance(1min);
      ++minutes;
      sched_->tick();
    }
    waits.emplace_back(minutes);
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::minutes>{5min, 10min, 20min, 40min, 60min, 60min}));
  auto disk = states_on_disk();
  ASSERT_EQ(disk.size(), 6u);
  EXPECT_EQ(disk.back().attempts, 6u);
  EXPECT_EQ(disk.back().status, RecipientStatus::kDeferred);
}

TEST_F(SchedulerTest, RecipientsExpireAfterTheLifetimeAndTheMessageIsRetired) {
  sconfig_.lifetime = 2h;
  sconfig_.retry_first = 3h;
  sconfig_.retry_max = 3h;
  open();
  std::string quiet = put(1);  // deferred once; its next attempt would come after its lifetime
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  std::string slow = put(1);  // still in flight when its lifetime ends
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);

  // Past the lifetime: `quiet` expires without another attempt; `slow` is answered with a
  // deferral, which is now an expiry.
  clock_.advance(2h + 1s);
  settle();
  EXPECT_EQ(transport_->count(), 2u);
  transport_->answer_all(1, Outcome::kDeferred);
  settle();
  auto st = sched_->stats();
  EXPECT_EQ(st.expired, 2u);
  EXPECT_EQ(st.pending, 0u);
  std::map<std::string, RecipientStatus> last;
  for (const auto& s : states_on_disk()) last[s.id] = s.status;
  EXPECT_EQ(last[quiet], RecipientStatus::kExpired);
  EXPECT_EQ(last[slow], RecipientStatus::kExpired);
  clock_.advance(10h);
  sched_->tick();
  EXPECT_EQ(transport_->unanswered(), 0u);
}

TEST_F(SchedulerTest, PermanentFailureIsFinal) {
  open();
  std::string id = put(2);
  sched_->tick();
  transport_->answer(0, [](std::uint32_t i) { return i == 0 ? Outcome::kFailed : Outcome::kDelivered; });
  settle();
  EXPECT_EQ(sched_->stats().failed, 1u);
  EXPECT_EQ(sched_->stats().pending, 0u);
  clock_.advance(6h);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u);
  auto disk = states_on_disk();
  ASSERT_EQ(disk.size(), 2u);
  EXPECT_EQ(disk[0].status, RecipientStatus::kFailed);
  EXPECT_EQ(disk[0].enhanced, "5.1.1");
  EXPECT_EQ(disk[0].text, "no such user");
}

TEST_F(SchedulerTest, ConcurrencyLimitIsRespected) {
  sconfig_.concurrency = 3;
  open();
  for (int i = 0; i < 10; ++i) put(1);
  EXPECT_EQ(sched_->tick(), Scheduler::TimePoint::max()) << "waiting for a slot, not for a time";
  EXPECT_EQ(transport_->count(), 3u);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 3u);
  EXPECT_EQ(sched_->stats().in_flight, 3u);
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  EXPECT_EQ(transport_->count(), 4u);
  EXPECT_EQ(sched_->stats().in_flight, 3u);
  for (std::size_t i = 1; i < 10; ++i) {
    transport_->answer_all(i, Outcome::kDelivered);
    settle();
    EXPECT_LE(sched_->stats().in_flight, 3u);
  }
  EXPECT_EQ(transport_->count(), 10u);
  EXPECT_EQ(sched_->stats().delivered, 10u);
}

TEST_F(SchedulerTest, AFullLaneWaitsWhileOtherLanesGoOn) {
  sconfig_.concurrency = 10;
  open();
  transport_->lane_limit = 2;
  auto to = [&](const std::string& domain) {
    auto e = sample_envelope(1);
    e.recipients[0].address = {"user", domain};
    e.received_at = std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
    return put_message(*intake_, e, "Subject: t\r\n\r\nhi\r\n");
  };
  // Five for a slow destination first, then two for another: the slow lane takes two slots,
  // the other destination's mail goes at once instead of waiting behind the slow five.
  for (int i = 0; i < 5; ++i) to("slow.example");
  to("fast.example");
  to("fast.example");
  sched_->tick();
  ASSERT_EQ(transport_->count(), 4u);
  std::map<std::string, int> started;
  for (std::size_t i = 0; i < 4; ++i) started[transport_->job(i).message.envelope.recipients[0].address.domain]++;
  EXPECT_EQ(started["slow.example"], 2);
  EXPECT_EQ(started["fast.example"], 2);
  EXPECT_EQ(sched_->stats().lane_waits, 3u);
  EXPECT_EQ(sched_->stats().in_flight, 4u);

  // Each slow job that ends lets the next slow one in, oldest first; never more than two.
  std::size_t answered = 0;
  for (int round = 0; round < 3; ++round) {
    while (answered < transport_->count() &&
           transport_->job(answered).message.envelope.recipients[0].address.domain != "slow.example") {
      transport_->answer_all(answered++, Outcome::kDelivered);
    }
    transport_->answer_all(answered++, Outcome::kDelivered);
    settle();
    std::size_t slow_in_flight = 0;
    for (std::size_t i = answered; i < transport_->count(); ++i) {
      slow_in_flight += transport_->job(i).message.envelope.recipients[0].address.domain == "slow.example";
    }
    EXPECT_LE(slow_in_flight, 2u) << "round " << round;
  }
  while (answered < transport_->count()) {
    transport_->answer_all(answered++, Outcome::kDelivered);
    settle();
  }
  EXPECT_EQ(transport_->count(), 7u);
  EXPECT_EQ(sched_->stats().delivered, 7u);
  EXPECT_EQ(sched_->stats().in_flight, 0u);
}

TEST_F(SchedulerTest, ReloadFromDiskKeepsEveryRecipientsState) {
  open();
  std::string a = put(2), b = put(2), c = put(1);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  transport_->answer(0, [](std::uint32_t i) { return i == 0 ? Outcome::kDelivered : Outcome::kDeferred; });
  transport_->answer_all(2, Outcome::kDelivered);
  settle();  // b's delivery is still in flight when we "crash"

  open();  // a new scheduler from what is on disk
  EXPECT_EQ(sched_->stats().pending, 2u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u) << "only b (never finished) is due at once";
  EXPECT_EQ(transport_->job(0).message.id, b);
  EXPECT_EQ(transport_->job(0).recipients, (std::vector<std::uint32_t>{0, 1}));
  auto snap = sched_->snapshot();
  auto it = std::find_if(snap.begin(), snap.end(), [&](const MessageSummary& m) { return m.id == a; });
  ASSERT_NE(it, snap.end());
  EXPECT_EQ(it->recipients[0].state, MessageSummary::State::kDelivered);
  EXPECT_EQ(it->recipients[1].state, MessageSummary::State::kDeferred);
  EXPECT_EQ(it->recipients[1].attempts, 1u);

  clock_.advance(5min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u) << "a's deferred recipient keeps its next attempt";
  EXPECT_EQ(transport_->job(1).message.id, a);
  EXPECT_EQ(transport_->job(1).recipients, std::vector<std::uint32_t>{1}) << "delivered ones never again";
  transport_->answer_all(0, Outcome::kDelivered);
  transport_->answer_all(1, Outcome::kDelivered);
  settle();
  EXPECT_EQ(sched_->stats().pending, 0u);
  (void)c;
}

TEST_F(SchedulerTest, AFailedRecordOfADeliveryIsWrittenAgainNotDeliveredAgain) {
  open();
  std::string id = put(1);
  sched_->tick();
  fail_syncs_ = 1;  // the batch holding the DELIVERED record (a full disk, say)
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  EXPECT_EQ(sched_->stats().state_failures, 1u);
  EXPECT_EQ(sched_->stats().pending, 1u);
  EXPECT_TRUE(states_on_disk().empty());

  // A few seconds later the record is written again; the message is not delivered twice.
  EXPECT_LE(sched_->tick(), clock_.wall() + 5s) << "the scheduler wakes up for the rewrite";
  clock_.advance(5s);
  sched_->tick();
  settle();
  EXPECT_EQ(transport_->count(), 1u);
  EXPECT_EQ(sched_->stats().pending, 0u);
  EXPECT_EQ(sched_->stats().delivered, 1u);
  ASSERT_EQ(states_on_disk().size(), 1u);
  EXPECT_EQ(states_on_disk()[0].status, RecipientStatus::kDelivered);
  open();
  EXPECT_EQ(sched_->stats().pending, 0u);
}

TEST_F(SchedulerTest, AFailedRecordOfADeferralKeepsTheRecipientPending) {
  open();
  put(1);
  sched_->tick();
  fail_syncs_ = 1;
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().state_failures, 1u);
  EXPECT_TRUE(states_on_disk().empty());
  // Tried again after retry_first, as the deferral said.
  clock_.advance(5min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  transport_->answer_all(1, Outcome::kDelivered);
  settle();
  EXPECT_EQ(sched_->stats().pending, 0u);
}

// Issue 11: stats() and snapshot() never wait for a tick that is on the disk. The tick that
// retires a segment syncs log/ (SpoolIo::fsync, on the ticking thread); while it is in there,
// another thread asks for both.
TEST_F(SchedulerTest, StatsAnswerWhileATickWaitsOnTheDisk) {
  config_.segment_size = 4096;  // a few messages per segment, so that some retire
  const std::thread::id ticking = std::this_thread::get_id();
  std::atomic<bool> armed{false};
  std::future<Scheduler::Stats> asked;
  std::future<std::vector<MessageSummary>> looked;
  bool answered = false, shown = false;
  io_.fsync = [&](int fd) {
    if (std::this_thread::get_id() == ticking && armed.exchange(false)) {
      asked = std::async(std::launch::async, [&] { return sched_->stats(); });
      answered = asked.wait_for(3s) == std::future_status::ready;
      looked = std::async(std::launch::async, [&] { return sched_->snapshot(); });
      shown = looked.wait_for(3s) == std::future_status::ready;
    }
    return ::fsync(fd);
  };
  open();
  std::string body(1500, 'x');
  for (int i = 0; i < 8; ++i) put(1, body);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 8u);
  for (std::size_t i = 0; i < 8; ++i) transport_->answer_all(i, Outcome::kDelivered);
  armed = true;
  settle();
  sched_->tick();
  EXPECT_FALSE(armed) << "no segment was retired: the test did not wait on the disk";
  EXPECT_TRUE(answered) << "stats() waited for the tick's disk I/O";
  EXPECT_TRUE(shown) << "snapshot() waited for the tick's disk I/O";
  if (asked.valid()) asked.get();
  if (looked.valid()) looked.get();
  EXPECT_GE(sched_->stats().retired_segments, 1u);
  close();
}

TEST_F(SchedulerTest, RetiringDeletesOldFinishedSegmentsOnly) {
  config_.segment_size = 4096;  // a few messages per segment
  open();
  std::string body(1500, 'x');
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(put(1, body));
  auto before = spool_->list_segments();
  ASSERT_TRUE(before);
  ASSERT_GE(before->size(), 3u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 8u);
  // The first message (oldest segment) is deferred; all the others are delivered.
  for (std::size_t i = 0; i < 8; ++i) {
    transport_->answer_all(i, transport_->job(i).message.id == ids[0] ? Outcome::kDeferred : Outcome::kDelivered);
  }
  settle();
  sched_->tick();
  EXPECT_EQ(*spool_->list_segments(), *before) << "segment 1 still holds a pending message";
  EXPECT_EQ(sched_->stats().retired_segments, 0u);

  clock_.advance(5min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 9u);
  transport_->answer_all(8, Outcome::kDelivered);
  settle();
  sched_->tick();
  auto after = spool_->list_segments();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, std::vector<std::uint64_t>{intake_->current_segment()}) << "all but the current one";
  EXPECT_GE(sched_->stats().retired_segments, before->size() - 1);

  // A restart after retiring: nothing pending, nothing delivered twice, new mail flows.
  open();
  EXPECT_EQ(sched_->stats().pending, 0u);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 0u);
  std::string fresh = put(1, body);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  EXPECT_EQ(transport_->job(0).message.id, fresh);
}

// Recovery copied the damage in segment 1 to quarantine/ (spool_test.cc): nothing keeps the
// segment any more, it is retired like the others.
TEST_F(SchedulerTest, AQuarantinedSegmentIsRetiredLikeAnyOther) {
  ASSERT_NO_FATAL_FAILURE(eight_messages_first_one_damaged());

  open();
  EXPECT_EQ(spool_->recovery().quarantined, 1u);
  EXPECT_TRUE(spool_->damaged_segments().empty());
  EXPECT_EQ(sched_->stats().pending, 7u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 7u);
  for (std::size_t i = 0; i < 7; ++i) transport_->answer_all(i, Outcome::kDelivered);
  settle();
  sched_->tick();
  auto after = spool_->list_segments();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, std::vector<std::uint64_t>{intake_->current_segment()});
}

// Damage recovery could not copy out (quarantine/ cannot be made) keeps its segment, the only
// copy, but does not block retiring the ones after it.
TEST_F(SchedulerTest, ADamagedSegmentIsKeptWhenItCouldNotBeQuarantined) {
  ASSERT_NO_FATAL_FAILURE(eight_messages_first_one_damaged());
  testing::write_file(dir_.path() + "/queue/quarantine", "in the way");

  open();
  EXPECT_EQ(spool_->damaged_segments(), std::set<std::uint64_t>{1});
  EXPECT_EQ(sched_->stats().pending, 7u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 7u);
  for (std::size_t i = 0; i < 7; ++i) transport_->answer_all(i, Outcome::kDelivered);
  settle();
  sched_->tick();
  auto after = spool_->list_segments();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, (std::vector<std::uint64_t>{1, intake_->current_segment()}));
}

TEST_F(SchedulerTest, AMessageThatCannotBeReadBackIsDeferred) {
  open();
  put(1, "Subject: t\r\n\r\nbody\r\n");
  // Damage the record behind the scheduler's back, before its first delivery.
  std::string seg1 = dir_.path() + "/queue/log/0000000000000001.seg";
  std::string bytes = testing::read_file(seg1);
  bytes[bytes.size() - 3] ^= 1;
  testing::write_file(seg1, bytes);
  sched_->tick();
  settle();
  EXPECT_EQ(transport_->count(), 0u);
  EXPECT_EQ(sched_->stats().deferred, 1u);
  auto disk = states_on_disk();
  ASSERT_EQ(disk.size(), 1u);
  EXPECT_EQ(disk[0].status, RecipientStatus::kDeferred);
  EXPECT_EQ(disk[0].enhanced, "4.3.0");
}

TEST_F(SchedulerTest, RunThreadDeliversWithoutTicksFromTheTest) {
  open();
  sched_->start();
  put(1);
  for (int i = 0; i < 2000 && transport_->count() == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(transport_->count(), 1u);
  transport_->answer_all(0, Outcome::kDelivered);
  for (int i = 0; i < 2000 && sched_->stats().delivered == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(sched_->stats().delivered, 1u);
  sched_->stop();
}

long rss_kib() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long size = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// A figure for README and a bound: `messages` tiny pending messages (1 KiB bodies), written
// straight into segments of 64 MiB, then load() timed and its memory measured. The window
// (active_limit) caps what is in memory whatever the queue length.
void write_long_queue(const std::string& dir, int messages, base::Clock& clock) {
  std::filesystem::create_directories(dir + "/queue/log");
  auto e = sample_envelope(1);
  std::string body(1024, 'x');
  std::uint32_t crc = format::crc32(0, body);
  std::string seg, payload;
  std::uint64_t seq = 1;
  auto flush = [&] {
    char name[32];
    std::snprintf(name, sizeof name, "%016llu.seg", static_cast<unsigned long long>(seq++));
    testing::write_file(dir + "/queue/log/" + name, seg);
    seg.clear();
  };
  for (int i = 0; i < messages; ++i) {
    if (seg.empty()) {
      auto h = format::encode_segment_header({seq, 42});
      seg.append(h.data(), h.size());
    }
    std::string id = base::new_queue_id(clock.wall());
    ASSERT_TRUE(format::encode_message(id, e, {format::BodyKind::kInline, body.size(), crc}, body, payload));
    format::encode_record(42, format::RecordType::kMessage, payload, seg);
    if (seg.size() >= (64u << 20)) flush();
  }
  if (!seg.empty()) flush();
}

TEST_F(SchedulerTest, MemoryAndLoadTimeOfALongQueue) {
  // PETREL_LONG_QUEUE=1000000 for the figure (about 1.1 GB of spool on disk).
  const char* env = std::getenv("PETREL_LONG_QUEUE");
  const int messages = env ? std::atoi(env) : 100000;
  sconfig_.active_limit = 20000;
  config_.segment_size = 64u << 20;
  write_long_queue(dir_.path(), messages, clock_);
  long rss_before = rss_kib();
  auto t0 = std::chrono::steady_clock::now();
  open();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  long rss_after = rss_kib();
  ASSERT_EQ(sched_->stats().pending, 20000u) << "the window is full, the rest waits on disk";
  std::size_t bytes = sched_->memory_bytes();
  std::printf("[ memory   ] %d pending messages, window %zu: load %lld ms (spool open + scan), in memory %zu bytes "
              "(%zu per message in the window), RSS +%ld KiB\n",
              messages, sconfig_.active_limit, static_cast<long long>(ms), bytes, bytes / sconfig_.active_limit,
              rss_after - rss_before);
  EXPECT_LT(bytes / sconfig_.active_limit, 400u);
  EXPECT_LT(bytes, 400u * sconfig_.active_limit) << "bounded by the window, not the queue";
}

// ---- notices (DSN) ----

class NoticeTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    notices_ = true;
    sconfig_.hostname = "mx.example.org";
  }
  std::string put_env(mail::Envelope e, std::string_view body = "Subject: t\r\n\r\nhi\r\n") {
    e.received_at = std::chrono::duration_cast<std::chrono::seconds>(clock_.wall().time_since_epoch()).count();
    return put_message(*intake_, e, body);
  }
  // Every message in the spool, in log order, and where each state record sits among them.
  std::vector<std::string> log_order() {
    std::vector<std::string> v;
    EXPECT_TRUE(spool_->for_each_record([&](const StoredMessage& m) { v.push_back("msg " + m.id); },
                                        [&](const RecipientState& st, std::uint64_t) {
                                          v.push_back("state " + st.id + " " + std::to_string(static_cast<int>(st.status)));
                                        }));
    return v;
  }
  std::string body_of(const DeliveryJob& job) {
    std::string body;
    EXPECT_TRUE(spool_->read_body(job.message, body));
    return body;
  }
};

TEST_F(NoticeTest, AFailureQueuesOneBounceToTheSenderBeforeItsFinalState) {
  open();
  std::string id = put(2);
  sched_->tick();
  transport_->answer(0, [](std::uint32_t i) { return i == 0 ? Outcome::kFailed : Outcome::kDelivered; });
  settle();
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_EQ(sched_->stats().failed, 1u);
  EXPECT_EQ(sched_->stats().delivered, 1u);

  // The DSN is a new message, delivered like any other: from <>, to the original sender.
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  DeliveryJob dsn = transport_->job(1);
  EXPECT_TRUE(dsn.message.envelope.sender.null());
  ASSERT_EQ(dsn.message.envelope.recipients.size(), 1u);
  EXPECT_EQ(dsn.message.envelope.recipients[0].address.local, "alice");
  EXPECT_EQ(dsn.message.envelope.recipients[0].address.domain, "example.org");
  std::string body = body_of(dsn);
  EXPECT_NE(body.find("multipart/report"), std::string::npos);
  EXPECT_NE(body.find("Reporting-MTA: dns; mx.example.org"), std::string::npos);
  EXPECT_NE(body.find("Final-Recipient: rfc822; user0@example.net"), std::string::npos);
  EXPECT_NE(body.find("Action: failed"), std::string::npos);
  EXPECT_NE(body.find("Status: 5.1.1"), std::string::npos);
  EXPECT_EQ(body.find("user1@example.net"), std::string::npos) << "the delivered recipient is not reported";

  // On disk: the DSN is durable before the FAILED record that ends its recipient.
  auto order = log_order();
  auto dsn_at = std::find(order.begin(), order.end(), "msg " + dsn.message.id);
  auto failed_at = std::find(order.begin(), order.end(), "state " + id + " 3");
  ASSERT_NE(dsn_at, order.end());
  ASSERT_NE(failed_at, order.end());
  EXPECT_LT(dsn_at, failed_at);

  // A DSN that fails in its turn is not answered by another (from <>).
  transport_->answer_all(1, Outcome::kFailed);
  settle();
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_EQ(sched_->stats().pending, 0u);
}

TEST_F(NoticeTest, NoNoticeForTheNullSenderNorForNotifyNever) {
  open();
  auto from_null = sample_envelope(1);
  from_null.sender = mail::Address{};
  put_env(from_null);
  auto never = sample_envelope(1);
  never.recipients[0].notify = mail::kNotifyNever;
  put_env(never);
  auto delay_only = sample_envelope(1);
  delay_only.recipients[0].notify = mail::kNotifyDelay;
  put_env(delay_only);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  for (std::size_t i = 0; i < 3; ++i) transport_->answer_all(i, Outcome::kFailed);
  settle();
  sched_->tick();
  EXPECT_EQ(sched_->stats().failed, 3u);
  EXPECT_EQ(sched_->stats().notices, 0u);
  EXPECT_EQ(transport_->count(), 3u) << "no DSN was queued";
}

TEST_F(NoticeTest, ExpiryBouncesWithTheExpiryStatus) {
  sconfig_.lifetime = 2h;
  open();
  auto e = sample_envelope(1);
  e.recipients[0].notify = mail::kNotifyUnspecified;  // RFC 3461 4.1: FAILURE by default
  put_env(e);
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  // The retry was due before the lifetime ended (the clock jumped past both): it is still
  // made once, and its deferral is the expiry.
  clock_.advance(2h + 1s);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  transport_->answer_all(1, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().expired, 1u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  std::string body = body_of(transport_->job(2));
  EXPECT_NE(body.find("Action: failed"), std::string::npos);
  EXPECT_NE(body.find("4.4.7"), std::string::npos);
}

TEST_F(NoticeTest, NotifySuccessGivesADeliveredReport) {
  open();
  auto e = sample_envelope(1);
  e.recipients[0].notify = mail::kNotifySuccess;
  e.envid = "env-42";
  put_env(e);
  sched_->tick();
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  std::string body = body_of(transport_->job(1));
  EXPECT_NE(body.find("Action: delivered"), std::string::npos);
  EXPECT_NE(body.find("Original-Envelope-Id: env-42"), std::string::npos);
}

TEST_F(NoticeTest, ANextHopWithoutDsnGetsARelayedReport) {
  open();
  auto e = sample_envelope(1);
  e.recipients[0].notify = mail::kNotifySuccess;
  put_env(e);
  sched_->tick();
  transport_->handoff = RecipientResult::Handoff::kRelayed;
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  std::string body = body_of(transport_->job(1));
  EXPECT_NE(body.find("Action: relayed"), std::string::npos) << body;
  EXPECT_EQ(body.find("Action: delivered"), std::string::npos) << body;
}

TEST_F(NoticeTest, ANextHopThatTookTheDsnRequestReportsSuccessItself) {
  open();
  auto e = sample_envelope(1);
  e.recipients[0].notify = mail::kNotifySuccess;
  put_env(e);
  sched_->tick();
  transport_->handoff = RecipientResult::Handoff::kPassedOn;
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u) << "no success notice of our own";
  EXPECT_EQ(sched_->stats().notices, 0u);
  EXPECT_EQ(sched_->stats().delivered, 1u);
}

TEST_F(NoticeTest, OneDelayWarningAfterTheDelayTimeAndNeverASecondOneEvenAfterARestart) {
  sconfig_.retry_first = 30min;
  sconfig_.retry_max = 30min;
  sconfig_.delay_warning = 1h;
  sconfig_.lifetime = 10h;
  open();
  std::string id = put(2);  // NOTIFY=FAILURE,DELAY for both
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);  // t = 0: too early to warn
  settle();
  clock_.advance(30min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  transport_->answer_all(1, Outcome::kDeferred);  // t = 30 min: still too early
  settle();
  EXPECT_EQ(sched_->stats().notices, 0u);

  clock_.advance(30min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  transport_->answer_all(2, Outcome::kDeferred);  // t = 1 h: the warning
  settle();
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_EQ(sched_->stats().delay_notices, 1u);
  EXPECT_EQ(sched_->stats().pending, 2u) << "the original stays queued beside its warning";
  sched_->tick();
  ASSERT_EQ(transport_->count(), 4u);
  DeliveryJob warning = transport_->job(3);
  EXPECT_TRUE(warning.message.envelope.sender.null());
  EXPECT_EQ(warning.message.envelope.recipients.at(0).address.str(), "alice@example.org");
  std::string body = body_of(warning);
  EXPECT_NE(body.find("Action: delayed"), std::string::npos);
  EXPECT_NE(body.find("Status: 4.2.2"), std::string::npos);
  EXPECT_NE(body.find("Will-Retry-Until:"), std::string::npos);
  EXPECT_NE(body.find("Final-Recipient: rfc822; user1@example.net"), std::string::npos);
  EXPECT_EQ(body.find("Action: failed"), std::string::npos);
  transport_->answer_all(3, Outcome::kDelivered);
  settle();

  // The flag is on disk, with the DEFERRED records written after the warning was queued.
  bool flagged = false;
  for (const auto& st : states_on_disk()) {
    if (st.id == id && st.status == RecipientStatus::kDeferred) flagged |= (st.flags & format::kStateFlagDelayNotified) != 0;
  }
  EXPECT_TRUE(flagged);

  // Later deferrals, before and after a restart, warn no more.
  clock_.advance(30min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 5u);
  transport_->answer_all(4, Outcome::kDeferred);
  settle();
  open();
  clock_.advance(30min);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u) << "the restarted scheduler's transport sees the original again";
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  sched_->tick();
  EXPECT_EQ(sched_->stats().notices, 0u);
  EXPECT_EQ(transport_->count(), 1u) << "no second warning";
}

TEST_F(NoticeTest, DelayWarningsOnlyForThoseWhoAskAndNeverForTheNullSender) {
  sconfig_.delay_warning = 1h;
  sconfig_.retry_first = 2h;
  sconfig_.retry_max = 2h;
  open();
  auto e = sample_envelope(4);
  e.recipients[0].notify = mail::kNotifyFailure;       // no
  e.recipients[1].notify = mail::kNotifyNever;         // no
  e.recipients[2].notify = mail::kNotifyUnspecified;   // yes (Postfix warns by default too)
  e.recipients[3].notify = mail::kNotifyDelay;         // yes
  put_env(e);
  auto from_null = sample_envelope(1);
  from_null.sender = mail::Address{};
  put_env(from_null);
  auto failure_only = sample_envelope(1);
  failure_only.recipients[0].notify = mail::kNotifyFailure;
  put_env(failure_only);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  for (std::size_t i = 0; i < 3; ++i) transport_->answer_all(i, Outcome::kDeferred);
  settle();
  clock_.advance(2h);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 6u);
  for (std::size_t i = 3; i < 6; ++i) transport_->answer_all(i, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().delay_notices, 1u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 7u);
  std::string body = body_of(transport_->job(6));
  EXPECT_EQ(body.find("user0@example.net"), std::string::npos);
  EXPECT_EQ(body.find("user1@example.net"), std::string::npos);
  EXPECT_NE(body.find("Final-Recipient: rfc822; user2@example.net"), std::string::npos);
  EXPECT_NE(body.find("Final-Recipient: rfc822; user3@example.net"), std::string::npos);
}

TEST_F(NoticeTest, ADoubleBounceGoesToThePostmasterOnceAndItsOwnFailureIsDropped) {
  sconfig_.double_bounce_to = "postmaster@example.org";
  open();
  auto bounce = sample_envelope(1);
  bounce.sender = mail::Address{};  // a bounce (ours or someone else's) that cannot be delivered
  put_env(bounce);
  sched_->tick();
  transport_->answer_all(0, Outcome::kFailed);
  settle();
  EXPECT_EQ(sched_->stats().notices, 1u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  DeliveryJob dbl = transport_->job(1);
  EXPECT_EQ(dbl.message.envelope.sender.str(), "double-bounce@mx.example.org");
  ASSERT_EQ(dbl.message.envelope.recipients.size(), 1u);
  EXPECT_EQ(dbl.message.envelope.recipients[0].address.str(), "postmaster@example.org");
  std::string body = body_of(dbl);
  EXPECT_NE(body.find("To: <postmaster@example.org>"), std::string::npos);
  EXPECT_NE(body.find("Final-Recipient: rfc822; user0@example.net"), std::string::npos);
  EXPECT_NE(body.find("Action: failed"), std::string::npos);

  // The postmaster's copy fails too: logged and dropped, no third message, nothing pending.
  transport_->answer_all(1, Outcome::kFailed);
  settle();
  sched_->tick();
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_EQ(transport_->count(), 2u);
  EXPECT_EQ(sched_->stats().pending, 0u);
}

TEST_F(NoticeTest, ABounceThatCannotBeQueuedKeepsItsRecipientPending) {
  open();
  put(2);
  sched_->tick();
  fail_syncs_ = 1;  // the DSN's batch fails
  transport_->answer(0, [](std::uint32_t i) { return i == 0 ? Outcome::kFailed : Outcome::kDelivered; });
  settle();
  auto st = sched_->stats();
  EXPECT_EQ(st.notice_failures, 1u);
  EXPECT_EQ(st.failed, 0u) << "not final without its bounce";
  EXPECT_EQ(st.delivered, 1u) << "the delivered recipient is recorded anyway";
  EXPECT_EQ(st.pending, 1u);
  clock_.advance(sconfig_.retry_first);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u) << "tried again";
  EXPECT_EQ(transport_->job(1).recipients, std::vector<std::uint32_t>{0});
  transport_->answer_all(1, Outcome::kFailed);
  settle();
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_EQ(sched_->stats().pending, 1u) << "only the DSN itself is left";
}

TEST_F(NoticeTest, ADamagedBodyIsQuarantinedAndBouncedWithoutTheOriginal) {
  config_.memory_per_message = 4096;  // so the body spills to its own file
  open();
  std::string id = put(1, "Subject: big\r\n\r\n" + std::string(20000, 'x') + "\r\n");
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  std::filesystem::resize_file(spool_->spill_path(id), 100);  // the disk lost part of it
  transport_->deferred_reply = mail::reply(451, "4.3.0", "local delivery failed");
  transport_->deferred_storage_trouble = true;
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().failed, 1u) << "not retried for five days";
  EXPECT_EQ(sched_->stats().notices, 1u);
  EXPECT_TRUE(std::filesystem::exists(spool_->quarantine_dir() + "/" + id + ".record"));
  EXPECT_TRUE(std::filesystem::exists(spool_->quarantine_dir() + "/" + id + ".body"));
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  std::string dsn = body_of(transport_->job(1));
  EXPECT_NE(dsn.find("Status: 5.3.0"), std::string::npos) << dsn;
  EXPECT_EQ(dsn.find("xxxxxxxxxx"), std::string::npos) << "the damaged original is not quoted";

  // A local error with a whole body is just a deferral.
  std::string whole = put(1);
  sched_->tick();
  transport_->answer_all(2, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().failed, 1u);
  EXPECT_EQ(sched_->stats().deferred, 1u);
  EXPECT_FALSE(std::filesystem::exists(spool_->quarantine_dir() + "/" + whole + ".record"));
}

// Issue 11: the body check follows the transport's typed flag, not the text of the answer. A
// next hop's "451 4.3.0" is its own trouble: the queued body is not checked, nor quarantined.
TEST_F(NoticeTest, ANextHopsOwn430IsNotStorageTroubleHere) {
  config_.memory_per_message = 4096;
  open();
  std::string id = put(1, "Subject: big\r\n\r\n" + std::string(20000, 'x') + "\r\n");
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  std::filesystem::resize_file(spool_->spill_path(id), 100);  // damaged, but nobody says so
  transport_->deferred_reply = mail::reply(451, "4.3.0", "mail system error at the next hop");
  transport_->deferred_storage_trouble = false;
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  EXPECT_EQ(sched_->stats().failed, 0u);
  EXPECT_EQ(sched_->stats().deferred, 1u);
  EXPECT_FALSE(std::filesystem::exists(spool_->quarantine_dir() + "/" + id + ".record"));
}

// ---- operator commands ----

class ControlTest : public SchedulerTest {
 protected:
  ControlResult control(ControlRequest::Op op, const std::string& id) {
    std::optional<ControlResult> got;
    sched_->control({op, id}, [&](ControlResult r) { got = std::move(r); });
    for (int i = 0; i < 10000 && !got; ++i) {
      sched_->tick();
      if (!got) std::this_thread::sleep_for(1ms);
    }
    EXPECT_TRUE(got.has_value()) << "no answer";
    return got.value_or(ControlResult{});
  }
  RecipientStatus last_state(const std::string& id) {
    RecipientStatus last{};
    for (const auto& s : states_on_disk()) {
      if (s.id == id) last = s.status;
    }
    return last;
  }
};

TEST_F(ControlTest, AMessageWaitingForItsLaneCanBeHeldAndReleased) {
  open();
  transport_->lane_limit = 1;
  put(1);
  std::string second = put(1);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  EXPECT_EQ(sched_->stats().lane_waits, 1u);
  // The waiting one is held: the lane's next free slot does not start it.
  EXPECT_TRUE(control(ControlRequest::Op::kHold, second).status);
  transport_->answer_all(0, Outcome::kDelivered);
  settle();
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u) << "held mail waits";
  auto rel = control(ControlRequest::Op::kRelease, second);
  EXPECT_TRUE(rel.status);
  EXPECT_EQ(rel.recipients, 1u);
  clock_.advance(1s);  // a release is due within the second
  sched_->tick();
  ASSERT_EQ(transport_->count(), 2u);
  EXPECT_EQ(transport_->job(1).message.id, second);
}


TEST_F(ControlTest, HoldStopsDeliveryAndExpiryUntilRelease) {
  sconfig_.lifetime = 2h;
  open();
  std::string id = put(1);
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);
  settle();

  auto r = control(ControlRequest::Op::kHold, id);
  ASSERT_TRUE(r.status) << r.status.error().message;
  EXPECT_EQ(r.messages, 1u);
  EXPECT_EQ(r.recipients, 1u);
  EXPECT_EQ(last_state(id), RecipientStatus::kHeld);
  clock_.advance(3h);  // past its retry and its lifetime
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u) << "held: not tried";
  EXPECT_EQ(sched_->stats().expired, 0u) << "held: not expired";

  // The hold survives a restart.
  open();
  clock_.advance(1h);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 0u);
  ASSERT_EQ(sched_->snapshot().size(), 1u);
  EXPECT_EQ(sched_->snapshot()[0].recipients[0].state, MessageSummary::State::kHeld);

  r = control(ControlRequest::Op::kRelease, id);
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.recipients, 1u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u) << "released: due at once";
}

TEST_F(ControlTest, DeleteEndsEveryRecipientWithoutDelivery) {
  open();
  std::string id = put(2);
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  auto r = control(ControlRequest::Op::kDelete, id);
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.recipients, 2u);
  EXPECT_EQ(sched_->stats().pending, 0u);
  EXPECT_EQ(sched_->stats().deleted, 2u);
  EXPECT_EQ(last_state(id), RecipientStatus::kDeleted);
  clock_.advance(1h);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u);
  auto again = control(ControlRequest::Op::kDelete, id);
  EXPECT_FALSE(again.status) << "no longer pending";
}

TEST_F(ControlTest, FlushMakesDeferredMailDueNow) {
  open();
  std::string a = put(1), b = put(1);
  sched_->tick();
  transport_->answer_all(0, Outcome::kDeferred);
  transport_->answer_all(1, Outcome::kDeferred);
  settle();
  auto r = control(ControlRequest::Op::kFlush, a);
  EXPECT_EQ(r.messages, 1u);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 3u);
  EXPECT_EQ(transport_->job(2).message.id, a);
  transport_->answer_all(2, Outcome::kDeferred);
  settle();
  r = control(ControlRequest::Op::kFlush, "");  // all
  EXPECT_EQ(r.messages, 2u);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 5u);
  EXPECT_FALSE(control(ControlRequest::Op::kFlush, "NOSUCHIDNOSUCHIDNOSU").status);
}

TEST_F(ControlTest, HoldDuringADeliveryTakesEffectWhenItEnds) {
  open();
  std::string id = put(1);
  sched_->tick();
  ASSERT_EQ(transport_->count(), 1u);
  auto r = control(ControlRequest::Op::kHold, id);  // answered at once: nothing to write yet
  EXPECT_EQ(r.recipients, 1u);
  transport_->answer_all(0, Outcome::kDeferred);
  settle();
  settle();
  EXPECT_EQ(last_state(id), RecipientStatus::kHeld);
  clock_.advance(2h);
  sched_->tick();
  EXPECT_EQ(transport_->count(), 1u);
}


// ---- the active window ----

class WindowTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    sconfig_.active_limit = 10;
    sconfig_.concurrency = 100;
    config_.segment_size = 4096;  // many segments: retiring must spare those with mail on disk
  }
  // Answers every unanswered job with `outcome(job)`; returns how many it answered.
  std::size_t answer_open(const std::function<Outcome(const DeliveryJob&)>& outcome) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < transport_->count(); ++i) {
      if (answered_.count(i)) continue;
      answered_.insert(i);
      DeliveryJob job = transport_->job(i);
      transport_->answer_all(i, outcome(job));
      ++n;
    }
    return n;
  }
  std::set<std::size_t> answered_;
};

TEST_F(WindowTest, MemoryStaysWithinTheWindowAndEveryMessageIsDelivered) {
  open();
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(put(1).empty());
  std::size_t most = 0;
  for (int round = 0; round < 500 && sched_->stats().delivered < 100; ++round) {
    sched_->tick();
    most = std::max<std::size_t>(most, sched_->stats().pending);
    answer_open([](const DeliveryJob&) { return Outcome::kDelivered; });
    settle();
    clock_.advance(1s);
  }
  EXPECT_EQ(sched_->stats().delivered, 100u);
  EXPECT_LE(most, 10u) << "never more than active_limit messages in memory";
  EXPECT_GT(sched_->stats().paged_out, 0u);
}

TEST_F(WindowTest, StartUpReadsOnlyTheWindowAndTheRestFollows) {
  open();
  sched_.reset();  // nothing delivers: the messages stay in the spool
  for (int i = 0; i < 50; ++i) ASSERT_FALSE(put(1).empty());
  open();
  EXPECT_EQ(sched_->stats().pending, 10u);
  std::set<std::string> delivered;
  for (int round = 0; round < 500 && delivered.size() < 50; ++round) {
    sched_->tick();
    EXPECT_LE(sched_->stats().pending, 10u);
    answer_open([&](const DeliveryJob& j) {
      delivered.insert(j.message.id);
      return Outcome::kDelivered;
    });
    settle();
    clock_.advance(1s);
  }
  EXPECT_EQ(delivered.size(), 50u);
}

TEST_F(WindowTest, DeferredMailDoesNotStarveNewMailAndComesBackWhenDue) {
  open();
  std::set<std::string> slow;
  for (int i = 0; i < 10; ++i) slow.insert(put(1));
  sched_->tick();
  answer_open([](const DeliveryJob&) { return Outcome::kDeferred; });  // all due again in 5 min
  settle();
  std::set<std::string> fresh;
  for (int i = 0; i < 5; ++i) fresh.insert(put(1));

  // The window is full of deferred mail; the new mail waits on disk only until the deferred
  // entries are paged out to make room (a tenth of the window per second).
  std::set<std::string> delivered;
  for (int round = 0; round < 30 && delivered.size() < 5; ++round) {
    clock_.advance(1s);
    sched_->tick();
    EXPECT_LE(sched_->stats().pending, 10u);
    answer_open([&](const DeliveryJob& j) {
      EXPECT_TRUE(fresh.count(j.message.id)) << "a deferred message was tried before its time";
      delivered.insert(j.message.id);
      return Outcome::kDelivered;
    });
    settle();
  }
  EXPECT_EQ(delivered, fresh);

  // When their retry falls due, the paged-out messages are read in again and tried.
  clock_.advance(5min);
  std::set<std::string> retried;
  for (int round = 0; round < 60 && retried.size() < 10; ++round) {
    sched_->tick();
    answer_open([&](const DeliveryJob& j) {
      retried.insert(j.message.id);
      return Outcome::kDelivered;
    });
    settle();
    clock_.advance(1s);
  }
  EXPECT_EQ(retried, slow);
  EXPECT_EQ(sched_->stats().pending, 0u);
}

}  // namespace
}  // namespace petrel::queue
