// net/connection_limiter.h: the connection counters of a server's listeners: at most
// `max_total` connections at once, and at most `max_per_client` from one client, where a client
// is one IPv4 address or one IPv6 /64 (base/ip_key.h).
//
// Promise: admit() either returns a slot, which holds one place in both counts until it is
// destroyed, or nullptr when either limit is reached (and then counts nothing). A slot may
// outlive the limiter (sessions still open at shutdown are destroyed with their event loops,
// after the server): the counters are shared with every slot. Memory: one entry per client
// that holds a slot now.
// Not done here: accepting, replying "busy" to the refused client (net/acceptor.h).
// Thread: admit(), slot destruction and the counts from any thread; one mutex, held only to
// count, never across I/O.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace petrel::net {

class ConnectionLimiter {
  struct Counters;

 public:
  // One place in the counts; released when destroyed.
  class Slot {
   public:
    Slot(std::shared_ptr<Counters> counters, std::string key);
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    std::shared_ptr<Counters> counters_;
    std::string key_;
  };

  ConnectionLimiter(std::size_t max_total, std::size_t max_per_client);

  // `ip`: the peer's textual address (IPv4-mapped IPv6 already turned into IPv4).
  std::unique_ptr<Slot> admit(std::string_view ip);

  // Connections holding a slot now, in all and from the client of `ip` (tests, metrics).
  std::size_t connections() const;
  std::size_t connections_from(std::string_view ip) const;

 private:
  struct Counters {
    mutable std::mutex mu;
    std::size_t total = 0;
    std::unordered_map<std::string, std::size_t> per_client;  // ip_key -> count, never 0
    void release(const std::string& key);
  };

  const std::size_t max_total_;
  const std::size_t max_per_client_;
  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

}  // namespace petrel::net
