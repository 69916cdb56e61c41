#include "net/input_buffer.h"

#include <gtest/gtest.h>

namespace petrel::net {
namespace {

void feed(InputBuffer& b, std::string_view s) {
  std::memcpy(b.write_ptr(), s.data(), s.size());
  b.commit(s.size());
}

TEST(InputBuffer, SplitsLinesAndDropsCr) {
  InputBuffer b(64);
  feed(b, "EHLO a\r\nNOOP\nQU");
  std::string_view line;
  ASSERT_EQ(b.next_line(512, line), InputBuffer::LineStatus::kLine);
  EXPECT_EQ(line, "EHLO a");
  ASSERT_EQ(b.next_line(512, line), InputBuffer::LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");
  EXPECT_EQ(b.next_line(512, line), InputBuffer::LineStatus::kNeedMore);
  feed(b, "IT\r\n");
  ASSERT_EQ(b.next_line(512, line), InputBuffer::LineStatus::kLine);
  EXPECT_EQ(line, "QUIT");
  EXPECT_EQ(b.size(), 0u);
}

TEST(InputBuffer, ReportsOverlongLinesWithoutGrowing) {
  InputBuffer b(32);
  feed(b, std::string(20, 'x'));
  std::string_view line;
  EXPECT_EQ(b.next_line(16, line), InputBuffer::LineStatus::kTooLong);
  EXPECT_FALSE(b.skip_line());
  EXPECT_EQ(b.size(), 0u);
  feed(b, "yyyy\r\nNOOP\r\n");
  EXPECT_TRUE(b.skip_line());
  ASSERT_EQ(b.next_line(16, line), InputBuffer::LineStatus::kLine);
  EXPECT_EQ(line, "NOOP");
  // A complete line longer than the limit is too long as well.
  std::string long_line(20, 'z');
  long_line.append("\r\n");
  feed(b, long_line);
  EXPECT_EQ(b.next_line(16, line), InputBuffer::LineStatus::kTooLong);
  EXPECT_EQ(b.capacity(), 32u);
}

}  // namespace
}  // namespace petrel::net
