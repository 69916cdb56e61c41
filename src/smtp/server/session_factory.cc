// session_factory.cc: SMTP sessions for the acceptor's connections (session_factory.h).
#include "smtp/server/session_factory.h"

namespace petrel::smtp::server {

std::string SessionFactory::busy_reply() const {
  // On an implicit-TLS listener a plaintext reply cannot be read: just close.
  if (listener_.kind == config::ListenerKind::kSubmissions) return "";
  return "421 4.7.0 " + ctx_.config.server.hostname + " Too many connections, try again later\r\n";
}

void SessionFactory::start(net::tcp::socket socket, std::string /*client_ip: the session reads it itself*/,
                           std::unique_ptr<net::ConnectionLimiter::Slot> slot) {
  Session::start(std::make_shared<Session>(ctx_, listener_, std::move(socket), std::move(slot)));
}

bool SessionFactory::serves(config::ListenerKind kind) {
  switch (kind) {
    case config::ListenerKind::kSmtp:
    case config::ListenerKind::kSubmission:
    case config::ListenerKind::kSubmissions:
      return true;
  }
  return false;
}

}  // namespace petrel::smtp::server
