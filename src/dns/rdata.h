// dns/rdata.h: strict parsers for the RDATA of the record types Petrel asks for, and the
// reverse (PTR) name of an address. Pure functions, no I/O; fuzzed by tests/fuzz/fuzz_dns_rdata.
//
// Input is one record's RDATA in wire format, as libunbound hands it over (ub_result data/len):
// names are uncompressed, so a compression pointer is malformed here.
// Promise: never reads outside [data, data + size); a parse either consumes the RDATA exactly
// or fails. Names come out lower-case, dot-separated, without the trailing dot ("" is the root),
// at most kMaxNameOctets on the wire, labels of 1..63 octets made of letters, digits, '-' and '_'
// (a host name we could use; anything else is refused rather than escaped).
// Failure: std::nullopt; the caller drops that record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dns/resolver.h"

namespace petrel::dns {

std::optional<std::string> parse_a(const std::uint8_t* data, std::size_t size);     // "192.0.2.1"
std::optional<std::string> parse_aaaa(const std::uint8_t* data, std::size_t size);  // "2001:db8::1"
std::optional<MxRecord> parse_mx(const std::uint8_t* data, std::size_t size);       // RFC 1035 3.3.9
std::optional<std::string> parse_ptr(const std::uint8_t* data, std::size_t size);   // RFC 1035 3.3.12
// RFC 1035 3.3.14: one or more <character-string>s, concatenated (RFC 7208 3.3 for SPF).
std::optional<std::string> parse_txt(const std::uint8_t* data, std::size_t size);

// A name in wire format starting at data[*offset]; advances *offset past it.
std::optional<std::string> parse_name(const std::uint8_t* data, std::size_t size, std::size_t* offset);

// "192.0.2.1" → "1.2.0.192.in-addr.arpa"; "2001:db8::1" → "1.0.0.0....8.b.d.0.1.0.0.2.ip6.arpa"
// (RFC 1035 3.5, RFC 3596 2.5). nullopt when `address` is not an IP address.
std::optional<std::string> reverse_name(std::string_view address);

// Lower-case, without one trailing dot: the form names are compared and returned in.
std::string normalize_name(std::string_view name);

}  // namespace petrel::dns
