// cmd_sendmail.cc: the sendmail(8) command line over the local submission socket.
//
// Options (as Postfix's sendmail takes them): -t (recipients from To:, Cc:, Bcc:, added to
// those on the command line; Bcc: is removed), -i / -oi (a line with a single "." is data,
// not the end), -f ADDR / -r ADDR (envelope sender), -F NAME (full name for a From: we add:
// a quoted-string, RFC 2047 encoded-words when it has UTF-8, at most 256 octets),
// -C FILE (Petrel's config file; also PETREL_CONFIG), -bm (the default). Other -o options
// and -v, -N, -R, -V, -B, -X, -O, -q... are accepted and ignored, as Postfix does. -bs (SMTP on
// standard input) and -bp (mailq) are not implemented: EX_USAGE with a message.
// A control character (CR, LF, NUL, TAB...) in -f, -F or a recipient argument is EX_USAGE, in
// a recipient that -t takes from the header EX_DATAERR, before anything is sent.
// The message: standard input, LF or CRLF line ends (stored as CRLF; a last line without a
// line end gets one); otherwise stored byte for byte. When it lacks them we add From: (the
// sender, with -F's name), Date: and Message-ID:, above its own header; a message without a
// header gets them and one empty line above its first line.
// Memory: the header section is held (at most 256 KiB), the body is streamed in 64 KiB chunks.
#include "app/cmd_sendmail.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "app/submit_socket.h"
#include "app/unix_listener.h"
#include "base/strings.h"
#include "config/config.h"
#include "mail/headers.h"
#include "smtp/server/submission_headers.h"

namespace petrel::app {
namespace {

constexpr int kExUsage = 64, kExDataErr = 65, kExNoUser = 67, kExTempFail = 75, kExConfig = 78;
constexpr std::size_t kChunk = 64 * 1024;

struct Options {
  bool extract = false;       // -t
  bool dot_is_data = false;   // -i, -oi
  std::optional<std::string> sender;  // -f, -r
  std::string full_name;      // -F
  std::string config_path;    // -C
  std::vector<std::string> recipients;
};

int fail(int code, const std::string& message) {
  std::cerr << "sendmail: " << message << "\n";
  return code;
}

// Options that take an argument, attached ("-fuser") or as the next word.
bool takes_argument(char c) { return c == 'f' || c == 'r' || c == 'F' || c == 'C' || c == 'B' || c == 'X' || c == 'N' || c == 'R' || c == 'V' || c == 'O' || c == 'L' || c == 'h'; }

std::optional<int> parse(int argc, char** argv, Options& o) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    char c = a[1];
    if (c == 'o') {
      // -oi means -i; every other -oX is ignored (Postfix does the same).
      if (a == "-oi") o.dot_is_data = true;
      continue;
    }
    if (c == 'b') {
      if (a == "-bm") continue;
      return fail(kExUsage, a + " is not supported (only -bm, delivery mode)");
    }
    if (c == 't' && a == "-t") { o.extract = true; continue; }
    if (c == 'i' && a == "-i") { o.dot_is_data = true; continue; }
    if (takes_argument(c)) {
      std::string value = a.size() > 2 ? a.substr(2) : (i + 1 < argc ? argv[++i] : "");
      if (a.size() == 2 && value.empty() && i >= argc) return fail(kExUsage, a + " needs an argument");
      if (c == 'f' || c == 'r') o.sender = value;
      else if (c == 'F') o.full_name = value;
      else if (c == 'C') o.config_path = value;
      continue;
    }
    // -v, -q and the rest: accepted and ignored.
  }
  for (; i < argc; ++i) {
    // "a@x, b@y" in one argument is two recipients.
    std::string_view rest = argv[i];
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto one = base::trim(rest.substr(0, comma));
      if (!one.empty()) o.recipients.emplace_back(one);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return std::nullopt;
}

// Standard input as lines without their line end; nullopt at the end (or at a lone "." unless
// -i). A line longer than kChunk comes in pieces, `partial` telling which are unfinished.
class Input {
 public:
  explicit Input(bool dot_is_data) : dot_is_data_(dot_is_data) {}
  // Returns false at the end; `out` gets the line.
  bool line(std::string& out, bool& partial) {
    out.clear();
    if (ended_) return false;
    int c;
    while ((c = std::getc(stdin)) != EOF) {
      if (c == '\n') {
        if (!out.empty() && out.back() == '\r') out.pop_back();
        if (!dot_is_data_ && !continued_ && out == ".") {
          ended_ = true;
          return false;
        }
        partial = false;
        continued_ = false;
        return true;
      }
      out.push_back(static_cast<char>(c));
      if (out.size() >= kChunk) {
        partial = true;
        continued_ = true;
        return true;
      }
    }
    ended_ = true;
    partial = false;
    return !out.empty();
  }

 private:
  bool dot_is_data_;
  bool ended_ = false;
  bool continued_ = false;
};

bool is_field_start(const std::string& line) {
  auto colon = line.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    auto u = static_cast<unsigned char>(line[i]);
    if (u <= 32 || u >= 127) return false;
  }
  return true;
}

class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::optional<std::string> open(const std::string& path) {
    auto fd = unix_connect(path);
    if (!fd) return fd.error().message;
    fd_ = *fd;
    return std::nullopt;
  }
  bool send(std::string_view data) { return send_all(fd_, data); }
  bool chunk(std::string_view data) { return data.empty() || (send(std::to_string(data.size()) + "\n") && send(data)); }
  std::string reply() {
    std::string r;
    char c;
    while (r.size() < 4096) {
      ssize_t n = ::read(fd_, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == '\n') break;
      r += c;
    }
    return r;
  }

 private:
  int fd_ = -1;
};

// Control characters (CR, LF, NUL, TAB...) in -f, -F or a recipient argument would become
// lines of the submit socket's protocol ("SENDER <addr>\n", submit_socket.h) or of the From:
// field we write. Postfix's sendmail carries them in typed queue-file records and its address
// tokenizer reads a newline as white space; over our line protocol they can only be refused,
// before anything is sent: EX_USAGE, like Postfix's other bad-argument errors.
std::optional<int> check_arguments(const Options& o) {
  if (o.sender && mail::has_control(*o.sender)) {
    return fail(kExUsage, "-f/-r sender address contains a control character");
  }
  if (mail::has_control(o.full_name)) return fail(kExUsage, "-F full name contains a control character");
  for (const auto& r : o.recipients) {
    if (mail::has_control(r)) {
      return fail(kExUsage, "recipient address contains a control character: " + base::log_escape(r, 100));
    }
  }
  return std::nullopt;
}

}  // namespace

int sendmail_main(int argc, char** argv) {
  Options o;
  if (auto code = parse(argc, argv, o)) return *code;
  if (auto code = check_arguments(o)) return *code;
  std::string path = o.config_path;
  if (path.empty()) {
    const char* env = std::getenv("PETREL_CONFIG");
    path = env && *env ? env : config::default_config_path();
  }
  auto config = config::load_config(path);
  if (!config) return fail(kExConfig, config.error().message);
  const std::string& host = config->server.hostname;

  // Who we are: the envelope sender the server will use unless -f says otherwise.
  const passwd* pw = ::getpwuid(::getuid());
  std::string me = (pw ? std::string(pw->pw_name) : "uid" + std::to_string(::getuid())) + "@" + host;
  std::string sender = o.sender ? *o.sender : me;
  if (!sender.empty() && sender != "<>" && sender.find('@') == std::string::npos) sender += "@" + host;

  // The header section, held until its end; -t takes recipients from it and drops Bcc:.
  Input in(o.dot_is_data);
  std::vector<std::string> header;  // field lines, continuation lines follow their field
  std::optional<std::string> first_body;
  bool first_body_partial = false;
  std::size_t header_size = 0;
  bool partial = false;
  std::string text;
  while (in.line(text, partial)) {
    const std::string* line = &text;
    const bool continuation = !header.empty() && !line->empty() && (line->front() == ' ' || line->front() == '\t');
    if (line->empty() || partial || (!continuation && !is_field_start(*line))) {
      // The end of the header: an empty line (dropped here: `head` below ends with the one
      // empty line that separates header and body, RFC 5322 2.1), or a line that is not a
      // field (a message without header): that line is the body's first.
      if (!line->empty() || partial) {
        first_body = *line;
        first_body_partial = partial;
      }
      break;
    }
    header_size += line->size() + 2;
    if (header_size > smtp::server::kMaxSubmissionHeader) return fail(kExDataErr, "message header too large");
    if (continuation) header.back() += "\r\n" + *line;
    else header.push_back(*line);
  }

  bool has_from = false, has_date = false, has_id = false;
  std::vector<std::string> kept;
  for (const auto& field : header) {
    auto colon = field.find(':');
    std::string name = base::to_lower(base::trim(std::string_view(field).substr(0, colon)));
    std::string_view value = std::string_view(field).substr(colon + 1);
    if (name == "from") has_from = true;
    if (name == "date") has_date = true;
    if (name == "message-id") has_id = true;
    if (o.extract && (name == "to" || name == "cc" || name == "bcc")) {
      std::string unfolded;
      for (char ch : value) {
        if (ch != '\r' && ch != '\n') unfolded += ch;
      }
      auto list = mail::parse_mailbox_list(unfolded);
      if (!list) {
        // Bare local names ("root") are common in scripts: take them as written.
        for (std::string_view rest = unfolded; !rest.empty();) {
          auto comma = rest.find(',');
          auto one = base::trim(rest.substr(0, comma));
          if (!one.empty()) o.recipients.emplace_back(one);
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
      } else {
        for (const auto& a : *list) o.recipients.push_back(a.str());
      }
    }
    if (name == "bcc" || name == "resent-bcc") continue;  // never sent on
    kept.push_back(field);
  }
  if (o.recipients.empty()) return fail(kExUsage, "no recipients (give them as arguments, or use -t)");
  for (const auto& r : o.recipients) {
    // Only -t's can still have one (arguments were checked): a data error in the message.
    if (mail::has_control(r)) {
      return fail(kExDataErr,
                  "recipient address in the header contains a control character: " + base::log_escape(r, 100));
    }
  }

  // Our additions first, then the header as given.
  std::string head;
  if (!has_from) {
    std::string shown = sender == "<>" || sender.empty() ? me : sender;
    auto from = mail::from_field(o.full_name, shown);
    if (!from) return fail(kExUsage, "-F: " + from.error().message);
    head += *from;
  }
  const std::int64_t now = std::time(nullptr);
  if (!has_date) head += mail::date_field(now);
  if (!has_id) {
    std::random_device rd;
    const std::uint64_t random = static_cast<std::uint64_t>(rd()) << 32 | rd();
    head += mail::message_id_field(mail::unique_id_left(now, random), host);
  }
  for (const auto& f : kept) head += f + "\r\n";
  head += "\r\n";

  // Queue it.
  Connection c;
  const std::string socket = submit_socket_path(config->server.data_dir);
  if (auto err = c.open(socket)) {
    return fail(kExTempFail, "cannot queue the message: the Petrel server is not running or not reachable (" + *err +
                                 "); nothing was sent, try again later");
  }
  std::string request;
  if (o.sender) request += "SENDER " + (sender.empty() ? std::string("<>") : sender) + "\n";
  for (const auto& r : o.recipients) request += "RCPT " + r + "\n";
  request += "DATA\n";
  bool ok = c.send(request) && c.chunk(head);
  std::string buf;
  auto emit = [&](const std::string& piece, bool line_end) {
    buf += piece;
    if (line_end) buf += "\r\n";
    if (buf.size() >= kChunk) {
      ok = ok && c.chunk(buf);
      buf.clear();
    }
  };
  if (first_body) emit(*first_body, !first_body_partial);
  while (ok && in.line(text, partial)) emit(text, !partial);
  ok = ok && c.chunk(buf) && c.send("0\n");
  std::string reply = c.reply();
  if (!ok && reply.empty()) return fail(kExTempFail, "cannot queue the message: the connection to the server broke");
  if (reply.starts_with("ok ")) return 0;
  if (reply.starts_with("error 5")) {
    return fail(reply.find(" 5.1.") != std::string::npos ? kExNoUser : kExDataErr, "refused: " + reply.substr(6));
  }
  return fail(kExTempFail, "cannot queue the message now: " + (reply.empty() ? "no answer" : reply.substr(6)));
}

}  // namespace petrel::app
