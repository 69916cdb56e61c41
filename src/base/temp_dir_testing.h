// base/temp_dir_testing.h: a fresh directory for one test, removed with its contents at the end.
// Test-only. Made under $PETREL_TEST_DIR when set (e.g. a real disk, for figures that depend on
// fsync), else the system's temporary directory. Aborts if the directory cannot be made: a test
// without its directory would only fail later and less clearly.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace petrel::base::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "petrel") {
    const char* base = std::getenv("PETREL_TEST_DIR");
    std::string tmpl = std::string(base ? base : std::filesystem::temp_directory_path().c_str()) + "/" +
                       std::string(prefix) + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace petrel::base::testing
