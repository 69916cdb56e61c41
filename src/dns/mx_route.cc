// mx_route.cc: RFC 5321 section 5 over a Resolver (rules: mx_route.h).
//
// Two rounds: the MX lookup, then AAAA and A for every host at once. The shared RouteState
// lives as long as the last callback that holds it; `done` is called once, by whichever round
// ends the route.
#include "dns/mx_route.h"

#include <arpa/inet.h>

#include <algorithm>
#include <memory>
#include <random>
#include <utility>

#include "base/strings.h"
#include "dns/rdata.h"

namespace petrel::dns {
namespace {

struct HostState {
  std::string host;
  std::uint16_t preference = 0;
  Answer v6, v4;
};

struct RouteState {
  Resolver* resolver = nullptr;
  RouteOptions options;
  std::string domain;
  std::function<void(Route)> done;
  std::vector<HostState> hosts;
  std::size_t outstanding = 0;
  bool mx_secure = false;
  bool implicit = false;
};
using StatePtr = std::shared_ptr<RouteState>;

Route failure(Route::Kind kind, std::string enhanced, std::string text) {
  Route r;
  r.kind = kind;
  r.enhanced = std::move(enhanced);
  r.text = std::move(text);
  return r;
}
Route permanent(std::string enhanced, std::string text) {
  return failure(Route::Kind::kPermanent, std::move(enhanced), std::move(text));
}
Route temporary(std::string text) { return failure(Route::Kind::kTemporary, "4.4.3", std::move(text)); }

void complete(const StatePtr& s, Route route) {
  auto done = std::move(s->done);
  s->done = nullptr;
  if (done) done(std::move(route));
}

bool is_self(const RouteOptions& o, std::string_view host, std::string_view address) {
  return o.is_self && o.is_self(host, address);
}

// RFC 5321 5.1: "If the SMTP client finds its own name or address in the list, it MUST discard
// that entry and all entries with the same or higher preference (less preferred)". Hosts are
// sorted; returns false when none remains.
bool trim_at(std::vector<HostState>& hosts, std::uint16_t self_preference) {
  std::erase_if(hosts, [&](const HostState& h) { return h.preference >= self_preference; });
  return !hosts.empty();
}

Route loops_back(const std::string& domain) {
  return permanent("5.4.6", "mail for " + domain + " loops back to us (its best MX is this host)");
}

// RFC 5321 4.1.3: "[192.0.2.1]" or "[IPv6:2001:db8::1]"; nullopt if `domain` is not a literal,
// "" if it is one but malformed.
std::optional<std::string> address_literal(std::string_view domain) {
  if (domain.size() < 2 || domain.front() != '[' || domain.back() != ']') return std::nullopt;
  std::string_view inner = domain.substr(1, domain.size() - 2);
  unsigned char buf[16];
  if (base::istarts_with(inner, "IPv6:")) {
    std::string v6(inner.substr(5));
    if (v6.size() < INET6_ADDRSTRLEN && ::inet_pton(AF_INET6, v6.c_str(), buf) == 1) {
      char out[INET6_ADDRSTRLEN];
      if (::inet_ntop(AF_INET6, buf, out, sizeof out)) return std::string(out);
    }
    return std::string();
  }
  std::string v4(inner);
  if (v4.size() < INET_ADDRSTRLEN && ::inet_pton(AF_INET, v4.c_str(), buf) == 1) return v4;
  return std::string();
}

// Shuffles each run of equal preferences in place (RFC 5321 5.1: "randomized to spread the load").
void shuffle_equal(std::vector<HostState>& hosts, const std::function<std::uint64_t()>& random) {
  std::mt19937_64 fallback;
  if (!random) fallback.seed(std::random_device{}());
  auto next = [&]() -> std::uint64_t { return random ? random() : fallback(); };
  for (std::size_t begin = 0; begin < hosts.size();) {
    std::size_t end = begin + 1;
    while (end < hosts.size() && hosts[end].preference == hosts[begin].preference) ++end;
    for (std::size_t i = end - begin; i > 1; --i) std::swap(hosts[begin + i - 1], hosts[begin + next() % i]);
    begin = end;
  }
}

// Round two is over: trim at our own addresses, then the hops in order.
void finish_addresses(const StatePtr& s) {
  auto& hosts = s->hosts;
  const auto& o = s->options;
  for (const auto& h : hosts) {
    bool self = false;
    for (const auto* a : {&h.v6, &h.v4}) {
      for (const auto& addr : a->addresses) self = self || is_self(o, h.host, addr);
    }
    if (self) {
      if (!trim_at(hosts, h.preference)) return complete(s, loops_back(s->domain));
      break;
    }
  }

  Route route;
  route.kind = Route::Kind::kOk;
  std::size_t total = 0;
  bool temporary_failure = false;
  std::string last_why;
  for (auto& h : hosts) {
    Hop hop{h.host, h.preference, {}, h.v6.secure && h.v4.secure};
    const Answer* order[2] = {&h.v6, &h.v4};
    if (o.prefer_ipv4) std::swap(order[0], order[1]);
    for (const auto* a : order) {
      if (a->status == Status::kTemporary) {
        temporary_failure = true;
        last_why = h.host + ": " + a->why;
      }
      for (const auto& addr : a->addresses) {
        if (total >= o.max_addresses) break;
        if (std::find(hop.addresses.begin(), hop.addresses.end(), addr) != hop.addresses.end()) continue;
        hop.addresses.push_back(addr);
        ++total;
      }
    }
    if (!hop.addresses.empty()) route.hops.push_back(std::move(hop));
  }
  if (route.hops.empty()) {
    if (temporary_failure) {
      return complete(s, temporary("no mail exchanger of " + s->domain + " could be resolved (" + last_why + ")"));
    }
    return complete(s, permanent("5.4.4", "no mail exchanger of " + s->domain + " has an address"));
  }
  route.secure = s->implicit ? route.hops.front().secure : s->mx_secure;
  complete(s, std::move(route));
}

// Round one is over (or skipped, for an implicit MX): look up AAAA and A of every host at once.
void lookup_addresses(const StatePtr& s) {
  s->outstanding = s->hosts.size() * 2;
  for (std::size_t i = 0; i < s->hosts.size(); ++i) {
    for (Type type : {Type::kAaaa, Type::kA}) {
      s->resolver->lookup(s->hosts[i].host, type, [s, i, type](Answer a) {
        (type == Type::kAaaa ? s->hosts[i].v6 : s->hosts[i].v4) = std::move(a);
        if (--s->outstanding == 0) finish_addresses(s);
      });
    }
  }
}

void on_mx(const StatePtr& s, Answer a) {
  const auto& o = s->options;
  // RFC 5321 5.1 and the classes in resolver.h: a fact about the domain is permanent, a failure
  // to learn it is temporary.
  switch (a.status) {
    case Status::kNxDomain:
      return complete(s, permanent("5.1.2", "domain " + s->domain + " does not exist (NXDOMAIN)"));
    case Status::kTemporary:
      return complete(s, temporary("MX lookup for " + s->domain + " failed: " + a.why));
    case Status::kNoData:
      // RFC 5321 5.1: no MX → the domain is its own implicit MX of preference 0.
      s->implicit = true;
      s->hosts.push_back(HostState{s->domain, 0, {}, {}});
      break;
    case Status::kOk: {
      s->mx_secure = a.secure;
      for (auto& m : a.mx) m.exchange = normalize_name(m.exchange);  // resolvers promise it; a fake may not
      // RFC 7505 3: a single MX with the root as exchange: the domain accepts no mail. A "."
      // among real exchanges is a misconfiguration; the real ones are used.
      bool any_real = std::any_of(a.mx.begin(), a.mx.end(), [](const MxRecord& m) { return !m.exchange.empty(); });
      if (!a.mx.empty() && !any_real) {
        return complete(s, permanent("5.1.10", "null MX: " + s->domain + " accepts no mail (RFC 7505)"));
      }
      if (!any_real) return complete(s, temporary("MX lookup for " + s->domain + " returned no usable record"));
      std::stable_sort(a.mx.begin(), a.mx.end(), [](const MxRecord& x, const MxRecord& y) { return x.preference < y.preference; });
      for (auto& m : a.mx) {
        if (m.exchange.empty()) continue;
        bool dup = std::any_of(s->hosts.begin(), s->hosts.end(), [&](const HostState& h) { return h.host == m.exchange; });
        if (!dup) s->hosts.push_back(HostState{std::move(m.exchange), m.preference, {}, {}});
      }
      shuffle_equal(s->hosts, o.random);
      if (s->hosts.size() > o.max_hosts) s->hosts.resize(o.max_hosts);
      break;
    }
  }
  // Our own name in the list trims it before any address lookup (RFC 5321 5.1).
  for (const auto& h : s->hosts) {
    if (is_self(o, h.host, "")) {
      if (!trim_at(s->hosts, h.preference)) return complete(s, loops_back(s->domain));
      break;
    }
  }
  if (s->hosts.empty()) return complete(s, permanent("5.4.4", "no mail exchanger for " + s->domain));
  lookup_addresses(s);
}

}  // namespace

void find_route(Resolver& resolver, std::string domain, RouteOptions options, std::function<void(Route)> done) {
  auto s = std::make_shared<RouteState>();
  s->resolver = &resolver;
  s->options = std::move(options);
  s->done = std::move(done);

  // An address literal is the one hop, looked up nowhere (RFC 5321 4.1.3, 5.1).
  if (auto literal = address_literal(domain)) {
    Route route;
    if (literal->empty()) {
      route = permanent("5.1.2", "malformed address literal " + base::log_escape(domain));
    } else if (is_self(s->options, domain, *literal)) {
      route = loops_back(domain);
    } else {
      route.kind = Route::Kind::kOk;
      route.hops.push_back(Hop{domain, 0, {*literal}, false});
    }
    return resolver.post([s, route = std::move(route)]() mutable { complete(s, std::move(route)); });
  }

  s->domain = normalize_name(domain);
  if (s->domain.empty()) {
    return resolver.post([s] { complete(s, permanent("5.1.2", "empty domain")); });
  }
  resolver.lookup(s->domain, Type::kMx, [s](Answer a) { on_mx(s, std::move(a)); });
}

}  // namespace petrel::dns
