// policy/check.h: one policy check, and the verdict it gives the SMTP session at one stage of
// a session (connect, HELO, MAIL, RCPT, end of data). Design: policy/README.md.
//
// Promise: a Check answers each check() call exactly once by calling `done`, inline or later
// from any thread (the session re-posts the answer to its own executor). A check that waits
// (DNS later) bounds its own wait: the session has no deadline of its own on a verdict.
// Context is valid until `done` is called, not after; copy what a later call needs.
// Not done here: running several checks (Chain, chain.h), replying (the session), I/O.
// Failure: a check that cannot decide (a lookup failed) answers defer with a 4xx reply:
// unclassified means temporary (ARCHITECTURE.md).
// Thread: one Check serves every session of every event loop, concurrently: check() must be
// thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mail/address.h"
#include "mail/envelope.h"
#include "mail/reply.h"

namespace petrel::policy {

// Where in the session a check is asked (RFC 5321 3.1-3.3).
enum class Stage {
  kConnect,  // the TCP connection is up (and, on implicit TLS, the handshake done); before 220
  kHelo,     // EHLO/HELO: Context::helo is set
  kMail,     // MAIL FROM: Context::envelope holds the sender and its parameters
  kRcpt,     // RCPT TO: Context::recipient is the one asked for; envelope holds those accepted
  kData,     // end of data, before the durable commit: queue_id and header_from are set
};
std::string_view stage_name(Stage stage);

// What the session knows when it asks. Pointers are null where the stage has no such thing.
struct Context {
  Stage stage = Stage::kConnect;
  std::string_view session_id;  // "s1f", for log lines
  std::string_view queue_id;    // kData: the message's queue id
  std::string_view listener;    // the listener's name
  bool submission = false;      // a submission listener (RFC 6409: AUTH before MAIL)
  std::string_view client_ip;   // textual; IPv4-mapped IPv6 given as IPv4
  bool trusted = false;         // the client is in smtp.trusted_networks
  bool tls = false;             // the session is encrypted now
  std::string_view helo;        // kHelo and later: the name the client gave
  std::string_view auth_user;   // the authenticated identity; empty = not authenticated
  const mail::Envelope* envelope = nullptr;       // kMail and later
  const mail::Address* recipient = nullptr;       // kRcpt
  // kData, submissions only (null otherwise): the addresses of the message's one From: field,
  // as the session parsed them (RFC 5322 3.6.2; a message with none has an empty list).
  const std::vector<mail::Address>* header_from = nullptr;
};

struct Verdict {
  enum class Kind {
    kAccept,     // go on
    kReject,     // answer `reply` (5xx) and refuse what was asked
    kDefer,      // answer `reply` (4xx): try again later
    kAddHeader,  // go on, and put `header` on the message (not at kData: see chain.h)
  };
  Kind kind = Kind::kAccept;
  mail::Reply reply;   // kReject / kDefer
  std::string header;  // kAddHeader: one field, "Name: value" (folded lines CRLF-joined), no final CRLF
  std::string reason;  // for the log line (petrel explain): why, in a few words

  static Verdict accept(std::string reason = {});
  // `reply` must be 5xx (reject) / 4xx (defer): a wrong class is a bug (PETREL_ASSERT).
  static Verdict reject(mail::Reply reply, std::string reason);
  static Verdict defer(mail::Reply reply, std::string reason);
  static Verdict add_header(std::string field, std::string reason);
};
std::string_view kind_name(Verdict::Kind kind);

class Check {
 public:
  virtual ~Check() = default;
  // Short and stable, for the log: "relay", "sender_rights".
  virtual std::string_view name() const = 0;
  // Whether the check has anything to say at `stage`; the chain skips it otherwise.
  virtual bool wants(Stage stage) const = 0;
  // Decides; calls `done` exactly once (see the promise above).
  virtual void check(const Context& context, std::function<void(Verdict)> done) = 0;
};

}  // namespace petrel::policy
