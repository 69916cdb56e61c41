// fuzz_address: parse_path under every option combination, parse_address, is_valid_domain,
// xtext and UTF-8, with the invariants that must hold for any input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mail/address.h"
#include "mail/command.h"
#include "fuzz_check.h"

namespace {

using petrel::mail::Address;
using petrel::mail::PathOptions;

// An independent decoder: code points by arithmetic, then the RFC 3629 limits.
bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) { n = 1; cp = c; }
    else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

void check_path(std::string_view text, const PathOptions& opt) {
  petrel::mail::PathError why{};
  auto r = petrel::mail::parse_path(text, opt, &why);
  if (!r) return;
  const Address& a = r->address;
  CHECK(r->consumed >= 2 && r->consumed <= text.size() && r->consumed <= 256);
  CHECK(text[0] == '<' && text[r->consumed - 1] == '>');
  CHECK(a.local.size() <= 64 && a.domain.size() <= 255);
  if (!opt.allow_utf8) CHECK(!a.has_utf8());
  if (a.has_utf8()) CHECK(petrel::mail::is_valid_utf8(a.local) && petrel::mail::is_valid_utf8(a.domain));
  if (a.null()) {
    CHECK(opt.allow_null && r->consumed == 2);
    CHECK(a.str().empty());
    return;
  }
  CHECK(!a.local.empty());
  if (a.domain.empty()) {
    CHECK(opt.allow_postmaster && a.local == "Postmaster");
  } else {
    CHECK(petrel::mail::is_valid_domain(a.domain, opt.allow_utf8));
  }
  // str() is never longer than what was parsed, so it re-parses to the same address.
  std::string again = "<" + a.str() + ">";
  CHECK(again.size() <= r->consumed);
  auto r2 = petrel::mail::parse_path(again, opt);
  CHECK(r2 && r2->address == a && r2->consumed == again.size());
  if (!a.domain.empty()) {
    auto bare = petrel::mail::parse_address(a.str());
    CHECK(bare && *bare == a);
  }
  std::string key = a.domain_key();
  CHECK(key.size() == a.domain.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  for (int bits = 0; bits < 8; ++bits) {
    PathOptions opt;
    opt.allow_null = (bits & 1) != 0;
    opt.allow_postmaster = (bits & 2) != 0;
    opt.allow_utf8 = (bits & 4) != 0;
    check_path(text, opt);
  }

  if (auto a = petrel::mail::parse_address(text)) {
    CHECK(!a->local.empty() && !a->domain.empty());
    CHECK(text.size() <= 254);
    CHECK(petrel::mail::is_valid_domain(a->domain, true));
    auto again = petrel::mail::parse_address(a->str());
    CHECK(again && *again == *a);
  }

  if (petrel::mail::is_valid_domain(text, false)) {
    CHECK(petrel::mail::is_valid_domain(text, true));
  }

  CHECK(petrel::mail::is_valid_utf8(text) == reference_utf8(text));

  std::string encoded = petrel::mail::xtext_encode(text);
  auto decoded = petrel::mail::xtext_decode(encoded);
  CHECK(decoded && *decoded == text);
  if (auto d = petrel::mail::xtext_decode(text)) {
    CHECK(d->size() <= text.size());
  }
  return 0;
}
