// sender_rights.cc: the owner check of submitted sender addresses (sender_rights.h).
#include "auth/sender_rights.h"

#include "auth/address_key.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

// The store's key for an account name, or "" when it is not a mailbox address.
std::string account_key(std::string_view text) {
  auto parsed = parse_mailbox_address(text);
  return parsed ? address_key(*parsed) : std::string();
}

}  // namespace

SenderRights::SenderRights(const Directory& directory, const std::map<std::string, std::vector<std::string>>& grants)
    : directory_(directory) {
  for (const auto& [account, patterns] : grants) {
    auto& out = grants_[account_key(account)];
    for (const auto& p : patterns) {
      if (p.starts_with("@")) out.push_back(base::to_lower(p));
      else if (auto a = mail::parse_address(p)) out.push_back(address_key(*a));
    }
  }
}

bool SenderRights::may_use(std::string_view account, const mail::Address& address) const {
  if (address.null()) return true;
  const std::string me = account_key(account);
  if (me.empty()) return false;
  const std::string key = address_key(address);
  if (key == me) return true;

  if (auto it = grants_.find(me); it != grants_.end()) {
    const std::string domain = "@" + address.domain_key();
    for (const auto& g : it->second) {
      if (g == key || g == domain) return true;
    }
  }
  if (address.is_address_literal()) return false;

  // Whatever delivers to this account: subaddress, alias, catch-all.
  auto targets = directory_.resolve(address);
  if (!targets) return false;
  for (const auto& t : *targets) {
    if (t.kind == DeliveryTarget::Kind::kMailbox && t.mailbox_local + "@" + t.mailbox_domain == me) return true;
  }
  return false;
}

}  // namespace petrel::auth
