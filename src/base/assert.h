// base/assert.h: PETREL_ASSERT, for invariants whose breach means a bug.
//
// A broken invariant aborts with file, line and message, in every build type: a bug must not
// go on to corrupt the spool. Not for input validation: bad input is an Error, not an abort.
#pragma once

namespace petrel::base {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* message);
}  // namespace petrel::base

#define PETREL_ASSERT(expr, message)                                              \
  do {                                                                            \
    if (!(expr)) [[unlikely]] {                                                   \
      ::petrel::base::assert_fail(#expr, __FILE__, __LINE__, (message));          \
    }                                                                             \
  } while (false)
