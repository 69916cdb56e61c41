// mailbox/maildir_test_util.h: helpers for the mailbox unit tests only (temp dirs, bodies).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "base/temp_dir_testing.h"
#include "mailbox/maildir.h"

namespace petrel::mailbox::testing {

// A fresh directory for one test (base/temp_dir_testing.h).
struct TempDir : base::testing::TempDir {
  TempDir() : base::testing::TempDir("petrel-mailbox") {}
};

// A body source over `text` that hands out at most `piece` bytes per call.
inline BodySource string_source(const std::string& text, std::size_t piece = 1 << 20) {
  auto pos = std::make_shared<std::size_t>(0);
  return [&text, piece, pos](char* buf, std::size_t len) -> base::Result<std::size_t> {
    std::size_t n = std::min({len, piece, text.size() - *pos});
    std::copy_n(text.data() + *pos, n, buf);
    *pos += n;
    return n;
  };
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace petrel::mailbox::testing
