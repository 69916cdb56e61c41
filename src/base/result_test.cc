#include "base/result.h"

#include <gtest/gtest.h>

namespace petrel::base {
namespace {

Result<int> half(int n) {
  if (n % 2) return permanent_error("odd");
  return n / 2;
}

TEST(Result, CarriesValueOrError) {
  auto ok = half(4);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 2);
  auto bad = half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "odd");
  EXPECT_FALSE(bad.error().temporary());
}

TEST(Result, UnclassifiedErrorsAreTemporary) {
  Error e;
  EXPECT_TRUE(e.temporary());
  Status s = errno_error("open", 2);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().temporary());
  EXPECT_NE(s.error().message.find("open: "), std::string::npos);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  auto bad = half(3);
  EXPECT_DEATH((void)bad.value(), "Result::value");
}

}  // namespace
}  // namespace petrel::base
