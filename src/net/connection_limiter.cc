// connection_limiter.cc: total and per-client connection counts (connection_limiter.h).
#include "net/connection_limiter.h"

#include "base/ip_key.h"

namespace petrel::net {

ConnectionLimiter::Slot::Slot(std::shared_ptr<Counters> counters, std::string key)
    : counters_(std::move(counters)), key_(std::move(key)) {}

ConnectionLimiter::Slot::~Slot() { counters_->release(key_); }

ConnectionLimiter::ConnectionLimiter(std::size_t max_total, std::size_t max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

std::unique_ptr<ConnectionLimiter::Slot> ConnectionLimiter::admit(std::string_view ip) {
  std::string key = base::ip_key(ip);
  std::lock_guard lock(counters_->mu);
  auto& mine = counters_->per_client[key];
  if (counters_->total >= max_total_ || mine >= max_per_client_) {
    if (mine == 0) counters_->per_client.erase(key);
    return nullptr;
  }
  ++counters_->total;
  ++mine;
  return std::make_unique<Slot>(counters_, std::move(key));
}

std::size_t ConnectionLimiter::connections() const {
  std::lock_guard lock(counters_->mu);
  return counters_->total;
}

std::size_t ConnectionLimiter::connections_from(std::string_view ip) const {
  std::lock_guard lock(counters_->mu);
  auto it = counters_->per_client.find(base::ip_key(ip));
  return it == counters_->per_client.end() ? 0 : it->second;
}

void ConnectionLimiter::Counters::release(const std::string& key) {
  std::lock_guard lock(mu);
  --total;
  auto it = per_client.find(key);
  if (it != per_client.end() && --it->second == 0) per_client.erase(it);
}

}  // namespace petrel::net
