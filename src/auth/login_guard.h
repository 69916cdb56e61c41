// auth/login_guard.h: one authentication attempt from the client's first word to a verdict,
// the same for SMTP AUTH (RFC 4954), IMAP AUTHENTICATE (RFC 9051 6.2.2) and POP3 AUTH
// (RFC 5034): the SASL exchange (sasl.h) inside the login limits (auth_limiter.h).
//
// Promise: LoginGuard::begin() refuses a client address that is locked out before any
// mechanism runs, then an AuthExchange walks the mechanism's challenges and ends in exactly
// one final AuthStep:
//   kSuccess      authenticated; `account` is the canonical account key (login_key(),
//                 address_key.h), whatever spelling the client used. The name's failure
//                 counter is cleared.
//   kFailed       wrong credentials or unknown name (the two look the same); one failure is
//                 counted against the client address and the canonical name, and `tarpit`
//                 says how long the caller waits before it answers.
//   kLocked       the client address (at begin) or the name tried (at the end) is locked out.
//                 A locked name is refused whatever the password, right or wrong, so the
//                 lockout cannot be used to test passwords; the attempt counts against the
//                 address only.
//   kMalformed    the client broke the mechanism's syntax (not counted here).
//   kTemporary    the credential store failed (not counted).
//   kAborted      the client cancelled ("*", RFC 4422 3.5), sent a line that is not base64, or
//                 the protocol gave up on its line (abort()); `abort` says which (not counted).
//   kUnsupported  the mechanism is unknown or not enabled (begin only).
// Names are counted whether or not an account exists, so a refusal says nothing about which
// accounts exist. Each step carries the fields a log line needs (mechanism, account, reason,
// tarpit); `reason` is for the log only and never holds a password.
// Not done here: reply codes and their texts, reading lines, base64-encoding challenges,
// sleeping for the tarpit, per-connection failure caps: the protocol session does those.
// start() and respond() run SASL steps, which call the CredentialSource synchronously
// (argon2id, SQLite): run them on the blocking pool, never on an event loop.
// Thread: a LoginGuard is const and may be shared by every session (the SaslServer and the
// AuthLimiter it points to are thread-safe); an AuthExchange belongs to one session, one call
// at a time, from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/auth_limiter.h"
#include "auth/sasl.h"

namespace petrel::auth {

enum class AuthResult {
  kChallenge,  // not final: send `challenge` and pass the client's line to respond()
  kSuccess,
  kFailed,
  kLocked,
  kMalformed,
  kTemporary,
  kAborted,
  kUnsupported,
};

enum class AbortReason {
  kNone,
  kCancelled,    // the client sent "*"
  kUndecodable,  // the client's line is not base64 (or too long for SASL, RFC 4954 4)
  kLineTooLong,  // the protocol could not read the line at all (abort())
};

struct AuthStep {
  AuthResult result = AuthResult::kTemporary;
  std::string challenge;                 // kChallenge: raw octets (the protocol encodes them)
  std::string account;                   // kSuccess: the canonical account key; kFailed,
                                         // kLocked: the key of the name tried, when known
  std::chrono::milliseconds tarpit{0};   // kFailed: wait this long before answering
  AbortReason abort = AbortReason::kNone;  // kAborted
  std::string reason;                    // failures: for the log only

  bool final() const { return result != AuthResult::kChallenge; }
};

class LoginGuard;

class AuthExchange {
 public:
  // The mechanism's name as advertised ("SCRAM-SHA-256"), for log lines.
  std::string_view mechanism() const { return mechanism_->name(); }
  // The first step: the mechanism starts with the initial response given to begin(), if any.
  // Blocking (see the header comment).
  AuthStep start();
  // The client's next line as it came (base64, "*" to cancel), without CRLF. Blocking.
  AuthStep respond(std::string_view line);
  // The protocol could not take the client's line (too long to read): the exchange ends.
  AuthStep abort(AbortReason why);

 private:
  friend class LoginGuard;
  AuthExchange(AuthLimiter* limiter, std::string client_ip, std::unique_ptr<SaslMechanism> mechanism,
               std::optional<std::string> initial);
  AuthStep finish(SaslStep step);

  AuthLimiter* limiter_;  // null: no limits
  std::string client_ip_;
  std::unique_ptr<SaslMechanism> mechanism_;
  std::optional<std::string> initial_;  // decoded initial response, until start()
  bool done_ = false;
};

class LoginGuard {
 public:
  // `limiter` may be null: nothing is counted and nothing is locked (tests, tools). Both must
  // outlive every exchange the guard begins; the guard itself holds only these two pointers
  // and may be a temporary (an exchange does not refer to it).
  LoginGuard(const SaslServer& sasl, AuthLimiter* limiter) : sasl_(sasl), limiter_(limiter) {}

  // What begin() gives: an exchange to run, or (exchange null) the final step that refused it.
  struct Begun {
    std::unique_ptr<AuthExchange> exchange;
    AuthStep refusal;
  };
  // Begins an attempt by the client at `client_ip` (textual IPv4 or IPv6) with `mechanism`
  // (case-insensitive) and, when the client sent one, its initial response as it came (base64,
  // "=" for empty, "*" to cancel). Refused with kLocked while the address is locked out,
  // kUnsupported for a mechanism not enabled, kAborted for an initial response that cancels
  // or does not decode. Cheap (no SASL step runs): any thread.
  Begun begin(std::string_view client_ip, std::string_view mechanism,
              std::optional<std::string_view> initial_response) const;

  const SaslServer& sasl() const { return sasl_; }

 private:
  const SaslServer& sasl_;
  AuthLimiter* limiter_;
};

}  // namespace petrel::auth
