// sasl_cram_md5.cc: CRAM-MD5 (RFC 2195), off by default.
//
// The server sends "<unique@host>", the client answers "user SP hex(HMAC-MD5(key, challenge))".
// The check runs from the account's stored HMAC-MD5 key state (cram_md5_state.h), never from
// the password. That state is still password-equivalent for CRAM-MD5 and cheap to attack
// offline (MD5), hence off by default and stored only while CRAM-MD5 is enabled.
#include <optional>
#include <string>

#include "auth/cram_md5_state.h"
#include "auth/sasl_crypto.h"
#include "auth/sasl_mechanisms.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

constexpr std::size_t kMaxName = 255;

class CramMd5 final : public SaslMechanism {
 public:
  CramMd5(CredentialSource& credentials, std::string challenge)
      : credentials_(credentials), challenge_(std::move(challenge)) {}
  std::string_view name() const override { return kCramMd5; }

  // RFC 2195 2: the server speaks first; an initial response is a protocol error.
  SaslStep start(std::optional<std::string_view> initial) override {
    if (initial) return finish(sasl_malformed("CRAM-MD5 initial response not allowed"));
    started_ = true;
    return sasl_continue(challenge_);
  }

  SaslStep step(std::string_view response) override {
    if (done_ || !started_) return finish(sasl_malformed("CRAM-MD5 out of sequence"));
    if (response.size() > kMaxResponseLength) return finish(sasl_malformed("CRAM-MD5 response too long"));
    // response = user SP digest; the user name runs to the last space (it may hold spaces).
    auto space = response.rfind(' ');
    if (space == std::string_view::npos || space == 0 || space > kMaxName) {
      return finish(sasl_malformed("CRAM-MD5 bad response"));
    }
    std::string user(response.substr(0, space));
    std::string digest = base::to_lower(response.substr(space + 1));
    if (digest.size() != 32 || digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return finish(sasl_malformed("CRAM-MD5 bad digest"));
    }

    auto state = credentials_.cram_md5_state(user);
    if (!state) return finish(sasl_temporary("credential store: " + state.error().message));
    // Unknown users cost the same HMAC as known ones, against a state nobody has.
    const bool known = state->has_value();
    static const std::string kNobody = cram_md5_key_state(std::string(64, '\x5c'));
    auto expected = hmac_md5_from_state(known ? **state : kNobody, challenge_);
    if (!expected) return finish(sasl_temporary("CRAM-MD5: damaged key state"));
    if (!crypto::equal(crypto::to_hex(*expected), digest) || !known) {
      return finish(sasl_failed("invalid credentials", std::move(user)));
    }
    return finish(sasl_success(std::move(user)));
  }

 private:
  SaslStep finish(SaslStep result) {
    done_ = true;
    return result;
  }

  CredentialSource& credentials_;
  std::string challenge_;
  bool started_ = false;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_cram_md5(CredentialSource& credentials, std::string challenge) {
  return std::make_unique<CramMd5>(credentials, std::move(challenge));
}

}  // namespace petrel::auth
