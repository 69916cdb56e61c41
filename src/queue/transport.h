// queue/transport.h: the door through which queued mail leaves the queue.
//
// What it is: the interface the Scheduler delivers through. delivery::LocalTransport (mailbox)
// and the remote transport (SMTP client) implement it; tests use a fake.
// Promise asked of an implementation: deliver() reports exactly one result per recipient it
// was given, by calling `done` exactly once, from any thread, possibly inside deliver(). A
// kDelivered result means the message is on stable storage at the destination (a synced
// mailbox file, or a 250 from the next hop): the scheduler then records the recipient as
// final and never hands it over again.
// Not done here: deciding when to deliver or retry (scheduler.h); bounces (notice.h).
// Failure: anything unclassified is kDeferred (STYLE.md: unclassified means temporary); only
// a permanent refusal (5xx, unknown user) is kFailed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mail/reply.h"
#include "queue/spool.h"

namespace petrel::queue {

struct DeliveryJob {
  StoredMessage message;                  // envelope and where the body is (Spool::open_body)
  std::vector<std::uint32_t> recipients;  // indices into message.envelope.recipients
};

// What delivering to one recipient came to. Decisions travel as types, never as text to parse
// back (STYLE.md): the scheduler records `reply` as it is and acts on the flags.
struct RecipientResult {
  std::uint32_t index = 0;  // as given in DeliveryJob::recipients
  enum class Outcome { kDelivered, kDeferred, kFailed } outcome = Outcome::kDeferred;
  // Why: enhanced status code (RFC 3463, never empty) and a short text, recorded in the
  // RECIPIENT_STATE record and shown in a DSN. `reply.code` is the next hop's reply code when
  // `peer_reply` (then a DSN quotes it in Diagnostic-Code and names the Remote-MTA, RFC 3464
  // 2.3.5/2.3.6); otherwise Petrel composed the answer and the code is only its class.
  mail::Reply reply = mail::reply(451, "4.4.0", "not attempted");
  bool peer_reply = false;
  // Deferred because something local could not be read or written (the queued message, a
  // mailbox, the queue when forwarding): the scheduler then checks whether the queued body is
  // damaged (Spool::check_body) instead of retrying a broken message for its whole lifetime.
  bool storage_trouble = false;
  std::string remote_host;  // who answered, for remote delivery; empty for local
  // After kDelivered from a next hop, who tells the sender of the success (RFC 3461 6,
  // RFC 3464 2.3.3): kFinal, we do ("delivered": a mailbox took it); kPassedOn, the next hop
  // (it offered DSN and took NOTIFY: we say nothing); kRelayed, we do as "relayed" (it does
  // not do DSN, so nobody else will).
  enum class Handoff : std::uint8_t { kFinal, kPassedOn, kRelayed } handoff = Handoff::kFinal;

  // A result Petrel composed (no next hop's reply): the code is the outcome's class (250, 451,
  // 550); `enhanced` must be an RFC 3463 code of that class.
  static RecipientResult local(std::uint32_t index, Outcome outcome, std::string_view enhanced, std::string_view text,
                               bool storage_trouble = false) {
    RecipientResult r;
    r.index = index;
    r.outcome = outcome;
    r.reply = mail::reply(outcome == Outcome::kDelivered ? 250 : outcome == Outcome::kFailed ? 550 : 451, enhanced, text);
    r.storage_trouble = storage_trouble;
    return r;
  }
  // "4.2.2 mailbox full": the enhanced code and the text, for log lines and DSN text.
  std::string why() const { return reply.enhanced.empty() ? reply.text : reply.enhanced + " " + reply.text; }
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Delivers `job.message` to `job.recipients`. `done` gets one result per recipient (missing
  // ones count as deferred). Thread: called on the scheduler's thread; must not block on the
  // network or the disk (hand the work to an executor).
  virtual void deliver(DeliveryJob job, std::function<void(std::vector<RecipientResult>)> done) = 0;

  // A delivery lane: the scheduler keeps at most `limit` jobs of one lane in flight, so one
  // slow destination cannot take every delivery slot while other mail waits behind it (as
  // Postfix's queue manager limits concurrency per destination). Jobs over the limit wait in
  // the scheduler, in order, until a job of their lane ends. limit 0: the global limit only.
  struct Lane {
    std::string key;
    std::size_t limit = 0;
  };
  // Thread: the scheduler's. Must not block (no DNS, no disk beyond what `job` holds).
  virtual Lane lane(const DeliveryJob& /*job*/) const { return {}; }
};

}  // namespace petrel::queue
