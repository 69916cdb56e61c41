// submission_headers.cc: header section collection and field facts (RFC 5322 2.2, 3.6).
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

}  // namespace petrel::smtp::server
