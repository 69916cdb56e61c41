// fuzz_command: one SMTP command line through split_command and the MAIL/RCPT/BDAT argument
// parsers, under a few extension sets, plus Reply rendering of the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mail/command.h"
#include "mail/reply.h"
#include "fuzz_check.h"

namespace {

using namespace petrel::mail;

bool is_error_reply(const Reply& r) { return r.code >= 500 && r.code < 600 && r.enhanced.size() == 5; }

// A rendered reply is CRLF-terminated lines of at most 512 octets, with no other CR or LF.
void check_render(const Reply& r) {
  std::string wire = r.render();
  std::size_t start = 0;
  std::size_t lines = 0;
  while (start < wire.size()) {
    std::size_t end = wire.find("\r\n", start);
    CHECK(end != std::string::npos);
    CHECK(end + 2 - start <= 512);
    std::string_view line(wire.data() + start, end - start);
    CHECK(line.find('\r') == std::string_view::npos && line.find('\n') == std::string_view::npos);
    CHECK(line.size() >= 4);
    CHECK(line[3] == ((lines == r.more.size()) ? ' ' : '-'));
    start = end + 2;
    ++lines;
  }
  CHECK(lines == 1 + r.more.size());
}

// A sender that was accepted comes back the same from its printed form.
void check_sender(const MailFrom& m) {
  if (!m.smtputf8) CHECK(!m.sender.has_utf8());
  PathOptions opt{.allow_null = true, .allow_postmaster = false, .allow_utf8 = m.smtputf8};
  auto again = parse_path("<" + m.sender.str() + ">", opt);
  CHECK(again && again->address == m.sender);
}

void check_recipient(const RcptTo& r, bool utf8) {
  const Address& a = r.recipient.address;
  CHECK(!a.null());
  CHECK(r.postmaster == a.domain.empty());
  if (!utf8) CHECK(!a.has_utf8());
  PathOptions opt{.allow_null = false, .allow_postmaster = true, .allow_utf8 = utf8};
  auto again = parse_path("<" + a.str() + ">", opt);
  CHECK(again && again->address == a);
  std::uint8_t n = r.recipient.notify;
  CHECK(n == kNotifyUnspecified || n == kNotifyNever ||
        ((n & ~(kNotifySuccess | kNotifyFailure | kNotifyDelay)) == 0));
  for (char c : r.recipient.orcpt) CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);

  CommandLine cmd = split_command(line);
  CHECK(cmd.verb_text.size() + cmd.args.size() <= line.size());
  CHECK(cmd.verb_text.find(' ') == std::string_view::npos);
  CHECK(cmd.args.empty() || (cmd.args.back() != ' ' && cmd.args.back() != '\t'));
  if (cmd.verb != Verb::kUnknown) CHECK(!cmd.verb_text.empty());

  // Both the split args and the raw line, so the parsers see inputs not shaped by split_command.
  const std::string_view inputs[] = {cmd.args, line};
  Extensions all;
  Extensions limited{.size = true, .eight_bit_mime = false, .smtputf8 = false, .dsn = false, .max_size = 1000};
  for (std::string_view args : inputs) {
    for (const Extensions* ext : {&all, &limited}) {
      MailFrom m;
      if (auto r = parse_mail_from(args, *ext, m)) {
        CHECK(is_error_reply(*r));
        check_render(*r);
      } else {
        check_sender(m);
        if (ext->max_size > 0) CHECK(m.size <= ext->max_size);
        if (!ext->smtputf8) CHECK(!m.smtputf8);
        CHECK(m.envid.size() <= 100);
      }
      for (bool utf8 : {false, true}) {
        RcptTo rc;
        if (auto r = parse_rcpt_to(args, *ext, utf8, rc)) {
          CHECK(is_error_reply(*r));
        } else {
          check_recipient(rc, utf8);
          if (!ext->dsn) CHECK(rc.recipient.notify == kNotifyUnspecified && rc.recipient.orcpt.empty());
        }
      }
    }
    std::uint64_t chunk = 0;
    bool last = false;
    if (auto r = parse_bdat(args, chunk, last)) {
      CHECK(r->code == 501);
    } else {
      CHECK(!args.empty() && args.size() <= 25);
    }
  }

  // Peer bytes in a reply never add a line.
  check_render(Reply{250, "2.0.0", std::string(line), {std::string(cmd.args)}});
  check_render(reply(550, std::string(cmd.verb_text), std::string(line)));
  return 0;
}
