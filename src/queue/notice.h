// queue/notice.h: queues a delivery status notification (a bounce, or a success report)
// about one message, back into the queue it came from.
//
// What it is: the step between the scheduler deciding that a sender must hear about some
// recipients (scheduler.h says when) and a DSN message sitting durably in the spool. It reads
// the start of the original from the spool (enough for the DSN: mail/dsn.h includes the whole
// message only when it is small), composes the DSN and commits it through the Intake, from
// the null sender `<>` (RFC 5321 4.5.5) to the original sender.
// Promise: `done` is called exactly once (on the Intake's commit thread, or inside this call
// when the DSN cannot even be started); success means the DSN is durable in the queue.
// Routing: normally from `<>` to the original's sender. A double bounce (the original is
// itself from `<>`) goes where NoticeRoute says: the scheduler sends it from the
// double-bounce address to the postmaster, and never sends a notice about a message from the
// double-bounce address, so a failing postmaster mailbox cannot start a loop.
// Not done here: deciding who gets a notice and when (the scheduler: NOTIFY rules, delay
// warnings, double bounces).
// Failure: a spool that cannot take the DSN completes `done` with a temporary error; the
// caller keeps the recipients pending and tries again. An original that cannot be read (a
// damaged or quarantined body) is left out of the DSN, which is still sent.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "mail/dsn.h"
#include "queue/intake.h"
#include "queue/spool.h"

namespace petrel::queue {

struct NoticeConfig {
  std::string hostname;    // Reporting-MTA, and the domain of the Message-ID
  std::string postmaster;  // From: of the DSN
};

// Envelope of the notice: `sender` null = `<>`; `recipient` null = the original's sender.
struct NoticeRoute {
  mail::Address sender;
  mail::Address recipient;
};

// Queues one DSN to `original`'s sender (or `route.recipient`) about `recipients`. Calls
// `done(status, dsn_id)`. Thread: any (it reads the spool and encodes in the caller's thread).
void queue_notice(const Spool& spool, Intake& intake, const StoredMessage& original,
                  std::vector<mail::DsnRecipient> recipients, const NoticeConfig& config, std::int64_t now,
                  std::function<void(base::Status, const std::string& dsn_id)> done, const NoticeRoute& route = {});

}  // namespace petrel::queue
