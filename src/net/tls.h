// net/tls.h: the server-side and client-side TLS contexts (OpenSSL 3 through Asio).
//
// Promise: TLS 1.2 or newer only (1.3 if configured), no compression, no renegotiation, server
// cipher preference, session tickets on. With no certificate configured, a self-signed one for
// the host name is made once in <data>/tls/ (EC P-256, 10 years) and reused afterwards.
// Failure: unreadable or mismatched certificate/key → a permanent error naming the file.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "net/asio.h"

namespace petrel::net {

struct TlsSettings {
  std::string cert_file;  // PEM chain; empty = self-signed in <data_dir>/tls/
  std::string key_file;
  bool tls13_only = false;
};

base::Result<std::shared_ptr<asio::ssl::context>> make_server_tls_context(const TlsSettings& tls,
                                                                          const std::string& data_dir,
                                                                          const std::string& hostname);

// Client side (outgoing SMTP): TLS 1.2 or newer, no compression, no renegotiation.
// verify = false is opportunistic TLS (Postfix "may", RFC 7435): any certificate is accepted,
// the channel is only encrypted. verify = true checks the chain against ca_file (PEM), or the
// system store when ca_file is empty, and Stream::start_tls_client() then checks the host name.
// Failure: an unreadable ca_file → a permanent error naming it.
struct ClientTlsSettings {
  bool verify = false;
  std::string ca_file;
};
base::Result<std::shared_ptr<asio::ssl::context>> make_client_tls_context(const ClientTlsSettings& settings);

// Makes <dir>/cert.pem and <dir>/key.pem (mode 0600 key) for `hostname` unless both exist.
base::Status ensure_self_signed(const std::string& dir, const std::string& hostname);

}  // namespace petrel::net
