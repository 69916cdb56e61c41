// strings.cc: ASCII helpers, size/duration parsing, log escaping.
#include "base/strings.h"

#include <charconv>
#include <limits>

namespace petrel::base {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

namespace {

// Splits "123unit" into its number and unit; nullopt if there is no leading number.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  text = trim(text);
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  return std::make_pair(n, trim(text.substr(static_cast<std::size_t>(ptr - text.data()))));
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::nullopt;
  return a * b;
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  std::uint64_t mult = 0;
  if (unit.empty() || iequals(unit, "B")) mult = 1;
  else if (unit == "KiB") mult = 1ULL << 10;
  else if (unit == "MiB") mult = 1ULL << 20;
  else if (unit == "GiB") mult = 1ULL << 30;
  else if (unit == "TiB") mult = 1ULL << 40;
  // One letter, as Dovecot's quotas and du(1) write them: binary multiples ("10M" = 10 MiB).
  else if (iequals(unit, "K")) mult = 1ULL << 10;
  else if (iequals(unit, "M")) mult = 1ULL << 20;
  else if (iequals(unit, "G")) mult = 1ULL << 30;
  else if (iequals(unit, "T")) mult = 1ULL << 40;
  else if (unit == "kB" || unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000ULL * 1000 * 1000;
  else return std::nullopt;
  return checked_mul(n, mult);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  std::uint64_t mult = 0;
  if (unit == "ms") mult = 1;
  else if (unit == "s" || (unit.empty() && n == 0)) mult = 1000;
  else if (unit == "m") mult = 60 * 1000;
  else if (unit == "h") mult = 3600 * 1000;
  else if (unit == "d") mult = 86400 * 1000;
  else return std::nullopt;
  auto ms = checked_mul(n, mult);
  if (!ms || *ms > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::pair<std::uint64_t, const char*> kUnits[] = {
      {1ULL << 40, "TiB"}, {1ULL << 30, "GiB"}, {1ULL << 20, "MiB"}, {1ULL << 10, "KiB"}};
  for (auto [size, name] : kUnits) {
    if (bytes != 0 && bytes % size == 0) return std::to_string(bytes / size) + name;
  }
  return std::to_string(bytes);
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = static_cast<std::uint64_t>(d.count());
  static constexpr std::pair<std::uint64_t, const char*> kUnits[] = {
      {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  if (ms == 0) return "0s";
  for (auto [size, name] : kUnits) {
    if (ms % size == 0) return std::to_string(ms / size) + name;
  }
  return std::to_string(ms) + "ms";
}

std::string log_escape(std::string_view text, std::size_t max_len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max_len) + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace petrel::base
