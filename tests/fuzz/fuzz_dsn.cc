// fuzz_dsn: compose_dsn() over hostile inputs. The DSN composer parses the original message
// (its header section, line ends, 8-bit bytes) and quotes peer text (reply text, addresses,
// ENVID, ORCPT). Invariants, whatever the input: the result has CRLF line ends only, no NUL,
// no line over 998 octets, a header section of fields, and its MIME boundary appears only
// as the part delimiters (so nothing quoted can open or close a part).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mail/dsn.h"

namespace {

// Splits the input at 0xFF bytes into up to `n` fields (missing ones are empty).
std::string_view field(std::string_view in, int k) {
  for (int i = 0; i < k; ++i) {
    auto p = in.find('\xff');
    if (p == std::string_view::npos) return {};
    in.remove_prefix(p + 1);
  }
  return in.substr(0, in.find('\xff'));
}

[[noreturn]] void fail(const char* why, const std::string& msg) {
  std::fprintf(stderr, "fuzz_dsn: %s\n%s\n", why, msg.c_str());
  std::abort();
}

void check(const std::string& msg) {
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < msg.size(); ++i) {
    char c = msg[i];
    if (c == '\0') fail("NUL", msg);
    if (c == '\r' && (i + 1 >= msg.size() || msg[i + 1] != '\n')) fail("bare CR", msg);
    if (c == '\n') {
      if (i == 0 || msg[i - 1] != '\r') fail("bare LF", msg);
      if (i - 1 - line_start > 998) fail("line over 998", msg);
      line_start = i + 1;
    }
  }
  if (msg.size() < 2 || msg.compare(msg.size() - 2, 2, "\r\n") != 0) fail("no final CRLF", msg);
  // The boundary, from the top-level Content-Type, delimits exactly the parts.
  // (The header section may quote anything, boundary-like text included: MIME looks for
  // delimiters only in the body.)
  auto body = msg.find("\r\n\r\n");
  auto ct = msg.rfind("\r\nContent-Type: multipart/report;", body);
  if (body == std::string::npos || ct == std::string::npos) fail("no header section or Content-Type", msg);
  auto b = msg.find("boundary=\"", ct);
  if (b == std::string::npos) fail("no boundary", msg);
  auto e = msg.find('"', b + 10);
  std::string boundary = "--" + msg.substr(b + 10, e - b - 10);
  std::size_t count = 0;
  for (auto p = msg.find(boundary, body); p != std::string::npos; p = msg.find(boundary, p + 1)) {
    if (p < 2 || msg.compare(p - 2, 2, "\r\n") != 0) fail("boundary inside a line", msg);
    ++count;
  }
  if (count < 3 || count > 4) fail("wrong number of delimiters", msg);  // 2 or 3 parts + closing
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace petrel::mail;
  Envelope env;
  env.sender = {std::string(field(in, 0)), "example.org"};
  env.envid = std::string(field(in, 1));
  env.received_at = 1767225600;
  env.ret = size % 3 == 0 ? DsnRet::kFull : size % 3 == 1 ? DsnRet::kHeaders : DsnRet::kUnspecified;
  DsnInput input;
  input.reporting_mta = "mx.example.org";
  input.queue_id = "01KDVDNA000YC50031PG";
  input.postmaster = "MAILER-DAEMON@mx.example.org";
  input.message_id = "<x@mx.example.org>";
  input.now = 1767225600;
  input.envelope = &env;
  DsnRecipient r;
  r.recipient = {std::string(field(in, 2)), std::string(field(in, 3))};
  r.orcpt_type = size % 2 ? "rfc822" : "utf-8";
  r.orcpt = std::string(field(in, 4));
  r.action = static_cast<DsnAction>(size % 5);
  r.status = std::string(field(in, 5));
  r.remote_mta = std::string(field(in, 6));
  r.diagnostic = std::string(field(in, 7));
  input.recipients.push_back(r);
  if (size % 7 == 0) input.recipients.push_back(r);
  input.original = field(in, 8);
  input.original_complete = size % 11 != 0;
  input.max_original_bytes = 4096;
  check(compose_dsn(input).bytes);
  return 0;
}
