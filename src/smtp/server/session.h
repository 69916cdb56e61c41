// smtp/server/session.h: one inbound SMTP session (RFC 5321), from banner to close.
//
// Promise: every command gets exactly one reply with an enhanced status code (RFC 2034);
// replies to pipelined commands (RFC 2920) are sent in order and flushed before the session
// waits for input; every wait has a deadline; memory is fixed per session (input buffer,
// one transaction) and independent of message size, because message octets stream straight
// to the queue's MessageWriter. 250 after DATA/BDAT LAST is sent only once the Intake has
// synced the message (queue/intake.h).
// Commands run through a table (kCommands in session.cc): each row names the states in which
// the verb is allowed and the handler that runs it, one file per command family
// (cmd_helo.cc, cmd_mail.cc, cmd_data.cc, cmd_misc.cc).
// Listener policy (config::ListenerKind): "smtp" (MX) offers AUTH only with auth.allow_on_smtp;
// "submission" and "submissions" require AUTH before MAIL (RFC 6409 4.3: 530 5.7.0). AUTH is
// offered and accepted only over TLS (538 5.7.11 before it); its SASL steps, which may run
// argon2id, go to the blocking pool and the session waits without holding its event loop
// (cmd_auth.cc). An authenticated session may relay anywhere, but only with sender addresses
// the account owns, in MAIL FROM and in From: (553 5.7.1), and its messages get Date: and
// Message-ID: when they lack them (cmd_data.cc).
// Policy (policy/README.md): at connect, HELO, MAIL, RCPT and end of data the session asks
// SessionContext::policy and awaits its decision: a refusal is sent instead of the positive
// reply; header fields it adds are written above our Received: (session_policy.cc). Relaying,
// unknown users and sender ownership are decided there; protocol rules stay here.
// Not done here: accepting connections and counting them (net/acceptor.h, session_factory.h).
// Thread: a session lives on one io_context thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "auth/auth_limiter.h"
#include "auth/directory.h"
#include "auth/login_guard.h"
#include "auth/sasl.h"
#include "config/config.h"
#include "mail/command.h"
#include "mail/envelope.h"
#include "net/asio.h"
#include "net/connection_limiter.h"
#include "net/input_buffer.h"
#include "net/stream.h"
#include "policy/chain.h"
#include "queue/intake.h"
#include "smtp/server/data_decoder.h"
#include "smtp/server/submission_headers.h"

namespace petrel::smtp::server {

// What every session shares; owned by `petrel serve` (app/serve.cc), outlives all sessions.
struct SessionContext {
  const config::Config& config;
  auth::Directory& directory;
  queue::Intake& intake;
  net::asio::ssl::context* tls = nullptr;  // null: no STARTTLS offered
  // AUTH (all three or none): the mechanisms, the shared failure counters, and the pool that
  // runs SASL steps (blocking: argon2id, SQLite).
  const auth::SaslServer* sasl = nullptr;
  auth::AuthLimiter* auth_limiter = nullptr;
  net::asio::thread_pool* blocking = nullptr;
  // The policy checks (policy/chain.h); required: without it nothing refuses relaying. Who may
  // use which sender address is one of them ("sender_rights", app/policy_setup.h).
  const policy::Chain* policy = nullptr;
};

// Released when the session ends (the server's connection counters).
using ConnectionSlot = net::ConnectionLimiter::Slot;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(SessionContext& ctx, const config::ListenerConfig& listener, net::tcp::socket socket,
          std::unique_ptr<ConnectionSlot> slot);
  ~Session();

  // Runs the session to its end. The coroutine holds a shared_ptr to the session, and so
  // does the deadline watcher, so the session lives until both have returned.
  static void start(std::shared_ptr<Session> session);

  enum class State {
    kConnected,  // banner sent, no EHLO/HELO yet
    kGreeted,    // EHLO/HELO done, no transaction
    kMail,       // MAIL accepted, no recipient yet
    kRcpt,       // at least one recipient accepted
    kChunking,   // BDAT chunks being received (RFC 3030)
  };

  // What the loop does after a handler has queued its reply.
  enum class Next { kContinue, kClose, kData, kBdat, kStartTls, kAuth, kPolicy };

  // Handlers (one file per family). `args` is the text after the verb.
  Next handle_ehlo(std::string_view args);
  Next handle_helo(std::string_view args);
  Next handle_mail(std::string_view args);
  Next handle_rcpt(std::string_view args);
  Next handle_data(std::string_view args);
  Next handle_bdat(std::string_view args);
  Next handle_rset(std::string_view args);
  Next handle_noop(std::string_view args);
  Next handle_quit(std::string_view args);
  Next handle_vrfy(std::string_view args);
  Next handle_expn(std::string_view args);
  Next handle_help(std::string_view args);
  Next handle_starttls(std::string_view args);
  Next handle_auth(std::string_view args);

 private:
  friend struct CommandTable;

  net::awaitable<void> run();
  net::awaitable<bool> read_more(std::chrono::milliseconds timeout);
  // Sends the queued replies within `timeout` (default: the command timeout).
  net::awaitable<bool> flush(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  net::awaitable<bool> receive_data();
  net::awaitable<bool> receive_bdat_chunk();
  net::awaitable<bool> start_tls();
  net::awaitable<void> finish_message();

  void dispatch_line(std::string_view line, Next& next);
  // EHLO/HELO common part: records the client's name and resets the session, or replies 501
  // and returns what the loop does next (nullopt: greeted).
  std::optional<Next> greet(std::string_view args, bool esmtp);
  void send(const mail::Reply& reply);
  void send(int code, std::string_view enhanced, std::string_view text);
  // Counts an error reply; true when the session has had too many and must end.
  bool count_error();
  void reset_transaction();
  std::optional<mail::Reply> begin_message();
  void absorb(std::string_view octets);
  void store(std::string_view octets);  // appends to the MessageWriter, noting storage failure
  std::string received_header(const std::string& queue_id) const;
  mail::Extensions extensions() const;
  bool client_trusted() const { return trusted_; }
  // The domain whose postmaster gets RCPT TO:<Postmaster>; nullopt when we serve none that fits.
  std::optional<std::string> postmaster_domain() const;
  void log_reply(const mail::Reply& reply);
  // AUTH (cmd_auth.cc).
  bool auth_configured() const;  // this listener may offer AUTH at all
  bool auth_offered() const;     // ... and it may right now (TLS is up)
  bool submission() const;       // a submission listener: AUTH before MAIL
  net::awaitable<bool> authenticate();
  template <typename F>
  net::awaitable<auth::AuthStep> run_step(F f);
  // Submission checks of the header section, once it is complete (cmd_data.cc).
  void check_submitted_header();
  // Policy (session_policy.cc): a handler that needs a verdict returns ask_policy(stage, f);
  // the loop awaits the chain (run_policy) and calls f with the decision, which replies and
  // returns kContinue or kClose.
  using Proceed = Next (Session::*)(const policy::Decision&);
  struct PendingPolicy {
    policy::Stage stage;
    Proceed proceed;
  };
  Next ask_policy(policy::Stage stage, Proceed proceed);
  net::awaitable<bool> run_policy();
  net::awaitable<policy::Decision> await_policy(const policy::Context& context);
  policy::Context policy_context(policy::Stage stage) const;
  // Sends the decision's reply when it refuses; true then.
  bool refused(const policy::Decision& decision);
  Next proceed_ehlo(const policy::Decision& decision);
  Next proceed_helo(const policy::Decision& decision);
  Next proceed_mail(const policy::Decision& decision);
  Next proceed_rcpt(const policy::Decision& decision);
  // The reply to a HELO/EHLO that policy refused: the session is not greeted.
  Next refuse_greeting(const policy::Decision& decision);

  SessionContext& ctx_;
  const config::ListenerConfig& listener_;
  const config::SmtpConfig& limits_;
  net::Stream stream_;
  net::Deadline deadline_;
  std::unique_ptr<ConnectionSlot> slot_;
  net::InputBuffer in_;
  std::string out_;
  std::string scratch_;  // decoded DATA octets between reads; bounded by the read size

  std::string client_ip_;
  std::string session_id_;  // for log lines until a queue id exists
  bool trusted_ = false;
  State state_ = State::kConnected;
  bool esmtp_ = false;
  std::string helo_;
  std::size_t errors_ = 0;
  std::size_t messages_ = 0;
  std::size_t replies_by_class_[4] = {};  // 2xx..5xx replies sent, for the disconnect log line
  std::string_view verb_;  // of the command being handled, for log lines
  std::optional<PendingPolicy> pending_policy_;  // the question the loop is to ask next
  // Header fields policy added (policy/README.md "Headers"): at connect, for the session; at
  // EHLO/HELO, until the next one or STARTTLS.
  std::vector<std::string> connect_headers_;
  std::vector<std::string> helo_headers_;

  // Authentication (RFC 4954): once per session, forgotten by STARTTLS.
  std::string auth_user_;  // the authenticated account (its canonical key); empty: not authenticated
  std::size_t auth_failures_ = 0;
  std::unique_ptr<auth::AuthExchange> auth_exchange_;  // the exchange AUTH started
  std::string auth_line_;                              // the client's line being stepped

  // The transaction (RFC 5321 3.3): from MAIL to the end of DATA/BDAT LAST or RSET.
  struct Transaction {
    mail::Envelope envelope;
    queue::MessageWriterPtr writer;
    DataDecoder decoder;
    BodyScanner scanner;
    std::uint64_t size = 0;       // message octets from the client
    bool oversize = false;
    bool storage_failed = false;
    // Authenticated sessions: the header section is held until complete, checked, and stored
    // after our additions (Date:, Message-ID:).
    bool submitted = false;
    HeaderCollector header;
    std::optional<mail::Reply> header_refusal;  // answer at the end of data instead of 250
    // The addresses of the one From: field, once parsed (submissions): for policy at the end.
    std::optional<std::vector<mail::Address>> header_from;
    std::vector<std::string> policy_headers;  // added by policy at MAIL and RCPT
  };
  Transaction tx_;
  std::optional<mail::Recipient> pending_rcpt_;  // RCPT: the recipient policy is asked about

  // The BDAT chunk being read (RFC 3030): kept outside the transaction because a refused
  // chunk's octets must still be counted off exactly.
  std::uint64_t chunk_left_ = 0;
  bool chunk_last_ = false;
  std::optional<mail::Reply> chunk_refusal_;  // answer after the chunk instead of accepting it
};

}  // namespace petrel::smtp::server
