// server.cc: listeners, accept loops and connection limits.
#include "smtp/server/server.h"

#include "base/log.h"
#include "base/strings.h"

namespace petrel::smtp::server {

Server::Server(const config::Config& config, std::vector<net::asio::io_context*> loops)
    : config_(config),
      loops_(std::move(loops)),
      limiter_(config.smtp.max_connections, config.smtp.max_connections_per_ip) {}

Server::~Server() { stop(); }

base::Status Server::bind() {
  for (const auto& l : config_.listeners) {
    net::error_code ec;
    auto addr = net::asio::ip::make_address(l.host, ec);
    if (ec) return base::permanent_error("listener " + l.name + ": bad address " + l.host);
    net::tcp::endpoint ep(addr, l.port);
    auto acceptor = std::make_unique<net::tcp::acceptor>(*loops_[0]);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(net::tcp::acceptor::reuse_address(true), ec);
    if (!ec && addr.is_v6()) acceptor->set_option(net::asio::ip::v6_only(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(net::asio::socket_base::max_listen_connections, ec);
    if (ec) return base::permanent_error("listener " + l.name + ": cannot listen on " + l.address + ": " + ec.message());
    acceptors_.push_back(std::move(acceptor));
  }
  return {};
}

void Server::start(SessionContext& ctx) {
  ctx_ = &ctx;
  for (std::size_t i = 0; i < acceptors_.size(); ++i) {
    net::asio::co_spawn(*loops_[0], accept_loop(i), net::asio::detached);
    const auto& l = config_.listeners[i];
    PETREL_LOG(kInfo, "smtp.listen", "listener={} address={}", l.name, l.address);
  }
}

void Server::stop() {
  for (auto& a : acceptors_) {
    net::error_code ec;
    a->close(ec);
  }
}

std::size_t Server::connections() const { return limiter_.connections(); }

net::awaitable<void> Server::accept_loop(std::size_t index) {
  auto& acceptor = *acceptors_[index];
  const auto& listener = config_.listeners[index];
  while (acceptor.is_open()) {
    auto& loop = *loops_[next_loop_++ % loops_.size()];
    auto [ec, socket] = co_await acceptor.async_accept(loop, net::use_nothrow);
    if (ec) {
      if (ec == net::asio::error::operation_aborted) break;
      // EMFILE and friends: wait a little rather than spin.
      PETREL_LOG(kWarn, "smtp.accept_error", "listener={} error=\"{}\"", listener.name, ec.message());
      net::asio::steady_timer pause(*loops_[0], std::chrono::milliseconds(100));
      co_await pause.async_wait(net::use_nothrow);
      continue;
    }
    net::error_code ep_ec;
    auto remote = socket.remote_endpoint(ep_ec);
    if (ep_ec) continue;
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = net::asio::ip::make_address_v4(net::asio::ip::v4_mapped, addr.to_v6());
    std::string ip = addr.to_string();
    auto slot = limiter_.admit(ip);
    if (!slot) {
      // Too many connections: say so without spending a session on it (RFC 5321 3.8: 421).
      PETREL_LOG(kInfo, "smtp.refused", "listener={} client={} reason=connection_limit", listener.name, ip);
      net::asio::co_spawn(
          socket.get_executor(),
          [](net::tcp::socket s, std::string host, bool plain) -> net::awaitable<void> {
            // On an implicit-TLS listener a plaintext reply cannot be read: just close.
            if (plain) {
              std::string line = "421 4.7.0 " + host + " Too many connections, try again later\r\n";
              co_await net::asio::async_write(s, net::asio::buffer(line), net::use_nothrow);
            }
            net::error_code ignored;
            s.shutdown(net::tcp::socket::shutdown_both, ignored);
            s.close(ignored);
          }(std::move(socket), config_.server.hostname, listener.kind != config::ListenerKind::kSubmissions),
          net::asio::detached);
      continue;
    }
    net::error_code opt_ec;
    socket.set_option(net::tcp::no_delay(true), opt_ec);
    Session::start(std::make_shared<Session>(*ctx_, listener, std::move(socket), std::move(slot)));
  }
}

}  // namespace petrel::smtp::server
