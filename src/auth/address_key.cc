// address_key.cc: folding and validating the names the accounts store keeps.
#include "auth/address_key.h"

#include "base/strings.h"

namespace petrel::auth {
namespace {

// RFC 5322 3.2.3 atext, plus UTF-8 octets (RFC 6531 3.3).
bool is_atext(unsigned char c) {
  if (c >= 0x80) return true;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

std::string fold_local(std::string_view local) { return base::to_lower(local); }

std::string address_key(const mail::Address& address) {
  if (address.domain.empty()) return fold_local(address.local);
  return fold_local(address.local) + "@" + address.domain_key();
}

std::string login_key(std::string_view authcid) {
  // The store finds accounts with parse_mailbox_address() and address_key(); parse_address()
  // accepts a superset of what the former does and address_key() folds both alike, so this is
  // the store's key for every name that can log in. The length cap keeps the limiter's
  // memory bounded; no valid address is longer (RFC 5321 4.5.3.1: 64 + 1 + 255 octets of
  // path, and local parts of accounts are shorter still).
  std::string key;
  if (auto parsed = mail::parse_address(authcid.substr(0, 4 * kMaxLoginKey)); parsed && !parsed->domain.empty()) {
    key = address_key(*parsed);
  } else {
    key = base::to_lower(authcid);
  }
  if (key.size() > kMaxLoginKey) key.resize(kMaxLoginKey);
  return key;
}

base::Status check_local_part(std::string_view local) {
  if (local.empty()) return base::permanent_error("empty local part");
  for (char ch : local) {
    auto c = static_cast<unsigned char>(ch);
    // Named first: these are the ones people try on purpose.
    if (c == '%' || c == '!') return base::permanent_error("local part must not contain '%' or '!' (source routing)");
    if (c == '/') return base::permanent_error("local part must not contain '/'");
    if (c == '@' || c == '"') return base::permanent_error("local part must not contain '@' or quotes");
    if (c <= ' ' || c == 0x7f) return base::permanent_error("local part must not contain whitespace or control characters");
    if (c != '.' && !is_atext(c)) return base::permanent_error("local part must be a plain dot-string");
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return base::permanent_error("local part must not start or end with a dot or contain two dots in a row");
  }
  return {};
}

base::Result<mail::Address> parse_mailbox_address(std::string_view text) {
  auto parsed = mail::parse_address(text);
  if (!parsed) return base::permanent_error("invalid address '" + base::log_escape(text) + "': " + parsed.error().message);
  mail::Address address = std::move(parsed).value();
  if (address.domain.empty() || address.is_address_literal()) {
    return base::permanent_error("'" + base::log_escape(text) + "': the domain must be a domain name");
  }
  if (auto s = check_local_part(address.local); !s) {
    return base::permanent_error("'" + base::log_escape(text) + "': " + s.error().message);
  }
  address.domain = address.domain_key();
  return address;
}

base::Result<std::string> parse_domain(std::string_view text) {
  if (text.empty() || text.front() == '[' || !mail::is_valid_domain(text, /*allow_utf8=*/false)) {
    return base::permanent_error("invalid domain '" + base::log_escape(text) + "'");
  }
  mail::Address probe{"x", std::string(text)};
  return probe.domain_key();
}

}  // namespace petrel::auth
