// submission_headers.cc: header section collection and the From: address list (RFC 5322 3.4).
#include "smtp/server/submission_headers.h"

#include "base/strings.h"

namespace petrel::smtp::server {

std::string_view HeaderCollector::feed(std::string_view octets) {
  if (done_) return octets;
  const std::size_t before = held_.size();
  held_.append(octets);
  // The header section ends at the first empty line: CRLF at the very start, or CRLF CRLF.
  std::size_t end = std::string::npos;
  if (held_.starts_with("\r\n")) {
    end = 2;
  } else {
    auto at = held_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
    if (at != std::string::npos) end = at + 4;
  }
  if (end == std::string::npos) {
    if (held_.size() > kMaxSubmissionHeader) {
      too_large_ = done_ = true;
      held_.clear();
      held_.shrink_to_fit();
    }
    return {};
  }
  done_ = true;
  if (end > kMaxSubmissionHeader) {
    too_large_ = true;
    held_.clear();
    held_.shrink_to_fit();
    return {};
  }
  held_.resize(end);
  return octets.substr(end - before);
}

std::string_view HeaderCollector::header() const {
  std::string_view h = held_;
  if (h == "\r\n") return {};
  if (h.ends_with("\r\n\r\n")) h.remove_suffix(2);
  return h;
}

HeaderFacts analyze_header(std::string_view header) {
  HeaderFacts facts;
  std::string name, value;
  auto end_field = [&] {
    if (name.empty()) return;
    std::string key = base::to_lower(name);
    if (key == "from") {
      ++facts.from_fields;
      facts.from_values.push_back(value);
    } else if (key == "date") {
      facts.has_date = true;
    } else if (key == "message-id") {
      facts.has_message_id = true;
    }
    name.clear();
    value.clear();
  };
  while (!header.empty()) {
    auto nl = header.find('\n');
    std::string_view line = header.substr(0, nl);
    header = nl == std::string_view::npos ? std::string_view() : header.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      // RFC 5322 2.2.3: unfolding removes the CRLF, the whitespace stays.
      if (!name.empty() && value.size() < kMaxSubmissionHeader) value.append(line);
      continue;
    }
    end_field();
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a field; not ours to judge
    // Obsolete syntax (RFC 5322 4.5) allows whitespace before the colon.
    name = std::string(base::trim(line.substr(0, colon)));
    value = std::string(line.substr(colon + 1));
  }
  end_field();
  return facts;
}

std::optional<std::vector<mail::Address>> parse_mailbox_list(std::string_view v) {
  std::vector<mail::Address> out;
  std::string plain;  // the element's text outside comments and angle brackets, whitespace dropped
  std::optional<std::string> angle;
  auto finish = [&]() -> bool {
    std::string spec = angle ? std::string(base::trim(*angle)) : plain;
    // An obsolete route in an angle address (RFC 5322 4.4): "<@a,@b:user@host>".
    if (angle && spec.starts_with("@")) {
      auto colon = spec.find(':');
      if (colon == std::string::npos) return false;
      spec = spec.substr(colon + 1);
    }
    plain.clear();
    const bool had_angle = angle.has_value();
    angle.reset();
    if (spec.empty()) return !had_angle;  // an empty list element or group: nothing to check
    auto a = mail::parse_address(spec);
    if (!a || a->domain.empty()) return false;
    out.push_back(std::move(a).value());
    return true;
  };
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '(') {
      // A comment, possibly nested, with quoted-pairs.
      int depth = 0;
      for (; i < v.size(); ++i) {
        if (v[i] == '\\') ++i;
        else if (v[i] == '(') ++depth;
        else if (v[i] == ')' && --depth == 0) break;
      }
      if (i >= v.size()) return std::nullopt;
    } else if (c == '"') {
      // A quoted string: kept as written (part of a local part or of a display name).
      std::size_t start = i++;
      for (; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\') ++i;
      }
      if (i >= v.size()) return std::nullopt;
      if (!angle) plain.append(v.substr(start, i - start + 1));
    } else if (c == '[' && !angle) {
      // A domain literal ("[IPv6:::1]"): its colons do not start a group.
      auto close = v.find(']', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      plain.append(v.substr(i, close - i + 1));
      i = close;
    } else if (c == '<') {
      auto close = v.find('>', i + 1);
      if (angle || close == std::string_view::npos) return std::nullopt;
      angle = std::string(v.substr(i + 1, close - i - 1));
      i = close;
    } else if (c == ':') {
      plain.clear();  // "group name:" starts a group; its name is not an address
    } else if (c == ',' || c == ';') {
      if (!finish()) return std::nullopt;
    } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      // After an angle address only whitespace and comments may follow within the element;
      // text before it is the display name and is dropped when the angle address comes.
      if (angle) return std::nullopt;
      plain += c;
    }
  }
  if (!finish()) return std::nullopt;
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace petrel::smtp::server
