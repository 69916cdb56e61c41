#include "net/tls.h"

#include "net/stream.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace petrel::net {
namespace {

TEST(Tls, MakesSelfSignedOnceAndLoadsIt) {
  char tmpl[] = "/tmp/petrel-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  TlsSettings tls;
  auto ctx = make_server_tls_context(tls, dir, "mx.example.test");
  ASSERT_TRUE(ctx) << ctx.error().message;
  struct stat st{};
  ASSERT_EQ(::stat((dir + "/tls/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto mtime = st.st_mtime;
  auto again = make_server_tls_context(tls, dir, "mx.example.test");
  ASSERT_TRUE(again);
  ASSERT_EQ(::stat((dir + "/tls/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, mtime);
  std::filesystem::remove_all(dir);
}

TEST(Tls, MissingConfiguredFilesAreReported) {
  TlsSettings tls;
  tls.cert_file = "/nonexistent/cert.pem";
  tls.key_file = "/nonexistent/key.pem";
  auto ctx = make_server_tls_context(tls, "/tmp", "x");
  ASSERT_FALSE(ctx);
  EXPECT_NE(ctx.error().message.find("/nonexistent/cert.pem"), std::string::npos);
}

// Client handshake against our own server context on loopback: returns the client's error.
error_code client_handshake(asio::ssl::context& server_ctx, asio::ssl::context& client_ctx,
                            const std::string& name) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  error_code client_ec = asio::error::would_block;
  auto port = acceptor.local_endpoint().port();
  asio::co_spawn(io, [&]() -> awaitable<void> {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    if (ec) co_return;
    Stream server(std::move(socket));
    co_await server.start_tls(server_ctx);
  }, asio::detached);
  asio::co_spawn(io, [&]() -> awaitable<void> {
    tcp::socket socket(io);
    auto [ec] = co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_nothrow);
    if (ec) {
      client_ec = ec;
      co_return;
    }
    Stream client(std::move(socket));
    client_ec = co_await client.start_tls_client(client_ctx, name);
    if (!client_ec) {
      EXPECT_NE(client.tls_description().find("TLS"), std::string::npos);
    }
  }, asio::detached);
  io.run_for(std::chrono::seconds(10));
  return client_ec;
}

TEST(Tls, ClientVerifiesChainAndNameOnlyWhenAsked) {
  char tmpl[] = "/tmp/petrel-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto server = make_server_tls_context(TlsSettings{}, dir, "mx.example.test");
  ASSERT_TRUE(server) << server.error().message;

  auto opportunistic = make_client_tls_context(ClientTlsSettings{});
  ASSERT_TRUE(opportunistic);
  EXPECT_FALSE(client_handshake(**server, **opportunistic, "mx.example.test"));
  EXPECT_FALSE(client_handshake(**server, **opportunistic, "127.0.0.1"));

  auto verifying = make_client_tls_context(ClientTlsSettings{true, dir + "/tls/cert.pem"});
  ASSERT_TRUE(verifying) << verifying.error().message;
  EXPECT_FALSE(client_handshake(**server, **verifying, "mx.example.test"));
  EXPECT_TRUE(client_handshake(**server, **verifying, "other.example.test"));

  // The system store does not know our self-signed certificate.
  auto system = make_client_tls_context(ClientTlsSettings{true, ""});
  ASSERT_TRUE(system);
  EXPECT_TRUE(client_handshake(**server, **system, "mx.example.test"));

  EXPECT_FALSE(make_client_tls_context(ClientTlsSettings{true, "/nonexistent/ca.pem"}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace petrel::net
