// policy/sender_checks.h: an authenticated user sends only as addresses the account owns
// (RFC 6409 6.1; who owns what: auth/sender_rights.h through Accounts::may_use).
//
// Promise:
//  - "sender_rights" (MAIL): an authenticated session's MAIL FROM address must be one the
//    account may use, else 553 5.7.1. Unauthenticated sessions are not its business.
//  - "submitted_from" (end of data): each address of the From: field of a message from an
//    authenticated session must be one the account may use, else 553 5.7.1 naming the first
//    that is not. The session parses the field (RFC 5322 3.6.2) and refuses a message with
//    several From: fields or an unparsable one itself (554 5.6.0): that is syntax, not policy.
// Reply texts are those the SMTP server always sent.
// Thread: any; reads Accounts only.
#pragma once

#include "policy/accounts.h"
#include "policy/check.h"

namespace petrel::policy {

class SenderRightsCheck final : public Check {
 public:
  explicit SenderRightsCheck(const Accounts& accounts) : accounts_(accounts) {}
  std::string_view name() const override { return "sender_rights"; }
  bool wants(Stage stage) const override { return stage == Stage::kMail; }
  void check(const Context& context, std::function<void(Verdict)> done) override;

 private:
  const Accounts& accounts_;
};

class SubmittedFromCheck final : public Check {
 public:
  explicit SubmittedFromCheck(const Accounts& accounts) : accounts_(accounts) {}
  std::string_view name() const override { return "submitted_from"; }
  bool wants(Stage stage) const override { return stage == Stage::kData; }
  void check(const Context& context, std::function<void(Verdict)> done) override;

 private:
  const Accounts& accounts_;
};

}  // namespace petrel::policy
