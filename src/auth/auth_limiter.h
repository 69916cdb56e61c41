// auth/auth_limiter.h: counters of failed authentications per client address and per account
// name, shared by every session of every protocol (SMTP AUTH now, IMAP and POP3 later).
//
// Promise: after `tarpit_after` failures within `window`, each further failure is answered
// only after a delay (the tarpit: tarpit_delay, growing linearly with the count up to 5x);
// after `lockout_after` failures within `window` the client address (or the account name) is
// refused for `lockout`, whatever it sends. Counters are in memory and bounded: at most
// `max_entries` addresses and as many names; when full, expired entries go first, then the
// oldest. IPv6 clients are counted per /64 (base/ip_key.h). Names are counted, locked and
// cleared under their canonical key (login_key(), address_key.h: the store's folding,
// applied syntactically), so "\"bob\"@x", "BOB@X" and "bob@x" share one counter and
// spelling a name another way buys no fresh attempts. A success
// clears the account's counter, not the address's: knowing one password must not buy an
// attacker fresh attempts against other accounts.
// Names are counted whether or not an account exists, so a refusal says nothing about which
// accounts exist. Time comes from a base::Clock (tests use FakeClock).
// Not done here: sleeping (the caller waits asynchronously for the returned delay), reply codes.
// Thread: every method from any thread; one mutex, held only to count.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"

namespace petrel::auth {

struct AuthLimiterOptions {
  std::size_t tarpit_after = 3;
  std::chrono::milliseconds tarpit_delay{std::chrono::seconds(2)};
  std::size_t lockout_after = 10;
  std::chrono::milliseconds window{std::chrono::minutes(15)};
  std::chrono::milliseconds lockout{std::chrono::minutes(15)};
  std::size_t max_entries = 100000;  // per table (addresses, names)
};

class AuthLimiter {
 public:
  AuthLimiter(const base::Clock& clock, AuthLimiterOptions options);

  // True while `ip` (textual IPv4 or IPv6) is locked out.
  bool ip_locked(std::string_view ip);
  // True while the account name (as the client spelled it; canonicalised here) is locked out.
  bool account_locked(std::string_view account);
  // Records one failure for the address and, when not empty, the name. Returns how long to
  // wait before answering (zero below tarpit_after).
  std::chrono::milliseconds record_failure(std::string_view ip, std::string_view account);
  // A successful authentication as `account` (any spelling): its counter is cleared.
  void record_success(std::string_view account);

  // For tests and metrics.
  std::size_t tracked_ips() const;
  std::size_t tracked_accounts() const;

 private:
  using Time = std::chrono::steady_clock::time_point;
  struct Entry {
    std::size_t failures = 0;
    Time window_start{};
    Time locked_until{};
  };
  using Table = std::unordered_map<std::string, Entry>;

  bool locked(Table& table, const std::string& key, Time now);
  std::size_t count(Table& table, const std::string& key, Time now);
  void make_room(Table& table, Time now);

  const base::Clock& clock_;
  const AuthLimiterOptions options_;
  mutable std::mutex mu_;
  Table ips_;
  Table accounts_;
};

}  // namespace petrel::auth
