// sasl_plain.cc: PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), the two mechanisms
// that carry the password itself and are checked with CredentialSource::verify_password.
// The password goes to the source as the client sent it: the source compares it after
// SASLprep (RFC 4616 2, RFC 4013; AccountStore::verify_password), so it is prepared in one
// place for every protocol.
// Both belong only on encrypted connections; the protocol layer enforces that.
#include <optional>

#include "auth/password.h"
#include "auth/sasl_mechanisms.h"
#include "mail/command.h"

namespace petrel::auth {
namespace {

// RFC 4616 2: authzid and authcid are 1..255 octets of UTF-8 without NUL. The password may be
// as long as the store accepts (kMaxPasswordLength, more than the RFC's 255), so that an
// account whose password was set long can still log in.
constexpr std::size_t kMaxIdentity = 255;

SaslStep check(CredentialSource& credentials, std::string_view authcid, std::string_view password) {
  auto ok = credentials.verify_password(authcid, password);
  if (!ok) return sasl_temporary("credential store: " + ok.error().message);
  if (!*ok) return sasl_failed("invalid credentials", std::string(authcid));
  return sasl_success(std::string(authcid));
}

class Plain final : public SaslMechanism {
 public:
  explicit Plain(CredentialSource& credentials) : credentials_(credentials) {}
  std::string_view name() const override { return kPlain; }

  // RFC 4616 2: the client sends first; with no initial response the server's challenge is
  // empty.
  SaslStep start(std::optional<std::string_view> initial) override {
    if (!initial) return sasl_continue({});
    return step(*initial);
  }

  SaslStep step(std::string_view message) override {
    if (done_) return sasl_malformed("PLAIN exchange already finished");
    done_ = true;
    if (message.size() > kMaxResponseLength) return sasl_malformed("PLAIN message too long");

    // message = [authzid] NUL authcid NUL passwd
    auto nul1 = message.find('\0');
    if (nul1 == std::string_view::npos) return sasl_malformed("PLAIN message without NUL");
    auto nul2 = message.find('\0', nul1 + 1);
    if (nul2 == std::string_view::npos) return sasl_malformed("PLAIN message with one NUL");
    std::string_view authzid = message.substr(0, nul1);
    std::string_view authcid = message.substr(nul1 + 1, nul2 - nul1 - 1);
    std::string_view password = message.substr(nul2 + 1);
    if (password.find('\0') != std::string_view::npos) return sasl_malformed("PLAIN message with three NULs");
    if (authcid.empty() || password.empty()) return sasl_malformed("PLAIN empty authcid or password");
    if (authcid.size() > kMaxIdentity || authzid.size() > kMaxIdentity || password.size() > kMaxPasswordLength) {
      return sasl_malformed("PLAIN field too long");
    }
    if (!mail::is_valid_utf8(authcid) || !mail::is_valid_utf8(authzid) || !mail::is_valid_utf8(password)) {
      return sasl_malformed("PLAIN field not UTF-8");
    }

    // RFC 4616 2: the server refuses an authzid the authcid may not act as; we allow only the
    // user's own, spelled as the authcid (no proxy authorization). Refused before the password
    // is checked, whatever it is, so the answer says nothing about the account.
    if (!authzid.empty() && authzid != authcid) return sasl_failed("PLAIN authzid differs from authcid", std::string(authcid));
    return check(credentials_, authcid, password);
  }

 private:
  CredentialSource& credentials_;
  bool done_ = false;
};

// LOGIN: the server asks "Username:" then "Password:" (each base64 by the protocol layer);
// some clients send the user name as an initial response.
class Login final : public SaslMechanism {
 public:
  explicit Login(CredentialSource& credentials) : credentials_(credentials) {}
  std::string_view name() const override { return kLogin; }

  SaslStep start(std::optional<std::string_view> initial) override {
    if (!initial) return sasl_continue("Username:");
    return step(*initial);
  }

  SaslStep step(std::string_view response) override {
    if (done_) return sasl_malformed("LOGIN exchange already finished");
    if (response.size() > kMaxResponseLength) return finish(sasl_malformed("LOGIN response too long"));
    if (!user_) {
      if (response.empty() || response.size() > kMaxIdentity || response.find('\0') != std::string_view::npos) {
        return finish(sasl_malformed("LOGIN bad user name"));
      }
      user_ = std::string(response);
      return sasl_continue("Password:");
    }
    if (response.empty() || response.size() > kMaxPasswordLength) {
      return finish(sasl_malformed("LOGIN bad password length"));
    }
    return finish(check(credentials_, *user_, response));
  }

 private:
  SaslStep finish(SaslStep result) {
    done_ = true;
    return result;
  }

  CredentialSource& credentials_;
  std::optional<std::string> user_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_plain(CredentialSource& credentials) { return std::make_unique<Plain>(credentials); }
std::unique_ptr<SaslMechanism> make_login(CredentialSource& credentials) { return std::make_unique<Login>(credentials); }

}  // namespace petrel::auth
