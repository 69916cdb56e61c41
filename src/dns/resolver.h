// dns/resolver.h: the asynchronous DNS interface every layer above uses (MX routing, SPF, DKIM,
// DMARC, PTR checks). No Asio here: callers see a callback, implementations choose the loop.
//
// Promise: lookup() calls `done` exactly once, never from inside lookup() itself (always posted),
// on the resolver's executor, within the resolver's timeout. Names are case-insensitive: what
// comes back is lower-case, without a trailing dot. Every answer is bounded (kMaxRecords records,
// names of at most 255 octets); records that do not parse are dropped, never guessed at.
// Failure: Status says which kind. Only kNxDomain and kNoData are facts about the name;
// everything else (timeout, SERVFAIL, REFUSED, network, DNSSEC bogus, internal) is kTemporary,
// because an unclassified DNS failure must defer mail, never bounce it.
// Not done here: MX ordering and fallback (mx_route.h), caching policy (the implementation's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace petrel::dns {

enum class Type : std::uint8_t { kA, kAaaa, kMx, kTxt, kPtr };

enum class Status : std::uint8_t {
  kOk,         // at least one usable record (records that do not parse are dropped; if none is
               // left the answer is kTemporary "malformed")
  kNoData,     // the name exists, no records of this type (NOERROR, empty answer)
  kNxDomain,   // the name does not exist (RCODE 3)
  kTemporary,  // timeout, SERVFAIL, REFUSED, network, DNSSEC bogus, anything unclassified
};

// The most records one Answer carries; the rest are dropped (an MX set of 100 is already absurd).
inline constexpr std::size_t kMaxRecords = 100;
// RFC 1035 2.3.4: a name is at most 255 octets on the wire.
inline constexpr std::size_t kMaxNameOctets = 255;

struct MxRecord {
  std::uint16_t preference = 0;
  std::string exchange;  // lower-case, no trailing dot; "" for the null MX "." (RFC 7505)

  bool operator==(const MxRecord&) const = default;
};

struct Answer {
  Status status = Status::kTemporary;
  bool secure = false;  // DNSSEC validated (kept for DANE later); false without a trust anchor
  std::string why;      // for logs only: "SERVFAIL", "timeout", "DNSSEC bogus: ...", ...
  std::vector<MxRecord> mx;             // kMx
  std::vector<std::string> addresses;   // kA / kAaaa, textual: "192.0.2.1", "2001:db8::1"
  std::vector<std::string> texts;       // kTxt, each record's character-strings concatenated
  std::vector<std::string> names;       // kPtr, lower-case, no trailing dot
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Looks `name` up. For Type::kPtr, `name` is an IP address text ("192.0.2.1", "2001:db8::1")
  // and the resolver builds the in-addr.arpa / ip6.arpa name itself (an unparsable address
  // answers kNxDomain). Thread: any; `done` runs on the resolver's executor, exactly once.
  virtual void lookup(std::string name, Type type, std::function<void(Answer)> done) = 0;
  // Runs `fn` on the resolver's executor, never inside post() itself: for logic over a Resolver
  // (mx_route) that must complete without a lookup, yet on the same executor as after one.
  virtual void post(std::function<void()> fn) = 0;
};

std::string_view type_name(Type type);      // "A", "AAAA", "MX", "TXT", "PTR"
std::string_view status_name(Status status);  // "ok", "nodata", "nxdomain", "temporary"

}  // namespace petrel::dns
