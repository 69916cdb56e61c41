// queue/notice_policy.h: who is told what about a recipient's new state (RFC 3461 DSN).
//
// What it is: pure functions of a recipient's state record, its NOTIFY parameter and the
// kind of notice being made; no I/O, so each rule is one row of a table test
// (notice_policy_test.cc). The scheduler asks it which DSN recipient blocks to write; notice.h
// composes and queues the DSN.
// Promise (RFC 3461 4.1): NOTIFY absent means FAILURE, and Petrel also warns of delay then, as
// Postfix does; NEVER means no notice; a success is reported only when asked (SUCCESS) and
// the next hop did not take the duty over (it offered DSN and got NOTIFY, RFC 3461 6); a
// double bounce (all_failures) reports every failed recipient whatever it asked.
// Not done here: whether a message gets a notice at all (null sender, double-bounce address:
// scheduler), composing it (mail/dsn.h, notice.h).
// Failure: none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mail/dsn.h"
#include "queue/spool_format.h"

namespace petrel::queue {

// The notice the sender gets about a recipient that came to `status` (with the record's
// kStateFlag* `state_flags`), having asked for `notify` (mail::kNotify* bits); nullopt: none.
// `delay`: this is a delay warning, so deferred recipients get "delayed". `all_failures`: a
// double bounce for the postmaster: every failed or expired recipient, nothing else.
std::optional<mail::DsnAction> notice_for(format::RecipientStatus status, std::uint8_t state_flags, std::uint8_t notify,
                                          bool delay, bool all_failures);

// The Status: of a DSN recipient block: the record's enhanced code, else the action's class
// default (RFC 3463 X.0.0).
std::string notice_status(mail::DsnAction action, const std::string& enhanced);

}  // namespace petrel::queue
