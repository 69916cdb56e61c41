// headers_test.cc: the fields Petrel writes, byte for byte, and what hostile input cannot do.
#include "mail/headers.h"

#include <gtest/gtest.h>

#include <string>

namespace petrel::mail {
namespace {

// No CR or LF except folds (CRLF + WSP), and exactly one final CRLF.
void expect_one_field(const std::string& field) {
  ASSERT_TRUE(field.ends_with("\r\n")) << field;
  std::string_view body(field.data(), field.size() - 2);
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r') {
      ASSERT_TRUE(i + 2 < body.size() && body[i + 1] == '\n' && (body[i + 2] == ' ' || body[i + 2] == '\t')) << field;
      ++i;  // the fold's LF
      continue;
    }
    if (body[i] == '\n') ADD_FAILURE() << "bare LF in " << field;
    if (body[i] == '\0') ADD_FAILURE() << "NUL in " << field;
  }
}

TEST(MailboxTest, QuotedStringAndEncodedWords) {
  struct Row {
    std::string name, want;
  };
  const Row rows[] = {
      {"", "<root@mx.example.test>"},
      {"Cron Daemon", "\"Cron Daemon\" <root@mx.example.test>"},
      {"Jo \"Q\" Public \\ Esq", "\"Jo \\\"Q\\\" Public \\\\ Esq\" <root@mx.example.test>"},
      {"Smith, John (ops) <x@y>", "\"Smith, John (ops) <x@y>\" <root@mx.example.test>"},
      {"Zo\xC3\xAB", "=?UTF-8?B?Wm/Dqw==?= <root@mx.example.test>"},
      // 44 octets: 42 in the first word (never splitting the two-octet letters), the rest folded.
      {std::string(40, 'a') + "\xC3\xA9\xC3\xA9", "=?UTF-8?B?" "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYcOp" "?=\r\n =?UTF-8?B?w6k=?= <root@mx.example.test>"},
  };
  for (const auto& r : rows) {
    auto m = mailbox(r.name, "root@mx.example.test");
    ASSERT_TRUE(m) << r.name;
    EXPECT_EQ(*m, r.want);
    auto f = from_field(r.name, "root@mx.example.test");
    ASSERT_TRUE(f);
    EXPECT_EQ(*f, "From: " + r.want + "\r\n");
    expect_one_field(*f);
  }
}

TEST(MailboxTest, EncodedWordsStayShortWhateverTheName) {
  std::string name;
  for (int i = 0; i < 60; ++i) name += "\xE2\x82\xAC";  // 180 octets of euro signs
  auto f = from_field(name, "a@b.test");
  ASSERT_TRUE(f);
  expect_one_field(*f);
  std::size_t start = 0;
  for (auto end = f->find("\r\n"); end != std::string::npos; start = end + 2, end = f->find("\r\n", start)) {
    std::string_view line(f->data() + start, end - start);
    if (line.ends_with(" <a@b.test>")) line.remove_suffix(11);  // the address follows the last word
    EXPECT_LE(line.size(), 76u) << line;
  }
}

TEST(MailboxTest, RefusesControlsBadUtf8AndHugeNames) {
  for (std::string bad : {std::string("x\r\nBcc: y"), std::string("x\nRCPT evil@x"), std::string("x\rX"),
                          std::string("a\0b", 3), std::string("tab\there"), std::string("del\x7f"),
                          std::string("Zo\xC3"), std::string("\xFF\xFE"), std::string(257, 'n')}) {
    auto m = mailbox(bad, "a@b.test");
    ASSERT_FALSE(m) << bad;
    EXPECT_FALSE(m.error().temporary());
  }
  EXPECT_TRUE(mailbox(std::string(256, 'n'), "a@b.test"));
  EXPECT_TRUE(has_control(std::string("a\0", 2)));
  EXPECT_FALSE(has_control("plain text ~"));
}

}  // namespace
}  // namespace petrel::mail
