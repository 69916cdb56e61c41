// base/ip_key.h: the key under which a client address is counted by every per-client
// limit (connection slots, failed logins): one IPv4 address, or one IPv6 /64.
//
// Promise: ip_key("2001:db8:1:2::5") == ip_key("2001:db8:1:2:ffff::1") ==
// "2001:db8:1:2::/64", because one host (or one customer of a provider) usually holds a whole
// /64 (RFC 4291 2.5.1, RFC 6177) and could otherwise take a fresh address for every attempt.
// IPv4 addresses, including IPv4-mapped IPv6 given in dotted form, are their own key.
// Not done here: parsing the peer out of a socket (the caller passes its textual address).
// Failure: text that is not an IPv6 address is returned unchanged (still a usable key).
#pragma once

#include <string>
#include <string_view>

namespace petrel::base {

// "2001:db8:1:2::5" -> "2001:db8:1:2::/64"; IPv4 and unparsable text unchanged.
std::string ip_key(std::string_view ip);

}  // namespace petrel::base
