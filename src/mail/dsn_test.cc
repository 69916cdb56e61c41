// dsn_test.cc: compose_dsn() against golden files, plus structural checks on every output.
//
// Golden files: src/mail/testdata/dsn/<case>.eml, byte for byte (CRLF line ends; the
// directory's .gitattributes keeps git from touching them). After an intended change to the
// DSN text, regenerate them and review the diff before committing:
//   PETREL_UPDATE_GOLDEN=1 build/mail_test --gtest_filter='Dsn/Golden.*'
//   git diff src/mail/testdata/dsn
// Every output, golden or not, also goes through check_well_formed(): CRLF only, no line over
// 998 octets, a header section of fields, and a multipart/report of exactly the expected parts
// whose boundary occurs nowhere but on its delimiter lines.
#include "mail/dsn.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace petrel::mail {
namespace {

constexpr std::int64_t kNow = 1767225600;  // Thu, 01 Jan 2026 00:00:00 +0000

const std::string kSmallOriginal =
    "Return-Path: <alice@example.com>\r\n"
    "Received: from client.example.com (client.example.com [192.0.2.10])\r\n"
    "\tby mx.example.org (Petrel) with ESMTPS id 4F2A9C01\r\n"
    "\tfor <nobody@example.org>; Wed, 31 Dec 2025 23:00:00 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: nobody@example.org\r\n"
    "Subject: Lunch on Friday?\r\n"
    "Date: Wed, 31 Dec 2025 22:59:58 +0000\r\n"
    "Message-ID: <lunch.1@example.com>\r\n"
    "\r\n"
    "Shall we meet at noon?\r\n"
    "\r\n"
    "Alice\r\n";

// ---------------------------------------------------------------------------------------------
// A small, independent reader of what compose_dsn() wrote.

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find("\r\n", start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return lines;
}

struct Parsed {
  std::vector<std::string> header_lines;  // the top-level header section, as written
  std::string boundary;
  std::vector<std::string> parts;  // each part: its header, blank line, body (CRLF-joined)
};

// The unfolded value of the first field called `name` in `lines` (a header section).
std::string field(const std::vector<std::string>& lines, const std::string& name) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(name + ":", 0) != 0) continue;
    std::string value = lines[i].substr(name.size() + 1);
    for (std::size_t j = i + 1;
         j < lines.size() && (lines[j].rfind(' ', 0) == 0 || lines[j].rfind('\t', 0) == 0); ++j) {
      value += lines[j];
    }
    std::size_t first = value.find_first_not_of(" \t");
    return first == std::string::npos ? "" : value.substr(first);
  }
  return "";
}

// Fails the current test (and returns what it could read) when `m` is not a well-formed
// multipart/report with `expected_parts` parts.
Parsed check_well_formed(const std::string& m, std::size_t expected_parts) {
  Parsed p;
  // Line structure (RFC 5322 2.1, 2.1.1): CRLF only, no NUL, no line over 998 octets.
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\0') ADD_FAILURE() << "NUL at " << i;
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) ADD_FAILURE() << "bare LF at " << i;
    if (m[i] == '\r' && (i + 1 == m.size() || m[i + 1] != '\n')) ADD_FAILURE() << "bare CR at " << i;
  }
  EXPECT_TRUE(m.size() >= 2 && m.compare(m.size() - 2, 2, "\r\n") == 0) << "no CRLF at the end";
  std::vector<std::string> lines = split_lines(m);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 998u) << "line " << i + 1 << " is too long";
  }

  // Header section: fields or continuation lines, up to the first empty line.
  std::size_t i = 0;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    const std::string& l = lines[i];
    if (l[0] == ' ' || l[0] == '\t') {
      EXPECT_FALSE(i == 0) << "continuation first";
      EXPECT_NE(l.find_first_not_of(" \t"), std::string::npos) << "blank continuation line " << i + 1;
    } else {
      std::size_t colon = l.find(':');
      EXPECT_NE(colon, std::string::npos) << "not a field: " << l;
      for (std::size_t k = 0; k < colon && colon != std::string::npos; ++k) {
        EXPECT_TRUE(l[k] > 32 && l[k] < 127) << "bad field name: " << l;
      }
    }
    p.header_lines.push_back(l);
  }
  EXPECT_LT(i, lines.size()) << "no end of header";
  EXPECT_EQ(field(p.header_lines, "MIME-Version"), "1.0");
  std::string ct = field(p.header_lines, "Content-Type");
  EXPECT_EQ(ct.rfind("multipart/report;", 0), 0u) << ct;
  std::size_t b = ct.find("boundary=\"");
  if (b == std::string::npos) {
    ADD_FAILURE() << "no boundary in " << ct;
    return p;
  }
  std::size_t b_end = ct.find('"', b + 10);
  p.boundary = ct.substr(b + 10, b_end - (b + 10));
  EXPECT_FALSE(p.boundary.empty());
  EXPECT_LE(p.boundary.size(), 70u);  // RFC 2046 5.1.1

  // Body: delimiter lines, exactly `expected_parts` parts, one close delimiter at the end, and
  // the boundary nowhere else.
  const std::string delimiter = "--" + p.boundary;
  bool closed = false;
  std::string* part = nullptr;
  for (++i; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l == delimiter) {
      EXPECT_FALSE(closed) << "part after the close delimiter";
      p.parts.emplace_back();
      part = &p.parts.back();
      continue;
    }
    if (l == delimiter + "--") {
      EXPECT_FALSE(closed) << "second close delimiter";
      closed = true;
      part = nullptr;
      continue;
    }
    EXPECT_EQ(l.find(delimiter), std::string::npos) << "boundary inside a part, line " << i + 1 << ": " << l;
    if (closed) {
      EXPECT_TRUE(l.empty()) << "text after the close delimiter";
    }
    if (part) *part += l + "\r\n";
  }
  EXPECT_TRUE(closed) << "no close delimiter";
  EXPECT_EQ(p.parts.size(), expected_parts);
  return p;
}

std::vector<std::string> part_header(const std::string& part) {
  std::vector<std::string> lines = split_lines(part);
  std::vector<std::string> out;
  for (const auto& l : lines) {
    if (l.empty()) break;
    out.push_back(l);
  }
  return out;
}

std::string part_body(const std::string& part) {
  std::size_t blank = part.find("\r\n\r\n");
  return blank == std::string::npos ? "" : part.substr(blank + 4);
}

// Lines of a part body that start a field called `name` (not continuation lines).
std::vector<std::string> field_lines(const std::string& body, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& l : split_lines(body)) {
    if (l.rfind(name + ":", 0) == 0) out.push_back(l);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Golden files.

std::string golden_path(const std::string& name) {
  return std::string(PETREL_MAIL_TESTDATA) + "/dsn/" + name + ".eml";
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = golden_path(name);
  const char* update = std::getenv("PETREL_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(out) << "cannot write " << path;
    out << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path << " is missing; run with PETREL_UPDATE_GOLDEN=1 to create it";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(actual, ss.str()) << "differs from " << path
                              << " (PETREL_UPDATE_GOLDEN=1 regenerates it after an intended change)";
}

struct World {
  Envelope envelope;
  DsnInput input;
  std::string original = kSmallOriginal;
};

// The usual case: alice@example.com wrote, mx.example.org reports, one recipient failed
// locally. Each golden case changes what it is about.
void base_world(World& w) {
  w.envelope.sender = Address{"alice", "example.com"};
  w.envelope.received_at = kNow - 3600;
  w.input.reporting_mta = "mx.example.org";
  w.input.queue_id = "4F2A9C01";
  w.input.postmaster = "MAILER-DAEMON@mx.example.org";
  w.input.message_id = "<dsn.4F2A9C01.1767225600@mx.example.org>";
  w.input.now = kNow;
  w.input.envelope = &w.envelope;
  DsnRecipient r;
  r.recipient = Address{"nobody", "example.org"};
  r.action = DsnAction::kFailed;
  r.status = "5.1.1";
  r.diagnostic = "550 5.1.1 <nobody@example.org>: Recipient address rejected: no such user";
  r.last_attempt = kNow - 60;
  w.input.recipients = {r};
}

struct GoldenCase {
  std::string name;
  std::function<void(World&)> setup;
  bool eight_bit = false;
  bool smtputf8 = false;
  std::string returned_type;  // Content-Type of part 3
};

std::string big_body(std::size_t size) {
  std::string body;
  while (body.size() < size) body += "All work and no play makes a very long message indeed.\r\n";
  return body;
}

const GoldenCase kGoldenCases[] = {
    {"failed_local", [](World&) {}, false, false, "message/rfc822"},
    {"ret_hdrs",
     [](World& w) {
       w.envelope.ret = DsnRet::kHeaders;
       w.input.recipients[0].remote_mta = "mx.example.net";
       w.input.recipients[0].diagnostic = "550 5.1.1 <nobody@example.net>: User unknown in virtual mailbox table";
       w.input.recipients[0].recipient.domain = "example.net";
     },
     false, false, "text/rfc822-headers"},
    {"too_big",
     [](World& w) {
       w.original += big_body(4096);
       w.input.max_original_bytes = 2048;
     },
     false, false, "text/rfc822-headers"},
    {"delayed",
     [](World& w) {
       DsnRecipient& r = w.input.recipients[0];
       r.recipient = Address{"bob", "example.net"};
       r.action = DsnAction::kDelayed;
       r.status = "4.4.1";
       r.remote_mta = "mx.example.net";
       r.diagnostic = "connect to mx.example.net[192.0.2.25]:25: Connection timed out";
       r.will_retry_until = kNow + 4 * 86400;
     },
     false, false, "text/rfc822-headers"},
    {"envid_orcpt",
     [](World& w) {
       w.envelope.envid = "QQ+314159 batch=7";  // decoded; '+', ' ' and '=' go back to xtext
       w.input.recipients[0].orcpt_type = "rfc822";
       w.input.recipients[0].orcpt = "Nobody+Lists@example.org";
     },
     false, false, "message/rfc822"},
    {"two_recipients",
     [](World& w) {
       DsnRecipient full;
       full.recipient = Address{"carol", "example.net"};
       full.action = DsnAction::kFailed;
       full.status = "5.2.2";
       full.remote_mta = "mx.example.net";
       full.diagnostic = "552-5.2.2 The email account that you tried to reach is over quota.\r\n"
                         "552 5.2.2 Please direct the recipient to the help page.";
       full.last_attempt = kNow - 30;
       DsnRecipient ok;
       ok.recipient = Address{"dave", "example.org"};
       ok.action = DsnAction::kDelivered;
       ok.status = "2.0.0";
       ok.last_attempt = kNow - 3500;
       w.input.recipients.push_back(full);
       w.input.recipients.push_back(ok);
     },
     false, false, "message/rfc822"},
    {"eight_bit_original",
     [](World& w) {
       w.envelope.body = BodyType::k8BitMime;
       w.original =
           "From: Alice <alice@example.com>\r\n"
           "To: nobody@example.org\r\n"
           "Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n"
           "\r\n"
           "Un caf\xC3\xA9 cr\xC3\xA8me, s'il vous pla\xC3\xAEt.\r\n";
     },
     true, false, "message/rfc822"},
    {"utf8_recipient",
     [](World& w) {
       w.envelope.smtputf8 = true;
       w.envelope.sender = Address{"alice", "example.com"};
       DsnRecipient& r = w.input.recipients[0];
       r.recipient = Address{"j\xC3\xB6rg", "b\xC3\xBC" "cher.example"};
       r.orcpt_type = "utf-8";
       r.orcpt = "J\xC3\xB6rg@b\xC3\xBC" "cher.example";
       r.diagnostic = "550 5.1.1 mailbox unavailable";
       w.original =
           "From: Alice <alice@example.com>\r\n"
           "To: J\xC3\xB6rg <j\xC3\xB6rg@b\xC3\xBC" "cher.example>\r\n"
           "Subject: Gr\xC3\xBC\xC3\x9F" "e\r\n"
           "\r\n"
           "Hallo J\xC3\xB6rg!\r\n";
     },
     true, true, "message/global"},
    {"hostile_diagnostic",
     [](World& w) {
       DsnRecipient& r = w.input.recipients[0];
       r.remote_mta = "mx.evil.example\r\nX-Injected: yes";
       r.diagnostic =
           "550 5.1.1 rejected\r\n"
           "--=_petrel_4F2A9C01_1767225600\r\n"
           "Content-Type: message/delivery-status\r\n"
           "\r\n"
           "Final-Recipient: rfc822; forged@example.org\r\n"
           "Action: delivered\r\n"
           "Status: 2.0.0\r\n\r\n" +
           std::string(1500, 'A') + " " + std::string(40, '\x01') + " tail";
       r.orcpt_type = "rfc822\r\nAction: delivered";
       r.orcpt = "nobody@example.org\r\nStatus: 2.0.0";
       w.envelope.envid = "id\r\nAction: delivered";
     },
     false, false, "message/rfc822"},
    {"original_contains_boundary",
     [](World& w) {
       w.original =
           "From: Mallory <mallory@example.com>\r\n"
           "To: nobody@example.org\r\n"
           "Subject: guess the boundary\r\n"
           "\r\n"
           "--=_petrel_4F2A9C01_1767225600\r\n"
           "Content-Type: message/delivery-status\r\n"
           "\r\n"
           "Final-Recipient: rfc822; nobody@example.org\r\n"
           "Action: delivered\r\n"
           "Status: 2.0.0\r\n"
           "--=_petrel_4F2A9C01_1767225600--\r\n";
     },
     false, false, "message/rfc822"},
    {"messy_original",
     [](World& w) {
       w.original = "From: Alice <alice@example.com>\n"
                    "Subject: bare LF\rand bare CR\n"
                    "X-Long: " +
                    std::string(1500, 'h') +
                    "\n"
                    "\n"
                    "body with a NUL: [" +
                    std::string(1, '\0') + "]\n" + std::string(2500, 'b') + "\nno final line end";
     },
     false, false, "message/rfc822"},
};

class Golden : public testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesFileAndIsWellFormed) {
  const GoldenCase& c = GetParam();
  World w;
  base_world(w);
  c.setup(w);
  w.input.original = w.original;
  DsnMessage m = compose_dsn(w.input);
  Parsed p = check_well_formed(m.bytes, 3);
  EXPECT_EQ(m.eight_bit, c.eight_bit);
  EXPECT_EQ(m.smtputf8, c.smtputf8);
  if (p.parts.size() == 3) {
    EXPECT_EQ(field(part_header(p.parts[0]), "Content-Type"), "text/plain; charset=utf-8");
    std::string status_type = field(part_header(p.parts[1]), "Content-Type");
    EXPECT_EQ(status_type, c.smtputf8 ? "message/global-delivery-status" : "message/delivery-status");
    EXPECT_EQ(field(part_header(p.parts[2]), "Content-Type"), c.returned_type);
    EXPECT_EQ(field(part_header(p.parts[2]), "Content-Transfer-Encoding"), c.eight_bit ? "8bit" : "");
    // One Action and one Final-Recipient field per recipient, and nowhere else at a line start.
    std::string status = part_body(p.parts[1]);
    EXPECT_EQ(field_lines(status, "Action").size(), w.input.recipients.size());
    EXPECT_EQ(field_lines(status, "Final-Recipient").size(), w.input.recipients.size());
    EXPECT_EQ(field_lines(part_body(p.parts[0]), "Action").size(), 0u);
  }
  expect_golden(c.name, m.bytes);
}

INSTANTIATE_TEST_SUITE_P(Dsn, Golden, testing::ValuesIn(kGoldenCases),
                         [](const testing::TestParamInfo<GoldenCase>& c) { return c.param.name; });

// ---------------------------------------------------------------------------------------------
// Properties the golden files show only by example.

DsnMessage compose_one(const std::function<void(World&)>& setup) {
  World w;
  base_world(w);
  setup(w);
  w.input.original = w.original;
  return compose_dsn(w.input);
}

std::string status_part(const DsnMessage& m) {
  Parsed p = check_well_formed(m.bytes, 3);
  return p.parts.size() == 3 ? part_body(p.parts[1]) : "";
}

TEST(Dsn, StatusAgreesWithAction) {
  struct Case {
    DsnAction action;
    std::string status;
    std::string shown;
  };
  const Case cases[] = {
      {DsnAction::kFailed, "5.1.1", "5.1.1"},       {DsnAction::kFailed, " 5.7.26 ", "5.7.26"},
      {DsnAction::kFailed, "4.4.7", "4.4.7"},       {DsnAction::kFailed, "2.0.0", "5.0.0"},
      {DsnAction::kFailed, "", "5.0.0"},            {DsnAction::kFailed, "5.1", "5.0.0"},
      {DsnAction::kFailed, "5.1.1234", "5.0.0"},    {DsnAction::kFailed, "5.x.1", "5.0.0"},
      {DsnAction::kFailed, "3.1.1", "5.0.0"},       {DsnAction::kFailed, "5.1.1\r\nAction: x", "5.0.0"},
      {DsnAction::kDelayed, "4.4.1", "4.4.1"},      {DsnAction::kDelayed, "5.1.1", "4.0.0"},
      {DsnAction::kDelayed, "junk", "4.0.0"},       {DsnAction::kDelivered, "2.1.5", "2.1.5"},
      {DsnAction::kDelivered, "5.1.1", "2.0.0"},    {DsnAction::kRelayed, "", "2.0.0"},
      {DsnAction::kExpanded, "2.0.0", "2.0.0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.status));
    DsnMessage m = compose_one([&](World& w) {
      w.input.recipients[0].action = c.action;
      w.input.recipients[0].status = c.status;
    });
    EXPECT_EQ(field_lines(status_part(m), "Status"), std::vector<std::string>{"Status: " + c.shown});
  }
}

TEST(Dsn, SubjectNamesTheWorstOutcome) {
  struct Case {
    std::vector<DsnAction> actions;
    std::string subject;
  };
  const Case cases[] = {
      {{DsnAction::kFailed}, "Undelivered Mail Returned to Sender"},
      {{DsnAction::kDelivered, DsnAction::kDelayed, DsnAction::kFailed}, "Undelivered Mail Returned to Sender"},
      {{DsnAction::kDelayed}, "Delayed Mail (still being retried)"},
      {{DsnAction::kDelivered, DsnAction::kDelayed}, "Delayed Mail (still being retried)"},
      {{DsnAction::kDelivered}, "Successful Mail Delivery Report"},
      {{DsnAction::kRelayed, DsnAction::kExpanded}, "Successful Mail Delivery Report"},
  };
  for (const auto& c : cases) {
    DsnMessage m = compose_one([&](World& w) {
      DsnRecipient r = w.input.recipients[0];
      w.input.recipients.clear();
      for (DsnAction a : c.actions) {
        r.action = a;
        w.input.recipients.push_back(r);
      }
    });
    Parsed p = check_well_formed(m.bytes, 3);
    EXPECT_EQ(field(p.header_lines, "Subject"), c.subject);
    EXPECT_EQ(field_lines(part_body(p.parts.at(1)), "Action").size(), c.actions.size());
  }
}

TEST(Dsn, TopLevelHeader) {
  DsnMessage m = compose_one([](World&) {});
  Parsed p = check_well_formed(m.bytes, 3);
  EXPECT_EQ(field(p.header_lines, "From"), "Mail Delivery System <MAILER-DAEMON@mx.example.org>");
  EXPECT_EQ(field(p.header_lines, "To"), "<alice@example.com>");
  EXPECT_EQ(field(p.header_lines, "Date"), "Thu, 01 Jan 2026 00:00:00 +0000");
  EXPECT_EQ(field(p.header_lines, "Message-ID"), "<dsn.4F2A9C01.1767225600@mx.example.org>");
  EXPECT_EQ(field(p.header_lines, "Auto-Submitted"), "auto-replied");
  EXPECT_EQ(p.boundary, "=_petrel_4F2A9C01_1767225600");
}

TEST(Dsn, DatesAreRfc5322InUtc) {
  struct Case {
    std::int64_t t;
    std::string date;
  };
  const Case cases[] = {
      {0, "Thu, 01 Jan 1970 00:00:00 +0000"},          {951782400, "Tue, 29 Feb 2000 00:00:00 +0000"},
      {4107542399, "Sun, 28 Feb 2100 23:59:59 +0000"}, {1767225600 + 86399, "Thu, 01 Jan 2026 23:59:59 +0000"},
      {-5, "Thu, 01 Jan 1970 00:00:00 +0000"},
  };
  for (const auto& c : cases) {
    DsnMessage m = compose_one([&](World& w) { w.input.now = c.t; });
    EXPECT_EQ(field(check_well_formed(m.bytes, 3).header_lines, "Date"), c.date);
  }
}

TEST(Dsn, WithoutSenderOrEnvelopeStillAMessage) {
  DsnMessage null_sender = compose_one([](World& w) { w.envelope.sender = Address{}; });
  EXPECT_EQ(field(check_well_formed(null_sender.bytes, 3).header_lines, "To"), "undisclosed-recipients:;");
  DsnMessage no_envelope = compose_one([](World& w) {
    w.input.envelope = nullptr;
    w.input.message_id.clear();
    w.input.postmaster.clear();
  });
  Parsed p = check_well_formed(no_envelope.bytes, 3);
  EXPECT_EQ(field(p.header_lines, "To"), "undisclosed-recipients:;");
  EXPECT_EQ(field(p.header_lines, "From"), "Mail Delivery System <postmaster@mx.example.org>");
  EXPECT_EQ(field(p.header_lines, "Message-ID"), "<1767225600.4F2A9C01@mx.example.org>");
  EXPECT_TRUE(field_lines(part_body(p.parts.at(1)), "Arrival-Date").empty());
}

TEST(Dsn, ADoubleBounceIsAddressedToWhomTheCallerSays) {
  DsnMessage m = compose_one([](World& w) {
    w.envelope.sender = Address{};  // the original is itself a bounce
    w.input.to = Address{"postmaster", "example.org"};
  });
  EXPECT_EQ(field(check_well_formed(m.bytes, 3).header_lines, "To"), "<postmaster@example.org>");
  DsnMessage utf8 = compose_one([](World& w) { w.input.to = Address{"p\xc3\xb6stmaster", "example.org"}; });
  EXPECT_TRUE(utf8.smtputf8) << "a UTF-8 To: needs SMTPUTF8";
}

// The header fields come from our own config and queue, but a bug or a hostile sender's
// address must still not add a field or break the multipart structure.
TEST(Dsn, EveryFieldStaysOnItsLines) {
  DsnMessage m = compose_one([](World& w) {
    w.input.queue_id = "4F2A\r\n--=_petrel_4F2A_1767225600\r\nX-Evil: 1";
    w.input.reporting_mta = "mx.example.org\r\nX-Evil: 2";
    w.input.postmaster = "MAILER-DAEMON@mx.example.org>\r\nX-Evil: 3";
    w.input.message_id = "<id@x>\r\nX-Evil: 4";
    w.envelope.sender = Address{"al\r\nX-Evil: 5", "example.com"};
    w.input.recipients[0].recipient = Address{"no\r\nAction: delivered", "example.org"};
  });
  Parsed p = check_well_formed(m.bytes, 3);
  for (const auto& l : split_lines(m.bytes)) EXPECT_EQ(l.rfind("X-Evil", 0), std::string::npos) << l;
  EXPECT_EQ(field_lines(part_body(p.parts.at(1)), "Action"), std::vector<std::string>{"Action: failed"});
  EXPECT_EQ(p.boundary, "=_petrel_4F2A--_petrel_4F_1767225600");
  EXPECT_EQ(field(p.header_lines, "Message-ID"), "<id@xX-Evil4>");
}

TEST(Dsn, NoOriginalMeansTwoParts) {
  DsnMessage m = compose_one([](World& w) { w.original.clear(); });
  check_well_formed(m.bytes, 2);
}

TEST(Dsn, SameInputSameBytes) {
  auto setup = [](World& w) { w.envelope.envid = "x"; };
  EXPECT_EQ(compose_one(setup).bytes, compose_one(setup).bytes);
}

TEST(Dsn, BoundaryChangesOnlyWhenTheContentHasIt) {
  DsnMessage plain = compose_one([](World&) {});
  EXPECT_EQ(check_well_formed(plain.bytes, 3).boundary, "=_petrel_4F2A9C01_1767225600");
  // A prefix of the boundary is harmless; the boundary itself, anywhere in a line, is not.
  DsnMessage prefix = compose_one([](World& w) { w.original += "--=_petrel_4F2A9C01_176722560\r\n"; });
  EXPECT_EQ(check_well_formed(prefix.bytes, 3).boundary, "=_petrel_4F2A9C01_1767225600");
  DsnMessage inside = compose_one([](World& w) { w.original += "x --=_petrel_4F2A9C01_1767225600 y\r\n"; });
  std::string b = check_well_formed(inside.bytes, 3).boundary;
  EXPECT_EQ(b.rfind("=_petrel_4F2A9C01_1767225600_", 0), 0u) << b;
  EXPECT_LE(b.size(), 70u);
}

TEST(Dsn, DiagnosticIsCappedAndFolded) {
  std::string words;
  while (words.size() < 5000) words += "word" + std::to_string(words.size()) + " ";
  DsnMessage m = compose_one([&](World& w) { w.input.recipients[0].diagnostic = "550 5.0.0 " + words; });
  Parsed p = check_well_formed(m.bytes, 3);
  std::vector<std::string> lines = split_lines(part_body(p.parts.at(1)));
  std::string unfolded;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("Diagnostic-Code:", 0) != 0) continue;
    unfolded = lines[i];
    EXPECT_LE(lines[i].size(), 78u);
    for (std::size_t j = i + 1; j < lines.size() && !lines[j].empty() && lines[j][0] == ' '; ++j) {
      EXPECT_LE(lines[j].size(), 78u);
      unfolded += lines[j];
    }
  }
  EXPECT_GT(unfolded.size(), 900u);
  EXPECT_LE(unfolded.size(), 998u);
  EXPECT_EQ(unfolded.rfind("Diagnostic-Code: smtp; 550 5.0.0 word0 word6 ", 0), 0u) << unfolded.substr(0, 80);
}

TEST(Dsn, HeaderSectionIsCappedAtALineEnd) {
  DsnMessage m = compose_one([](World& w) {
    w.envelope.ret = DsnRet::kHeaders;
    std::string headers;
    for (int i = 0; headers.size() < 100 * 1024; ++i) {
      headers += "X-Filler-" + std::to_string(i) + ": " + std::string(60, 'f') + "\r\n";
    }
    w.original = headers + "\r\nbody\r\n";
  });
  Parsed p = check_well_formed(m.bytes, 3);
  std::string returned = part_body(p.parts.at(2));
  EXPECT_LE(returned.size(), 64u * 1024);
  EXPECT_GT(returned.size(), 63u * 1024);
  EXPECT_EQ(returned.rfind("X-Filler-", 0), 0u);
  EXPECT_EQ(returned.find("body"), std::string::npos);
  // Every returned line is a whole field line: none was cut in the middle.
  for (const auto& l : split_lines(returned)) EXPECT_EQ(l.size(), l.find(": ") + 2 + 60) << l;
}

TEST(Dsn, IncompleteOriginalReturnsHeadersOnly) {
  DsnMessage m = compose_one([](World& w) { w.input.original_complete = false; });
  Parsed p = check_well_formed(m.bytes, 3);
  EXPECT_EQ(field(part_header(p.parts.at(2)), "Content-Type"), "text/rfc822-headers");
}

TEST(Dsn, SuccessReturnsHeadersOnly) {
  DsnMessage m = compose_one([](World& w) {
    w.envelope.ret = DsnRet::kFull;
    w.input.recipients[0].action = DsnAction::kDelivered;
  });
  Parsed p = check_well_formed(m.bytes, 3);
  EXPECT_EQ(field(part_header(p.parts.at(2)), "Content-Type"), "text/rfc822-headers");
  EXPECT_EQ(part_body(p.parts.at(2)).find("Shall we meet"), std::string::npos);
}

TEST(Dsn, UsesUtf8OnlyWhereAnAddressNeedsIt) {
  // A UTF-8 sender needs SMTPUTF8 for the To: field, but the status part stays ASCII.
  DsnMessage m = compose_one([](World& w) { w.envelope.sender = Address{"al\xC3\xAF" "ce", "example.com"}; });
  EXPECT_TRUE(m.smtputf8);
  Parsed p = check_well_formed(m.bytes, 3);
  EXPECT_EQ(field(p.header_lines, "To"), "<al\xC3\xAF" "ce@example.com>");
  EXPECT_EQ(field(part_header(p.parts.at(1)), "Content-Type"), "message/delivery-status");
  // A UTF-8 ORCPT in an otherwise ASCII report is written as utf-8-addr-xtext (RFC 6533 3)
  // when the part is plain message/delivery-status.
  DsnMessage ascii = compose_one([](World& w) {
    w.input.recipients[0].orcpt_type = "utf-8";
    w.input.recipients[0].orcpt = "nobody+x=y@example.org";
  });
  EXPECT_FALSE(ascii.smtputf8);
  EXPECT_EQ(field_lines(status_part(ascii), "Original-Recipient"),
            std::vector<std::string>{"Original-Recipient: utf-8; nobody\\x{2B}x\\x{3D}y@example.org"});
  // A UTF-8 diagnostic in an ASCII DSN loses its non-ASCII characters, never the line structure.
  DsnMessage diag =
      compose_one([](World& w) { w.input.recipients[0].diagnostic = "550 5.1.1 Empf\xC3\xA4nger unbekannt"; });
  EXPECT_FALSE(diag.eight_bit);
  EXPECT_EQ(field_lines(status_part(diag), "Diagnostic-Code"),
            std::vector<std::string>{"Diagnostic-Code: smtp; 550 5.1.1 Empf?nger unbekannt"});
}

// Whatever the inputs, the output keeps its structure (a fixed seed keeps the test hermetic).
TEST(Dsn, RandomInputsGiveWellFormedMessages) {
  std::mt19937 rng(20260101);
  const std::string alphabet = std::string("ab:; -=+<>@.\r\n\t\x01\x7f\x80\xc3\xa9\xff") + std::string(1, '\0');
  auto text = [&](std::size_t max) {
    std::string out;
    std::size_t n = rng() % (max + 1);
    for (std::size_t i = 0; i < n; ++i) {
      out += (rng() % 4 == 0) ? std::string("--=_petrel_") : std::string(1, alphabet[rng() % alphabet.size()]);
    }
    return out;
  };
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE(round);
    World w;
    base_world(w);
    w.envelope.sender = Address{text(20), text(10)};
    w.envelope.envid = text(120);
    w.envelope.ret = static_cast<DsnRet>(rng() % 3);
    w.input.queue_id = text(30);
    w.input.reporting_mta = text(30);
    w.input.now = static_cast<std::int64_t>(rng());
    w.input.recipients.clear();
    std::size_t count = 1 + rng() % 3;
    for (std::size_t i = 0; i < count; ++i) {
      DsnRecipient r;
      r.recipient = Address{text(30), text(20)};
      r.orcpt_type = text(8);
      r.orcpt = text(60);
      r.action = static_cast<DsnAction>(rng() % 5);
      r.status = text(8);
      r.remote_mta = text(40);
      r.diagnostic = text(3000);
      r.will_retry_until = rng() % 2 ? kNow : 0;
      w.input.recipients.push_back(r);
    }
    w.original = text(6000);
    w.input.original = w.original;
    w.input.max_original_bytes = rng() % 8000;
    w.input.original_complete = rng() % 2;
    DsnMessage m = compose_dsn(w.input);
    Parsed p = check_well_formed(m.bytes, w.original.empty() ? 2 : 3);
    if (p.parts.size() >= 2) {
      EXPECT_EQ(field_lines(part_body(p.parts[1]), "Action").size(), count);
    }
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace petrel::mail
