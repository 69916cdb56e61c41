// headers_test.cc: the fields Petrel writes, byte for byte, what hostile input cannot do to
// them, and the address lists it reads.
#include "mail/headers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace petrel::mail {
namespace {

using namespace std::string_literals;

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

// ---- Received: ----

constexpr std::int64_t kAt = 1767225600;  // Thu, 01 Jan 2026 00:00:00 +0000

TEST(ReceivedTest, ProtocolKeywords) {
  // RFC 3848 and RFC 6531 names; TLS and AUTH need EHLO, so "SMTPS" never happens.
  EXPECT_EQ(received_protocol(false, false, false, false), "SMTP");
  EXPECT_EQ(received_protocol(true, false, false, false), "ESMTP");
  EXPECT_EQ(received_protocol(true, false, true, false), "ESMTPS");
  EXPECT_EQ(received_protocol(true, false, false, true), "ESMTPA");
  EXPECT_EQ(received_protocol(true, false, true, true), "ESMTPSA");
  EXPECT_EQ(received_protocol(true, true, false, false), "UTF8SMTP");
  EXPECT_EQ(received_protocol(true, true, true, true), "UTF8SMTPSA");
}

// The bytes the SMTP session and the submit socket wrote before they shared this builder.
TEST(ReceivedTest, GoldenFields) {
  struct Row {
    ReceivedInfo in;
    std::string want;
  };
  const Row rows[] = {
      {{.helo = "client.example", .ip = "127.0.0.1", .by = "mx.example.test", .by_comment = "Petrel",
        .with = "ESMTP", .id = "01M99JEKGA0F00000000", .for_rcpt = "alice@example.test", .at = kAt},
       "Received: from client.example ([127.0.0.1])\r\n"
       "\tby mx.example.test (Petrel) with ESMTP id 01M99JEKGA0F00000000\r\n"
       "\tfor <alice@example.test>;\r\n"
       "\tThu, 01 Jan 2026 00:00:00 +0000\r\n"},
      {{.helo = "laptop", .ip = "::1", .tls = "TLSv1.3 TLS_AES_256_GCM_SHA384", .by = "mx.example.test",
        .by_comment = "Petrel", .with = "ESMTPSA", .id = "01M99JEKGA0F00000001", .at = kAt},
       "Received: from laptop ([::1])\r\n"
       "\t(using TLSv1.3 TLS_AES_256_GCM_SHA384)\r\n"
       "\tby mx.example.test (Petrel) with ESMTPSA id 01M99JEKGA0F00000001;\r\n"
       "\tThu, 01 Jan 2026 00:00:00 +0000\r\n"},
      {{.by = "mx.example.test", .by_comment = "Petrel, from userid 0", .id = "01M99JEKGA0F00000002", .at = kAt},
       "Received: by mx.example.test (Petrel, from userid 0) id 01M99JEKGA0F00000002;\r\n"
       "\tThu, 01 Jan 2026 00:00:00 +0000\r\n"},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(received_field(r.in), r.want);
    expect_one_field(received_field(r.in));
  }
}

TEST(ReceivedTest, HostileTextCannotBreakTheField) {
  const std::string evil_helo = "evil\r\nX-Injected: 1\r\n\r\nbody\0(x) \"q\" \\ \xC3\xA9"s;  // NUL inside
  const std::string evil_rcpt = std::string("a\r\nBcc: b@x>") + std::string(400, 'r');
  const std::string evil_user = "Petrel, from userid 0\r\nX-Fake: 1";
  ReceivedInfo in{.helo = std::string_view(evil_helo.data(), evil_helo.size()), .ip = "10.0.0.1\n",
                  .tls = "TLS\r\n", .by = "mx\r\n.example", .by_comment = evil_user, .with = "ESMTP\n",
                  .id = "ID\r\n", .for_rcpt = evil_rcpt, .at = kAt};
  const std::string f = received_field(in);
  expect_one_field(f);
  EXPECT_EQ(f.find("\r\nX-"), std::string::npos) << f;
  EXPECT_EQ(f.find("\r\nBcc"), std::string::npos) << f;
  EXPECT_NE(f.find("from evil\\x0d\\x0aX-Injected: 1\\x0d\\x0a\\x0d\\x0abody\\x00\\x28x\\x29 \\x22q\\x22 \\x5c \\xc3\\xa9 "),
            std::string::npos)
      << f;
  // The recipient is cut at 300 octets.
  EXPECT_NE(f.find(std::string(250, 'r') + "...>;"), std::string::npos) << f;
  // A HELO of 255 octets is cut at 100.
  const std::string long_helo(255, 'h');
  EXPECT_NE(received_field({.helo = long_helo, .ip = "192.0.2.1", .by = "mx", .at = kAt})
                .find("from " + std::string(100, 'h') + "... ([192.0.2.1])\r\n"),
            std::string::npos);
}

// ---- Date:, Message-ID: ----

TEST(DateAndMessageIdTest, Fields) {
  EXPECT_EQ(date_field(kAt), "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n");
  EXPECT_EQ(message_id_field("01M99JEKGA0F00000000", "mx.example.test"),
            "Message-ID: <01M99JEKGA0F00000000@mx.example.test>\r\n");
  EXPECT_EQ(unique_id_left(kAt, 0x0123456789abcdefULL), "t85s00.0123456789abcdef");
  EXPECT_EQ(unique_id_left(0, 0), "0.0000000000000000");
  EXPECT_EQ(unique_id_left(-5, ~0ULL), "0.ffffffffffffffff");
  EXPECT_NE(unique_id_left(kAt, 1), unique_id_left(kAt, 2));
  EXPECT_NE(unique_id_left(kAt, 1), unique_id_left(kAt + 1, 1));
  // Hostile parts lose what dot-atom-text does not allow; an empty part is "invalid".
  auto f = message_id_field("a\r\nb <c>@d", "mx\r\nX-Evil: 1");
  EXPECT_EQ(f, "Message-ID: <abcd@mxX-Evil1>\r\n");
  expect_one_field(f);
  EXPECT_EQ(message_id_field("", "\r\n"), "Message-ID: <invalid@invalid>\r\n");
}

// ---- From: ----

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

// ---- Reading address lists ----

TEST(MailboxListTest, Forms) {
  struct Row {
    const char* value;
    std::vector<std::string> want;  // empty: unparsable
  };
  const Row rows[] = {
      {"alice@example.test", {"alice@example.test"}},
      {" Alice Smith <alice@example.test>", {"alice@example.test"}},
      {"\"Smith, Alice\" <alice@example.test> (work)", {"alice@example.test"}},
      {"alice@example.test (Alice)", {"alice@example.test"}},
      {"(c) alice @ example.test", {"alice@example.test"}},
      {"\"<bob@evil.test>\" <alice@example.test>", {"alice@example.test"}},
      {"=?utf-8?q?Al=C3=AFce?= <alice@example.test>", {"alice@example.test"}},
      {"a@x.test, B <b@y.test>", {"a@x.test", "b@y.test"}},
      {"Team: a@x.test, b@y.test;", {"a@x.test", "b@y.test"}},
      {"<@route.test:alice@example.test>", {"alice@example.test"}},
      {"alice@[IPv6:::1]", {"alice@[IPv6:::1]"}},
      {"\"a b\"@example.test", {"\"a b\"@example.test"}},
      {"", {}},
      {"Alice", {}},
      {"<alice@example.test", {}},
      {"Alice <a@x.test> <b@y.test>", {}},
      {"<a@x.test> b@y.test", {}},
      {"a@x.test (unclosed", {}},
      {"undisclosed-recipients:;", {}},
  };
  for (const auto& r : rows) {
    auto got = parse_mailbox_list(r.value);
    if (r.want.empty()) {
      EXPECT_FALSE(got.has_value()) << r.value;
      continue;
    }
    ASSERT_TRUE(got.has_value()) << r.value;
    std::vector<std::string> strs;
    for (const auto& a : *got) strs.push_back(a.str());
    EXPECT_EQ(strs, r.want) << r.value;
  }
}

}  // namespace
}  // namespace petrel::mail
