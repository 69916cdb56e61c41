// auth/sasl.h: the server side of SASL (RFC 4422) as SMTP AUTH (RFC 4954), IMAP AUTHENTICATE
// (RFC 9051) and POP3 AUTH (RFC 5034) share it: PLAIN (RFC 4616), LOGIN (the de-facto
// "Username:"/"Password:" exchange), SCRAM-SHA-256 (RFC 5802, RFC 7677, no channel binding)
// and CRAM-MD5 (RFC 2195, off by default).
//
// Promise: a SaslMechanism is one authentication's state machine. It sees decoded octets and
// answers with a challenge, a success naming the authentication identity, or a failure whose
// class (bad credentials, malformed, temporary) picks the reply code; the failure's text is
// for the log only. A wrong password and an unknown user end the same way, with the same
// client-visible bytes and comparable work (argon2id against a dummy hash; SCRAM with a salt
// derived from the user name and a per-process secret, so repeated probes see a stable salt).
// Proofs and digests are compared in constant time (CRYPTO_memcmp). Passwords never appear in
// a failure's text.
// The protocol layer owns the line: decode_response() turns a client line into octets,
// recognises "*" (cancellation, RFC 4422 3.5: the caller answers 501 and drops the
// mechanism) and "=" (an empty initial response, RFC 4954 4), and refuses lines longer than
// kMaxResponseLength (12,288 octets, RFC 4954 4) or invalid base64.
// Not done here: the protocol verbs and reply codes, rate limits and failure counters, running
// off the event loop. step() calls the CredentialSource synchronously (argon2id, SQLite): run
// it on the blocking pool.
// Thread: a SaslServer may be shared by every thread (const after construction, and its
// CredentialSource must then be thread-safe); a SaslMechanism belongs to one session.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace petrel::auth {

// RFC 4954 4: servers must accept responses of at least 12,288 octets (the base64 line).
inline constexpr std::size_t kMaxResponseLength = 12288;

// RFC 7677 4: at least 4096; the iteration count stored with new SCRAM keys.
inline constexpr std::uint32_t kScramIterations = 4096;

// SCRAM-SHA-256 stored keys (RFC 5802 3): never the password, never the SaltedPassword.
struct ScramKeys {
  std::string salt;                // raw octets
  std::uint32_t iterations = 0;
  std::string stored_key;          // H(ClientKey), 32 octets
  std::string server_key;          // HMAC(SaltedPassword, "Server Key"), 32 octets
};

// Computes the stored keys for `password` (PBKDF2-HMAC-SHA-256) over Normalize(password),
// that is SASLprep as a stored string (RFC 5802 2.2, saslprep.h): "I\u00ADX" and "\u2168"
// give the keys of "IX", which is what a client that follows RFC 5802 derives from any of
// them. Printable ASCII is unchanged, so keys stored before SASLprep was applied still match.
// Permanent error when SASLprep refuses the password; temporary when OpenSSL fails.
base::Result<ScramKeys> compute_scram_keys(std::string_view password, std::string_view salt,
                                           std::uint32_t iterations);
// As above with a fresh 16-octet random salt and kScramIterations.
base::Result<ScramKeys> new_scram_keys(std::string_view password);

// What the mechanisms ask about an account. `authcid` is what the client sent (for SMTP, an
// address); the source folds it as the store does. Blocking allowed.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // True when `password` (as the client sent it) is the account's password, compared after
  // SASLprep (RFC 4616 2, RFC 4013; the store prepares both sides, saslprep.h); false for a
  // wrong password, one SASLprep refuses, and an unknown or malformed name, the last at the
  // same cost as a wrong password. An error only for storage trouble.
  virtual base::Result<bool> verify_password(std::string_view authcid, std::string_view password) = 0;
  // The account's SCRAM-SHA-256 keys; nullopt when unknown or when the account has none
  // (a password set before SCRAM keys were stored).
  virtual base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view authcid) = 0;
  // The account's CRAM-MD5 key state (cram_md5_state.h: the HMAC-MD5 inner and outer MD5
  // chaining values, 32 octets); nullopt when unknown or not stored. Password-equivalent for
  // CRAM-MD5, never the password itself.
  virtual base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) = 0;
};

enum class SaslOutcome {
  kContinue,   // send `data` as a challenge and call step() with the client's answer
  kSuccess,    // authenticated as `authcid` (SMTP 235)
  kFailed,     // wrong credentials or unknown user (SMTP 535 5.7.8)
  kMalformed,  // the client broke the mechanism's syntax (SMTP 501 5.5.2)
  kTemporary,  // the credential store failed (SMTP 454 4.7.0)
};

struct SaslStep {
  SaslOutcome outcome = SaslOutcome::kFailed;
  std::string data;     // kContinue: the challenge, raw octets (the caller base64-encodes)
  std::string authcid;  // kSuccess: the identity as the client named it; kFailed: the name
                        // tried, when the exchange got that far (for per-account counters)
  std::string reason;   // failures: for the log only, never sent to the client
};

class SaslMechanism {
 public:
  virtual ~SaslMechanism() = default;
  virtual std::string_view name() const = 0;
  // The first step. `initial_response` is nullopt when the client sent none (the mechanism
  // then answers with its first challenge, possibly empty) and "" for an empty one ("=").
  virtual SaslStep start(std::optional<std::string_view> initial_response) = 0;
  // Each later step, with the decoded answer to the last challenge. Calling it after a final
  // outcome is a failure (kMalformed). Responses longer than kMaxResponseLength are refused.
  virtual SaslStep step(std::string_view response) = 0;
};

// Names as advertised (upper case).
inline constexpr std::string_view kPlain = "PLAIN";
inline constexpr std::string_view kLogin = "LOGIN";
inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kCramMd5 = "CRAM-MD5";

struct SaslOptions {
  // Advertised and accepted, in this order. CRAM-MD5 is off by default (issue 6): it needs a
  // password-equivalent secret.
  std::vector<std::string> mechanisms{std::string(kScramSha256), std::string(kPlain), std::string(kLogin)};
  // The host name in CRAM-MD5 challenges (RFC 2195 2: "<random.timestamp@hostname>").
  std::string hostname = "localhost";
  // Seam for tests: returns a fresh server nonce of printable ASCII without ',' (SCRAM) and
  // the random part of a CRAM-MD5 challenge. Null: 18 random octets, base64.
  std::function<std::string()> nonce;
  // Secret behind the fake SCRAM salts of unknown users; empty: 32 random octets drawn once.
  std::string fake_salt_secret;
};

class SaslServer {
 public:
  // `credentials` must outlive the server and every mechanism it starts.
  SaslServer(CredentialSource& credentials, SaslOptions options);
  // The enabled mechanisms, as advertised ("AUTH SCRAM-SHA-256 PLAIN LOGIN").
  const std::vector<std::string>& mechanisms() const { return options_.mechanisms; }
  bool enabled(std::string_view name) const;
  // A new state machine for `name` (case-insensitive); nullptr when unknown or not enabled
  // (SMTP 504 5.5.4).
  std::unique_ptr<SaslMechanism> start(std::string_view name) const;

 private:
  std::string nonce() const;

  CredentialSource& credentials_;
  SaslOptions options_;
};

// A client line, decoded.
struct SaslResponse {
  bool cancelled = false;  // "*": abort the exchange (RFC 4422 3.5), caller answers 501
  std::string octets;
};
// Decodes one client line (without CRLF): "*", "=" (empty), or strict base64 (RFC 4648 4,
// padded, no whitespace). A permanent error for invalid base64 or a line longer than
// kMaxResponseLength.
base::Result<SaslResponse> decode_response(std::string_view line, bool initial = false);

// Strict base64 (RFC 4648 4) of raw octets / back; decoding refuses anything not canonical.
std::string base64_encode(std::string_view octets);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace petrel::auth
