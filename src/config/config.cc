// config.cc: TOML → Config, with every problem reported as one line.
//
// toml++ parses the syntax; this file walks each table with a Section that records which keys
// it consumed, so that anything left over is reported as an unknown key rather than ignored.
#include "config/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "base/strings.h"

namespace petrel::config {
namespace {

class Errors {
 public:
  explicit Errors(std::string source) : source_(std::move(source)) {}
  void add(const toml::source_region& where, const std::string& key, const std::string& why) {
    lines_.push_back(source_ + ":" + std::to_string(where.begin.line) + ": " + key + ": " + why);
  }
  // A problem of the file as a whole (a missing section), with no line to point at.
  void add(const std::string& key, const std::string& why) { lines_.push_back(source_ + ": " + key + ": " + why); }
  bool empty() const { return lines_.empty(); }
  std::string joined() const {
    std::string out;
    for (const auto& l : lines_) out += (out.empty() ? "" : "\n") + l;
    return out;
  }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

// One TOML table being read: typed getters that leave the default alone when a key is absent,
// and finish() that reports every key nobody asked for.
class Section {
 public:
  Section(const toml::table* table, std::string prefix, Errors& errors)
      : table_(table), prefix_(std::move(prefix)), errors_(errors) {}

  void string(const char* key, std::string& out) {
    if (auto* node = take(key)) {
      if (auto v = node->value<std::string>()) out = *v;
      else fail(*node, key, "must be a string");
    }
  }
  void boolean(const char* key, bool& out) {
    if (auto* node = take(key)) {
      if (auto v = node->value<bool>()) out = *v;
      else fail(*node, key, "must be true or false");
    }
  }
  template <typename T>
  void integer(const char* key, T& out, std::int64_t min, std::int64_t max) {
    if (auto* node = take(key)) {
      auto v = node->value<std::int64_t>();
      if (!v || !node->is_integer()) fail(*node, key, "must be an integer");
      else if (*v < min || *v > max) fail(*node, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      else out = static_cast<T>(*v);
    }
  }
  // Sizes are integers (bytes) or strings with a unit ("50MiB").
  template <typename T>
  void size(const char* key, T& out, std::uint64_t min) {
    if (auto* node = take(key)) {
      std::optional<std::uint64_t> v;
      if (auto i = node->value<std::int64_t>(); i && node->is_integer() && *i >= 0) v = static_cast<std::uint64_t>(*i);
      else if (auto s = node->value<std::string>()) v = base::parse_size(*s);
      if (!v) fail(*node, key, "must be a size such as 1048576, \"64KiB\" or \"50MiB\"");
      else if (*v < min) fail(*node, key, "must be at least " + std::to_string(min));
      else out = static_cast<T>(*v);
    }
  }
  void duration(const char* key, milliseconds& out) {
    if (auto* node = take(key)) {
      std::optional<milliseconds> v;
      if (auto s = node->value<std::string>()) v = base::parse_duration(*s);
      if (!v) fail(*node, key, "must be a duration such as \"30s\", \"5m\" or \"1h\"");
      else out = *v;
    }
  }
  const toml::array* array(const char* key) {
    if (auto* node = take(key)) {
      if (auto* a = node->as_array()) return a;
      fail(*node, key, "must be an array");
    }
    return nullptr;
  }
  const toml::table* table(const char* key) {
    if (auto* node = take(key)) {
      if (auto* t = node->as_table()) return t;
      fail(*node, key, "must be a table");
    }
    return nullptr;
  }
  void fail(const toml::node& node, const std::string& key, const std::string& why) {
    errors_.add(node.source(), prefix_ + key, why);
  }
  void finish() {
    if (!table_) return;
    for (auto&& [key, node] : *table_) {
      if (!used_.count(std::string(key.str()))) errors_.add(node.source(), prefix_ + std::string(key.str()), "unknown key");
    }
  }

 private:
  const toml::node* take(const char* key) {
    if (!table_) return nullptr;
    used_.insert(key);
    return table_->get(key);
  }

  const toml::table* table_;
  std::string prefix_;
  Errors& errors_;
  std::set<std::string> used_;
};

void read_server(Section s, ServerConfig& c) {
  s.string("hostname", c.hostname);
  s.string("data_dir", c.data_dir);
  s.string("user", c.user);
  s.integer("threads", c.threads, 0, 256);
  s.string("postmaster", c.postmaster);
  s.string("primary_domain", c.primary_domain);
  c.primary_domain = base::to_lower(c.primary_domain);
  s.finish();
}

void read_log(Section s, LogConfig& c, Errors& errors, const toml::table* t) {
  std::string level(base::log::level_name(c.level));
  s.string("level", level);
  if (auto l = base::log::parse_level(level)) c.level = *l;
  else errors.add(t->get("level")->source(), "log.level", l.error().message);
  s.string("file", c.file);
  s.finish();
}

void read_tls(Section s, TlsConfig& c) {
  s.string("cert_file", c.cert_file);
  s.string("key_file", c.key_file);
  s.string("min_version", c.min_version);
  s.finish();
}

void read_networks(Section& s, const char* key, std::vector<Network>& out) {
  auto* a = s.array(key);
  if (!a) return;
  for (auto&& node : *a) {
    Network n;
    auto v = node.value<std::string>();
    if (!v || !parse_network(*v, n)) s.fail(node, key, "entries must be networks such as \"192.0.2.0/24\" or \"::1\"");
    else out.push_back(n);
  }
}

void read_smtp(Section s, SmtpConfig& c) {
  s.size("max_line_length", c.max_line_length, 512);
  s.integer("max_recipients", c.max_recipients, 100, 100000);
  s.size("max_message_size", c.max_message_size, 1024);
  s.integer("max_connections", c.max_connections, 1, 1000000);
  s.integer("max_connections_per_ip", c.max_connections_per_ip, 1, 1000000);
  s.integer("max_errors", c.max_errors, 1, 1000);
  s.integer("max_received_headers", c.max_received_headers, 10, 1000);
  s.duration("command_timeout", c.command_timeout);
  s.duration("data_timeout", c.data_timeout);
  s.duration("banner_delay", c.banner_delay);
  s.duration("local_submission_timeout", c.local_submission_timeout);
  read_networks(s, "trusted_networks", c.trusted_networks);
  s.finish();
}

void read_dns(Section s, DnsConfig& c) {
  if (auto* a = s.array("servers")) {
    for (auto&& node : *a) {
      auto v = node.value<std::string>();
      std::string host;
      std::uint16_t port = 0;
      unsigned char addr[16];
      // ub_ctx_set_fwd() takes addresses only: a name here would need a resolver to resolve it.
      if (!v || !parse_host_port(*v, host, port) || port == 0 ||
          (::inet_pton(AF_INET, host.c_str(), addr) != 1 && ::inet_pton(AF_INET6, host.c_str(), addr) != 1)) {
        s.fail(node, "servers", "entries must be \"address:port\" such as \"192.0.2.53:53\" or \"[2001:db8::53]:53\"");
      } else {
        c.servers.push_back(*v);
      }
    }
  }
  s.duration("timeout", c.timeout);
  s.string("dnssec_trust_anchor", c.dnssec_trust_anchor);
  s.finish();
}

void read_queue(Section s, QueueConfig& c) {
  s.size("min_free_space", c.min_free_space, 0);
  s.size("segment_size", c.segment_size, 1 << 20);
  s.size("memory_per_message", c.memory_per_message, 4096);
  s.duration("retry_first", c.retry_first);
  s.duration("retry_max", c.retry_max);
  s.duration("lifetime", c.lifetime);
  s.duration("delay_warning", c.delay_warning);
  s.integer("delivery_concurrency", c.delivery_concurrency, 1, 10000);
  s.integer("active_limit", c.active_limit, 100, 100000000);
  s.finish();
}

bool tls_level_ok(const std::string& v) { return v == "none" || v == "opportunistic" || v == "required" || v == "verify"; }

void read_remote(Section s, RemoteConfig& c, Errors& errors) {
  s.integer("port", c.port, 1, 65535);
  s.string("relay_host", c.relay_host);
  s.string("relay_user", c.relay_user);
  s.string("relay_password_file", c.relay_password_file);
  s.string("tls", c.tls);
  s.string("ca_file", c.ca_file);
  s.integer("connections_per_destination", c.connections_per_destination, 1, 10000);
  s.integer("max_connections", c.max_connections, 1, 100000);
  s.integer("max_recipients", c.max_recipients, 1, 100000);
  s.integer("max_messages_per_connection", c.max_messages_per_connection, 1, 1000000);
  s.duration("connect_timeout", c.connect_timeout);
  s.duration("command_timeout", c.command_timeout);
  s.duration("data_timeout", c.data_timeout);
  s.duration("idle_time", c.idle_time);
  s.boolean("prefer_ipv4", c.prefer_ipv4);
  if (auto* t = s.table("tls_policy")) {
    for (auto&& [key, node] : *t) {
      auto v = node.value<std::string>();
      if (!v || !tls_level_ok(*v)) {
        errors.add(node.source(), "remote.tls_policy." + std::string(key.str()),
                   "must be \"none\", \"opportunistic\", \"required\" or \"verify\"");
      } else {
        c.tls_policy[base::to_lower(key.str())] = *v;
      }
    }
  }
  s.finish();
}

void read_accounts(Section s, AccountsConfig& c) {
  s.string("subaddress_separator", c.subaddress_separator);
  s.finish();
}

void read_auth(Section s, AuthConfig& c, Errors& errors) {
  if (auto* a = s.array("mechanisms")) {
    c.mechanisms.clear();
    for (auto&& node : *a) {
      auto v = node.value<std::string>();
      std::string name = v ? *v : "";
      for (char& ch : name) ch = base::ascii_upper(ch);
      if (name != "PLAIN" && name != "LOGIN" && name != "SCRAM-SHA-256" && name != "CRAM-MD5") {
        s.fail(node, "mechanisms", "entries must be \"PLAIN\", \"LOGIN\", \"SCRAM-SHA-256\" or \"CRAM-MD5\"");
      } else if (std::find(c.mechanisms.begin(), c.mechanisms.end(), name) != c.mechanisms.end()) {
        s.fail(node, "mechanisms", name + " is listed twice");
      } else {
        c.mechanisms.push_back(name);
      }
    }
  }
  s.boolean("allow_on_smtp", c.allow_on_smtp);
  s.integer("max_failures", c.max_failures, 1, 100);
  s.integer("tarpit_after", c.tarpit_after, 1, 1000000);
  s.duration("tarpit_delay", c.tarpit_delay);
  s.integer("lockout_after", c.lockout_after, 1, 1000000);
  s.duration("failure_window", c.failure_window);
  s.duration("lockout", c.lockout);
  s.integer("max_tracked", c.max_tracked, 100, 100000000);
  s.integer("verify_threads", c.verify_threads, 1, 64);
  if (auto* t = s.table("send_as")) {
    for (auto&& [key, node] : *t) {
      auto* a = node.as_array();
      std::vector<std::string> addresses;
      bool ok = a != nullptr;
      if (a) {
        for (auto&& e : *a) {
          auto v = e.value<std::string>();
          if (!v || v->empty() || v->find('@') == std::string::npos) ok = false;
          else addresses.push_back(*v);
        }
      }
      if (!ok) {
        errors.add(node.source(), "auth.send_as." + std::string(key.str()),
                   "must be an array of addresses (\"a@example.org\") or domains (\"@example.org\")");
      } else {
        c.send_as[std::string(key.str())] = std::move(addresses);
      }
    }
  }
  s.finish();
}

void read_listeners(Section& root, Config& config, Errors& errors) {
  auto* a = root.array("listener");
  if (!a) return;
  std::set<std::string> names;
  for (auto&& node : *a) {
    auto* t = node.as_table();
    if (!t) {
      root.fail(node, "listener", "must be an array of tables ([[listener]])");
      continue;
    }
    ListenerConfig l;
    Section s(t, "listener.", errors);
    std::string kind = "smtp";
    s.string("name", l.name);
    s.string("kind", kind);
    s.string("address", l.address);
    s.finish();
    if (kind == "smtp") l.kind = ListenerKind::kSmtp;
    else if (kind == "submission") l.kind = ListenerKind::kSubmission;
    else if (kind == "submissions") l.kind = ListenerKind::kSubmissions;
    // ARCHITECTURE.md names these; refused until a session serves them, so a listener never
    // accepts connections that nothing answers.
    else if (kind == "imap" || kind == "imaps" || kind == "pop3" || kind == "pop3s" || kind == "admin") {
      errors.add(t->source(), "listener.kind", "\"" + kind + "\" is not yet supported (served now: \"smtp\", \"submission\", \"submissions\")");
    }
    else errors.add(t->source(), "listener.kind", "must be \"smtp\", \"submission\" or \"submissions\"");
    if (l.name.empty()) l.name = kind;
    if (!names.insert(l.name).second) errors.add(t->source(), "listener.name", "\"" + l.name + "\" is used twice");
    if (!parse_host_port(l.address, l.host, l.port)) {
      errors.add(t->source(), "listener.address", "must be \"host:port\" such as \"127.0.0.1:25\" or \"[::1]:587\"");
    }
    config.listeners.push_back(std::move(l));
  }
}

void validate(const Config& c, Errors& errors) {
  if (c.server.hostname.empty() || c.server.hostname.find_first_of(" \t\r\n") != std::string::npos) {
    errors.add("server.hostname", "must be a host name without spaces");
  }
  if (c.server.data_dir.empty()) errors.add("server.data_dir", "must not be empty");
  if (c.server.primary_domain.find_first_of(" \t\r\n@[]") != std::string::npos) {
    errors.add("server.primary_domain", "must be a domain name (no spaces, no \"@\", not an address literal)");
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    errors.add("tls", "cert_file and key_file must be given together");
  }
  if (c.tls.min_version != "1.2" && c.tls.min_version != "1.3") {
    errors.add("tls.min_version", "must be \"1.2\" or \"1.3\"");
  }
  if (c.listeners.empty()) errors.add("listener", "at least one [[listener]] is needed");
  if (!tls_level_ok(c.remote.tls)) errors.add("remote.tls", "must be \"none\", \"opportunistic\", \"required\" or \"verify\"");
  if (!c.remote.relay_host.empty()) {
    std::string host;
    std::uint16_t port = 0;
    if (!parse_host_port(c.remote.relay_host, host, port)) errors.add("remote.relay_host", "must be \"host:port\" or \"[v6]:port\"");
  }
  if (!c.remote.relay_user.empty() && c.remote.relay_password_file.empty()) {
    errors.add("remote.relay_password_file", "is needed with remote.relay_user");
  }
  if (c.dns.timeout < std::chrono::milliseconds(100) || c.dns.timeout > std::chrono::minutes(5)) {
    errors.add("dns.timeout", "must be between 100ms and 5m");
  }
  if (c.auth.tarpit_delay > std::chrono::seconds(60)) errors.add("auth.tarpit_delay", "must be at most 60s");
  if (c.auth.lockout_after < c.auth.tarpit_after) errors.add("auth.lockout_after", "must be at least auth.tarpit_after");
  if (c.accounts.subaddress_separator.size() > 1) {
    errors.add("accounts.subaddress_separator", "must be one character or empty");
  }
}

}  // namespace

base::Result<Config> parse_config(std::string_view text, const std::string& source) {
  Errors errors(source);
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    errors.add(e.source(), "syntax", std::string(e.description()));
    return base::permanent_error(errors.joined());
  }
  Config config;
  config.source = source;
  Section top(&root, "", errors);
  read_server(Section(top.table("server"), "server.", errors), config.server);
  if (auto* t = top.table("log")) read_log(Section(t, "log.", errors), config.log, errors, t);
  read_tls(Section(top.table("tls"), "tls.", errors), config.tls);
  read_smtp(Section(top.table("smtp"), "smtp.", errors), config.smtp);
  read_queue(Section(top.table("queue"), "queue.", errors), config.queue);
  read_dns(Section(top.table("dns"), "dns.", errors), config.dns);
  read_accounts(Section(top.table("accounts"), "accounts.", errors), config.accounts);
  read_auth(Section(top.table("auth"), "auth.", errors), config.auth, errors);
  read_remote(Section(top.table("remote"), "remote.", errors), config.remote, errors);
  read_listeners(top, config, errors);
  top.finish();
  validate(config, errors);
  if (!errors.empty()) return base::permanent_error(errors.joined());
  return config;
}

namespace {

// A relative path in the config means relative to the directory petrel was started in. The
// server later works inside its data directory (app/data_dir.h), so such paths are made
// absolute here, once, while they still mean what the operator wrote.
void make_absolute(std::string& path) {
  if (path.empty() || path.front() == '/') return;
  std::error_code ec;
  auto full = std::filesystem::absolute(path, ec);
  if (!ec) path = full.lexically_normal().string();
}

}  // namespace

base::Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::permanent_error(path + ": cannot read the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = parse_config(ss.str(), path);
  if (!config) return config;
  for (std::string* p : {&config->server.data_dir, &config->log.file, &config->tls.cert_file, &config->tls.key_file,
                         &config->dns.dnssec_trust_anchor, &config->remote.relay_password_file,
                         &config->remote.ca_file}) {
    make_absolute(*p);
  }
  return config;
}

std::string default_config_path() {
  if (::access("petrel.toml", F_OK) == 0) return "petrel.toml";
  return "/etc/petrel/petrel.toml";
}

bool parse_host_port(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view h, p;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (h.empty() || p.empty() || p.size() > 5) return false;
  unsigned value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  host = std::string(h);
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool parse_network(std::string_view text, Network& out) {
  std::string addr(text);
  unsigned prefix = 128;
  bool has_prefix = false;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = std::string(text.substr(0, slash));
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return false;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return false;
      prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    }
    has_prefix = true;
  }
  Network n;
  n.text = std::string(text);
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, addr.c_str(), &v4) == 1) {
    if (has_prefix && prefix > 32) return false;
    n.bytes[10] = n.bytes[11] = 0xff;
    std::memcpy(n.bytes + 12, &v4, 4);
    n.prefix = has_prefix ? prefix + 96 : 128;
  } else if (::inet_pton(AF_INET6, addr.c_str(), &v6) == 1) {
    if (prefix > 128) return false;
    std::memcpy(n.bytes, &v6, 16);
    n.prefix = prefix;
  } else {
    return false;
  }
  out = n;
  return true;
}

bool network_contains(const Network& net, const std::uint8_t (&addr)[16]) {
  unsigned bits = net.prefix;
  for (int i = 0; i < 16 && bits > 0; ++i) {
    unsigned take = bits >= 8 ? 8 : bits;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - take));
    if ((net.bytes[i] & mask) != (addr[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

namespace {
std::string quote(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}
}  // namespace

std::string to_toml(const Config& c) {
  std::ostringstream o;
  auto dur = [](milliseconds d) { return quote(base::format_duration(d)); };
  auto size = [](std::uint64_t b) { return quote(base::format_size(b)); };
  o << "# effective configuration of " << c.source << "\n\n";
  o << "[server]\nhostname = " << quote(c.server.hostname) << "\ndata_dir = " << quote(c.server.data_dir)
    << "\nuser = " << quote(c.server.user) << "\nthreads = " << c.server.threads << "\npostmaster = " << quote(c.server.postmaster)
    << "\nprimary_domain = " << quote(c.server.primary_domain) << "\n\n";
  o << "[log]\nlevel = " << quote(std::string(base::log::level_name(c.log.level))) << "\nfile = " << quote(c.log.file)
    << "\n\n";
  o << "[tls]\ncert_file = " << quote(c.tls.cert_file) << "\nkey_file = " << quote(c.tls.key_file)
    << "\nmin_version = " << quote(c.tls.min_version) << "\n\n";
  o << "[smtp]\nmax_line_length = " << c.smtp.max_line_length << "\nmax_recipients = " << c.smtp.max_recipients
    << "\nmax_message_size = " << size(c.smtp.max_message_size) << "\nmax_connections = " << c.smtp.max_connections
    << "\nmax_connections_per_ip = " << c.smtp.max_connections_per_ip << "\nmax_errors = " << c.smtp.max_errors
    << "\nmax_received_headers = " << c.smtp.max_received_headers << "\ncommand_timeout = " << dur(c.smtp.command_timeout)
    << "\ndata_timeout = " << dur(c.smtp.data_timeout) << "\nbanner_delay = " << dur(c.smtp.banner_delay)
    << "\nlocal_submission_timeout = " << dur(c.smtp.local_submission_timeout)
    << "\ntrusted_networks = [";
  for (std::size_t i = 0; i < c.smtp.trusted_networks.size(); ++i) {
    o << (i ? ", " : "") << quote(c.smtp.trusted_networks[i].text);
  }
  o << "]\n\n";
  o << "[queue]\nmin_free_space = " << size(c.queue.min_free_space) << "\nsegment_size = " << size(c.queue.segment_size)
    << "\nmemory_per_message = " << size(c.queue.memory_per_message) << "\nretry_first = " << dur(c.queue.retry_first)
    << "\nretry_max = " << dur(c.queue.retry_max) << "\nlifetime = " << dur(c.queue.lifetime) << "\ndelay_warning = " << dur(c.queue.delay_warning)
    << "\ndelivery_concurrency = " << c.queue.delivery_concurrency
    << "\nactive_limit = " << c.queue.active_limit << "\n\n";
  o << "[dns]\nservers = [";
  for (std::size_t i = 0; i < c.dns.servers.size(); ++i) o << (i ? ", " : "") << quote(c.dns.servers[i]);
  o << "]\ntimeout = " << dur(c.dns.timeout) << "\ndnssec_trust_anchor = " << quote(c.dns.dnssec_trust_anchor) << "\n\n";
  o << "[accounts]\nsubaddress_separator = " << quote(c.accounts.subaddress_separator) << "\n";
  o << "\n[remote]\nport = " << c.remote.port << "\nrelay_host = " << quote(c.remote.relay_host)
    << "\nrelay_user = " << quote(c.remote.relay_user) << "\nrelay_password_file = " << quote(c.remote.relay_password_file)
    << "\ntls = " << quote(c.remote.tls) << "\nca_file = " << quote(c.remote.ca_file)
    << "\nconnections_per_destination = " << c.remote.connections_per_destination
    << "\nmax_connections = " << c.remote.max_connections << "\nmax_recipients = " << c.remote.max_recipients
    << "\nmax_messages_per_connection = " << c.remote.max_messages_per_connection
    << "\nconnect_timeout = " << dur(c.remote.connect_timeout) << "\ncommand_timeout = " << dur(c.remote.command_timeout)
    << "\ndata_timeout = " << dur(c.remote.data_timeout) << "\nidle_time = " << dur(c.remote.idle_time)
    << "\nprefer_ipv4 = " << (c.remote.prefer_ipv4 ? "true" : "false") << "\n";
  if (!c.remote.tls_policy.empty()) {
    o << "\n[remote.tls_policy]\n";
    for (const auto& [domain, level] : c.remote.tls_policy) o << quote(domain) << " = " << quote(level) << "\n";
  }
  o << "\n[auth]\nmechanisms = [";
  for (std::size_t i = 0; i < c.auth.mechanisms.size(); ++i) o << (i ? ", " : "") << quote(c.auth.mechanisms[i]);
  o << "]\nallow_on_smtp = " << (c.auth.allow_on_smtp ? "true" : "false") << "\nmax_failures = " << c.auth.max_failures
    << "\ntarpit_after = " << c.auth.tarpit_after << "\ntarpit_delay = " << dur(c.auth.tarpit_delay)
    << "\nlockout_after = " << c.auth.lockout_after << "\nfailure_window = " << dur(c.auth.failure_window)
    << "\nlockout = " << dur(c.auth.lockout) << "\nmax_tracked = " << c.auth.max_tracked
    << "\nverify_threads = " << c.auth.verify_threads << "\n";
  if (!c.auth.send_as.empty()) {
    o << "\n[auth.send_as]\n";
    for (const auto& [account, addresses] : c.auth.send_as) {
      o << quote(account) << " = [";
      for (std::size_t i = 0; i < addresses.size(); ++i) o << (i ? ", " : "") << quote(addresses[i]);
      o << "]\n";
    }
  }
  for (const auto& l : c.listeners) {
    const char* kind = l.kind == ListenerKind::kSmtp ? "smtp" : l.kind == ListenerKind::kSubmission ? "submission" : "submissions";
    o << "\n[[listener]]\nname = " << quote(l.name) << "\nkind = " << quote(kind) << "\naddress = " << quote(l.address) << "\n";
  }
  return o.str();
}

}  // namespace petrel::config
