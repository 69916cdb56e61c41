// smtp/server/submission_headers.h: what the submission service needs to know about a
// message's header section (RFC 5322 2.2, 3.6): the From: fields' values, and whether
// Date: and Message-ID: are present.
//
// Promise: HeaderCollector holds the header section as it streams in, never more than
// kMaxSubmissionHeader octets, and says when it has ended (at the first empty line, or at the
// end of the message when there is none). analyze_header() reads it without changing a byte.
// Not done here: reading the addresses of a From: value (mail::parse_mailbox_list, in
// mail/headers.h), deciding who owns an address (auth::SenderRights), adding fields (the
// session puts its additions above the client's header, so the client's octets stay as sent).
// Thread: plain values; one per transaction.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mail/address.h"

namespace petrel::smtp::server {

// Largest header section a submission may have (Postfix's header_size_limit is 100 KiB).
inline constexpr std::size_t kMaxSubmissionHeader = 256 * 1024;

struct HeaderFacts {
  std::size_t from_fields = 0;
  std::vector<std::string> from_values;  // unfolded values of the From: fields
  bool has_date = false;
  bool has_message_id = false;
};

// `header`: the header section (without the empty line that ends it).
HeaderFacts analyze_header(std::string_view header);

class HeaderCollector {
 public:
  // Takes message octets. Returns the octets that come after the header section when this
  // call completed it (the body's start), which the caller stores after the header.
  std::string_view feed(std::string_view octets);
  // The message ended: whatever is held is the header section.
  void finish() { done_ = true; }
  bool done() const { return done_; }
  bool too_large() const { return too_large_; }
  // The held header octets including the empty line that ended them, as sent.
  const std::string& held() const { return held_; }
  // The header section proper: held() without its final empty line.
  std::string_view header() const;

 private:
  std::string held_;
  bool done_ = false;
  bool too_large_ = false;
};

}  // namespace petrel::smtp::server
