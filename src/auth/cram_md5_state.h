// auth/cram_md5_state.h: HMAC-MD5 (RFC 2104) from a stored key state, for CRAM-MD5 (RFC 2195)
// without keeping the password.
//
// The key state is what Dovecot and Cyrus store for CRAM-MD5: the MD5 chaining values after the
// one 64-octet block K XOR ipad, and after K XOR opad (16 octets each, A B C D little-endian:
// 32 octets in all). HMAC-MD5(K, text) = MD5(K^opad || MD5(K^ipad || text)) can be finished
// from those two states, so the password itself is never needed again.
// Promise: hmac_md5_from_state(cram_md5_key_state(p), t) equals HMAC-MD5(p, t) for every
// password p (keys longer than 64 octets are hashed first, as RFC 2104 2 says) and text t.
// Not done here: keeping the state secret. It is password-equivalent for CRAM-MD5, and MD5 is
// cheap to brute-force, which is why CRAM-MD5 is off by default and the state is stored only
// when it is enabled (AccountStoreOptions::cram_md5).
// Failure: nullopt for a state that is not 32 octets.
// Thread: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace petrel::auth {

inline constexpr std::size_t kCramMd5StateSize = 32;

// The 32-octet key state of `password`.
std::string cram_md5_key_state(std::string_view password);
// HMAC-MD5 of `text` under the key whose state is `state`: 16 raw octets.
std::optional<std::string> hmac_md5_from_state(std::string_view state, std::string_view text);

}  // namespace petrel::auth
