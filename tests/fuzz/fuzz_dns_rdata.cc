// fuzz_dns_rdata: every RDATA parser of dns/rdata.h over hostile bytes, with the invariants a
// caller relies on (bounded, lower-case host-name text, exact consumption), and reverse_name
// over hostile text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dns/rdata.h"
#include "fuzz_check.h"

namespace {

void check_host_name(const std::string& name) {
  CHECK(name.size() <= 253);
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      CHECK(label >= 1);
      label = 0;
      continue;
    }
    CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
    ++label;
    CHECK(label <= 63);
  }
  CHECK(name.empty() || label >= 1);
}

// The wire form of a parsed name; parsing it again must give the same text.
std::vector<std::uint8_t> encode(const std::string& name) {
  std::vector<std::uint8_t> out;
  std::size_t start = 0;
  while (start < name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out.push_back(static_cast<std::uint8_t>(dot - start));
    out.insert(out.end(), name.begin() + static_cast<std::ptrdiff_t>(start), name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace petrel::dns;

  if (auto a = parse_a(data, size)) CHECK(size == 4 && a->size() <= 15);
  if (auto a = parse_aaaa(data, size)) CHECK(size == 16 && a->size() <= 39);

  std::size_t offset = 0;
  if (auto n = parse_name(data, size, &offset)) {
    check_host_name(*n);
    CHECK(offset >= 1 && offset <= size && offset <= kMaxNameOctets);
    auto wire = encode(*n);
    CHECK(wire.size() == offset);
    std::size_t again_offset = 0;
    auto again = parse_name(wire.data(), wire.size(), &again_offset);
    CHECK(again && *again == *n && again_offset == wire.size());
  }

  if (auto mx = parse_mx(data, size)) {
    check_host_name(mx->exchange);
    CHECK(size == 2 + encode(mx->exchange).size());
    CHECK(mx->preference == ((data[0] << 8) | data[1]));
  }
  if (auto ptr = parse_ptr(data, size)) {
    check_host_name(*ptr);
    CHECK(!ptr->empty());
  }
  if (auto txt = parse_txt(data, size)) CHECK(txt->size() < size);

  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto rev = reverse_name(text)) {
    CHECK(rev->size() <= 72);
    CHECK(rev->ends_with(".in-addr.arpa") || rev->ends_with(".ip6.arpa"));
  }
  auto norm = normalize_name(text);
  CHECK(norm.size() <= size);
  return 0;
}
