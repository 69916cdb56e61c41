// cmd_auth.cc: AUTH (RFC 4954) and the listener policy that decides where it is offered.
//
// The exchange: AUTH names a mechanism (and may carry an initial response); the server sends
// 334 challenges and reads one base64 line per challenge until the mechanism ends. "*"
// cancels (501 5.7.0). Every SASL step runs on the blocking pool (argon2id costs about a
// quarter second of CPU; SQLite may touch the disk) while the session waits asynchronously.
// Failures are counted per connection (max_failures, then 421) and in the shared AuthLimiter
// per client address and account name (tarpit before 535, then 454 for a while). Nothing
// the client sends during the exchange is logged: it may be a password.
#include "base/log.h"
#include "base/strings.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

bool Session::auth_configured() const {
  if (!ctx_.sasl || ctx_.sasl->mechanisms().empty()) return false;
  return listener_.kind != config::ListenerKind::kSmtp || ctx_.config.auth.allow_on_smtp;
}

bool Session::auth_offered() const { return esmtp_ && auth_configured() && stream_.is_tls(); }

bool Session::submission() const { return listener_.kind != config::ListenerKind::kSmtp; }

Session::Next Session::handle_auth(std::string_view args) {
  if (!auth_configured()) {
    send(502, "5.5.1", "AUTH not available");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  if (!esmtp_) {
    send(503, "5.5.1", "Send EHLO first");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 4954 6 / RFC 6409: no credentials over a clear channel.
  if (!stream_.is_tls()) {
    send(538, "5.7.11", "Encryption required for requested authentication mechanism");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 4954 4: once per session.
  if (!auth_user_.empty()) {
    send(503, "5.5.1", "Already authenticated");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  if (ctx_.auth_limiter && ctx_.auth_limiter->ip_locked(client_ip_)) {
    send(454, "4.7.0", "Too many failed authentications, try again later");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  auto arg = base::trim(args);
  auto space = arg.find(' ');
  std::string_view name = arg.substr(0, space);
  std::optional<std::string_view> initial;
  if (space != std::string_view::npos) initial = base::trim(arg.substr(space + 1));
  if (name.empty() || (initial && (initial->empty() || initial->find(' ') != std::string_view::npos))) {
    send(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  auto mechanism = ctx_.sasl->start(name);
  if (!mechanism) {
    send(504, "5.5.4", "Unrecognized authentication mechanism");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  sasl_initial_.reset();
  if (initial) {
    auto decoded = auth::decode_response(*initial, /*initial=*/true);
    if (!decoded) {
      send(501, "5.5.2", "Cannot decode the initial response");
      return count_error() ? Next::kClose : Next::kContinue;
    }
    if (decoded->cancelled) {
      send(501, "5.7.0", "Authentication cancelled");
      return count_error() ? Next::kClose : Next::kContinue;
    }
    sasl_initial_ = std::move(decoded->octets);
  }
  sasl_ = std::move(mechanism);
  return Next::kAuth;
}

// Runs one SASL step on the blocking pool and resumes on the session's executor. Safe: the
// session coroutine holds the session alive while it waits, and the server joins the pool
// before it destroys sessions (serve.cc), so `f`'s captures outlive the step.
template <typename F>
net::awaitable<auth::SaslStep> Session::run_step(F f) {
  if (!ctx_.blocking) co_return f();
  co_return co_await net::asio::async_initiate<const net::asio::use_awaitable_t<>&, void(auth::SaslStep)>(
      [pool = ctx_.blocking, f = std::move(f)](auto handler) mutable {
        auto ex = net::asio::get_associated_executor(handler);
        net::asio::post(*pool, [f = std::move(f), handler = std::move(handler), ex]() mutable {
          auth::SaslStep result = f();
          net::asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
            handler(std::move(result));
          });
        });
      },
      net::asio::use_awaitable);
}

net::awaitable<bool> Session::authenticate() {
  verb_ = "AUTH";  // the command line's buffer is about to hold SASL responses
  const std::string mechanism(sasl_->name());
  auto step = co_await run_step([this] {
    return sasl_->start(sasl_initial_ ? std::optional<std::string_view>(*sasl_initial_) : std::nullopt);
  });
  sasl_initial_.reset();

  // The challenge/response loop (RFC 4954 4).
  std::optional<mail::Reply> abort;  // the exchange ended by the client's fault
  while (step.outcome == auth::SaslOutcome::kContinue) {
    out_ += "334 " + auth::base64_encode(step.data) + "\r\n";
    ++replies_by_class_[1];
    if (!co_await flush()) co_return false;
    std::string_view line;
    net::InputBuffer::LineStatus status;
    while ((status = in_.next_line(auth::kMaxResponseLength + 2, line)) == net::InputBuffer::LineStatus::kNeedMore) {
      if (!co_await read_more(limits_.command_timeout)) co_return false;
    }
    if (status == net::InputBuffer::LineStatus::kTooLong) {
      // The rest of the line is read as SASL too: it cannot become a command.
      while (!in_.skip_line()) {
        if (!co_await read_more(limits_.command_timeout)) co_return false;
      }
      abort = mail::reply(500, "5.5.6", "Authentication exchange line is too long");
      break;
    }
    auto response = auth::decode_response(line);
    if (!response) {
      abort = mail::reply(501, "5.5.2", "Cannot decode the response");
      break;
    }
    if (response->cancelled) {
      abort = mail::reply(501, "5.7.0", "Authentication cancelled");
      break;
    }
    // The response waits in a member, not in the lambda: GCC 12 destroys init-captured
    // temporaries of a co_await expression twice.
    sasl_response_ = std::move(response->octets);
    step = co_await run_step([this] { return sasl_->step(sasl_response_); });
    sasl_response_.clear();
  }
  sasl_.reset();

  auto fail = [&](const mail::Reply& reply) -> bool {
    send(reply);
    if (++auth_failures_ >= ctx_.config.auth.max_failures) {
      send(421, "4.7.0", ctx_.config.server.hostname + " Too many failed authentications, closing connection");
      return false;
    }
    return !count_error();
  };

  if (abort) {
    PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=aborted", session_id_, client_ip_, mechanism);
    co_return fail(*abort);
  }
  // A locked account name gets 454 whatever the outcome, right password or not, so that the
  // lockout cannot be used to test passwords; names are locked whether they exist or not.
  const bool locked = ctx_.auth_limiter && !step.authcid.empty() && ctx_.auth_limiter->account_locked(step.authcid);
  switch (step.outcome) {
    case auth::SaslOutcome::kSuccess:
      if (locked) break;
      auth_user_ = step.authcid;
      if (ctx_.auth_limiter) ctx_.auth_limiter->record_success(step.authcid);
      PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=ok user=<{}>", session_id_, client_ip_,
                 mechanism, base::log_escape(auth_user_, 300));
      send(235, "2.7.0", "Authentication successful");
      co_return true;
    case auth::SaslOutcome::kFailed: {
      if (locked) break;
      auto delay = ctx_.auth_limiter ? ctx_.auth_limiter->record_failure(client_ip_, step.authcid)
                                     : std::chrono::milliseconds(0);
      PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=failed reason=\"{}\" tarpit_ms={}",
                 session_id_, client_ip_, mechanism, base::log_escape(step.reason), delay.count());
      if (delay.count() > 0) {
        // The tarpit: the 535 waits, the event loop does not.
        deadline_.expire_after(delay + limits_.command_timeout);
        net::asio::steady_timer pause(stream_.socket().get_executor(), delay);
        co_await pause.async_wait(net::use_nothrow);
      }
      co_return fail(mail::reply(535, "5.7.8", "Authentication credentials invalid"));
    }
    case auth::SaslOutcome::kMalformed:
      PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=malformed reason=\"{}\"", session_id_,
                 client_ip_, mechanism, base::log_escape(step.reason));
      co_return fail(mail::reply(501, "5.5.2", "Invalid authentication exchange"));
    case auth::SaslOutcome::kTemporary:
    case auth::SaslOutcome::kContinue:
      PETREL_LOG(kWarn, "smtp.auth", "session={} client={} mechanism={} result=temporary reason=\"{}\"", session_id_,
                 client_ip_, mechanism, base::log_escape(step.reason));
      send(454, "4.7.0", "Temporary authentication failure");
      co_return !count_error();
  }
  // The account name is locked out.
  if (ctx_.auth_limiter) (void)ctx_.auth_limiter->record_failure(client_ip_, "");
  PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=locked", session_id_, client_ip_, mechanism);
  co_return fail(mail::reply(454, "4.7.0", "Too many failed authentications, try again later"));
}

}  // namespace petrel::smtp::server
