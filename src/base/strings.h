// base/strings.h: ASCII string helpers and the parsers for human-friendly sizes and durations
// used by the config ("50MiB", "5m"). No locale: every function here is byte-exact ASCII.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace petrel::base {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

// "1048576", "64KiB", "50MiB", "1GiB", "10kB", "2MB" → bytes; one letter K, M, G, T (either case)
// is binary like KiB..TiB ("10M" = 10 MiB). nullopt when malformed or overflowing.
std::optional<std::uint64_t> parse_size(std::string_view text);
// "30s", "5m", "1h", "2d", "250ms", "0" → duration; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// The inverse, for printing the effective config: the largest exact unit.
std::string format_size(std::uint64_t bytes);
std::string format_duration(std::chrono::milliseconds d);

// Makes untrusted text safe for one log line: printable ASCII kept, everything else as \xHH,
// cut at max_len with "...". Used for every peer-supplied string that reaches a log.
std::string log_escape(std::string_view text, std::size_t max_len = 200);

}  // namespace petrel::base
