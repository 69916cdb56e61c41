// tls.cc: server TLS context and the self-signed fallback certificate.
#include "net/tls.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/unique_fd.h"

namespace petrel::net {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

// Writes `name` in the directory `dir_fd` through a new temporary file (O_EXCL: never an
// existing file, never through a link), synced, then renamed into place.
base::Status write_pem(int dir_fd, const std::string& name, mode_t mode, bool key, EVP_PKEY* pkey, X509* cert) {
  std::string tmp = name + ".tmp";
  (void)::unlinkat(dir_fd, tmp.c_str(), 0);  // left by a start that did not finish
  int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return base::errno_error("create " + tmp, errno);
  FILE* f = ::fdopen(fd, "w");
  if (!f) {
    ::close(fd);
    return base::errno_error("fdopen " + tmp, errno);
  }
  int ok = key ? PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr) : PEM_write_X509(f, cert);
  bool flushed = std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok || !flushed) return base::temporary_error("cannot write " + tmp);
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) return base::errno_error("rename " + tmp, errno);
  return {};
}

}  // namespace

base::Status ensure_self_signed(const std::string& dir, const std::string& hostname) {
  std::string cert_path = dir + "/cert.pem", key_path = dir + "/key.pem";
  if (::access(cert_path.c_str(), R_OK) == 0 && ::access(key_path.c_str(), R_OK) == 0) return {};
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return base::errno_error("mkdir " + dir, errno);
  // The directory itself, never a link planted in its place.
  base::UniqueFd dir_fd_owner(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd_owner.valid()) return base::errno_error("open " + dir, errno);
  const int dir_fd = dir_fd_owner.get();

  PkeyPtr pkey(EVP_EC_gen("P-256"));
  if (!pkey) return base::temporary_error("cannot generate a TLS key");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
  X509_set_pubkey(cert.get(), pkey.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string san = "DNS:" + hostname;
  if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())) {
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (!X509_sign(cert.get(), pkey.get(), EVP_sha256())) return base::temporary_error("cannot sign the TLS certificate");
  if (auto s = write_pem(dir_fd, "key.pem", 0600, true, pkey.get(), nullptr); !s) return s;
  if (auto s = write_pem(dir_fd, "cert.pem", 0644, false, nullptr, cert.get()); !s) return s;
  if (::fsync(dir_fd) != 0) return base::errno_error("fsync " + dir, errno);
  return {};
}

base::Result<std::shared_ptr<asio::ssl::context>> make_server_tls_context(const TlsSettings& tls,
                                                                          const std::string& data_dir,
                                                                          const std::string& hostname) {
  std::string cert = tls.cert_file, key = tls.key_file;
  if (cert.empty()) {
    std::string dir = data_dir + "/tls";
    if (auto s = ensure_self_signed(dir, hostname); !s) return s.error();
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, tls.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Forward-secret AEAD suites only for TLS 1.2 (1.3 suites are all AEAD).
  SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!SHA1");
  // Smaller per-connection buffers: SSL_MODE_RELEASE_BUFFERS frees read/write buffers while idle.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1) {
    return base::permanent_error("cannot load TLS certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return base::permanent_error("cannot load TLS key " + key);
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return base::permanent_error("TLS key " + key + " does not match certificate " + cert);
  }
  return ctx;
}

base::Result<std::shared_ptr<asio::ssl::context>> make_client_tls_context(const ClientTlsSettings& settings) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (!settings.verify) {
    // Opportunistic (RFC 7435): encryption without authentication; any certificate will do.
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, settings.ca_file.c_str(), nullptr) != 1) {
      return base::permanent_error("cannot load TLS CA file " + settings.ca_file);
    }
  } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
    return base::permanent_error("cannot load the system TLS CA store");
  }
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

}  // namespace petrel::net
