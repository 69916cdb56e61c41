// queue/scheduler.h: decides what to deliver when, records every outcome durably, and
// retires what is finished.
//
// What it is: one entry in memory per message that still has a recipient to deliver (where
// its record is, one small state per recipient, when it is next due), a time-ordered heap of
// due entries, and an inbox through which new messages and transport results arrive. tick()
// does all the work that is due; run() calls it on its own thread. Design: queue/README.md,
// "Delivery scheduling".
// Promise: a recipient is handed to the Transport again only if no final state (DELIVERED,
// FAILED, EXPIRED) for it is durable; so after a crash at any instant every recipient is
// delivered at least once, and a recipient whose DELIVERED record was committed never again.
// Outcomes are written as RECIPIENT_STATE records through the StateSink (the Intake's group
// commit). Temporary results retry after retry_first, doubling up to retry_max; a recipient
// not delivered `lifetime` after the message arrived expires. At most `concurrency`
// deliveries are in flight, and at most a lane's limit of one lane (Transport::lane(): one
// slow destination cannot hold every slot); a message due while its lane is full waits, in
// order, for a job of that lane to end.
// Segments are deleted oldest first once every message in them is
// final, never the one being written, never one whose damage recovery could not quarantine.
// Notices (DSN, RFC 3461): when a recipient fails or expires (or is delivered with
// NOTIFY=SUCCESS, or is still deferred after delay_warning) and the sender is not <> and did
// not say NOTIFY=NEVER, a DSN
// (mail/dsn.h) is queued through `notices` before the recipient's final state is recorded:
// a crash in between repeats the attempt and the DSN (at least once, never lost).
// Operator commands (control()): flush, hold, release, delete, answered once durable.
// Memory: at most `active_limit` messages are in memory (about 170 bytes each plus 8 per
// recipient, see memory_bytes()); beyond that they wait on disk, described by a few ranges
// of the log, and are read in again oldest first as room frees up or as they fall due (README
// "The active window"). Start-up reads the log once: time linear in its length.
// Delay warnings: the first attempt that ends deferred `delay_warning` or more after arrival
// queues one DSN with Action: delayed for the recipients that asked for it (NOTIFY=DELAY, or
// no NOTIFY), before its DEFERRED records, which carry the delay-notified flag
// (queue/README.md): one warning per message, across restarts too.
// Double bounces: a failed or expired recipient of a message from <> is reported to
// `double_bounce_to` from double_bounce_sender(); one from that sender is only logged.
// Not done here: how to deliver (transport.h).
// Failure: a state record that cannot be committed is written again a few seconds later when
// it records a final outcome (the delivery is not repeated), and leaves a deferred recipient
// pending (retried after retry_first). Only a crash in between repeats a delivery. A message that
// cannot be read back from the spool is deferred like any temporary failure.
// Thread: enqueue(), the transport's `done` and the StateSink's `done` may come from any
// thread (they go through a mutex-protected inbox); everything else runs on the one thread
// that calls load() and tick() (or run()). snapshot() and stats() may be called from any
// thread and never wait for a tick's disk I/O (queue/README.md, "Where each job lives").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/config.h"
#include "queue/intake.h"
#include "queue/spool.h"
#include "queue/state_sink.h"
#include "queue/transport.h"

namespace petrel::queue {

struct SchedulerConfig {
  std::chrono::seconds retry_first{std::chrono::minutes(5)};
  std::chrono::seconds retry_max{std::chrono::hours(1)};
  std::chrono::seconds lifetime{std::chrono::hours(24 * 5)};
  std::size_t concurrency = 20;  // deliveries in flight at once
  std::size_t active_limit = 100000;  // messages in memory at most (README "The active window")
  std::string hostname = "localhost";  // Reporting-MTA of the DSNs
  std::string postmaster;              // From: of the DSNs; "MAILER-DAEMON@<hostname>" when empty
  // A recipient still deferred this long after arrival gets one delay warning (DSN "delayed",
  // for NOTIFY=DELAY or no NOTIFY), once per message; 0 = never.
  std::chrono::seconds delay_warning{std::chrono::hours(4)};
  // Where a bounce that cannot be delivered (a failed message from <>) goes, from
  // double_bounce_sender(); empty = nowhere (logged and dropped).
  std::string double_bounce_to;
  // The envelope sender of double bounces: a message from it that fails is dropped and
  // logged, never reported (no loop). "double-bounce@<hostname>".
  std::string double_bounce_sender() const { return "double-bounce@" + hostname; }

  // From the [queue] section (durations rounded down to seconds, at least 1 s).
  static SchedulerConfig from(const config::QueueConfig& queue);
};

// An operator's command (`petrel queue flush|hold|release|delete`), through the control socket.
struct ControlRequest {
  enum class Op : std::uint8_t { kFlush, kHold, kRelease, kDelete } op = Op::kFlush;
  std::string id;  // one queue id; empty = every pending message
};
struct ControlResult {
  base::Status status;          // an error when the id is not pending, or a record failed
  std::size_t messages = 0;     // messages the command applied to
  std::size_t recipients = 0;   // recipients whose state it changed (or will, once in flight ends)
};

// What snapshot() reports about one pending message (for `petrel queue` and the admin API).
struct MessageSummary {
  enum class State : std::uint8_t { kNew = 0, kDelivered = 1, kDeferred = 2, kFailed = 3, kExpired = 4, kHeld = 5, kDeleted = 6 };
  struct Recipient {
    State state = State::kNew;
    std::uint32_t attempts = 0;
    std::chrono::system_clock::time_point next;  // when it is next due (non-final ones)
    bool busy = false;                           // in a delivery, or its state is being recorded
  };
  std::string id;
  std::uint64_t segment = 0;
  std::chrono::system_clock::time_point received;
  std::chrono::system_clock::time_point next_attempt;  // time_point::max() when none is scheduled
  bool in_flight = false;
  std::vector<Recipient> recipients;
};

class Scheduler {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  struct Stats {
    std::uint64_t pending = 0;    // messages with a non-final recipient
    std::uint64_t in_flight = 0;  // deliveries handed to the transport, not yet answered
    std::uint64_t recording = 0;  // state batches submitted, not yet committed
    std::uint64_t delivered = 0, deferred = 0, failed = 0, expired = 0;  // recipients, since start
    std::uint64_t held = 0, released = 0, deleted = 0;                  // recipients, since start
    std::uint64_t notices = 0, notice_failures = 0;                     // DSNs queued / not queued
    std::uint64_t delay_notices = 0;                                    // of those, delay warnings
    std::uint64_t paged_out = 0, refills = 0;  // messages left on disk / passes reading them in
    std::uint64_t lane_waits = 0;  // deliveries put off because their lane was full (transport.h)
    std::uint64_t retired_messages = 0, retired_segments = 0, state_failures = 0;
  };

  // Installs itself as `sink`'s commit listener (removed again by the destructor), so every
  // message committed from now on is enqueued: the wiring must not replace that listener
  // (retiring relies on hearing of every message; see state_sink.h). All references must outlive this object;
  // `spool` must be writable (segments are deleted through it).
  // `notices` (may be null: no DSNs are sent, only logged) is where DSNs are queued; in the
  // server it is the same IntakeImpl as `sink`.
  Scheduler(const Spool& spool, StateSink& sink, Transport& transport, base::Clock& clock, SchedulerConfig config,
            Intake* notices = nullptr);
  // Stops the thread if it runs. Answers the transport gives later are dropped (the
  // recipients are simply tried again after a restart).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The start-up pass (README "Start-up"): reads every message and state record in log order.
  // Call once, before tick()/start().
  base::Status load();

  // A newly committed message, due now. Thread: any (the commit listener calls it).
  void enqueue(const StoredMessage& message);

  // Does everything due at clock.wall(): applies what arrived in the inbox (new messages,
  // results, committed states), expires, starts deliveries up to the concurrency limit,
  // deletes retired segments. Returns when it next has something to do (time_point::max()
  // when only an arrival in the inbox can give it work).
  TimePoint tick();

  // run() loops on tick(), sleeping until the next due time or an arrival; returns after
  // stop(). start() runs it on a thread of its own. stop() is idempotent; thread: any.
  void start();
  void run();
  void stop();

  // Applies an operator command at the next tick. `done` is called once, on the scheduler's
  // thread, when the records it wrote are durable (flush writes none: at once). Recipients in
  // a delivery right now are held or deleted when that delivery ends (if it did not deliver
  // them). Flush makes deferred recipients due now; hold stops a message's delivery and its
  // expiry until release, which makes it due now. Thread: any.
  void control(ControlRequest request, std::function<void(ControlResult)> done);

  std::vector<MessageSummary> snapshot() const;
  Stats stats() const;
  // Approximate heap bytes of the in-memory queue (entries, recipients, heap, index).
  std::size_t memory_bytes() const;

  struct Inbox;  // (scheduler_impl.h, private to src/queue)
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<Inbox> inbox_;
  std::thread thread_;
};

}  // namespace petrel::queue
