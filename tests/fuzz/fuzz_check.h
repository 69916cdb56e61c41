// fuzz_check.h: CHECK(cond) for fuzz targets: a broken invariant traps, which libFuzzer
// reports as a crash with the input that caused it (assert() would vanish under NDEBUG).
#pragma once

#define CHECK(cond)     \
  do {                  \
    if (!(cond)) {      \
      __builtin_trap(); \
    }                   \
  } while (false)
