#include "net/tls.h"

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

}  // namespace
}  // namespace petrel::net
