// smtp/server/server.h: the SMTP listeners: binds them, accepts connections, enforces the
// connection limits, and hands each accepted connection to a Session.
//
// Promise: bind() happens before the process drops privileges and reports every address that
// cannot be bound; after start(), connections are spread round-robin over the event loops;
// past max_connections or max_connections_per_ip (per IPv4 address or IPv6 /64,
// net/connection_limiter.h) the client hears 421 4.7.0 and is closed
// without a session. stop() closes the listeners; sessions end on their own deadlines.
// Thread: bind/start/stop from the main thread; accept loops run on the first event loop.
#pragma once

#include <memory>
#include <vector>

#include "net/asio.h"
#include "net/connection_limiter.h"
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
  net::awaitable<void> accept_loop(std::size_t listener_index);

  const config::Config& config_;
  SessionContext* ctx_ = nullptr;
  std::vector<net::asio::io_context*> loops_;
  std::vector<std::unique_ptr<net::tcp::acceptor>> acceptors_;
  std::size_t next_loop_ = 0;
  net::ConnectionLimiter limiter_;
};

}  // namespace petrel::smtp::server
