// smtp/client/session.h: one outgoing SMTP connection (RFC 5321), as an Asio coroutine object.
//
// What it is: Session::open() connects to one numeric address, reads the greeting, says EHLO
// (HELO when EHLO gets a 5xx), does STARTTLS per TlsPolicy (then EHLO again and uses only the
// new capabilities, RFC 3207 4.2), and AUTH when credentials are given. send() runs one mail
// transaction (MAIL, RCPT..., DATA, body, "."), pipelined when the server offers PIPELINING
// (RFC 2920), and may be called again on the same connection (RSET goes first). quit() says
// goodbye. Nothing here picks hosts, retries, or decides bounces: delivery/remote does that
// from the per-recipient replies returned here.
//
// Promises:
// - Every line sent ends in CRLF; the body is normalised (bare CR or LF → CRLF) and dot-stuffed
//   whatever the stored text holds (body_encoder.h). An address or parameter with CR, LF or NUL
//   is never sent: that transaction gets a synthesized 451 4.5.2 for every recipient.
// - Every wait is bounded by the matching Timeouts field (RFC 5321 4.5.3.2). Reply memory is
//   bounded whatever the server sends (reply_parser.h); a malformed, over-long or unsolicited
//   reply (bytes before we asked, plaintext left over after "220" to STARTTLS is discarded and
//   logged, never read as a TLS reply) is a temporary failure and ends the connection.
// - A reply out of place (a 3xx to MAIL/RCPT/RSET/"." such as a 354 that arrives where a
//   skipped pipelined RCPT reply belonged, a 2xx where a refusal or 354 was due) is a protocol
//   error (421 4.5.0, connection closed), never a result: every reply handed back as the
//   server's is 2xx for success or 4xx/5xx.
// - Reply text in results is at most 512 octets, controls removed (safe for logs and bounces).
// - Unclassified failures are temporary: lost connection, timeout, TLS trouble → 4xx.
//
// Results of send(), one RecipientReply per requested recipient index, in the order asked:
// - RCPT refused (4xx/5xx) → that RCPT reply.
// - RCPT accepted → the reply to the final "." (2xx delivered, 4xx/5xx as the server said).
// - MAIL refused → every recipient gets the MAIL reply.
// - DATA (the 354 step) refused → every accepted recipient gets that reply.
// - SIZE: the server's advertised limit is below Transaction::body_size → nothing is sent, every
//   recipient gets a synthesized 552 5.3.4, connection_usable stays true (try another host or
//   bounce: the caller decides).
// - SMTPUTF8: Envelope::smtputf8 set, the server does not offer SMTPUTF8, and the envelope as
//   sent (sender, these recipients, their ORCPTs) has a non-ASCII address or the header has
//   UTF-8 text (Transaction::header_utf8) → nothing is sent, every recipient gets a synthesized
//   553 5.6.7 (permanent, RFC 6531 3.2), connection usable. With ASCII addresses and an ASCII
//   header the message goes without the SMTPUTF8 parameter (Postfix's rule: a client that says
//   SMTPUTF8 whenever it is offered should not make its ASCII mail undeliverable).
// - Every RCPT refused → no body is sent. With PIPELINING the DATA went in the same write; if
//   the server still answered 354, Petrel sends just "." (an empty, recipient-less message the
//   server must refuse, RFC 2920 3.1) and reads that reply; the connection stays usable.
// - Connection lost or a timeout mid-transaction → every recipient without a final answer gets a
//   synthesized 421 4.4.2 (lost or timed out; a malformed reply: 421 4.5.0),
//   connection_usable = false. A 421 from the server also ends the connection. On a reused
//   connection a refused RSET (say "421 idle timeout") is a lost connection: 421 4.4.2 for all.
// - No recipients → nothing is said, an empty result.
//   Silence after the final "." is the same temporary failure even though the message may have
//   been delivered (RFC 1047): the caller defers; a duplicate is better than a loss.
// - CHUNKING (RFC 3030): when offered (and use_chunking), the body goes in BDAT chunks of about
//   32 KiB, line ends normalised but not dot-stuffed, the last one "BDAT n LAST"; with
//   PIPELINING the chunks do not wait for their 250s (at most 8 unread). The reply to the LAST
//   chunk, or the first refused chunk (no more chunks are sent after it, RFC 3030 2), is the
//   data reply. With every RCPT refused no BDAT is sent.
// - BODY=8BITMIME when the envelope says so and the server offers 8BITMIME; without the offer the
//   body is sent as is (no MIME downgrade, as Postfix does by default). SIZE= when offered.
//   DSN (RFC 3461): RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT only when the server offers DSN.
// TLS policy: kOpportunistic uses STARTTLS when offered and goes on in plain text when it is
// not; when the handshake fails open() returns an OpenFailure with tls_failed = true and the
// caller may open a NEW connection with kNone (Postfix "may"). A STARTTLS the server refuses
// (454) is plain text for kOpportunistic, an OpenFailure with that reply for kRequired.
// kRequired: no STARTTLS offered, or a failed handshake (or failed verification, when the
// context verifies) → OpenFailure with a synthesized 454 4.7.5 reply; never plain text.
// AUTH (RFC 4954): PLAIN when offered, else LOGIN; only over TLS unless allow_plain_auth.
// Credentials given but no usable mechanism, or AUTH refused → OpenFailure stage "auth".
//
// Thread: a Session belongs to the executor it was opened on; call one operation at a time
// (send, then send or quit). Destroying it closes the socket; a destroyed Session's pending
// timer coroutine only holds its own shared state, so destruction is safe at any time between
// operations.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "mail/envelope.h"
#include "mail/reply.h"
#include "net/asio.h"

namespace petrel::smtp::client {

enum class TlsPolicy : std::uint8_t {
  kNone,           // never STARTTLS
  kOpportunistic,  // STARTTLS if offered, unverified; plain if not offered (see above)
  kRequired,       // STARTTLS or fail (4.7.5); verification as the tls_context says
};

// RFC 5321 4.5.3.2 minimums for the remote side's answers; connect, starttls, rset and quit
// are Petrel's (Postfix uses similar values).
struct Timeouts {
  using duration = std::chrono::steady_clock::duration;
  duration connect = std::chrono::seconds(30);
  duration greeting = std::chrono::seconds(300);
  duration ehlo = std::chrono::seconds(300);
  duration starttls = std::chrono::seconds(300);  // the 220 reply and the handshake
  duration auth = std::chrono::seconds(300);
  duration mail = std::chrono::seconds(300);
  duration rcpt = std::chrono::seconds(300);
  duration data_init = std::chrono::seconds(120);
  duration data_block = std::chrono::seconds(180);  // each write of body data
  duration data_done = std::chrono::seconds(600);   // the reply to the final "."
  duration rset = std::chrono::seconds(120);
  duration quit = std::chrono::seconds(10);
};

struct SessionOptions {
  std::string helo_name;  // our host name for EHLO/HELO
  TlsPolicy tls = TlsPolicy::kOpportunistic;
  // Client context from net::make_client_tls_context(); required unless tls == kNone (without
  // one, kOpportunistic behaves as kNone and kRequired fails). Not owned; outlives the Session.
  net::asio::ssl::context* tls_context = nullptr;
  std::string tls_name;  // SNI and the verified name; empty = the host_name given to open()
  std::string auth_user;  // empty = no AUTH
  std::string auth_password;
  bool allow_plain_auth = false;  // AUTH without TLS (tests, trusted smarthost on loopback)
  bool use_chunking = true;       // BDAT (RFC 3030) when the server offers CHUNKING
  Timeouts timeouts;
};

struct Capabilities {
  bool esmtp = false;  // EHLO accepted (false after a HELO fallback: no extensions)
  bool pipelining = false;
  bool size = false;
  std::uint64_t size_limit = 0;  // SIZE's argument; 0 = no fixed limit
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool chunking = false;   // BDAT is used when offered (SessionOptions::use_chunking)
  bool starttls = false;
  std::vector<std::string> auth;  // mechanisms, upper case
};

struct Transaction {
  const mail::Envelope* envelope = nullptr;  // not owned; outlives send()
  std::vector<std::uint32_t> recipients;     // indices into envelope->recipients
  std::uint64_t body_size = 0;               // stored size, for SIZE= and the limit check
  bool header_utf8 = false;                  // the header section has UTF-8 text (SMTPUTF8 rule)
  // Called on the session's executor thread, 16 KiB at a time: it should not block for long
  // (page-cached spool reads are fine; a slow disk stalls this loop's other sessions).
  // Reads the stored body (CRLF text, not dot-stuffed) into (buffer, capacity); returns the
  // octets read, 0 at the end. An error aborts the transaction: the connection is closed (a
  // half-sent body must not be completed) and every accepted recipient gets a synthesized
  // 451 4.3.0 (temporary), connection_usable = false.
  std::function<base::Result<std::size_t>(char*, std::size_t)> read_body;
};

struct RecipientReply {
  std::uint32_t index = 0;  // into envelope->recipients
  mail::Reply reply;        // see "Results" above
  bool from_server = false;  // false = synthesized by Petrel (no Remote-MTA Diagnostic-Code)
};

struct TransactionResult {
  std::vector<RecipientReply> recipients;  // one per Transaction::recipients entry, same order
  bool connection_usable = false;          // send() may be called again
};

struct OpenFailure {
  // Always a usable reply: the server's (from_server) or a synthesized temporary one:
  // connect failure 421 4.4.1, timeout/lost connection 421 4.4.2, malformed reply 421 4.5.0,
  // TLS not offered/handshake failed/verification failed 454 4.7.5, AUTH impossible 454 4.7.0.
  mail::Reply reply;
  std::string stage;   // "connect", "greeting", "ehlo", "starttls", "auth"
  std::string detail;  // for logs (already escaped)
  bool from_server = false;  // reply is what the server said (Remote-MTA, Diagnostic-Code)
  bool tls_failed = false;   // STARTTLS handshake failed: a plain retry may be allowed
};

class Session {
 public:
  class State;  // shared with the deadline coroutine; defined in session.cc

  // Connects to address:port (numeric IPv4/IPv6, no DNS here), greeting, EHLO/HELO, STARTTLS,
  // AUTH, as the header comment says. host_name names the peer in peer() and, when
  // options.tls_name is empty, for SNI and verification. Never throws.
  static net::awaitable<std::variant<std::unique_ptr<Session>, OpenFailure>> open(
      net::asio::any_io_executor executor, std::string address, std::uint16_t port,
      std::string host_name, const SessionOptions& options);

  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // One transaction; RSET first when this is not the first. Requires every index to be valid.
  // When !usable(), returns at once with a synthesized 421 4.4.2 for everyone.
  net::awaitable<TransactionResult> send(const Transaction& transaction);
  // QUIT, waits up to Timeouts::quit for the 221, closes. Safe to call when !usable().
  net::awaitable<void> quit();

  const Capabilities& capabilities() const;
  bool usable() const;
  bool tls() const;
  std::string tls_description() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"; empty when plain
  std::string peer() const;  // "mx.example.org[192.0.2.1]" (Remote-MTA, logs)
  std::size_t transactions() const;  // send() calls that reached the server on this connection

 private:
  explicit Session(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace petrel::smtp::client
