// queue/transport.h: the door through which queued mail leaves the queue.
//
// What it is: the interface the Scheduler delivers through. delivery::LocalTransport (mailbox)
// and the remote transport (SMTP client) implement it; tests use a fake.
// Promise asked of an implementation: deliver() reports exactly one result per recipient it
// was given, by calling `done` exactly once, from any thread, possibly inside deliver(). A
// kDelivered result means the message is on stable storage at the destination (a synced
// mailbox file, or a 250 from the next hop): the scheduler then records the recipient as
// final and never hands it over again.
// Not done here: deciding when to deliver or retry (scheduler.h); bounces (later).
// Failure: anything unclassified is kDeferred (STYLE.md: unclassified means temporary); only
// a permanent refusal (5xx, unknown user) is kFailed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "queue/spool.h"

namespace petrel::queue {

struct DeliveryJob {
  StoredMessage message;                  // envelope and where the body is (Spool::open_body)
  std::vector<std::uint32_t> recipients;  // indices into message.envelope.recipients
};

struct RecipientResult {
  std::uint32_t index = 0;  // as given in DeliveryJob::recipients
  enum class Outcome { kDelivered, kDeferred, kFailed } outcome = Outcome::kDeferred;
  // Starts with the enhanced status code (RFC 3463), then a short text: "4.2.2 mailbox full".
  std::string diagnostic;
  std::uint16_t code = 0;   // the reply code when there was one (250, 452, 550), else 0
  std::string remote_host;  // who answered, for remote delivery; empty for local
  // After kDelivered from a next hop, who tells the sender of the success (RFC 3461 6,
  // RFC 3464 2.3.3): kFinal, we do ("delivered": a mailbox took it); kPassedOn, the next hop
  // (it offered DSN and took NOTIFY: we say nothing); kRelayed, we do as "relayed" (it does
  // not do DSN, so nobody else will).
  enum class Handoff : std::uint8_t { kFinal, kPassedOn, kRelayed } handoff = Handoff::kFinal;
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
