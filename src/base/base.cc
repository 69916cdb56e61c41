// base.cc: the small out-of-line pieces of result.h and assert.h.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/assert.h"
#include "base/result.h"

namespace petrel::base {

void assert_fail(const char* expr, const char* file, int line, const char* message) {
  std::fprintf(stderr, "petrel: assertion failed at %s:%d: %s (%s)\n", file, line, message, expr);
  std::fflush(stderr);
  std::abort();
}

Error errno_error(const std::string& what, int err) {
  return temporary_error(what + ": " + std::strerror(err));
}

}  // namespace petrel::base
