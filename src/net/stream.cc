// stream.cc: plain/TLS stream and the deadline watchdog.
#include "net/stream.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace petrel::net {

awaitable<std::pair<error_code, std::size_t>> Stream::read_some(asio::mutable_buffer buffer) {
  auto [ec, n] = tls_ ? co_await tls_->async_read_some(buffer, use_nothrow)
                      : co_await socket_.async_read_some(buffer, use_nothrow);
  co_return std::make_pair(ec, n);
}

awaitable<error_code> Stream::write(asio::const_buffer buffer) {
  auto [ec, n] = tls_ ? co_await asio::async_write(*tls_, buffer, use_nothrow)
                      : co_await asio::async_write(socket_, buffer, use_nothrow);
  (void)n;
  co_return ec;
}

awaitable<error_code> Stream::start_tls(asio::ssl::context& context) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, context);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, use_nothrow);
  co_return ec;
}

awaitable<error_code> Stream::start_tls_client(asio::ssl::context& context, const std::string& server_name) {
  tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, context);
  SSL* ssl = tls_->native_handle();
  error_code address_ec;
  bool is_ip = server_name.empty() || (asio::ip::make_address(server_name, address_ec), !address_ec);
  // RFC 6066 3: SNI carries a DNS name only, never an address literal.
  if (!is_ip) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (!server_name.empty() && (SSL_CTX_get_verify_mode(context.native_handle()) & SSL_VERIFY_PEER) != 0) {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str())
                   : SSL_set1_host(ssl, server_name.c_str());
    if (ok != 1) co_return error_code(asio::error::invalid_argument);
  }
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_nothrow);
  co_return ec;
}

std::string Stream::tls_description() const {
  if (!tls_) return {};
  SSL* ssl = const_cast<asio::ssl::stream<tcp::socket&>&>(*tls_).native_handle();
  std::string out = SSL_get_version(ssl);
  if (const char* cipher = SSL_get_cipher_name(ssl)) out += std::string(" ") + cipher;
  return out;
}

std::size_t Stream::available() const {
  error_code ec;
  auto n = socket_.available(ec);
  return ec ? 0 : n;
}

void Stream::close() {
  error_code ec;
  if (socket_.is_open()) {
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
}

void Stream::cancel() {
  error_code ec;
  socket_.cancel(ec);
}

awaitable<void> Deadline::watch(Stream& stream) {
  while (!cancelled_) {
    timer_.expires_at(deadline_);
    auto [ec] = co_await timer_.async_wait(use_nothrow);
    (void)ec;  // aborted: the deadline moved earlier or was cancelled; loop and look again
    if (cancelled_) break;
    if (clock::now() >= deadline_) {
      expired_ = true;
      deadline_ = clock::time_point::max();
      stream.cancel();
    }
  }
}

void Deadline::expire_after(clock::duration d) {
  auto next = clock::now() + d;
  bool earlier = next < timer_.expiry();
  deadline_ = next;
  if (earlier) timer_.cancel();  // wake the watcher so it re-arms at the nearer time
}

void Deadline::cancel() {
  cancelled_ = true;
  timer_.cancel();
}

}  // namespace petrel::net
