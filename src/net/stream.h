// net/stream.h: one client connection, plain TCP or TLS, read and written by coroutines.
//
// Promise: read_some()/write() never throw; they return the error_code. start_tls() turns the
// stream into TLS in place (STARTTLS, RFC 3207) or from the start (implicit TLS, RFC 8314).
// A Deadline closes the socket when a read or write has taken too long, which completes the
// pending operation with an error: every wait in a session is bounded.
// Thread: a Stream and its Deadline belong to one io_context thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "net/asio.h"

namespace petrel::net {

class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer buffer);
  awaitable<error_code> write(asio::const_buffer buffer);
  // Server-side handshake; on success all further I/O is encrypted.
  awaitable<error_code> start_tls(asio::ssl::context& context);
  // Client-side handshake (outgoing STARTTLS). server_name goes in SNI unless it is an IP
  // literal or empty; when the context verifies peers (make_client_tls_context with verify),
  // the certificate must also match server_name (RFC 6125 DNS-ID, no partial wildcards).
  awaitable<error_code> start_tls_client(asio::ssl::context& context, const std::string& server_name);

  bool is_tls() const { return tls_ != nullptr; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" (for Received: and logs); empty when plain.
  std::string tls_description() const;
  // Bytes already readable on the raw socket without blocking (the early-talker check).
  std::size_t available() const;
  // Closes the socket (idempotent); pending operations complete with an error.
  void close();
  // Cancels pending operations (they complete with operation_aborted); the socket stays open.
  void cancel();
  bool is_open() const { return socket_.is_open(); }
  tcp::socket& socket() { return socket_; }

 private:
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

// Deadline: a watchdog over a Stream. When the deadline passes, the stream's pending operations
// are cancelled and expired() turns true; the owner may then set a new, short deadline to say
// goodbye. Extending a deadline costs no timer operation (the timer re-arms when it fires early).
class Deadline {
 public:
  using clock = std::chrono::steady_clock;
  explicit Deadline(const asio::any_io_executor& executor) : timer_(executor) {}

  // Runs until cancel(); cancels `stream`'s operations each time a deadline passes.
  // The caller keeps `stream` and this Deadline alive until watch() returns (the session
  // object owns both and holds itself alive across both coroutines).
  awaitable<void> watch(Stream& stream);
  void expire_after(clock::duration d);
  void cancel();
  bool expired() const { return expired_; }

 private:
  asio::steady_timer timer_;
  clock::time_point deadline_ = clock::time_point::max();
  bool cancelled_ = false;
  bool expired_ = false;
};

}  // namespace petrel::net
