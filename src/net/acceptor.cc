// acceptor.cc: listeners, accept loops and connection limits (acceptor.h).
#include "net/acceptor.h"

#include "base/assert.h"
#include "base/log.h"

namespace petrel::net {

Acceptor::Acceptor(std::vector<asio::io_context*> loops, std::size_t max_total, std::size_t max_per_client)
    : loops_(std::move(loops)), limiter_(max_total, max_per_client) {}

Acceptor::~Acceptor() { stop(); }

base::Status Acceptor::bind(const ListenSpec& spec) {
  error_code ec;
  auto addr = asio::ip::make_address(spec.host, ec);
  if (ec) return base::permanent_error("listener " + spec.name + ": bad address " + spec.host);
  tcp::endpoint ep(addr, spec.port);
  auto socket = std::make_unique<tcp::acceptor>(*loops_[0]);
  socket->open(ep.protocol(), ec);
  if (!ec) socket->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && addr.is_v6()) socket->set_option(asio::ip::v6_only(true), ec);
  if (!ec) socket->bind(ep, ec);
  if (!ec) socket->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return base::permanent_error("listener " + spec.name + ": cannot listen on " + spec.address + ": " + ec.message());
  listeners_.push_back(Listener{spec, std::move(socket), nullptr});
  return {};
}

void Acceptor::start(std::vector<SessionFactory*> factories) {
  PETREL_ASSERT(factories.size() == listeners_.size(), "one session factory per listener");
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    listeners_[i].factory = factories[i];
    asio::co_spawn(*loops_[0], accept_loop(i), asio::detached);
    PETREL_LOG(kInfo, "net.listen", "listener={} address={}", listeners_[i].spec.name, listeners_[i].spec.address);
  }
}

void Acceptor::stop() {
  for (auto& l : listeners_) {
    error_code ec;
    l.socket->close(ec);
  }
}

// The loop runs on loops[0] and uses listeners_[index], which lives as long as the acceptor:
// stop() (at the latest in the destructor) closes the socket, which ends the pending accept
// with operation_aborted, and serve.cc destroys the acceptor only after the loops stopped.
awaitable<void> Acceptor::accept_loop(std::size_t index) {
  auto& listener = listeners_[index];
  auto& acceptor = *listener.socket;
  while (acceptor.is_open()) {
    auto& loop = *loops_[next_loop_++ % loops_.size()];
    auto [ec, socket] = co_await acceptor.async_accept(loop, use_nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: wait a little rather than spin.
      PETREL_LOG(kWarn, "net.accept_error", "listener={} error=\"{}\"", listener.spec.name, ec.message());
      asio::steady_timer pause(*loops_[0], std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    error_code ep_ec;
    auto remote = socket.remote_endpoint(ep_ec);
    if (ep_ec) continue;
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    std::string ip = addr.to_string();
    auto slot = limiter_.admit(ip);
    if (!slot) {
      // Too many connections: say so without spending a session on it.
      PETREL_LOG(kInfo, "net.refused", "listener={} client={} reason=connection_limit", listener.spec.name, ip);
      asio::co_spawn(
          socket.get_executor(),
          [](tcp::socket s, std::string line) -> awaitable<void> {
            if (!line.empty()) co_await asio::async_write(s, asio::buffer(line), use_nothrow);
            error_code ignored;
            s.shutdown(tcp::socket::shutdown_both, ignored);
            s.close(ignored);
          }(std::move(socket), listener.factory->busy_reply()),
          asio::detached);
      continue;
    }
    error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    listener.factory->start(std::move(socket), std::move(ip), std::move(slot));
  }
}

}  // namespace petrel::net
