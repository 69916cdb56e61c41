// cram_md5_state.cc: HMAC-MD5 from stored chaining values (cram_md5_state.h).
//
// Why the low-level MD5 API: OpenSSL 3's EVP interface cannot start a digest from a saved
// chaining value, and HMAC-from-state needs exactly that. MD5_CTX (openssl/md5.h) is
// deprecated in 3.0 but shipped, and its fields (A, B, C, D, Nl, Nh, num) are public, so a
// context can be primed with a saved state and a length of one block. This is the only file
// that uses it; the deprecation warning is silenced here alone. Should OpenSSL drop MD5_CTX,
// a 60-line MD5 compression function can replace it without changing the stored format.
#include "auth/cram_md5_state.h"

#include <cstdint>
#include <cstring>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/crypto.h>
#include <openssl/md5.h>

namespace petrel::auth {
namespace {

constexpr std::size_t kBlock = 64;

void put_le32(char* out, MD5_LONG v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

MD5_LONG get_le32(const char* in) {
  MD5_LONG v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// The chaining value after one block: K XOR pad.
void block_state(const unsigned char (&key)[kBlock], unsigned char pad, char* out) {
  unsigned char block[kBlock];
  for (std::size_t i = 0; i < kBlock; ++i) block[i] = key[i] ^ pad;
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_Update(&ctx, block, kBlock);
  put_le32(out, ctx.A);
  put_le32(out + 4, ctx.B);
  put_le32(out + 8, ctx.C);
  put_le32(out + 12, ctx.D);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(&ctx, sizeof ctx);
}

// A context as if one 64-octet block had been hashed and left `state`.
void resume(MD5_CTX& ctx, const char* state) {
  MD5_Init(&ctx);
  ctx.A = get_le32(state);
  ctx.B = get_le32(state + 4);
  ctx.C = get_le32(state + 8);
  ctx.D = get_le32(state + 12);
  ctx.Nl = kBlock * 8;  // the length counter is in bits
  ctx.Nh = 0;
  ctx.num = 0;
}

}  // namespace

std::string cram_md5_key_state(std::string_view password) {
  // RFC 2104 2: a key longer than the block is replaced by its hash, then zero-padded.
  unsigned char key[kBlock] = {};
  if (password.size() > kBlock) {
    MD5(reinterpret_cast<const unsigned char*>(password.data()), password.size(), key);
  } else {
    std::memcpy(key, password.data(), password.size());
  }
  std::string state(kCramMd5StateSize, '\0');
  block_state(key, 0x36, state.data());
  block_state(key, 0x5c, state.data() + 16);
  OPENSSL_cleanse(key, sizeof key);
  return state;
}

std::optional<std::string> hmac_md5_from_state(std::string_view state, std::string_view text) {
  if (state.size() != kCramMd5StateSize) return std::nullopt;
  unsigned char inner[MD5_DIGEST_LENGTH];
  MD5_CTX ctx;
  resume(ctx, state.data());
  MD5_Update(&ctx, text.data(), text.size());
  MD5_Final(inner, &ctx);
  unsigned char outer[MD5_DIGEST_LENGTH];
  resume(ctx, state.data() + 16);
  MD5_Update(&ctx, inner, sizeof inner);
  MD5_Final(outer, &ctx);
  return std::string(reinterpret_cast<const char*>(outer), sizeof outer);
}

}  // namespace petrel::auth

#pragma GCC diagnostic pop
