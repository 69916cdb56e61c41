// policy/recipient_checks.h: the checks at RCPT that every listener needs: is the recipient
// someone here, and may this client relay to another domain.
//
// Promise:
//  - "recipient": a recipient in a domain we serve that names nobody there is refused at once
//    with 550 5.1.1 (RFC 5321 4.2.2 / RFC 3463), rather than accepted and bounced later to a
//    sender who may be forged (no backscatter). A directory lookup, but a check all the same:
//    it is the same kind of decision (refuse at RCPT, logged for `petrel explain`), and a
//    later recipient-verification check (e.g. callout to a backend) slots in beside it.
//  - "relay": ARCHITECTURE.md "No open relay, ever": a recipient in a domain we do not serve
//    (or an address literal) only from an authenticated or trusted client, else 554 5.7.1.
// Reply texts are those the SMTP server always sent (clients and tests match them).
// Not done here: <Postmaster> without a domain (the session rewrites it before asking).
// Thread: any; reads Accounts only.
#pragma once

#include "policy/accounts.h"
#include "policy/check.h"

namespace petrel::policy {

class RecipientCheck final : public Check {
 public:
  explicit RecipientCheck(const Accounts& accounts) : accounts_(accounts) {}
  std::string_view name() const override { return "recipient"; }
  bool wants(Stage stage) const override { return stage == Stage::kRcpt; }
  void check(const Context& context, std::function<void(Verdict)> done) override;

 private:
  const Accounts& accounts_;
};

class RelayCheck final : public Check {
 public:
  explicit RelayCheck(const Accounts& accounts) : accounts_(accounts) {}
  std::string_view name() const override { return "relay"; }
  bool wants(Stage stage) const override { return stage == Stage::kRcpt; }
  void check(const Context& context, std::function<void(Verdict)> done) override;

 private:
  const Accounts& accounts_;
};

}  // namespace petrel::policy
