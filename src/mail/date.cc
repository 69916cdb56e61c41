// mail/date.cc: RFC 5322 dates without the C library's locale or time zone (date.h).
#include "mail/date.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace petrel::mail {

std::string rfc5322_date(std::int64_t t) {
  t = std::clamp<std::int64_t>(t, 0, 253402300799);
  std::int64_t days = t / 86400;
  std::int64_t secs = t % 86400;
  // Civil date from a day count (H. Hinnant's days_from_civil, inverted), for days >= 0.
  std::int64_t z = days + 719468;
  std::int64_t era = z / 146097;
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  static constexpr std::array<const char*, 7> kWeekdays = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kWeekdays[days % 7],
                static_cast<int>(day), kMonths[month - 1], static_cast<int>(year),
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

}  // namespace petrel::mail
