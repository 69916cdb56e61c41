// mail/date.h: the RFC 5322 section 3.3 date-time Petrel writes in Date:, Received: and DSN
// fields, always in UTC: "Thu, 01 Jan 2026 00:00:00 +0000".
//
// Promise: pure and locale-independent (no strftime, no TZ); seconds since the epoch are
// clamped to 1970..9999, so any input gives a valid date.
#pragma once

#include <cstdint>
#include <string>

namespace petrel::mail {

std::string rfc5322_date(std::int64_t seconds_since_epoch);

}  // namespace petrel::mail
