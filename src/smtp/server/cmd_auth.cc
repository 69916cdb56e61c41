// cmd_auth.cc: AUTH (RFC 4954) and the listener policy that decides where it is offered.
//
// The exchange itself, the login limits and the verdict are auth::LoginGuard's
// (auth/login_guard.h), shared with IMAP and POP3; this file does the SMTP part: the AUTH
// command's syntax, the 334 challenge lines and the client's answers, running each SASL step
// on the blocking pool (argon2id costs about a quarter second of CPU; SQLite may touch the
// disk) while the session waits asynchronously, waiting out the tarpit before a 535, and
// mapping each verdict to its reply:
//   success 235 2.7.0 | failed 535 5.7.8 | locked 454 4.7.0 | malformed 501 5.5.2 |
//   temporary 454 4.7.0 | cancelled 501 5.7.0 | undecodable 501 5.5.2 | line too long 500 5.5.6 |
//   unknown mechanism 504 5.5.4.
// Failures are also counted per connection (auth.max_failures, then 421 and close). Nothing
// the client sends during the exchange is logged: it may be a password.
#include "auth/login_guard.h"
#include "base/log.h"
#include "base/strings.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {
namespace {

std::string_view result_name(const auth::AuthStep& step) {
  switch (step.result) {
    case auth::AuthResult::kChallenge: return "challenge";
    case auth::AuthResult::kSuccess: return "ok";
    case auth::AuthResult::kFailed: return "failed";
    case auth::AuthResult::kLocked: return "locked";
    case auth::AuthResult::kMalformed: return "malformed";
    case auth::AuthResult::kTemporary: return "temporary";
    case auth::AuthResult::kAborted: return "aborted";
    case auth::AuthResult::kUnsupported: return "unsupported";
  }
  return "unknown";
}

// The reply to a final step other than success (RFC 4954 6 for the codes).
mail::Reply reply_for(const auth::AuthStep& step) {
  switch (step.result) {
    case auth::AuthResult::kFailed: return mail::reply(535, "5.7.8", "Authentication credentials invalid");
    case auth::AuthResult::kLocked: return mail::reply(454, "4.7.0", "Too many failed authentications, try again later");
    case auth::AuthResult::kMalformed: return mail::reply(501, "5.5.2", "Invalid authentication exchange");
    case auth::AuthResult::kUnsupported: return mail::reply(504, "5.5.4", "Unrecognized authentication mechanism");
    case auth::AuthResult::kAborted:
      switch (step.abort) {
        case auth::AbortReason::kLineTooLong: return mail::reply(500, "5.5.6", "Authentication exchange line is too long");
        case auth::AbortReason::kUndecodable: return mail::reply(501, "5.5.2", "Cannot decode the response");
        case auth::AbortReason::kCancelled:
        case auth::AbortReason::kNone: break;
      }
      return mail::reply(501, "5.7.0", "Authentication cancelled");
    case auth::AuthResult::kSuccess:
    case auth::AuthResult::kChallenge:
    case auth::AuthResult::kTemporary: break;
  }
  return mail::reply(454, "4.7.0", "Temporary authentication failure");
}

}  // namespace

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
  auto arg = base::trim(args);
  auto space = arg.find(' ');
  std::string_view name = arg.substr(0, space);
  std::optional<std::string_view> initial;
  if (space != std::string_view::npos) initial = base::trim(arg.substr(space + 1));
  if (name.empty() || (initial && (initial->empty() || initial->find(' ') != std::string_view::npos))) {
    send(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // The guard only points at what every session shares (the mechanisms and the limiter).
  auth::LoginGuard guard(*ctx_.sasl, ctx_.auth_limiter);
  auto begun = guard.begin(client_ip_, name, initial);
  if (!begun.exchange) {
    const auth::AuthStep& refusal = begun.refusal;
    PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism=\"{}\" result={}", session_id_, client_ip_,
               base::log_escape(name, 40), result_name(refusal));
    if (refusal.result == auth::AuthResult::kAborted && refusal.abort == auth::AbortReason::kUndecodable) {
      send(501, "5.5.2", "Cannot decode the initial response");
    } else {
      send(reply_for(refusal));
    }
    return count_error() ? Next::kClose : Next::kContinue;
  }
  auth_exchange_ = std::move(begun.exchange);
  return Next::kAuth;
}

// Runs one step of the exchange on the blocking pool and resumes on the session's executor.
// Safe: the session coroutine holds the session alive while it waits, and the server joins
// the pool before it destroys sessions (serve.cc), so `f`'s captures outlive the step.
template <typename F>
net::awaitable<auth::AuthStep> Session::run_step(F f) {
  if (!ctx_.blocking) co_return f();
  co_return co_await net::asio::async_initiate<const net::asio::use_awaitable_t<>&, void(auth::AuthStep)>(
      [pool = ctx_.blocking, f = std::move(f)](auto handler) mutable {
        auto ex = net::asio::get_associated_executor(handler);
        net::asio::post(*pool, [f = std::move(f), handler = std::move(handler), ex]() mutable {
          auth::AuthStep result = f();
          net::asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
            handler(std::move(result));
          });
        });
      },
      net::asio::use_awaitable);
}

net::awaitable<bool> Session::authenticate() {
  verb_ = "AUTH";  // the command line's buffer is about to hold SASL responses
  const std::string mechanism(auth_exchange_->mechanism());
  auto step = co_await run_step([this] { return auth_exchange_->start(); });

  // The challenge/response loop (RFC 4954 4).
  while (step.result == auth::AuthResult::kChallenge) {
    out_ += "334 " + auth::base64_encode(step.challenge) + "\r\n";
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
      step = auth_exchange_->abort(auth::AbortReason::kLineTooLong);
      break;
    }
    // The line waits in a member, not in the lambda: GCC 12 destroys init-captured
    // temporaries of a co_await expression twice.
    auth_line_.assign(line);
    step = co_await run_step([this] { return auth_exchange_->respond(auth_line_); });
    auth_line_.clear();
  }
  auth_exchange_.reset();

  // The verdict, logged (never the client's words) and answered.
  if (step.result == auth::AuthResult::kSuccess) {
    auth_user_ = step.account;
    PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result=ok user=<{}>", session_id_, client_ip_,
               mechanism, base::log_escape(auth_user_, 300));
    send(235, "2.7.0", "Authentication successful");
    co_return true;
  }
  if (step.result == auth::AuthResult::kTemporary) {
    PETREL_LOG(kWarn, "smtp.auth", "session={} client={} mechanism={} result=temporary reason=\"{}\"", session_id_,
               client_ip_, mechanism, base::log_escape(step.reason));
  } else {
    PETREL_LOG(kInfo, "smtp.auth", "session={} client={} mechanism={} result={} reason=\"{}\" tarpit_ms={}",
               session_id_, client_ip_, mechanism, result_name(step), base::log_escape(step.reason),
               step.tarpit.count());
  }
  if (step.tarpit.count() > 0) {
    // The tarpit: the 535 waits, the event loop does not.
    deadline_.expire_after(step.tarpit + limits_.command_timeout);
    net::asio::steady_timer pause(stream_.socket().get_executor(), step.tarpit);
    co_await pause.async_wait(net::use_nothrow);
  }
  send(reply_for(step));
  // A store in trouble is not the client's failure.
  if (step.result == auth::AuthResult::kTemporary) co_return !count_error();
  if (++auth_failures_ >= ctx_.config.auth.max_failures) {
    send(421, "4.7.0", ctx_.config.server.hostname + " Too many failed authentications, closing connection");
    co_return false;
  }
  co_return !count_error();
}

}  // namespace petrel::smtp::server
