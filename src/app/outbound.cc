// app/outbound.cc: config → resolver and remote transport (outbound.h).
#include "app/outbound.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <fstream>
#include <set>
#include <string>

#include "base/strings.h"
#include "dns/unbound_resolver.h"

namespace petrel::app {
namespace {

// Every address configured on this machine's interfaces, as text ("127.0.0.1", "::1").
std::set<std::string> local_addresses() {
  std::set<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof buf);
    } else {
      continue;
    }
    out.insert(buf);
  }
  ::freeifaddrs(list);
  return out;
}

bool wildcard(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::"; }
bool loopback(const std::string& a) { return a.rfind("127.", 0) == 0 || a == "::1"; }

}  // namespace

base::Result<std::string> read_relay_password(const config::RemoteConfig& r) {
  std::string password;
  if (r.relay_password_file.empty()) return password;
  std::ifstream in(r.relay_password_file);
  if (!in || !std::getline(in, password)) {
    return base::permanent_error("remote.relay_password_file: cannot read " + r.relay_password_file);
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

base::Result<std::unique_ptr<delivery::RemoteTransport>> make_remote_transport(const config::Config& c,
                                                                               const queue::Spool& spool,
                                                                               std::string relay_password) {
  const config::RemoteConfig& r = c.remote;
  delivery::RemoteOptions o;
  o.hostname = c.server.hostname;
  o.port = r.port;
  if (!r.relay_host.empty()) {
    // Validated by load_config(); "[v6]:port" comes back as the bare address.
    if (!config::parse_host_port(r.relay_host, o.relay_host, o.relay_port)) {
      return base::permanent_error("remote.relay_host: cannot parse " + r.relay_host);
    }
  }
  o.relay_user = r.relay_user;
  o.relay_password = std::move(relay_password);
  if (!delivery::parse_tls_level(r.tls, o.tls)) return base::permanent_error("remote.tls: unknown level " + r.tls);
  for (const auto& [domain, level] : r.tls_policy) {
    delivery::TlsLevel l;
    if (!delivery::parse_tls_level(level, l)) return base::permanent_error("remote.tls_policy: unknown level " + level);
    o.tls_policy[domain] = l;
  }
  o.ca_file = r.ca_file;
  o.connections_per_destination = r.connections_per_destination;
  o.max_connections = r.max_connections;
  o.max_recipients = r.max_recipients;
  o.max_messages_per_connection = r.max_messages_per_connection;
  o.connect_timeout = r.connect_timeout;
  o.command_timeout = r.command_timeout;
  o.data_timeout = r.data_timeout;
  o.idle_time = r.idle_time;
  o.prefer_ipv4 = r.prefer_ipv4;

  // Us: our name, or one of our listening addresses on the port mail would be sent to.
  std::set<std::string> ours;
  bool any_wildcard = false;
  for (const auto& l : c.listeners) {
    if (l.port != r.port) continue;
    if (wildcard(l.host)) any_wildcard = true;
    else ours.insert(l.host);
  }
  std::set<std::string> machine = any_wildcard ? local_addresses() : std::set<std::string>{};
  o.is_self = [hostname = c.server.hostname, ours, machine, any_wildcard](const std::string& host,
                                                                          const std::string& address) {
    if (base::iequals(host, hostname)) return true;
    if (address.empty()) return false;
    if (ours.count(address)) return true;
    return any_wildcard && (machine.count(address) || loopback(address));
  };

  dns::UnboundOptions dns_options;
  dns_options.servers = c.dns.servers;
  dns_options.timeout = c.dns.timeout;
  dns_options.trust_anchor_file = c.dns.dnssec_trust_anchor;
  return delivery::RemoteTransport::create(
      spool, std::move(o),
      [dns_options](boost::asio::any_io_executor ex) -> base::Result<std::unique_ptr<dns::Resolver>> {
        auto made = dns::UnboundResolver::create(std::move(ex), dns_options);
        if (!made) return made.error();
        return std::unique_ptr<dns::Resolver>(std::move(made).value());
      });
}

}  // namespace petrel::app
