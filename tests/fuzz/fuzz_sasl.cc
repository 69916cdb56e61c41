// fuzz_sasl: arbitrary client messages into every SASL mechanism (auth/sasl.h), through the
// line decoder and straight as octets, with a fake credential source. Invariants: no crash,
// no success without the right secret, nothing after a final outcome, data only on kContinue.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/cram_md5_state.h"
#include "auth/sasl.h"
#include "fuzz_check.h"

namespace {

using petrel::auth::SaslOutcome;

// One account, "user"/"pencil", SCRAM keys precomputed once (PBKDF2 is slow).
class FakeCredentials : public petrel::auth::CredentialSource {
 public:
  FakeCredentials() {
    auto keys = petrel::auth::compute_scram_keys("pencil", "0123456789abcdef", 16);
    CHECK(keys);
    keys_ = *keys;
  }
  petrel::base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override {
    return authcid == "user" && password == "pencil";
  }
  petrel::base::Result<std::optional<petrel::auth::ScramKeys>> scram_sha256_keys(std::string_view authcid) override {
    if (authcid != "user") return std::optional<petrel::auth::ScramKeys>();
    return std::optional<petrel::auth::ScramKeys>(keys_);
  }
  petrel::base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) override {
    if (authcid != "user") return std::optional<std::string>();
    return std::optional<std::string>(petrel::auth::cram_md5_key_state("pencil"));
  }

 private:
  petrel::auth::ScramKeys keys_;
};

// The input is split at '\n' into messages; the first byte picks the mechanism and whether
// messages go through decode_response (base64 lines) or in raw.
void run(petrel::auth::SaslServer& server, std::string_view name, std::string_view input, bool decode) {
  auto m = server.start(name);
  CHECK(m != nullptr);
  std::vector<std::string_view> messages;
  while (!input.empty() && messages.size() < 8) {
    auto nl = input.find('\n');
    messages.push_back(input.substr(0, nl));
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
  }
  bool finished = false;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    std::string octets(messages[i]);
    if (decode) {
      auto r = petrel::auth::decode_response(messages[i], i == 0);
      if (!r || r->cancelled) return;
      CHECK(r->octets.size() <= petrel::auth::kMaxResponseLength);
      octets = r->octets;
    }
    auto s = i == 0 ? m->start(octets.empty() && !decode ? std::nullopt : std::optional<std::string_view>(octets))
                    : m->step(octets);
    if (finished) CHECK(s.outcome == SaslOutcome::kMalformed);
    if (s.outcome != SaslOutcome::kContinue) {
      CHECK(s.data.empty());
      finished = true;
    }
    // Only the one account gets in, and only at the end of an exchange.
    if (s.outcome == SaslOutcome::kSuccess) CHECK(s.authcid == "user");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static FakeCredentials credentials;
  static petrel::auth::SaslServer server = [] {
    petrel::auth::SaslOptions options;
    options.mechanisms = {"PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"};
    options.nonce = [] { return std::string("fixednonce"); };
    options.fake_salt_secret = "fuzz";
    return petrel::auth::SaslServer(credentials, options);
  }();
  if (size == 0) return 0;
  static constexpr std::string_view kNames[] = {"PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"};
  std::string_view name = kNames[data[0] & 3];
  bool decode = (data[0] & 4) != 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  run(server, name, input, decode);

  // The strict base64 decoder round-trips whatever it accepts.
  if (auto d = petrel::auth::base64_decode(input)) CHECK(petrel::auth::base64_encode(*d) == input);
  return 0;
}
