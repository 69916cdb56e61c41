// auth_limiter.cc: fixed-window failure counters with tarpit and lockout (auth_limiter.h).
#include "auth/auth_limiter.h"

#include <algorithm>

#include "auth/address_key.h"
#include "base/ip_key.h"
#include "base/strings.h"

namespace petrel::auth {

namespace {
constexpr int kMaxTarpitFactor = 5;
}  // namespace

AuthLimiter::AuthLimiter(const base::Clock& clock, AuthLimiterOptions options)
    : clock_(clock), options_(options) {}

bool AuthLimiter::locked(Table& table, const std::string& key, Time now) {
  auto it = table.find(key);
  return it != table.end() && it->second.locked_until > now;
}

bool AuthLimiter::ip_locked(std::string_view ip) {
  std::lock_guard lock(mu_);
  return locked(ips_, base::ip_key(ip), clock_.mono());
}

bool AuthLimiter::account_locked(std::string_view account) {
  std::string key = login_key(account);
  std::lock_guard lock(mu_);
  return locked(accounts_, key, clock_.mono());
}

void AuthLimiter::make_room(Table& table, Time now) {
  if (table.size() < options_.max_entries) return;
  // Expired windows and lockouts first: they no longer decide anything.
  for (auto it = table.begin(); it != table.end();) {
    const bool idle = now - it->second.window_start >= options_.window && it->second.locked_until <= now;
    it = idle ? table.erase(it) : std::next(it);
  }
  if (table.size() < options_.max_entries) return;
  // Still full (a flood from many addresses): forget the entry whose window is oldest.
  auto oldest = std::min_element(table.begin(), table.end(), [](const auto& a, const auto& b) {
    return a.second.window_start < b.second.window_start;
  });
  table.erase(oldest);
}

// One more failure for `key`; returns the count within the current window.
std::size_t AuthLimiter::count(Table& table, const std::string& key, Time now) {
  auto it = table.find(key);
  if (it == table.end()) {
    make_room(table, now);
    it = table.emplace(key, Entry{0, now, {}}).first;
  }
  Entry& e = it->second;
  if (now - e.window_start >= options_.window) {
    e.failures = 0;
    e.window_start = now;
  }
  ++e.failures;
  if (e.failures >= options_.lockout_after) {
    e.locked_until = now + options_.lockout;
    // The lockout starts a new window: once it ends, the count starts from zero.
    e.failures = 0;
    e.window_start = now + options_.lockout;
    return options_.lockout_after;
  }
  return e.failures;
}

std::chrono::milliseconds AuthLimiter::record_failure(std::string_view ip, std::string_view account) {
  const std::string key = account.empty() ? std::string() : login_key(account);
  const Time now = clock_.mono();
  std::lock_guard lock(mu_);
  std::size_t n = count(ips_, base::ip_key(ip), now);
  if (!account.empty()) n = std::max(n, count(accounts_, key, now));
  if (n < options_.tarpit_after) return std::chrono::milliseconds(0);
  auto factor = static_cast<int>(std::min<std::size_t>(n - options_.tarpit_after + 1, kMaxTarpitFactor));
  return options_.tarpit_delay * factor;
}

void AuthLimiter::record_success(std::string_view account) {
  std::string key = login_key(account);
  std::lock_guard lock(mu_);
  auto it = accounts_.find(key);
  if (it != accounts_.end() && it->second.locked_until <= clock_.mono()) accounts_.erase(it);
}

std::size_t AuthLimiter::tracked_ips() const {
  std::lock_guard lock(mu_);
  return ips_.size();
}

std::size_t AuthLimiter::tracked_accounts() const {
  std::lock_guard lock(mu_);
  return accounts_.size();
}

}  // namespace petrel::auth
