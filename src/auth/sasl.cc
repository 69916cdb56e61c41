// sasl.cc: SaslServer (the factory by name), the line decoding shared by every protocol, and
// SCRAM key derivation for the accounts store.
#include "auth/sasl.h"

#include <algorithm>

#include "auth/sasl_crypto.h"
#include "auth/sasl_mechanisms.h"
#include "auth/saslprep.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

using base::iequals;

}  // namespace

// ---- base64 (RFC 4648 4) ----

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                      static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (std::size_t rest = in.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Canonical only: length a multiple of 4, '=' only as the last one or two characters, and the
// unused bits of the last group zero, so each octet string has exactly one accepted spelling.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int pad = 0;
    if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      int d = k >= 4 - pad ? 0 : base64_value(in[i + k]);
      if (d < 0) return std::nullopt;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return std::nullopt;
  }
  return out;
}

base::Result<SaslResponse> decode_response(std::string_view line, bool initial) {
  // RFC 4954 4: a response of up to 12,288 octets must be accepted; beyond that the client is
  // wasting our memory.
  if (line.size() > kMaxResponseLength) return base::permanent_error("SASL response too long");
  if (line == "*") return SaslResponse{true, {}};
  // RFC 4954 4: "=" is an empty initial response (only there; later an empty line is empty).
  if (initial && line == "=") return SaslResponse{false, {}};
  auto octets = base64_decode(line);
  if (!octets) return base::permanent_error("SASL response is not valid base64");
  return SaslResponse{false, std::move(octets).value()};
}

// ---- SCRAM keys (RFC 5802 3) ----

base::Result<ScramKeys> compute_scram_keys(std::string_view password, std::string_view salt,
                                           std::uint32_t iterations) {
  // RFC 5802 3: SaltedPassword := Hi(Normalize(password), salt, i).
  auto normalized = prepare_password(password, PrepMode::kStored);
  if (!normalized) return normalized.error();
  auto salted = crypto::pbkdf2_sha256(*normalized, salt, iterations);
  if (!salted) return base::temporary_error("SCRAM: PBKDF2 failed");
  auto client_key = crypto::hmac("SHA256", *salted, "Client Key");
  auto server_key = crypto::hmac("SHA256", *salted, "Server Key");
  if (!client_key || !server_key) return base::temporary_error("SCRAM: HMAC failed");
  auto stored_key = crypto::digest("SHA256", *client_key);
  if (!stored_key) return base::temporary_error("SCRAM: SHA-256 failed");
  return ScramKeys{std::string(salt), iterations, std::move(stored_key).value(), std::move(server_key).value()};
}

base::Result<ScramKeys> new_scram_keys(std::string_view password) {
  auto salt = crypto::random_bytes(16);
  if (!salt) return base::temporary_error("SCRAM: cannot draw a random salt");
  return compute_scram_keys(password, *salt, kScramIterations);
}

// ---- results ----

SaslStep sasl_continue(std::string challenge) { return SaslStep{SaslOutcome::kContinue, std::move(challenge), {}, {}}; }
SaslStep sasl_success(std::string authcid) { return SaslStep{SaslOutcome::kSuccess, {}, std::move(authcid), {}}; }
SaslStep sasl_failed(std::string reason, std::string authcid) {
  return SaslStep{SaslOutcome::kFailed, {}, std::move(authcid), std::move(reason)};
}
SaslStep sasl_malformed(std::string reason) { return SaslStep{SaslOutcome::kMalformed, {}, {}, std::move(reason)}; }
SaslStep sasl_temporary(std::string reason) { return SaslStep{SaslOutcome::kTemporary, {}, {}, std::move(reason)}; }

// ---- SaslServer ----

SaslServer::SaslServer(CredentialSource& credentials, SaslOptions options)
    : credentials_(credentials), options_(std::move(options)) {
  for (auto& name : options_.mechanisms) {
    for (char& c : name) c = base::ascii_upper(c);
  }
  if (options_.fake_salt_secret.empty()) {
    auto secret = crypto::random_bytes(32);
    PETREL_ASSERT(secret.has_value(), "cannot draw the SCRAM fake-salt secret");
    options_.fake_salt_secret = std::move(secret).value();
  }
}

bool SaslServer::enabled(std::string_view name) const {
  return std::any_of(options_.mechanisms.begin(), options_.mechanisms.end(),
                     [&](const std::string& m) { return iequals(m, name); });
}

std::string SaslServer::nonce() const {
  if (options_.nonce) return options_.nonce();
  auto raw = crypto::random_bytes(18);
  PETREL_ASSERT(raw.has_value(), "RAND_bytes failed");
  return base64_encode(*raw);
}

std::unique_ptr<SaslMechanism> SaslServer::start(std::string_view name) const {
  if (!enabled(name)) return nullptr;
  if (iequals(name, kPlain)) return make_plain(credentials_);
  if (iequals(name, kLogin)) return make_login(credentials_);
  if (iequals(name, kScramSha256)) return make_scram_sha256(credentials_, nonce(), options_.fake_salt_secret);
  if (iequals(name, kCramMd5)) {
    // RFC 2195 2: a presumptively arbitrary string, unique per challenge, in msg-id form.
    return make_cram_md5(credentials_, "<" + nonce() + "@" + options_.hostname + ">");
  }
  return nullptr;
}

}  // namespace petrel::auth
