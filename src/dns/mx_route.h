// dns/mx_route.h: where mail for a domain goes, by RFC 5321 section 5, as pure logic over a
// Resolver (no sockets here; delivery/remote connects to the hops in order).
//
// Promise: find_route() calls `done` exactly once, on the resolver's executor, with either an
// ordered list of hops or a classified failure:
//   - MX records sorted by preference, equal preferences shuffled (RFC 5321 5.1), at most
//     max_hosts of them;
//   - no MX (kNoData) → the domain itself as an implicit MX of preference 0 (RFC 5321 5.1);
//   - a single null MX "." → permanent 5.1.10 (RFC 7505 3); a "." among other MX is ignored;
//   - a host that is us (is_self) → it and every host of the same or a higher preference value
//     are dropped (RFC 5321 5.1); nothing left → permanent 5.4.6 instead of a mail loop;
//   - NXDOMAIN for the domain → permanent 5.1.2; the MX lookup failing temporarily (SERVFAIL,
//     timeout) → temporary 4.4.3, never a bounce;
//   - each host's AAAA and A are both looked up; a host whose lookups fail temporarily is
//     skipped; no host with an address → temporary 4.4.3 if any failure was temporary, else
//     permanent 5.4.4; addresses IPv6 first then IPv4 (or IPv4 first with prefer_ipv4), at most
//     max_addresses in all;
//   - an address literal "[192.0.2.1]" / "[IPv6:2001:db8::1]" (RFC 5321 4.1.3) is one hop,
//     with no lookup.
// Bounded: one MX lookup, then all address lookups at once (at most 2 * max_hosts), so a route
// takes at most two resolver timeouts. The resolver's Answer::secure is carried to the route.
// Thread: the resolver's executor; the resolver must outlive the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.h"

namespace petrel::dns {

struct RouteOptions {
  // True when the host name or address is this server. Called with (host, "") for each host
  // name, then (host, address) for each of its addresses; empty = nothing is us.
  std::function<bool(std::string_view host, std::string_view address)> is_self;
  std::size_t max_hosts = 10;
  std::size_t max_addresses = 20;
  bool prefer_ipv4 = false;
  // Uniform random number for shuffling equal preferences; empty = a fresh random_device seed.
  std::function<std::uint64_t()> random;
};

struct Hop {
  std::string host;  // MX exchange or the domain (implicit MX) or the literal as written
  std::uint16_t preference = 0;
  std::vector<std::string> addresses;  // never empty in a returned route
  bool secure = false;  // both address answers were DNSSEC-validated

  bool operator==(const Hop&) const = default;
};

struct Route {
  enum class Kind : std::uint8_t { kOk, kTemporary, kPermanent };
  Kind kind = Kind::kTemporary;
  std::string enhanced;  // "5.1.10", "5.4.6", "5.1.2", "5.4.4", "4.4.3"; empty when kOk
  std::string text;      // why, for logs and bounces: "null MX: example.com accepts no mail"
  std::vector<Hop> hops;  // kOk only, in the order to try
  bool secure = false;    // the MX answer (or implicit MX address answers) validated by DNSSEC
};

void find_route(Resolver& resolver, std::string domain, RouteOptions options,
                std::function<void(Route)> done);

}  // namespace petrel::dns
