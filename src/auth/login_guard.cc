// login_guard.cc: the SASL exchange inside the login limits (login_guard.h).
#include "auth/login_guard.h"

#include "auth/address_key.h"

namespace petrel::auth {
namespace {

AuthStep final_step(AuthResult result, std::string reason) {
  AuthStep s;
  s.result = result;
  s.reason = std::move(reason);
  return s;
}

AuthStep aborted(AbortReason why, std::string reason) {
  AuthStep s = final_step(AuthResult::kAborted, std::move(reason));
  s.abort = why;
  return s;
}

}  // namespace

// ---- LoginGuard ----

LoginGuard::Begun LoginGuard::begin(std::string_view client_ip, std::string_view mechanism,
                                    std::optional<std::string_view> initial_response) const {
  // A locked address gets nothing more, not even word of which mechanisms exist.
  if (limiter_ && limiter_->ip_locked(client_ip)) {
    return {nullptr, final_step(AuthResult::kLocked, "client address locked out")};
  }
  auto m = sasl_.start(mechanism);
  if (!m) return {nullptr, final_step(AuthResult::kUnsupported, "mechanism not enabled")};
  std::optional<std::string> initial;
  if (initial_response) {
    auto decoded = decode_response(*initial_response, /*initial=*/true);
    if (!decoded) return {nullptr, aborted(AbortReason::kUndecodable, decoded.error().message)};
    if (decoded->cancelled) return {nullptr, aborted(AbortReason::kCancelled, "cancelled by the client")};
    initial = std::move(decoded->octets);
  }
  return {std::unique_ptr<AuthExchange>(new AuthExchange(limiter_, std::string(client_ip), std::move(m), std::move(initial))),
          {}};
}

// ---- AuthExchange ----

AuthExchange::AuthExchange(AuthLimiter* limiter, std::string client_ip, std::unique_ptr<SaslMechanism> mechanism,
                           std::optional<std::string> initial)
    : limiter_(limiter), client_ip_(std::move(client_ip)), mechanism_(std::move(mechanism)), initial_(std::move(initial)) {}

AuthStep AuthExchange::start() {
  if (done_) return final_step(AuthResult::kMalformed, "exchange already finished");
  auto step = mechanism_->start(initial_ ? std::optional<std::string_view>(*initial_) : std::nullopt);
  initial_.reset();
  return finish(std::move(step));
}

AuthStep AuthExchange::respond(std::string_view line) {
  if (done_) return final_step(AuthResult::kMalformed, "exchange already finished");
  auto response = decode_response(line);
  if (!response) return abort(AbortReason::kUndecodable);
  if (response->cancelled) return abort(AbortReason::kCancelled);
  return finish(mechanism_->step(response->octets));
}

AuthStep AuthExchange::abort(AbortReason why) {
  done_ = true;
  switch (why) {
    case AbortReason::kCancelled: return aborted(why, "cancelled by the client");
    case AbortReason::kUndecodable: return aborted(why, "response is not valid base64");
    case AbortReason::kLineTooLong: return aborted(why, "response line too long");
    case AbortReason::kNone: break;
  }
  return aborted(AbortReason::kCancelled, "aborted");
}

// The mechanism's verdict, through the limits.
AuthStep AuthExchange::finish(SaslStep step) {
  if (step.outcome == SaslOutcome::kContinue) {
    AuthStep s;
    s.result = AuthResult::kChallenge;
    s.challenge = std::move(step.data);
    return s;
  }
  done_ = true;
  AuthLimiter* limiter = limiter_;
  const bool named = !step.authcid.empty();
  const std::string account = named ? login_key(step.authcid) : std::string();
  switch (step.outcome) {
    case SaslOutcome::kSuccess:
    case SaslOutcome::kFailed: {
      // A locked name is refused whatever the verdict, so that the lockout cannot be used to
      // test passwords; the attempt still counts against the address.
      if (limiter && named && limiter->account_locked(step.authcid)) {
        (void)limiter->record_failure(client_ip_, "");
        AuthStep s = final_step(AuthResult::kLocked, "account name locked out");
        s.account = account;
        return s;
      }
      AuthStep s = final_step(step.outcome == SaslOutcome::kSuccess ? AuthResult::kSuccess : AuthResult::kFailed,
                              std::move(step.reason));
      s.account = account;
      if (step.outcome == SaslOutcome::kSuccess) {
        if (limiter) limiter->record_success(step.authcid);
      } else if (limiter) {
        s.tarpit = limiter->record_failure(client_ip_, step.authcid);
      }
      return s;
    }
    case SaslOutcome::kMalformed: return final_step(AuthResult::kMalformed, std::move(step.reason));
    case SaslOutcome::kTemporary:
    case SaslOutcome::kContinue: break;
  }
  return final_step(AuthResult::kTemporary, std::move(step.reason));
}

}  // namespace petrel::auth
