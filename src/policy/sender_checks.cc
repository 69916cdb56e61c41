// sender_checks.cc: MAIL FROM and From: ownership for authenticated sessions (sender_checks.h).
#include "policy/sender_checks.h"

#include "base/assert.h"

namespace petrel::policy {

void SenderRightsCheck::check(const Context& context, std::function<void(Verdict)> done) {
  if (context.auth_user.empty()) return done(Verdict::accept("not authenticated"));
  PETREL_ASSERT(context.envelope, "MAIL context without an envelope");
  const auto& sender = context.envelope->sender;
  if (accounts_.may_use(context.auth_user, sender)) return done(Verdict::accept("owned"));
  done(Verdict::reject(
      mail::reply(553, "5.7.1", "<" + sender.str() + ">: Sender address rejected: not owned by the authenticated user"),
      "MAIL FROM not owned by " + std::string(context.auth_user)));
}

void SubmittedFromCheck::check(const Context& context, std::function<void(Verdict)> done) {
  if (context.auth_user.empty() || !context.header_from) return done(Verdict::accept("not a submission"));
  for (const auto& a : *context.header_from) {
    if (!accounts_.may_use(context.auth_user, a)) {
      return done(Verdict::reject(
          mail::reply(553, "5.7.1", "<" + a.str() + ">: From: address not owned by the authenticated user"),
          "From: not owned by " + std::string(context.auth_user)));
    }
  }
  done(Verdict::accept("owned"));
}

}  // namespace petrel::policy
