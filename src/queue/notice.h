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
// Not done here: deciding who gets a notice (the scheduler: never the null sender, NOTIFY
// rules), delay warnings, double bounces to the postmaster.
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

// Queues one DSN to `original`'s sender about `recipients`. Calls `done(status, dsn_id)`.
// Thread: any (it reads the spool and encodes in the caller's thread).
void queue_notice(const Spool& spool, Intake& intake, const StoredMessage& original,
                  std::vector<mail::DsnRecipient> recipients, const NoticeConfig& config, std::int64_t now,
                  std::function<void(base::Status, const std::string& dsn_id)> done);

}  // namespace petrel::queue
