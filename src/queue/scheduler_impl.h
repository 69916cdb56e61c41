// queue/scheduler_impl.h: the scheduler's internals, shared by its source files (private to
// src/queue: only scheduler*.cc include it; nothing outside the queue library may).
//
// What it is: the helper types of the in-memory queue (in petrel::queue::detail: entries,
// recipients, ranges of the log, pending state commits), Scheduler::Inbox (the only state
// other threads touch) and Scheduler::Impl (the tick thread's state) with the declarations
// of its jobs. Where each is defined:
//   scheduler.cc          load, the tick, outcomes, notices, state commits, retiring, the
//                         public Scheduler methods
//   scheduler_window.cc   the active window: taking messages in, paging them out, reading
//                         ranges of the log back in (queue/README.md "The active window")
//   scheduler_lanes.cc    starting deliveries and the per-lane in-flight limits
//   scheduler_control.cc  operator commands: flush, hold, release, delete
// Promise, failure and threads: as scheduler.h says; this header adds no behaviour.
// Not done here: anything public (scheduler.h is the interface).
#pragma once

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/strings.h"
#include "mail/dsn.h"
#include "queue/retry_policy.h"
#include "queue/scheduler.h"

namespace petrel::queue {
namespace detail {

using Seconds = std::int64_t;  // since the epoch
inline constexpr Seconds kNever = std::numeric_limits<Seconds>::max();

using IdKey = std::array<char, 20>;
struct IdHash {
  std::size_t operator()(const IdKey& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(k.data(), k.size()));
  }
};

inline IdKey key_of(std::string_view id) {
  IdKey k{};
  std::memcpy(k.data(), id.data(), std::min(id.size(), k.size()));
  return k;
}
inline std::string id_of(const IdKey& k) { return std::string(k.data(), k.size()); }

// One recipient, 8 bytes: its state (0 = never tried, else a RecipientStatus), whether it is
// in a delivery or a state commit, its attempts, and when it is next due, in seconds after
// the message arrived (0 = at once).
struct Rcpt {
  std::uint8_t state = 0;
  std::uint8_t busy = 0;
  std::uint16_t attempts = 0;
  std::uint32_t next_rel = 0;
};
inline constexpr std::uint8_t kNew = 0;
inline constexpr std::uint8_t kHeld = static_cast<std::uint8_t>(RecipientStatus::kHeld);
inline bool final_state(std::uint8_t s) { return s != kNew && format::is_final(static_cast<RecipientStatus>(s)); }
// Not to be tried now: final, or on hold.
inline bool resting(std::uint8_t s) { return s == kHeld || final_state(s); }

// Entry::flags: what decides about notices without reading the message back.
inline constexpr std::uint8_t kNullSender = 1;     // from <>: never a DSN about it (RFC 3461 6.2)
inline constexpr std::uint8_t kSuccessNotify = 2;  // some recipient asked NOTIFY=SUCCESS
inline constexpr std::uint8_t kFresh = 4;          // read in by the pass under way (read_in)
inline constexpr std::uint8_t kDelayWarned = 8;    // a delay warning was queued (or nobody wants one)

// Entry::pending_op: an operator command waiting for a delivery in flight to end.
inline constexpr std::uint8_t kPendingHold = 1;
inline constexpr std::uint8_t kPendingDelete = 2;

inline std::uint8_t flags_of(const mail::Envelope& e) {
  std::uint8_t f = e.sender.null() ? kNullSender : 0;
  for (const auto& r : e.recipients) {
    if ((r.notify & mail::kNotifySuccess) && !(r.notify & mail::kNotifyNever)) f |= kSuccessNotify;
  }
  return f;
}

struct Entry {
  std::uint64_t segment = 0;
  std::uint64_t record_offset = 0;
  Seconds received_at = 0;
  Seconds due = kNever;  // the time this entry sits in the heap under (kNever: not in it)
  std::vector<Rcpt> rcpts;
  bool in_flight = false;
  bool spill = false;
  std::uint8_t flags = 0;       // kNullSender, kSuccessNotify
  std::uint8_t pending_op = 0;  // kPendingHold, kPendingDelete
};

// Where a MESSAGE record sits in the log; log order is (segment, offset) order.
struct Position {
  std::uint64_t segment = 0, offset = 0;
  auto operator<=>(const Position&) const = default;
};
inline constexpr Position kLogEnd{std::numeric_limits<std::uint64_t>::max(), 0};

// Part of the log whose pending messages are not in memory (README "The active window"):
// every message in [from, to) that is neither in memory nor final is due no earlier than
// `wake`.
struct Range {
  Position from, to;
  Seconds wake;
};
inline constexpr std::size_t kMaxRanges = 32;  // more are merged: memory stays a few KiB

struct Due {
  Seconds at;
  IdKey id;
  bool operator>(const Due& o) const { return at > o.at; }
};

// An operator command whose records are being committed: answered when the last is durable.
struct ControlWait {
  std::function<void(ControlResult)> done;
  ControlResult result;
  std::size_t outstanding = 0;  // commits not yet durable
  void finish_one(const base::Status& s) {
    if (!s && result.status) result.status = s;
    if (--outstanding == 0 && done) std::exchange(done, nullptr)(std::move(result));
  }
};

// A set of states submitted to the sink, remembered until it is committed (or not).
struct PendingCommit {
  IdKey id;
  std::vector<RecipientState> states;
  std::vector<std::string> names;  // recipient addresses, for the log lines
  std::vector<std::string> why;    // the diagnostic as received
  bool by_operator = false;        // from control(): DEFERRED means "released"
  bool delay_notice = false;       // its DSN warns of delay: DEFERRED records get the flag
  std::shared_ptr<ControlWait> waiter;

  void add(RecipientState st, std::string name, std::string reason) {
    states.push_back(std::move(st));
    names.push_back(std::move(name));
    why.push_back(std::move(reason));
  }
};

inline bool bounce_state(RecipientStatus s) { return s == RecipientStatus::kFailed || s == RecipientStatus::kExpired; }

inline Seconds to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_seconds(Seconds s) {
  if (s == kNever) return std::chrono::system_clock::time_point::max();
  return std::chrono::system_clock::time_point(std::chrono::seconds(s));
}

inline std::string iso_time(Seconds s) {
  time_t t = static_cast<time_t>(s);
  struct tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

inline std::string rcpt_name(const mail::Envelope& e, std::uint32_t i) {
  if (i >= e.recipients.size()) return "#" + std::to_string(i);
  const auto& a = e.recipients[i].address;
  return base::log_escape(a.local + "@" + a.domain);
}

}  // namespace detail

// The scheduler's files use the helpers unqualified (this header is private to them).
using namespace detail;

// ---- the inbox: the only state touched by other threads ----

struct Scheduler::Inbox {
  struct NewMessage {
    IdKey id;
    std::uint64_t segment, record_offset;
    Seconds received_at;
    std::uint32_t nrcpt;
    bool spill;
    std::uint8_t flags;
  };
  static NewMessage arrival(const StoredMessage& m) {
    return {key_of(m.id),
            m.segment,
            m.record_offset,
            m.envelope.received_at,
            static_cast<std::uint32_t>(m.envelope.recipients.size()),
            m.body.kind == format::BodyKind::kSpill,
            flags_of(m.envelope)};
  }
  struct Results {
    IdKey id;
    std::vector<RecipientResult> results;
  };
  struct Committed {
    std::shared_ptr<PendingCommit> commit;
    base::Status status;
  };
  struct NoticeQueued {  // the DSN about `commit`'s recipients is durable (or not)
    std::shared_ptr<PendingCommit> commit;
    base::Status status;
    std::string dsn_id;
  };
  struct Control {
    ControlRequest request;
    std::function<void(ControlResult)> done;
  };

  std::mutex mu;
  std::condition_variable cv;
  std::vector<NewMessage> messages;
  std::vector<Results> results;
  std::vector<Committed> committed;
  std::vector<NoticeQueued> notices;
  std::vector<Control> controls;
  bool woken = false;
  bool stopping = false;

  template <typename F>
  void push(F&& add) {
    {
      std::lock_guard lk(mu);
      add();
      woken = true;
    }
    cv.notify_one();
  }
};


// ---- the tick thread's state ----

struct Scheduler::Impl {
  Impl(const Spool& sp, StateSink& sk, Transport& tr, base::Clock& cl, SchedulerConfig cf, Intake* nt,
       std::shared_ptr<Inbox> in)
      : spool(sp), sink(sk), transport(tr), clock(cl), config(cf), notices(nt), inbox(std::move(in)) {
    retry = RetryPolicy{config.retry_first, config.retry_max, config.lifetime, config.delay_warning}.normalized();
    config.retry_first = retry.retry_first;
    config.retry_max = retry.retry_max;
    config.concurrency = std::max<std::size_t>(config.concurrency, 1);
  }

  const Spool& spool;
  StateSink& sink;
  Transport& transport;
  base::Clock& clock;
  SchedulerConfig config;
  RetryPolicy retry;  // retry_policy.h: when to try again, when to give up
  Intake* notices;
  std::shared_ptr<Inbox> inbox;

  // The view: held by load()/tick() while they change the state below, released around every
  // disk access (off_lock()), so snapshot() and memory_bytes() look from outside without
  // waiting on I/O. Only the ticking thread changes the state, and tick_mu lets one load()/tick()
  // run at a time, so what a tick holds stays valid while the view is released.
  mutable std::mutex mu;
  std::mutex tick_mu;
  std::unique_lock<std::mutex>* view = nullptr;  // `mu` as load()/tick() hold it
  // Runs `io` (a disk access) with the view released; back under it on return.
  template <class F>
  decltype(auto) off_lock(F&& io) {
    struct Relock {
      std::unique_lock<std::mutex>* l;
      ~Relock() {
        if (l) l->lock();
      }
    } relock{view};
    if (view) view->unlock();
    return io();
  }
  // Inside off_lock(): back under the view for a change (a scan's callback).
  std::unique_lock<std::mutex> under_view() {
    return view ? std::unique_lock<std::mutex>(mu) : std::unique_lock<std::mutex>();
  }
  // What stats() reports, copied at the end of load() and of each tick under its own mutex,
  // which is never held across I/O: stats() answers while a tick waits on the disk.
  mutable std::mutex published_mu;
  Stats published;
  void publish() {
    std::lock_guard lk(published_mu);
    published = stats;
    published.pending = entries.size();
    published.in_flight = in_flight.size();
  }
  std::unordered_map<IdKey, Entry, IdHash> entries;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap;
  std::map<std::uint64_t, std::uint64_t> pending_per_segment;  // segment → entries recorded in it
  struct InFlight {
    std::vector<std::uint32_t> indices;
    std::vector<std::string> names;
    std::string lane;  // Transport::Lane key when the lane has a limit, else empty
  };
  std::unordered_map<IdKey, InFlight, IdHash> in_flight;
  // Lanes with a limit (transport.h): jobs in flight, and the entries that fell due while the
  // lane was full (out of the heap, due kNever), oldest first. Duplicates are harmless: an
  // entry is only taken back if it is still waiting (end_flight_in_lane()).
  struct LaneState {
    std::size_t in_flight = 0;
    std::deque<IdKey> parked;
  };
  std::unordered_map<std::string, LaneState> lanes;
  bool retire_check = false;
  Stats stats;
  std::vector<Range> ranges;  // what waits on disk, beyond the active window
  struct Rewrite {
    Seconds at;
    std::shared_ptr<PendingCommit> commit;
  };
  std::vector<Rewrite> rewrites;  // final outcomes whose records failed, to write again
  static constexpr Seconds kRewriteDelay = 5;
  Seconds last_refill = 0;

  std::size_t limit_slack = 0;  // read_in_one()
  std::size_t limit() const { return std::max<std::size_t>(config.active_limit, 1) + limit_slack; }

  Seconds expire_at(const Entry& e) const { return retry.expire_at(e.received_at); }
  Seconds rcpt_next(const Entry& e, const Rcpt& r) const { return r.next_rel == 0 ? 0 : e.received_at + r.next_rel; }
  void set_next(const Entry& e, Rcpt& r, Seconds at) {
    Seconds rel = at - e.received_at;
    r.next_rel = static_cast<std::uint32_t>(std::clamp<Seconds>(rel, 1, std::numeric_limits<std::uint32_t>::max()));
  }
  Seconds backoff(std::uint32_t attempts) const { return retry.backoff(attempts); }

  // ---- entries ----

  // Takes a message into memory, unless the active window is full: then it waits on disk
  // (a range due now) until a refill reads it in.
  void add(const IdKey& id, std::uint64_t segment, std::uint64_t offset, Seconds received, std::uint32_t nrcpt,
           bool spill, std::uint8_t flags, Seconds now);

  Entry& insert(const IdKey& id, std::uint64_t segment, std::uint64_t offset, Seconds received, std::uint32_t nrcpt,
                bool spill, std::uint8_t flags);

  // ---- the active window (README "The active window") ----

  void wait_on_disk(Position from, Position to, Seconds wake);

  void add_range(Range range);

  // Earliest time an entry needs attention: a recipient's next attempt (0 = now), kNever
  // when only held or busy ones are left.
  Seconds next_due(const Entry& e) const;

  // Takes an idle deferred entry out of memory (its state is all on disk).
  void page_out(std::unordered_map<IdKey, Entry, IdHash>::iterator it, Seconds wake);

  // Drops an entry from memory (nothing on disk changes).
  void forget(std::unordered_map<IdKey, Entry, IdHash>::iterator it);

  bool pageable(const Entry& e, Seconds now) const;
  static constexpr Seconds kPageOutMargin = 60;

  // Called from tick(): when mail waits on disk and is due, make room (page out the idle
  // deferred entries due last) and read the oldest due range in. At most once a second.
  void refill(Seconds now);

  // Reads the log from r.from to its end: admits the messages of [r.from, r.to) that are not
  // in memory, in log order, while the window has room, and applies their state records.
  // Then the final ones are dropped; when the window filled up before the range was done,
  // the ones not due soon are paged out again and the rest of the range stays on disk.
  base::Status read_in(const Range& r, Seconds now, bool at_startup);

  // Puts the entry in the heap at its earliest due time: the first non-final recipient that
  // is not busy, or its expiry. Busy recipients reschedule it when their commit completes.
  void schedule(const IdKey& id, Entry& e);

  void retire(std::unordered_map<IdKey, Entry, IdHash>::iterator it);

  // ---- start-up ----

  base::Status load();

  // ---- one tick ----

  TimePoint tick();

  // Past its lifetime, a recipient is still tried once if that attempt was due before the
  // lifetime ended (a restart after downtime, a flush, a release): its bounce then reports
  // what the last attempt said. One due later just expires.
  bool attempt_before_expiry(const Entry& e) const;

  void start_delivery(const IdKey& id, Entry& e, Seconds now);

  InFlight& begin_flight(const IdKey& id, Entry& e, const std::vector<std::uint32_t>& recipients);

  // A job of `key`'s lane ended: the oldest entry still waiting for the lane is due again (it
  // takes the slot in this tick's due pass, unless older due work fills the lane first).
  void end_flight_in_lane(const std::string& key, Seconds now);

  // Turns a delivery's answers into state records and submits them.
  void apply_results(const IdKey& id, std::vector<RecipientResult> results, Seconds now);

  // A delivery deferred for storage trouble (RecipientResult::storage_trouble: the transport
  // could not read or write something) may have met a damaged body. If the spool confirms the damage, the message is
  // moved to quarantine (spool.h) and its recipients fail with 5.3.0 (a bounce without the
  // original), instead of being retried for the whole lifetime.
  void quarantine_if_damaged(const IdKey& id, Entry& e, std::vector<RecipientResult>& results);

  // Gives up on every recipient that is neither final nor busy.
  void expire(const IdKey& id, Entry& e, Seconds now);

  // ---- notices (DSN) ----

  // Records `commit`, first queueing the DSN its outcomes call for (scheduler.h): the final
  // states wait in the busy state until the DSN is durable (apply_notice).
  void record(std::shared_ptr<PendingCommit> commit, Entry& e, Seconds now);

  // Which of `c`'s outcomes the sender asked to hear about (RFC 3461 4.1: NOTIFY absent means
  // FAILURE, and Petrel also warns of delay then, as Postfix does; NEVER means none), as DSN
  // recipient blocks. `delay`: deferred recipients get "delayed" blocks. `all_failures`: every
  // failed one, whatever NOTIFY says (a double bounce, for the postmaster).
  std::vector<mail::DsnRecipient> notice_recipients(const PendingCommit& c, const mail::Envelope& env, const Entry& e,
                                                    Seconds now, bool delay, bool all_failures);

  // The DSN about `n.commit` is durable: record the states. If it could not be queued, the
  // failed and expired recipients stay pending (as if the attempt never happened: they are
  // tried again, and bounce then); the others are recorded anyway (a missing success notice
  // must not deliver a message twice).
  void apply_notice(Inbox::NoticeQueued n, Seconds now);

  // ---- operator commands ----

  // A message the operator names that waits on disk: read in now, even past the window's
  // limit (by one). end() when it is not pending.
  std::unordered_map<IdKey, Entry, IdHash>::iterator read_in_one(const std::string& id, Seconds now);

  void apply_control(Inbox::Control& c, Seconds now);

  void control_one(ControlRequest::Op op, const IdKey& id, Entry& e, Seconds now,
                   const std::shared_ptr<ControlWait>& waiter);

  RecipientState operator_state(ControlRequest::Op op, const IdKey& id, const Entry& e, std::uint32_t i, Seconds now);

  // A hold or delete asked for while a delivery was in flight, now that it has ended.
  void apply_pending_op(const IdKey& id, Entry& e, Seconds now);

  void submit(std::shared_ptr<PendingCommit> commit);

  // A state batch is durable (or failed): the recipients leave the busy state.
  // `rewrite`: when the records could not be written, final outcomes (a delivery that
  // happened, a bounce that was queued) are written again later rather than the delivery
  // repeated; false when the outcome itself must be redone (its DSN could not be queued).
  void apply_commit(const PendingCommit& c, const base::Status& status, Seconds now, bool rewrite = true);

  // README "Retiring": oldest first, up to the oldest segment that still holds a pending
  // message, never the current one, never one with damage not yet quarantined.
  void retire_segments(std::uint64_t current);
};

}  // namespace petrel::queue
