// delivery/local_transport.h: the local delivery agent: a queue::Transport that puts a queued
// message into the Maildirs its recipients stand for.
//
// What it is: a small pool of worker threads (default 4) fed by deliver(). For each recipient
// of a job a worker asks auth::Directory::resolve() for the delivery targets (accounts,
// aliases, subaddresses, catch-alls: auth/resolution.h) and delivers into each kMailbox
// target's Maildir (mailbox/maildir.h) with "Return-Path:" and "Delivered-To:" prepended, the
// body streamed from the spool (never the whole message in memory: one 64 KiB buffer).
// Promise: `done` is called exactly once per deliver(), on a worker thread, with one result
// per requested recipient index, in the order of job.recipients. kDelivered means every
// mailbox file reported delivered is synced (file, rename, new/), so the queue may record the
// recipient final. Blocking I/O and fsync happen on the workers, never on the caller's thread.
//
// One recipient, several targets: each target gets its own outcome, and the recipient's
// result combines them by this rule:
//   - remote targets first: forwarded together as one new queued message (kRemote below);
//     if that cannot be queued → kDeferred before any mailbox is written;
//   - any target deferred (a temporary Maildir failure) → kDeferred;
//   - else every target failed permanently → kFailed (the first target's reason);
//   - else → kDelivered (targets that failed permanently next to ones delivered are logged
//     and named in the diagnostic, but not bounced: that needs per-target state, later).
// A deferred recipient is delivered again, in full, on the next attempt: targets that
// succeeded this time get a second copy. That is the price of one state per recipient (the
// spool's RECIPIENT_STATE records, queue/README.md) until per-target state exists.
//
// Per target:
//   - kMailbox → Maildir delivery, after a mail-loop check: a header section (up to the empty
//     line, at most kMaxHeaderScan bytes) that already holds "Delivered-To: <target>" fails
//     that target with 5.4.6 (RFC 5321 6.3), so a forwarding loop ends in one bounce.
//     The account's quota (DeliveryTarget::quota_bytes, from the Directory's snapshot, so a
//     change reaches delivery with the next refresh) is passed to the Maildir, which refuses
//     before writing when usage + message size would exceed it.
//     ENOSPC/EDQUOT → deferred "4.3.1 mail system full"; over quota → deferred "4.2.2 mailbox
//     full" (temporary: the queue retries, and bounces once queue.lifetime has passed);
//     any other storage error → deferred 4.3.0; a bad name or header → failed 5.3.0.
//   - kRemote → forwarded: a new message is queued through `options.forward` (same envelope
//     sender, as Postfix's local(8); no SRS yet), to every remote target of the recipient,
//     each with the recipient's NOTIFY and ORCPT set to the recipient, its body prefixed with
//     "Delivered-To: <recipient>" (a forward that comes back fails 5.4.6). Delivered once the
//     copy is durable; the remote transport then delivers it like any other message. A
//     recipient deferred for a mailbox target is forwarded again on its next attempt (a
//     duplicate, like the mailbox copies above).
//   - kFailed → failed with the reason resolution gave (it begins with a 5.x.x code).
// A recipient whose resolution fails as a whole is failed (permanent error: unknown user,
// 5.1.1) or deferred (a temporary one).
// Every target gives one log line:
//   delivery.local id=<queue id> rcpt=<recipient> to=<mailbox path or address>
//                  result=delivered|deferred|failed why="<diagnostic and detail>"
// Diagnostics (what the sender may see in a DSN) are generic; internal detail such as errno
// text and paths is in the log line only.
//
// Not done here: retries and state records (queue::Scheduler), the remote transport (remote_transport.h), SRS for forwarded mail, measuring
// mailbox usage (mailbox/README.md, "Quota"), Sieve, programs.
// Thread: deliver() from any thread. The Spool, the Directory and the clock in the options
// must outlive the transport.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/directory.h"
#include "mailbox/maildir.h"
#include "queue/intake.h"
#include "queue/spool.h"
#include "queue/transport.h"

namespace petrel::delivery {

// How much of a message's header section the loop check reads before giving up.
inline constexpr std::size_t kMaxHeaderScan = 1024 * 1024;

struct LocalTransportOptions {
  std::string data_dir;         // mailboxes live under <data_dir>/mail/ (mailbox_path)
  std::size_t workers = 4;      // worker threads; 0 is taken as 1
  mailbox::MaildirOptions maildir;  // host name, clock and system calls, for tests
  // Where forwarded copies are queued (remote targets of aliases); null = remote targets
  // defer with 4.4.3. In the server, the same Intake the SMTP sessions use.
  queue::Intake* forward = nullptr;
};

class LocalTransport final : public queue::Transport {
 public:
  // Starts the workers. `spool` is only read (open_body); `directory` only resolve()d.
  LocalTransport(const queue::Spool& spool, const auth::Directory& directory, LocalTransportOptions options);
  // Finishes every job already handed to deliver() (each `done` is called), then joins the
  // workers. No deliver() may start once the destructor has.
  ~LocalTransport() override;
  LocalTransport(const LocalTransport&) = delete;
  LocalTransport& operator=(const LocalTransport&) = delete;

  // Queues the job and returns at once; a worker delivers it and calls `done` (see the file
  // comment). An index past message.envelope.recipients is a caller bug and aborts.
  void deliver(queue::DeliveryJob job, std::function<void(std::vector<queue::RecipientResult>)> done) override;

 private:
  struct Pending {
    queue::DeliveryJob job;
    std::function<void(std::vector<queue::RecipientResult>)> done;
  };
  class Attempt;  // one job on one worker (local_transport.cc)

  void run_worker();

  const queue::Spool& spool_;
  const auth::Directory& directory_;
  const LocalTransportOptions options_;

  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace petrel::delivery
