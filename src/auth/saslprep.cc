// saslprep.cc: SASLprep (RFC 4013) over libidn's stringprep (saslprep.h).
#include "auth/saslprep.h"

#include <idn-free.h>
#include <stringprep.h>

#include <memory>

#include "mail/command.h"

namespace petrel::auth {
namespace {

struct IdnFree {
  void operator()(char* p) const { idn_free(p); }
};

}  // namespace

base::Result<std::string> prepare_password(std::string_view password, PrepMode mode) {
  // stringprep_profile reads a C string: an embedded NUL would cut the password short. U+0000
  // is prohibited output anyway (RFC 4013 2.3, RFC 3454 C.2.1).
  if (password.find('\0') != std::string_view::npos) {
    return base::permanent_error("SASLprep: prohibited character (control)");
  }
  // RFC 4013 works on Unicode strings: octets that are not UTF-8 have no prepared form.
  if (!mail::is_valid_utf8(password)) return base::permanent_error("SASLprep: not UTF-8");

  char* raw = nullptr;
  const auto flags = mode == PrepMode::kStored ? STRINGPREP_NO_UNASSIGNED : static_cast<Stringprep_profile_flags>(0);
  const int rc = stringprep_profile(std::string(password).c_str(), &raw, "SASLprep", flags);
  std::unique_ptr<char, IdnFree> out(raw);
  switch (rc) {
    case STRINGPREP_OK: break;
    case STRINGPREP_CONTAINS_UNASSIGNED: return base::permanent_error("SASLprep: unassigned code point");
    case STRINGPREP_CONTAINS_PROHIBITED: return base::permanent_error("SASLprep: prohibited character");
    case STRINGPREP_BIDI_BOTH_L_AND_RAL:
    case STRINGPREP_BIDI_LEADTRAIL_NOT_RAL:
    case STRINGPREP_BIDI_CONTAINS_PROHIBITED: return base::permanent_error("SASLprep: bidirectional rule broken");
    case STRINGPREP_MALLOC_ERROR: return base::temporary_error("SASLprep: out of memory");
    default:
      return base::permanent_error(std::string("SASLprep: ") +
                                   stringprep_strerror(static_cast<Stringprep_rc>(rc)));
  }
  if (!out || *out == '\0') return base::permanent_error("SASLprep: empty after preparation");
  return std::string(out.get());
}

}  // namespace petrel::auth
