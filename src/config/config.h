// config/config.h: Petrel's configuration as immutable typed structs.
//
// Promise: a Config that load_config() returned is complete and valid: every key known, every
// value in range, defaults filled in. Components receive only their own section.
// Not done here: reading anything but the config file; creating directories.
// Failure: load_config() returns one error line per problem ("file:line: key: why"), joined by
// newlines; `petrel check-config` prints them and exits 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"

namespace petrel::config {

using std::chrono::milliseconds;

struct ServerConfig {
  std::string hostname = "localhost";  // our name in banners, EHLO, Received:
  std::string data_dir = "/var/lib/petrel";
  std::string user = "petrel";         // started as root: drop to this user after binding
  unsigned threads = 0;                // event-loop threads; 0 = one per core
  std::string postmaster;              // gets double bounces; empty = "postmaster@<hostname>"
  // The domain whose postmaster receives RCPT TO:<Postmaster> (RFC 5321 4.5.1, no domain).
  // Empty = the host name, or the nearest parent of it, that is a served domain.
  std::string primary_domain;
};

struct LogConfig {
  base::log::Level level = base::log::Level::kInfo;
  std::string file;  // empty = stderr
};

enum class ListenerKind {
  kSmtp,         // MX, port 25: STARTTLS offered, no AUTH
  kSubmission,   // port 587: STARTTLS
  kSubmissions,  // port 465: implicit TLS (RFC 8314)
};

struct ListenerConfig {
  std::string name;
  ListenerKind kind = ListenerKind::kSmtp;
  std::string address;  // "127.0.0.1:2525", "[::1]:25", "0.0.0.0:25"
  std::string host;     // parsed from address
  std::uint16_t port = 0;
};

struct TlsConfig {
  std::string cert_file;  // PEM chain; empty = self-signed certificate made in <data>/tls/
  std::string key_file;
  std::string min_version = "1.2";  // "1.2" | "1.3"
};

// One network in CIDR notation, parsed once.
struct Network {
  std::string text;            // as written, for printing
  std::uint8_t bytes[16] = {};  // IPv4 is stored as IPv4-mapped IPv6
  unsigned prefix = 0;         // in the 128-bit space
};

struct SmtpConfig {
  std::size_t max_line_length = 512;  // RFC 5321 4.5.3.1.4, including CRLF
  std::size_t max_recipients = 1000;  // RFC 5321 4.5.3.1.8 requires at least 100
  std::uint64_t max_message_size = 50ULL << 20;
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_ip = 50;
  std::size_t max_errors = 10;        // errors and unknown commands before 421 and close
  std::size_t max_received_headers = 100;  // hop count, RFC 5321 6.3
  milliseconds command_timeout{std::chrono::minutes(5)};  // RFC 5321 4.5.3.2.7
  milliseconds data_timeout{std::chrono::minutes(10)};    // RFC 5321 4.5.3.2.6 (between chunks)
  milliseconds banner_delay{0};  // wait before the banner; early talkers are refused
  // A whole local submission (`petrel sendmail` through <data>/submit.sock), first line to end.
  milliseconds local_submission_timeout{std::chrono::minutes(10)};
  std::vector<Network> trusted_networks;  // may relay without AUTH
};

// The resolver (dns::UnboundResolver); docs/config.md "[dns]".
struct DnsConfig {
  // Forwarders as "address:port" / "[v6]:port" (addresses, not names); empty = the system's
  // /etc/resolv.conf. Tests point this at a fake DNS server on loopback.
  std::vector<std::string> servers;
  milliseconds timeout{std::chrono::seconds(10)};  // per lookup; then a temporary failure
  std::string dnssec_trust_anchor;  // trust anchor file (e.g. /usr/share/dns/root.key); empty = no DNSSEC validation
};

struct QueueConfig {
  std::uint64_t min_free_space = 100ULL << 20;  // refuse MAIL (452 4.3.1) below this
  std::uint64_t segment_size = 64ULL << 20;    // spool log segment size before rolling over
  std::uint64_t memory_per_message = 64ULL << 10;  // body bytes held before spilling to disk
  milliseconds retry_first{std::chrono::minutes(5)};  // first retry of a deferred recipient
  milliseconds retry_max{std::chrono::hours(1)};      // retries double up to this interval
  milliseconds lifetime{std::chrono::hours(24 * 5)};  // then the recipient expires
  milliseconds delay_warning{std::chrono::hours(4)};  // still deferred after this: one delay DSN; 0 = off
  std::size_t delivery_concurrency = 100;             // deliveries in flight at once, local and remote together
  std::size_t active_limit = 100000;                 // pending messages held in memory (the rest wait on disk)
};

struct AccountsConfig {
  std::string subaddress_separator = "+";  // "" disables subaddressing
};

// Outbound SMTP (delivery/remote); docs/config.md "[remote]".
struct RemoteConfig {
  std::uint16_t port = 25;  // the next hops' SMTP port (MX hosts; a test's fake server)
  // "host:port" ("[v6]:port"): every message to another domain goes through this smarthost,
  // with no MX lookup. Empty = MX routing (RFC 5321 5).
  std::string relay_host;
  std::string relay_user;           // AUTH PLAIN/LOGIN to the relay host; empty = no AUTH
  std::string relay_password_file;  // its first line is the password (keep it mode 0600)
  // "none" | "opportunistic" (STARTTLS when offered, plain if the handshake fails) |
  // "required" (STARTTLS or defer; not verified) | "verify" (and the certificate must match).
  std::string tls = "opportunistic";
  std::map<std::string, std::string> tls_policy;  // [remote.tls_policy] domain -> level
  std::string ca_file;  // for "verify"; empty = the system's CA store
  std::size_t connections_per_destination = 20;
  std::size_t max_connections = 200;           // outbound connections in all
  std::size_t max_recipients = 50;             // RCPTs per transaction (more make more transactions)
  std::size_t max_messages_per_connection = 100;  // then QUIT and a new connection
  milliseconds connect_timeout{std::chrono::seconds(30)};
  milliseconds command_timeout{std::chrono::minutes(5)};  // greeting, EHLO, MAIL, RCPT, ... (RFC 5321 4.5.3.2)
  milliseconds data_timeout{std::chrono::minutes(10)};    // each body write and the reply to "."
  milliseconds idle_time{std::chrono::seconds(5)};        // an idle connection waits this long for more mail
  bool prefer_ipv4 = false;
};

// SMTP AUTH (RFC 4954) and submission policy (RFC 6409); docs/config.md "[auth]".
struct AuthConfig {
  // SASL mechanisms offered after TLS, by name. CRAM-MD5 is off by default: it needs a
  // password-equivalent key state in the accounts store (stored only while it is listed).
  std::vector<std::string> mechanisms{"PLAIN", "LOGIN", "SCRAM-SHA-256"};
  bool allow_on_smtp = false;       // also offer AUTH on kind = "smtp" listeners (after STARTTLS)
  std::size_t max_failures = 3;     // failed AUTH per connection, then 421 4.7.0 and close
  std::size_t tarpit_after = 3;     // failures (per client address or account) before 535s are delayed
  milliseconds tarpit_delay{std::chrono::seconds(2)};
  std::size_t lockout_after = 10;   // failures within failure_window, then AUTH is refused (454 4.7.0)
  milliseconds failure_window{std::chrono::minutes(15)};
  milliseconds lockout{std::chrono::minutes(15)};
  std::size_t max_tracked = 100000;  // client addresses (and account names) counted at once
  unsigned verify_threads = 2;       // threads that check passwords (argon2id), off the event loops
  // [auth.send_as]: account -> further sender addresses ("a@b") or domains ("@b") it may use.
  std::map<std::string, std::vector<std::string>> send_as;
};

struct Config {
  std::string source;  // the file it came from
  ServerConfig server;
  LogConfig log;
  std::vector<ListenerConfig> listeners;
  TlsConfig tls;
  SmtpConfig smtp;
  DnsConfig dns;
  QueueConfig queue;
  AccountsConfig accounts;
  AuthConfig auth;
  RemoteConfig remote;
};

// Reads and validates a TOML file.
base::Result<Config> load_config(const std::string& path);
// Same, from text (tests; `source` names it in errors).
base::Result<Config> parse_config(std::string_view text, const std::string& source);
// The effective configuration, every key with its value, as TOML that load_config accepts.
std::string to_toml(const Config& config);

// Parses "10.0.0.0/8", "::1", "127.0.0.1"; false if malformed.
bool parse_network(std::string_view text, Network& out);
// Parses "host:port" / "[v6]:port"; false if malformed.
bool parse_host_port(std::string_view text, std::string& host, std::uint16_t& port);
// True when the 16-byte address (IPv4 mapped) lies in the network.
bool network_contains(const Network& net, const std::uint8_t (&addr)[16]);

// Search order for the config file when -c is not given.
std::string default_config_path();

}  // namespace petrel::config
