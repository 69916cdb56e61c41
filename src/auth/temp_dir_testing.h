// auth/temp_dir_testing.h: a temporary directory for one test, removed with its contents.
// Test-only; included by the auth unit tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/temp_dir_testing.h"

namespace petrel::auth {

// base::testing::TempDir, plus where the accounts database goes in it.
class TempDir : public base::testing::TempDir {
 public:
  TempDir() : base::testing::TempDir("petrel-auth") {}
  std::string db() const { return path() + "/petrel.db"; }
};

}  // namespace petrel::auth
