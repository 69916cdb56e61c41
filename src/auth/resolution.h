// auth/resolution.h: what an envelope recipient finally means, as a list of delivery targets.
//
// Directory::resolve() turns one recipient into the mailboxes, remote addresses and failed
// parts it stands for, by these rules (each decided here, so delivery need not know them):
//
// 1. Folding. The domain is case-insensitive (RFC 5321 2.4); the local part is case-folded for
//    lookup as address_key.h says. A target's `address` keeps the case it was written with (for
//    Delivered-To and the like); its mailbox_local/mailbox_domain are the folded names the
//    Maildir path is made from.
// 2. Not ours. An address literal or a domain we do not serve is one kRemote target, the
//    recipient as given; relay policy is the caller's business (ARCHITECTURE.md "No open relay").
// 3. Order of lookup in a served domain: the exact account; else the exact alias, expanded;
//    else, when subaddressing is on and the local part is "user<sep>tag" (RFC 5233: the
//    separator is configurable, "" disables it, the first separator counts, "user" must not be
//    empty), the account or alias "user"; else the domain's catch-all, whose target is itself
//    resolved by these rules; else a permanent error "5.1.1 ... unknown user".
//    The tag is not carried to an alias's targets.
// 4. Postmaster. postmaster@<served domain> with no account or alias goes to the catch-all if
//    there is one, else a permanent error that names the missing postmaster: RFC 5321 4.5.1
//    requires it and the SMTP server accepts it at RCPT, so the operator must define it.
//    <Postmaster> without a domain (RFC 5321 4.5.1) has no domain to look in: a permanent
//    error here. The SMTP server never queues it as such: at RCPT it becomes
//    postmaster@<server.primary_domain> (smtp/server/cmd_mail.cc, docs/config.md).
// 5. Aliases expand depth-first, targets in the order they were added. A target that is an
//    alias (or reaches one by subaddress) expands in turn; the target of an alias is resolved
//    exactly as a recipient would be, catch-all included.
//    - Duplicates are dropped: one mailbox once (by folded name, whatever address reached it),
//      one remote address once (local part as written, domain lowercased), the first kept.
//    - Loops: an alias already on the current expansion path is skipped (the other targets
//      still count); an alias already expanded elsewhere is skipped too, as its targets are in.
//      A catch-all is not applied to its own target: a catch-all that points to an unknown
//      address of its own domain makes that target kFailed instead of looping.
//    - Bounds: at most kMaxExpansionDepth nested expansions (aliases and catch-alls) on one
//      path and at most kMaxTargets targets in all. Beyond either the whole resolution is a
//      permanent error ("alias expansion too deep/large"): waiting will not fix it.
//    - An expansion that yields no target at all (only loops) is a permanent error.
// 6. Dangling targets. A target reached through an alias or a catch-all that lies in a served
//    domain but names nobody there (and no catch-all applies) is kFailed with a reason: the
//    caller bounces that part and delivers the rest. Only the recipient itself, naming nobody,
//    makes resolve() fail as a whole.
// 7. Quota. A kMailbox target carries its account's quota (0 = unlimited) as the snapshot
//    holds it; a subaddress, alias or catch-all reaching the account carries the same quota.
//
// Errors and reasons are permanent and begin with an RFC 3463 enhanced status code
// ("5.1.1 ...") for the DSN, followed by text that may be shown to the sender.
// Not done here: delivering, relay policy, SRS for forwarded remote targets (the original
// sender is kept), applying quotas (the Maildir writer does), any I/O (resolution reads the
// in-memory snapshot only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mail/address.h"

namespace petrel::auth {

inline constexpr int kMaxExpansionDepth = 10;        // nested alias/catch-all expansions on a path
inline constexpr std::size_t kMaxTargets = 1000;     // targets in one Resolution

struct DeliveryTarget {
  enum class Kind {
    kMailbox,  // a local account: deliver into mailbox_local@mailbox_domain
    kRemote,   // an address in a domain we do not serve (or a literal): relay it later
    kFailed,   // a part that cannot be delivered (dangling alias target): bounce it, see reason
  };
  Kind kind = Kind::kFailed;
  mail::Address address;        // as written by the recipient or by the alias/catch-all target
  std::string mailbox_local;    // kMailbox: the account's folded local part (no tag)
  std::string mailbox_domain;   // kMailbox: lowercased domain
  std::string reason;           // kFailed: "5.1.1 <addr>: ..." (enhanced code first)
  std::uint64_t quota_bytes = 0;  // kMailbox: the account's quota in bytes, 0 = unlimited

  bool operator==(const DeliveryTarget&) const = default;
};

// Never empty when returned as a value; order is the depth-first expansion order.
using Resolution = std::vector<DeliveryTarget>;

}  // namespace petrel::auth
