// net/acceptor.h: the listeners of every protocol: binds them, accepts connections, enforces
// the connection limits, and hands each admitted connection to the SessionFactory of its
// listener (SMTP today; IMAP, POP3 and the admin API later), which knows nothing of sockets
// being accepted or counted.
//
// Promise: bind() happens before the process drops privileges and reports an address that
// cannot be bound; after start(), connections are spread round-robin over the event loops;
// past max_total connections, or max_per_client from one client (an IPv4 address or an IPv6
// /64, net/connection_limiter.h), the client hears its protocol's busy reply (nothing on an
// implicit-TLS port) and is closed without a session. stop() closes the listeners; sessions
// end on their own deadlines and release their slots whenever they end.
// Not done here: anything protocol-specific (the factories), TLS (the sessions).
// Failure: bind() returns a permanent error naming the listener; accept errors (EMFILE, ...)
// are logged and retried after a short pause, never ending the loop.
// Thread: bind/start/stop from the main thread; accept loops run on the first event loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/asio.h"
#include "net/connection_limiter.h"

namespace petrel::net {

// What a protocol does with the connections of one listener.
class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  // The text written to a client refused for the connection limits before it is closed,
  // e.g. SMTP's "421 4.7.0 <host> Too many connections, try again later\r\n"; empty = close
  // without a word (implicit TLS: plaintext could not be read).
  virtual std::string busy_reply() const = 0;
  // Takes an admitted connection. Called on the accept loop's thread (loops[0]); the socket
  // belongs to another loop (round-robin), where the session must run (co_spawn on the
  // socket's executor). `slot` is the connection's place in the limits: hold it until the
  // session ends.
  // `client_ip`: the peer's textual address, IPv4-mapped IPv6 given as IPv4.
  virtual void start(tcp::socket socket, std::string client_ip, std::unique_ptr<ConnectionLimiter::Slot> slot) = 0;
};

// One listening address, as config names it.
struct ListenSpec {
  std::string name;     // for logs
  std::string address;  // as written: "127.0.0.1:25", "[::1]:587"
  std::string host;     // the address part, parsed
  std::uint16_t port = 0;
};

class Acceptor {
 public:
  // `loops` are the event loops sessions run on; the accept loops run on loops[0].
  Acceptor(std::vector<asio::io_context*> loops, std::size_t max_total, std::size_t max_per_client);
  ~Acceptor();

  // Binds one listener (run before dropping privileges); listeners are numbered in the order
  // they were bound.
  base::Status bind(const ListenSpec& spec);
  // Starts accepting: listener i hands its connections to factories[i] (one per bound
  // listener, each outliving the acceptor and every session it starts).
  void start(std::vector<SessionFactory*> factories);
  void stop();

  // Connections holding a slot now (for tests and metrics).
  std::size_t connections() const { return limiter_.connections(); }

 private:
  struct Listener {
    ListenSpec spec;
    std::unique_ptr<tcp::acceptor> socket;
    SessionFactory* factory = nullptr;
  };
  awaitable<void> accept_loop(std::size_t index);

  std::vector<asio::io_context*> loops_;
  std::vector<Listener> listeners_;
  std::size_t next_loop_ = 0;
  ConnectionLimiter limiter_;
};

}  // namespace petrel::net
