// smtp/server/server.h: the SMTP listeners: binds them, accepts connections, enforces the
// connection limits, and hands each accepted connection to a Session.
//
// Promise: bind() happens before the process drops privileges and reports every address that
// cannot be bound; after start(), connections are spread round-robin over the event loops;
// past max_connections or max_connections_per_ip the client hears 421 4.7.0 and is closed
// without a session. stop() closes the listeners; sessions end on their own deadlines.
// Thread: bind/start/stop from the main thread; accept loops run on the first event loop.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/asio.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

class Server {
 public:
  // `loops` are the event loops sessions run on; the accept loops run on loops[0].
  Server(const config::Config& config, std::vector<net::asio::io_context*> loops);
  ~Server();

  // Binds every listener (run before dropping privileges).
  base::Status bind();
  // Starts accepting; `ctx` must outlive the server and every session.
  void start(SessionContext& ctx);
  void stop();

  // Connections open now (for tests and metrics).
  std::size_t connections() const;

 private:
  class Slot;
  // The connection counters. Shared with every Slot, because sessions still open at shutdown
  // are destroyed with their event loops, after the Server (serve.cc's teardown order).
  struct Counters {
    std::mutex mu;  // held only to count, never across I/O
    std::size_t total = 0;
    std::unordered_map<std::string, std::size_t> per_ip;
    void release(const std::string& ip);
  };
  net::awaitable<void> accept_loop(std::size_t listener_index);
  std::unique_ptr<ConnectionSlot> admit(const std::string& ip);

  const config::Config& config_;
  SessionContext* ctx_ = nullptr;
  std::vector<net::asio::io_context*> loops_;
  std::vector<std::unique_ptr<net::tcp::acceptor>> acceptors_;
  std::size_t next_loop_ = 0;

  std::shared_ptr<Counters> counters_ = std::make_shared<Counters>();
};

}  // namespace petrel::smtp::server
