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
  std::vector<Network> trusted_networks;  // may relay without AUTH
};

struct QueueConfig {
  std::uint64_t min_free_space = 100ULL << 20;  // refuse MAIL (452 4.3.1) below this
  std::uint64_t segment_size = 64ULL << 20;    // spool log segment size before rolling over
  std::uint64_t memory_per_message = 64ULL << 10;  // body bytes held before spilling to disk
  milliseconds retry_first{std::chrono::minutes(5)};  // first retry of a deferred recipient
  milliseconds retry_max{std::chrono::hours(1)};      // retries double up to this interval
  milliseconds lifetime{std::chrono::hours(24 * 5)};  // then the recipient expires
  std::size_t delivery_concurrency = 20;              // deliveries in flight at once
  std::size_t active_limit = 100000;                 // pending messages held in memory (the rest wait on disk)
};

struct AccountsConfig {
  std::string subaddress_separator = "+";  // "" disables subaddressing
};

struct Config {
  std::string source;  // the file it came from
  ServerConfig server;
  LogConfig log;
  std::vector<ListenerConfig> listeners;
  TlsConfig tls;
  SmtpConfig smtp;
  QueueConfig queue;
  AccountsConfig accounts;
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
