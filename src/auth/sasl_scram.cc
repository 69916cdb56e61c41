// sasl_scram.cc: SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding: the server
// keeps only salted keys, the client proves it knows the password without sending it, and the
// server proves back that it holds the keys (the "v=" signature).
//
// Exchange, as the state machine below walks it:
//   C: n,,n=user,r=<client nonce>                       client-first-message
//   S: r=<client nonce><server nonce>,s=<salt>,i=4096   server-first-message
//   C: c=biws,r=<both nonces>,p=<proof>                 client-final-message
//   S: v=<server signature>                             server-final-message (a challenge)
//   C: (empty)                                          then success
// The last round trip exists because SMTP AUTH (RFC 4954 4) and POP3 have no "success with
// data"; IMAP without SASL-IR uses it too. Failures carry no "e=" message: the protocol's own
// failure reply says enough, and says the same for an unknown user and a wrong password.
#include <optional>
#include <string>

#include "auth/sasl_crypto.h"
#include "auth/sasl_mechanisms.h"

namespace petrel::auth {
namespace {

constexpr std::size_t kMaxName = 255;
constexpr std::size_t kMaxNonce = 256;

// RFC 5802 7: saslname, where ',' and '=' travel as "=2C" and "=3D" and any other '=' is an
// error.
std::optional<std::string> decode_saslname(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',' || s[i] == '\0') return std::nullopt;
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    std::string_view esc = s.substr(i + 1, 2);
    if (esc == "2C") {
      out += ',';
    } else if (esc == "3D") {
      out += '=';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

// RFC 5802 7: printable = %x21-2B / %x2D-7E (no ',').
bool valid_nonce(std::string_view s) {
  if (s.empty() || s.size() > kMaxNonce) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// Splits "k=v,k=v" off the front: the next attribute's value if its name is `key`.
std::optional<std::string_view> take_attribute(std::string_view& s, char key) {
  if (s.size() < 2 || s[0] != key || s[1] != '=') return std::nullopt;
  auto comma = s.find(',');
  std::string_view value = s.substr(2, comma == std::string_view::npos ? std::string_view::npos : comma - 2);
  s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
  return value;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (std::size_t i = 0; i < out.size() && i < b.size(); ++i) out[i] = static_cast<char>(out[i] ^ b[i]);
  return out;
}

class ScramSha256 final : public SaslMechanism {
 public:
  ScramSha256(CredentialSource& credentials, std::string server_nonce, std::string fake_salt_secret)
      : credentials_(credentials), server_nonce_(std::move(server_nonce)), secret_(std::move(fake_salt_secret)) {}
  std::string_view name() const override { return kScramSha256; }

  SaslStep start(std::optional<std::string_view> initial) override {
    // RFC 5802 5: the client speaks first; without an initial response, an empty challenge.
    if (!initial) return sasl_continue({});
    return step(*initial);
  }

  SaslStep step(std::string_view message) override {
    if (message.size() > kMaxResponseLength) return finish(sasl_malformed("SCRAM message too long"));
    switch (state_) {
      case State::kClientFirst: return client_first(message);
      case State::kClientFinal: return client_final(message);
      case State::kAcknowledge:
        // The client's answer to "v=": RFC 4954 4 expects an empty response.
        if (!message.empty()) return finish(sasl_malformed("SCRAM unexpected data after server-final"));
        return finish(sasl_success(username_));
      case State::kDone: break;
    }
    return sasl_malformed("SCRAM exchange already finished");
  }

 private:
  enum class State { kClientFirst, kClientFinal, kAcknowledge, kDone };

  SaslStep finish(SaslStep result) {
    state_ = State::kDone;
    return result;
  }

  SaslStep client_first(std::string_view message) {
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","  (RFC 5802 7)
    // RFC 5802 6: "p=" asks for channel binding, which we do not offer (no -PLUS mechanism):
    // fail. "y" means the client could bind but believes we cannot, which is true: go on.
    std::string_view rest = message;
    if (rest.starts_with("p=")) return finish(sasl_malformed("SCRAM channel binding requested, not supported"));
    if (!rest.starts_with("n,") && !rest.starts_with("y,")) return finish(sasl_malformed("SCRAM bad gs2 header"));
    rest.remove_prefix(2);
    std::optional<std::string> authzid;
    if (rest.starts_with("a=")) {
      auto comma = rest.find(',');
      if (comma == std::string_view::npos) return finish(sasl_malformed("SCRAM bad authzid"));
      authzid = decode_saslname(rest.substr(2, comma - 2));
      if (!authzid || authzid->empty()) return finish(sasl_malformed("SCRAM bad authzid"));
      rest.remove_prefix(comma);
    }
    if (!rest.starts_with(",")) return finish(sasl_malformed("SCRAM bad gs2 header"));
    rest.remove_prefix(1);
    gs2_header_ = std::string(message.substr(0, message.size() - rest.size()));
    client_first_bare_ = std::string(rest);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    // RFC 5802 5.1: "m=" is a mandatory extension we do not know: fail.
    auto user = take_attribute(rest, 'n');
    if (!user) return finish(sasl_malformed("SCRAM missing or unsupported first attribute"));
    auto name = decode_saslname(*user);
    if (!name || name->empty() || name->size() > kMaxName) return finish(sasl_malformed("SCRAM bad user name"));
    auto nonce = take_attribute(rest, 'r');
    if (!nonce || !valid_nonce(*nonce)) return finish(sasl_malformed("SCRAM bad client nonce"));
    if (authzid && *authzid != *name) return finish(sasl_failed("SCRAM authzid differs from user name", *name));
    username_ = std::move(name).value();
    nonce_ = std::string(*nonce) + server_nonce_;

    // Keys, or a stand-in that fails at the proof just as a wrong password would.
    auto keys = credentials_.scram_sha256_keys(username_);
    if (!keys) return finish(sasl_temporary("credential store: " + keys.error().message));
    if (*keys) {
      keys_ = std::move(*keys).value();
      known_ = true;
    } else {
      auto fake = fake_keys();
      if (!fake) return finish(sasl_temporary("SCRAM: HMAC failed"));
      keys_ = std::move(fake).value();
    }
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(keys_.salt) + ",i=" + std::to_string(keys_.iterations);
    state_ = State::kClientFinal;
    return sasl_continue(server_first_);
  }

  // RFC 5802 5.1: a server should answer an unknown user with a made-up salt that does not
  // change between attempts, so that probing cannot tell who exists.
  std::optional<ScramKeys> fake_keys() const {
    auto salt = crypto::hmac("SHA256", secret_, "salt\n" + username_);
    auto stored = crypto::hmac("SHA256", secret_, "stored\n" + username_);
    if (!salt || !stored) return std::nullopt;
    return ScramKeys{salt->substr(0, 16), kScramIterations, *stored, *stored};
  }

  SaslStep client_final(std::string_view message) {
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof; the proof
    // is the last attribute and the AuthMessage covers everything before it.
    auto proof_at = message.rfind(",p=");
    if (proof_at == std::string_view::npos) return finish(sasl_malformed("SCRAM missing proof"));
    std::string_view without_proof = message.substr(0, proof_at);
    auto proof = base64_decode(message.substr(proof_at + 3));
    if (!proof || proof->size() != 32) return finish(sasl_malformed("SCRAM bad proof encoding"));

    std::string_view rest = without_proof;
    auto cbind = take_attribute(rest, 'c');
    if (!cbind) return finish(sasl_malformed("SCRAM missing channel binding"));
    // Without channel binding, c= carries the gs2 header exactly as sent ("biws" for "n,,").
    auto cbind_data = base64_decode(*cbind);
    if (!cbind_data || *cbind_data != gs2_header_) return finish(sasl_malformed("SCRAM channel binding mismatch"));
    auto nonce = take_attribute(rest, 'r');
    if (!nonce || *nonce != nonce_) return finish(sasl_malformed("SCRAM nonce mismatch"));

    // RFC 5802 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the client knows the
    // password when H(ClientKey) is StoredKey.
    const std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    auto client_signature = crypto::hmac("SHA256", keys_.stored_key, auth_message);
    if (!client_signature) return finish(sasl_temporary("SCRAM: HMAC failed"));
    auto stored = crypto::digest("SHA256", xor_bytes(*proof, *client_signature));
    if (!stored) return finish(sasl_temporary("SCRAM: SHA-256 failed"));
    const bool match = crypto::equal(*stored, keys_.stored_key);
    if (!match || !known_) return finish(sasl_failed("invalid credentials", username_));

    auto server_signature = crypto::hmac("SHA256", keys_.server_key, auth_message);
    if (!server_signature) return finish(sasl_temporary("SCRAM: HMAC failed"));
    state_ = State::kAcknowledge;
    return sasl_continue("v=" + base64_encode(*server_signature));
  }

  CredentialSource& credentials_;
  std::string server_nonce_;
  std::string secret_;
  State state_ = State::kClientFirst;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string username_;
  std::string nonce_;
  ScramKeys keys_;
  bool known_ = false;
};

}  // namespace

std::unique_ptr<SaslMechanism> make_scram_sha256(CredentialSource& credentials, std::string server_nonce,
                                                 std::string fake_salt_secret) {
  return std::make_unique<ScramSha256>(credentials, std::move(server_nonce), std::move(fake_salt_secret));
}

}  // namespace petrel::auth
