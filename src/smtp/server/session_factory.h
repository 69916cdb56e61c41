// smtp/server/session_factory.h: the SMTP side of a listener: what net::Acceptor calls for
// each admitted connection of a kind "smtp", "submission" or "submissions" listener.
//
// Promise: every connection handed over becomes one Session (session.h) on the socket's event
// loop, holding its connection slot until it ends. A client refused for the connection limits
// hears RFC 5321 3.8's 421 4.7.0 on a plaintext port, nothing on an implicit-TLS port (RFC
// 8314: it expects a TLS handshake and could not read the line).
// Not done here: binding, accepting and counting connections (net/acceptor.h).
// Thread: start() from the accept loop; sessions run on their sockets' loops.
#pragma once

#include "net/acceptor.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

class SessionFactory final : public net::SessionFactory {
 public:
  // `ctx` and `listener` must outlive every session this factory starts.
  SessionFactory(SessionContext& ctx, const config::ListenerConfig& listener) : ctx_(ctx), listener_(listener) {}

  std::string busy_reply() const override;
  void start(net::tcp::socket socket, std::string client_ip,
             std::unique_ptr<net::ConnectionLimiter::Slot> slot) override;

  // Whether a listener of this kind is served by SMTP sessions.
  static bool serves(config::ListenerKind kind);

 private:
  SessionContext& ctx_;
  const config::ListenerConfig& listener_;
};

}  // namespace petrel::smtp::server
