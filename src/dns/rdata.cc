// rdata.cc: RDATA wire format → text, bounds-checked at every octet (see rdata.h).
#include "dns/rdata.h"

#include <arpa/inet.h>

#include "base/strings.h"

namespace petrel::dns {
namespace {

bool host_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

}  // namespace

std::optional<std::string> parse_name(const std::uint8_t* data, std::size_t size, std::size_t* offset) {
  // RFC 1035 3.1: length-prefixed labels ending with the zero-length root label; 255 octets at
  // most in all. A length with the top bits set is a compression pointer (or the reserved 0x40 /
  // 0x80 forms): none is valid in RDATA handed over uncompressed.
  std::size_t pos = *offset;
  std::size_t wire = 0;
  std::string out;
  for (;;) {
    if (pos >= size) return std::nullopt;
    std::size_t len = data[pos];
    if (len & 0xC0) return std::nullopt;
    wire += 1 + len;
    if (wire > kMaxNameOctets) return std::nullopt;
    ++pos;
    if (len == 0) break;
    if (len > size - pos) return std::nullopt;
    if (!out.empty()) out += '.';
    for (std::size_t i = 0; i < len; ++i) {
      auto c = static_cast<unsigned char>(data[pos + i]);
      if (!host_char(c)) return std::nullopt;
      out += base::ascii_lower(static_cast<char>(c));
    }
    pos += len;
  }
  *offset = pos;
  return out;
}

std::optional<std::string> parse_a(const std::uint8_t* data, std::size_t size) {
  if (size != 4) return std::nullopt;
  char buf[INET_ADDRSTRLEN];
  if (!::inet_ntop(AF_INET, data, buf, sizeof buf)) return std::nullopt;
  return std::string(buf);
}

std::optional<std::string> parse_aaaa(const std::uint8_t* data, std::size_t size) {
  if (size != 16) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  if (!::inet_ntop(AF_INET6, data, buf, sizeof buf)) return std::nullopt;
  return std::string(buf);
}

std::optional<MxRecord> parse_mx(const std::uint8_t* data, std::size_t size) {
  // RFC 1035 3.3.9: PREFERENCE (16 bits) then EXCHANGE, a name.
  if (size < 3) return std::nullopt;
  MxRecord mx;
  mx.preference = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
  std::size_t pos = 2;
  auto name = parse_name(data, size, &pos);
  if (!name || pos != size) return std::nullopt;
  mx.exchange = std::move(*name);
  return mx;
}

std::optional<std::string> parse_ptr(const std::uint8_t* data, std::size_t size) {
  std::size_t pos = 0;
  auto name = parse_name(data, size, &pos);
  if (!name || pos != size || name->empty()) return std::nullopt;
  return name;
}

std::optional<std::string> parse_txt(const std::uint8_t* data, std::size_t size) {
  // RFC 1035 3.3.14: one or more <character-string>s, each a length octet and that many octets.
  if (size == 0) return std::nullopt;
  std::string out;
  std::size_t pos = 0;
  while (pos < size) {
    std::size_t len = data[pos++];
    if (len > size - pos) return std::nullopt;
    out.append(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
  }
  return out;
}

std::optional<std::string> reverse_name(std::string_view address) {
  if (address.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string text(address);
  unsigned char bytes[16];
  // RFC 1035 3.5: the four octets in reverse order under in-addr.arpa.
  if (::inet_pton(AF_INET, text.c_str(), bytes) == 1) {
    std::string out;
    for (int i = 3; i >= 0; --i) out += std::to_string(bytes[i]) + ".";
    return out + "in-addr.arpa";
  }
  // RFC 3596 2.5: the 32 nibbles in reverse order under ip6.arpa.
  if (::inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 15; i >= 0; --i) {
      out += kHex[bytes[i] & 0x0F];
      out += '.';
      out += kHex[bytes[i] >> 4];
      out += '.';
    }
    return out + "ip6.arpa";
  }
  return std::nullopt;
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return base::to_lower(name);
}

}  // namespace petrel::dns
