#include "mail/command.h"

#include <gtest/gtest.h>

#include <string>

namespace petrel::mail {
namespace {

TEST(SplitCommand, Table) {
  struct Case {
    std::string line;
    Verb verb;
    std::string verb_text;
    std::string args;
  };
  const Case cases[] = {
      {"MAIL FROM:<a@b>", Verb::kMail, "MAIL", "FROM:<a@b>"},
      {"mail FROM:<a@b> SIZE=1", Verb::kMail, "mail", "FROM:<a@b> SIZE=1"},
      {"Rcpt TO:<a@b>  \t ", Verb::kRcpt, "Rcpt", "TO:<a@b>"},
      {"EHLO client.example", Verb::kEhlo, "EHLO", "client.example"},
      {"HELO x", Verb::kHelo, "HELO", "x"},
      {"DATA", Verb::kData, "DATA", ""},
      {"DATA ", Verb::kData, "DATA", ""},
      {"BDAT 100 LAST", Verb::kBdat, "BDAT", "100 LAST"},
      {"RSET", Verb::kRset, "RSET", ""},
      {"NOOP anything", Verb::kNoop, "NOOP", "anything"},
      {"quit", Verb::kQuit, "quit", ""},
      {"VRFY u", Verb::kVrfy, "VRFY", "u"},
      {"EXPN list", Verb::kExpn, "EXPN", "list"},
      {"HELP", Verb::kHelp, "HELP", ""},
      {"StartTLS", Verb::kStartTls, "StartTLS", ""},
      {"AUTH PLAIN AGFiAGM=", Verb::kAuth, "AUTH", "PLAIN AGFiAGM="},
      {"MAIL  FROM:<a@b>", Verb::kMail, "MAIL", " FROM:<a@b>"},  // exactly one space is eaten
      {"MAILFROM:<a@b>", Verb::kUnknown, "MAILFROM:<a@b>", ""},
      {"GET / HTTP/1.0", Verb::kUnknown, "GET", "/ HTTP/1.0"},
      {"", Verb::kUnknown, "", ""},
      {" MAIL FROM:<a@b>", Verb::kUnknown, "", "MAIL FROM:<a@b>"},
      {"MAIL\tFROM:<a@b>", Verb::kUnknown, "MAIL\tFROM:<a@b>", ""},
      {"DAT", Verb::kUnknown, "DAT", ""},
      {"DATAX", Verb::kUnknown, "DATAX", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    CommandLine cmd = split_command(c.line);
    EXPECT_EQ(cmd.verb, c.verb);
    EXPECT_EQ(cmd.verb_text, c.verb_text);
    EXPECT_EQ(cmd.args, c.args);
  }
}

struct MailCase {
  std::string args;
  int code;  // 0 = accepted
  std::string enhanced;
};

TEST(ParseMailFrom, AcceptedForms) {
  Extensions ext;
  ext.max_size = 1000;
  MailFrom m;

  ASSERT_FALSE(parse_mail_from("FROM:<a@b.example>", ext, m));
  EXPECT_EQ(m.sender, (Address{"a", "b.example"}));
  EXPECT_EQ(m.size, 0u);
  EXPECT_EQ(m.body, BodyType::kUnspecified);

  ASSERT_FALSE(parse_mail_from("from:<>", ext, m));
  EXPECT_TRUE(m.sender.null());

  ASSERT_FALSE(parse_mail_from("FROM: <a@b.example>", ext, m));  // Postfix tolerates it
  EXPECT_EQ(m.sender.str(), "a@b.example");

  ASSERT_FALSE(parse_mail_from("FROM:<a@b.example> SIZE=1000 BODY=8bitmime RET=HDRS ENVID=QQ+2B1", ext, m));
  EXPECT_EQ(m.size, 1000u);
  EXPECT_EQ(m.body, BodyType::k8BitMime);
  EXPECT_EQ(m.ret, DsnRet::kHeaders);
  EXPECT_EQ(m.envid, "QQ+1");
  EXPECT_FALSE(m.smtputf8);

  ASSERT_FALSE(parse_mail_from("FROM:<jos\xC3\xA9@\xC3\xA9xample.com> SMTPUTF8 body=7BIT ret=full", ext, m));
  EXPECT_TRUE(m.smtputf8);
  EXPECT_EQ(m.sender.local, "jos\xC3\xA9");
  EXPECT_EQ(m.body, BodyType::k7Bit);
  EXPECT_EQ(m.ret, DsnRet::kFull);

  ASSERT_FALSE(parse_mail_from("FROM:<@relay.example:a@b.example>", ext, m));
  EXPECT_EQ(m.sender.str(), "a@b.example");

  Extensions unlimited;
  ASSERT_FALSE(parse_mail_from("FROM:<a@b> SIZE=18446744073709551615", unlimited, m));
  EXPECT_EQ(m.size, 18446744073709551615u);
}

TEST(ParseMailFrom, Rejections) {
  Extensions ext;
  ext.max_size = 1000;
  const std::string long_local(65, 'a');
  const MailCase cases[] = {
      {"", 501, "5.5.2"},
      {"TO:<a@b>", 501, "5.5.2"},
      {"FROM <a@b>", 501, "5.5.2"},
      {"FROM:a@b", 501, "5.1.7"},
      {"FROM:  <a@b>", 501, "5.1.7"},  // one tolerated space, not two
      {"FROM:<a@b", 501, "5.1.7"},
      {"FROM:<u@ext@local>", 501, "5.1.7"},
      {"FROM:<Postmaster>", 501, "5.1.7"},
      {"FROM:<a@b>x", 501, "5.1.7"},
      {"FROM:<" + long_local + "@b>", 501, "5.1.7"},
      {"FROM:<jos\xC3\xA9@b>", 553, "5.6.7"},                 // RFC 6531 3.5
      {"FROM:<\xC0\x80@b> SMTPUTF8", 501, "5.6.7"},
      {"FROM:<\xC0\x80@b>", 553, "5.6.7"},
      {"FROM:<a@b> SIZE=1001", 552, "5.3.4"},
      {"FROM:<a@b> SIZE=", 501, "5.5.4"},
      {"FROM:<a@b> SIZE", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=-1", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=1x", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=123456789012345678901", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=10 SIZE=10", 501, "5.5.4"},
      {"FROM:<a@b> BODY=BINARYMIME", 501, "5.5.4"},
      {"FROM:<a@b> BODY=8BITMIME body=7BIT", 501, "5.5.4"},
      {"FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4"},
      {"FROM:<a@b> SMTPUTF8 SMTPUTF8", 501, "5.5.4"},
      {"FROM:<a@b> RET=ALL", 501, "5.5.4"},
      {"FROM:<a@b> ENVID=a+2b", 501, "5.5.4"},
      {"FROM:<a@b> ENVID=x+0D+0Ay", 501, "5.5.4"},
      {"FROM:<a@b> ENVID=" + std::string(101, 'x'), 501, "5.5.4"},
      {"FROM:<a@b> ENVID=a ENVID=b", 501, "5.5.4"},
      {"FROM:<a@b> AUTH=<>", 555, "5.5.4"},
      {"FROM:<a@b> XFOO", 555, "5.5.4"},
      {"FROM:<a@b> NOTIFY=NEVER", 555, "5.5.4"},
      {"FROM:<a@b>  SIZE=1", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=1 ", 501, "5.5.4"},
      {"FROM:<a@b> -X=1", 501, "5.5.4"},
      {"FROM:<a@b> X_Y=1", 501, "5.5.4"},
      {"FROM:<a@b> X=a=b", 501, "5.5.4"},  // esmtp-value excludes "="
      {"FROM:<a@b> X=\x01", 501, "5.5.4"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    MailFrom m;
    m.size = 7;
    auto r = parse_mail_from(c.args, ext, m);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->code, c.code);
    EXPECT_EQ(r->enhanced, c.enhanced);
    EXPECT_EQ(m.size, 7u);  // untouched on failure
  }
}

TEST(ParseMailFrom, ParametersNeedTheirExtension) {
  Extensions none{.size = false, .eight_bit_mime = false, .smtputf8 = false, .dsn = false, .max_size = 0};
  const std::string params[] = {"SIZE=1", "BODY=8BITMIME", "SMTPUTF8", "RET=FULL", "ENVID=x"};
  for (const auto& p : params) {
    SCOPED_TRACE(p);
    MailFrom m;
    auto r = parse_mail_from("FROM:<a@b> " + p, none, m);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->code, 555);
    EXPECT_FALSE(parse_mail_from("FROM:<a@b> " + p, Extensions{}, m).has_value());
  }
  MailFrom m;
  auto r = parse_mail_from("FROM:<jos\xC3\xA9@b> SMTPUTF8", none, m);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, 553);  // SMTPUTF8 is not in force when not advertised
}

TEST(ParseRcptTo, AcceptedForms) {
  Extensions ext;
  RcptTo r;

  ASSERT_FALSE(parse_rcpt_to("TO:<u@x.org>", ext, false, r));
  EXPECT_EQ(r.recipient.address, (Address{"u", "x.org"}));
  EXPECT_FALSE(r.postmaster);
  EXPECT_EQ(r.recipient.notify, kNotifyUnspecified);

  ASSERT_FALSE(parse_rcpt_to("to: <Postmaster>", ext, false, r));
  EXPECT_TRUE(r.postmaster);
  EXPECT_EQ(r.recipient.address.local, "Postmaster");

  ASSERT_FALSE(parse_rcpt_to("TO:<u%ext@local>", ext, false, r));
  EXPECT_EQ(r.recipient.address.local, "u%ext");
  EXPECT_EQ(r.recipient.address.domain, "local");

  ASSERT_FALSE(parse_rcpt_to("TO:<@local:u@ext>", ext, false, r));
  EXPECT_EQ(r.recipient.address, (Address{"u", "ext"}));

  ASSERT_FALSE(parse_rcpt_to("TO:<u@x.org> NOTIFY=success,Delay ORCPT=rfc822;u+2Bx@x.org", ext, false, r));
  EXPECT_EQ(r.recipient.notify, kNotifySuccess | kNotifyDelay);
  EXPECT_EQ(r.recipient.orcpt_type, "rfc822");
  EXPECT_EQ(r.recipient.orcpt, "u+x@x.org");

  ASSERT_FALSE(parse_rcpt_to("TO:<u@x.org> NOTIFY=NEVER", ext, false, r));
  EXPECT_EQ(r.recipient.notify, kNotifyNever);

  ASSERT_FALSE(parse_rcpt_to("TO:<u@x.org> NOTIFY=FAILURE", ext, false, r));
  EXPECT_EQ(r.recipient.notify, kNotifyFailure);

  ASSERT_FALSE(parse_rcpt_to("TO:<jos\xC3\xA9@x.org> ORCPT=UTF-8;jos\xC3\xA9@x.org", ext, true, r));
  EXPECT_EQ(r.recipient.orcpt_type, "utf-8");
  EXPECT_EQ(r.recipient.orcpt, "jos\xC3\xA9@x.org");
}

TEST(ParseRcptTo, Rejections) {
  Extensions ext;
  struct Case {
    std::string args;
    bool utf8;
    int code;
    std::string enhanced;
  };
  const Case cases[] = {
      {"", false, 501, "5.5.2"},
      {"FROM:<u@x.org>", false, 501, "5.5.2"},
      {"TO:<>", false, 501, "5.1.3"},
      {"TO:u@x.org", false, 501, "5.1.3"},
      {"TO:<u@ext@local>", false, 501, "5.1.3"},
      {"TO:<u@x.org", false, 501, "5.1.3"},
      {"TO:<Postmaster> x", false, 555, "5.5.4"},
      {"TO:<" + std::string(65, 'a') + "@x.org>", false, 501, "5.1.3"},
      {"TO:<jos\xC3\xA9@x.org>", false, 553, "5.6.7"},
      {"TO:<\xED\xA0\x80@x.org>", true, 501, "5.6.7"},
      {"TO:<u@x.org> NOTIFY=NEVER,SUCCESS", false, 501, "5.5.4"},
      {"TO:<u@x.org> NOTIFY=SUCCESS,NEVER", false, 501, "5.5.4"},
      {"TO:<u@x.org> NOTIFY=SUCCESS,", false, 501, "5.5.4"},
      {"TO:<u@x.org> NOTIFY=ALWAYS", false, 501, "5.5.4"},
      {"TO:<u@x.org> NOTIFY", false, 501, "5.5.4"},
      {"TO:<u@x.org> NOTIFY=DELAY NOTIFY=DELAY", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc822", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=;u@x.org", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc822;", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc(822);u@x.org", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc822;u+0D+0AX-Injected:+201", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc822;u+zz", false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=rfc822;" + std::string(500, 'a'), false, 501, "5.5.4"},
      {"TO:<u@x.org> ORCPT=utf-8;jos\xC3\xA9@x.org", false, 553, "5.6.7"},
      {"TO:<u@x.org> ORCPT=utf-8;jos\xC3@x.org", true, 501, "5.6.7"},
      {"TO:<u@x.org> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", false, 501, "5.5.4"},
      {"TO:<u@x.org> SIZE=10", false, 555, "5.5.4"},
      {"TO:<u@x.org> FOO=bar", false, 555, "5.5.4"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    RcptTo r;
    r.recipient.orcpt = "untouched";
    auto rep = parse_rcpt_to(c.args, ext, c.utf8, r);
    ASSERT_TRUE(rep.has_value());
    EXPECT_EQ(rep->code, c.code);
    EXPECT_EQ(rep->enhanced, c.enhanced);
    EXPECT_EQ(r.recipient.orcpt, "untouched");
  }

  Extensions no_dsn;
  no_dsn.dsn = false;
  RcptTo r;
  auto rep = parse_rcpt_to("TO:<u@x.org> NOTIFY=NEVER", no_dsn, false, r);
  ASSERT_TRUE(rep.has_value());
  EXPECT_EQ(rep->code, 555);
}

TEST(ParseBdat, Table) {
  struct Case {
    std::string args;
    bool ok;
    std::uint64_t size;
    bool last;
  };
  const Case cases[] = {
      {"123", true, 123, false},
      {"0", true, 0, false},
      {"123 LAST", true, 123, true},
      {"123 last", true, 123, true},
      {"18446744073709551615", true, 18446744073709551615u, false},
      {"18446744073709551616", false, 0, false},
      {"000000000000000000001", false, 0, false},  // 21 digits
      {"", false, 0, false},
      {" 123", false, 0, false},
      {"123  LAST", false, 0, false},
      {"123 LAST ", false, 0, false},
      {"123 FIRST", false, 0, false},
      {"+123", false, 0, false},
      {"-1", false, 0, false},
      {"12a", false, 0, false},
      {"LAST", false, 0, false},
      {"0x10", false, 0, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    std::uint64_t size = 99;
    bool last = false;
    auto r = parse_bdat(c.args, size, last);
    EXPECT_EQ(!r.has_value(), c.ok);
    if (c.ok) {
      EXPECT_EQ(size, c.size);
      EXPECT_EQ(last, c.last);
    } else {
      EXPECT_EQ(r->code, 501);
      EXPECT_EQ(r->enhanced, "5.5.4");
      EXPECT_EQ(size, 99u);
    }
  }
}

}  // namespace
}  // namespace petrel::mail
