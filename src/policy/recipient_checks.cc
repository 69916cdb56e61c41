// recipient_checks.cc: unknown users and relaying at RCPT (recipient_checks.h).
#include "policy/recipient_checks.h"

#include "base/assert.h"

namespace petrel::policy {

void RecipientCheck::check(const Context& context, std::function<void(Verdict)> done) {
  PETREL_ASSERT(context.recipient, "RCPT context without a recipient");
  const auto& addr = *context.recipient;
  if (accounts_.classify(addr) == Accounts::Recipient::kUnknownUser) {
    // Reply text may quote the address: Reply::render() strips controls and caps the line.
    return done(Verdict::reject(mail::reply(550, "5.1.1", "<" + addr.str() + ">: Recipient address rejected: User unknown"),
                                "no such user in a served domain"));
  }
  done(Verdict::accept());
}

void RelayCheck::check(const Context& context, std::function<void(Verdict)> done) {
  PETREL_ASSERT(context.recipient, "RCPT context without a recipient");
  const auto& addr = *context.recipient;
  if (accounts_.classify(addr) != Accounts::Recipient::kNotOurDomain) return done(Verdict::accept("local domain"));
  if (!context.auth_user.empty()) return done(Verdict::accept("authenticated"));
  if (context.trusted) return done(Verdict::accept("trusted network"));
  done(Verdict::reject(mail::reply(554, "5.7.1", "<" + addr.str() + ">: Relay access denied"),
                       "not our domain, client neither authenticated nor trusted"));
}

}  // namespace petrel::policy
