// session_policy.cc: asking policy (policy/chain.h) at connect, HELO, MAIL, RCPT and end of
// data, and carrying on with its decision. Design: policy/README.md.
#include "base/assert.h"
#include "base/log.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

policy::Context Session::policy_context(policy::Stage stage) const {
  policy::Context c;
  c.stage = stage;
  c.session_id = session_id_;
  c.listener = listener_.name;
  c.submission = submission();
  c.client_ip = client_ip_;
  c.trusted = trusted_;
  c.tls = stream_.is_tls();
  c.helo = helo_;
  c.auth_user = auth_user_;
  if (stage >= policy::Stage::kMail) c.envelope = &tx_.envelope;
  if (stage == policy::Stage::kRcpt && pending_rcpt_) c.recipient = &pending_rcpt_->address;
  if (stage == policy::Stage::kData) {
    if (tx_.writer) c.queue_id = tx_.writer->id();
    if (tx_.header_from) c.header_from = &*tx_.header_from;
  }
  return c;
}

// The chain as an awaitable: its answer may come from any thread (an asynchronous check) and
// is re-posted to the session's executor, so the session never runs elsewhere. `context` lives
// in the awaiting coroutine's frame until the answer is in.
net::awaitable<policy::Decision> Session::await_policy(const policy::Context& context) {
  return net::asio::async_initiate<const net::asio::use_awaitable_t<>&, void(policy::Decision)>(
      [this, &context](auto handler) {
        auto ex = net::asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        ctx_.policy->run(context, [shared, ex](policy::Decision d) {
          net::asio::post(ex, [shared, d = std::move(d)]() mutable { (*shared)(std::move(d)); });
        });
      },
      net::asio::use_awaitable);
}

Session::Next Session::ask_policy(policy::Stage stage, Proceed proceed) {
  pending_policy_ = PendingPolicy{stage, proceed};
  return Next::kPolicy;
}

net::awaitable<bool> Session::run_policy() {
  PETREL_ASSERT(pending_policy_, "run_policy without a question");
  auto pending = *pending_policy_;
  pending_policy_.reset();
  auto context = policy_context(pending.stage);
  auto decision = co_await await_policy(context);
  Next next = (this->*pending.proceed)(decision);
  PETREL_ASSERT(next == Next::kContinue || next == Next::kClose, "a policy continuation only continues or closes");
  if (next == Next::kContinue && errors_ >= limits_.max_errors) next = Next::kClose;
  co_return next == Next::kContinue;
}

bool Session::refused(const policy::Decision& decision) {
  if (decision.kind == policy::Decision::Kind::kAccept) return false;
  send(decision.reply);
  return true;
}

}  // namespace petrel::smtp::server
