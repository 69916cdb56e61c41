#include "base/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace petrel::base {
namespace {

TEST(QueueId, UniqueSortableAndWellFormed) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767225600000));
  std::set<std::string> seen;
  std::string prev;
  for (int i = 0; i < 10000; ++i) {
    auto id = new_queue_id(t + std::chrono::milliseconds(i / 100));
    EXPECT_TRUE(is_queue_id(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
    EXPECT_LT(prev, id);
    prev = id;
  }
  EXPECT_FALSE(is_queue_id("short"));
  EXPECT_FALSE(is_queue_id("0000000000000000000I"));  // I is not in the alphabet
  EXPECT_FALSE(is_queue_id("../../../etc/passwd00"));
}

}  // namespace
}  // namespace petrel::base
