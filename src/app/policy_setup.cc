// policy_setup.cc: the built-in checks over the accounts store (policy_setup.h).
#include "app/policy_setup.h"

#include "policy/recipient_checks.h"
#include "policy/sender_checks.h"

namespace petrel::app {
namespace {

// policy::Accounts answered by auth: both read the directory's in-memory snapshot.
class DirectoryAccounts final : public policy::Accounts {
 public:
  DirectoryAccounts(const auth::Directory& directory, const auth::SenderRights& rights)
      : directory_(directory), rights_(rights) {}

  Recipient classify(const mail::Address& recipient) const override {
    switch (directory_.lookup(recipient)) {
      case auth::RecipientStatus::kLocal: return Recipient::kLocal;
      case auth::RecipientStatus::kUnknownUser: return Recipient::kUnknownUser;
      case auth::RecipientStatus::kNotOurDomain: return Recipient::kNotOurDomain;
    }
    return Recipient::kNotOurDomain;  // unreachable; the strictest answer
  }
  bool may_use(std::string_view account, const mail::Address& address) const override {
    return rights_.may_use(account, address);
  }

 private:
  const auth::Directory& directory_;
  const auth::SenderRights& rights_;
};

}  // namespace

PolicySetup::PolicySetup(const auth::Directory& directory, const auth::SenderRights& sender_rights)
    : accounts_(std::make_unique<DirectoryAccounts>(directory, sender_rights)) {
  chain_.add(std::make_unique<policy::RecipientCheck>(*accounts_));
  chain_.add(std::make_unique<policy::RelayCheck>(*accounts_));
  chain_.add(std::make_unique<policy::SenderRightsCheck>(*accounts_));
  chain_.add(std::make_unique<policy::SubmittedFromCheck>(*accounts_));
}

PolicySetup::~PolicySetup() = default;

}  // namespace petrel::app
