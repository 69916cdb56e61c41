// app/policy_setup.h: the policy chain `petrel serve` gives the SMTP sessions, and the adapter
// through which its checks ask the accounts store (policy/accounts.h over auth/).
//
// Promise: the chain holds, in this order, "recipient", "relay", "sender_rights",
// "submitted_from" (policy/README.md); it and the adapter live as long as this object, which
// must outlive every session. The directory and sender rights must outlive it.
// Thread: build once on the main thread; the chain is then used from every event loop.
#pragma once

#include <memory>

#include "auth/directory.h"
#include "auth/sender_rights.h"
#include "policy/accounts.h"
#include "policy/chain.h"

namespace petrel::app {

class PolicySetup {
 public:
  PolicySetup(const auth::Directory& directory, const auth::SenderRights& sender_rights);
  ~PolicySetup();
  const policy::Chain& chain() const { return chain_; }

 private:
  std::unique_ptr<policy::Accounts> accounts_;
  policy::Chain chain_;
};

}  // namespace petrel::app
