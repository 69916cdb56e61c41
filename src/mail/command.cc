// command.cc: splitting an SMTP command line and reading the MAIL, RCPT and BDAT arguments.
//
// Each parser works on a local result and writes `out` only on success, so a failed command
// leaves the caller's state as it was.
#include "mail/command.h"

#include <array>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "base/strings.h"
#include "mail/internal.h"

namespace petrel::mail {

namespace {

struct VerbName {
  std::string_view name;
  Verb verb;
};

constexpr std::array<VerbName, 14> kVerbs = {{
    {"HELO", Verb::kHelo}, {"EHLO", Verb::kEhlo}, {"MAIL", Verb::kMail}, {"RCPT", Verb::kRcpt},
    {"DATA", Verb::kData}, {"BDAT", Verb::kBdat}, {"RSET", Verb::kRset}, {"NOOP", Verb::kNoop},
    {"QUIT", Verb::kQuit}, {"VRFY", Verb::kVrfy}, {"EXPN", Verb::kExpn}, {"HELP", Verb::kHelp},
    {"STARTTLS", Verb::kStartTls}, {"AUTH", Verb::kAuth},
}};

constexpr std::size_t kMaxSizeDigits = 20;  // 18446744073709551615
constexpr std::size_t kMaxEnvid = 100;      // RFC 3461 4.4
constexpr std::size_t kMaxOrcpt = 500;      // RFC 3461 4.2

bool is_alpha_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// 1*20DIGIT that fits in 64 bits.
std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > kMaxSizeDigits) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

struct Param {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

// RFC 5321 4.1.2: Mail-parameters = esmtp-param *(SP esmtp-param);
// esmtp-param = esmtp-keyword ["=" esmtp-value]; esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii (RFC 6531 3.3), judged by the caller.
// `text` is what follows the path: empty, or SP and the parameters. nullopt on bad syntax.
std::optional<std::vector<Param>> split_params(std::string_view text) {
  std::vector<Param> params;
  if (text.empty()) return params;
  if (text.front() != ' ') return std::nullopt;
  text.remove_prefix(1);
  while (true) {
    std::size_t sp = text.find(' ');
    std::string_view item = text.substr(0, sp);
    std::size_t eq = item.find('=');
    Param p{item.substr(0, eq), std::nullopt};
    if (p.keyword.empty() || !is_alpha_digit(p.keyword.front())) return std::nullopt;
    for (char c : p.keyword) {
      if (!is_alpha_digit(c) && c != '-') return std::nullopt;
    }
    if (eq != std::string_view::npos) {
      std::string_view value = item.substr(eq + 1);
      if (value.empty()) return std::nullopt;
      for (char c : value) {
        if (!((c >= 33 && c <= 60) || (c >= 62 && c <= 126) || internal::is_8bit(c))) return std::nullopt;
      }
      p.value = value;
    }
    params.push_back(p);
    if (sp == std::string_view::npos) return params;
    text.remove_prefix(sp + 1);
  }
}

Reply bad_param(std::string_view what) { return reply(501, "5.5.4", what); }
Reply unknown_param() { return reply(555, "5.5.4", "Unsupported parameter"); }

// Octets >= 0x80 in a parameter value: only under SMTPUTF8 (RFC 6531 3.3), and then valid.
std::optional<Reply> check_value_utf8(const std::vector<Param>& params, bool utf8) {
  for (const Param& p : params) {
    if (!p.value || !internal::has_8bit(*p.value)) continue;
    if (!utf8) return reply(553, "5.6.7", "Non-ASCII parameter requires SMTPUTF8");
    if (!is_valid_utf8(*p.value)) return reply(501, "5.6.7", "Invalid UTF-8 in parameter");
  }
  return std::nullopt;
}

// Printable text as RFC 3461 wants for ENVID (4.4) and an original recipient (4.2): decoded
// xtext must not smuggle controls into the DSN we may write later.
bool printable(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
  }
  return !internal::has_8bit(text) || is_valid_utf8(text);
}

// Reads "FROM:" / "TO:" and the one space Postfix also tolerates after the colon.
std::optional<std::string_view> after_prefix(std::string_view args, std::string_view prefix) {
  if (!base::istarts_with(args, prefix)) return std::nullopt;
  args.remove_prefix(prefix.size());
  if (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  return args;
}

// RFC 3461 4.1: NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ).
std::optional<std::uint8_t> parse_notify(std::string_view value) {
  if (base::iequals(value, "NEVER")) return kNotifyNever;
  std::uint8_t flags = 0;
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    if (base::iequals(item, "SUCCESS")) {
      flags |= kNotifySuccess;
    } else if (base::iequals(item, "FAILURE")) {
      flags |= kNotifyFailure;
    } else if (base::iequals(item, "DELAY")) {
      flags |= kNotifyDelay;
    } else {
      return std::nullopt;  // includes NEVER in a list, and empty items
    }
    if (comma == std::string_view::npos) return flags;
    value.remove_prefix(comma + 1);
  }
}

// RFC 3461 4.2: ORCPT=addr-type ";" xtext, addr-type an RFC 822 atom, at most 500 characters.
// RFC 6533 lets a "utf-8" type carry raw UTF-8 under SMTPUTF8; its \x{..} escapes stay as sent.
bool parse_orcpt(std::string_view value, Recipient& r) {
  if (value.size() > kMaxOrcpt) return false;
  std::size_t semi = value.find(';');
  if (semi == 0 || semi == std::string_view::npos) return false;
  std::string_view type = value.substr(0, semi);
  for (char c : type) {
    static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
    if (!is_alpha_digit(c) && kSpecials.find(c) == std::string_view::npos) return false;
  }
  std::string_view encoded = value.substr(semi + 1);
  if (encoded.empty()) return false;
  // Decode the xtext between raw UTF-8 sequences (they were checked by check_value_utf8).
  std::string decoded;
  std::size_t i = 0;
  while (i < encoded.size()) {
    std::size_t j = i;
    while (j < encoded.size() && !internal::is_8bit(encoded[j])) ++j;
    auto part = xtext_decode(encoded.substr(i, j - i));
    if (!part) return false;
    decoded += *part;
    i = j;
    while (i < encoded.size() && internal::is_8bit(encoded[i])) decoded += encoded[i++];
  }
  if (!printable(decoded)) return false;
  r.orcpt_type = base::to_lower(type);
  r.orcpt = std::move(decoded);
  return true;
}

}  // namespace

CommandLine split_command(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  CommandLine cmd;
  std::size_t sp = line.find(' ');
  cmd.verb_text = line.substr(0, sp);
  if (sp != std::string_view::npos) cmd.args = line.substr(sp + 1);
  for (const VerbName& v : kVerbs) {
    if (base::iequals(cmd.verb_text, v.name)) {
      cmd.verb = v.verb;
      break;
    }
  }
  return cmd;
}

std::optional<Reply> parse_mail_from(std::string_view args, const Extensions& ext, MailFrom& out) {
  auto rest = after_prefix(args, "FROM:");
  if (!rest) return reply(501, "5.5.2", "Syntax: MAIL FROM:<address>");

  // The path's syntax first, UTF-8 aside: whether UTF-8 may appear depends on SMTPUTF8, which
  // comes after the path.
  auto path = internal::scan_path(*rest, /*allow_null=*/true, /*allow_postmaster=*/false);
  if (!path) return reply(501, "5.1.7", "Bad sender address syntax");
  auto params = split_params(rest->substr(path->consumed));
  if (!params) {
    if (rest->size() > path->consumed && (*rest)[path->consumed] != ' ') {
      return reply(501, "5.1.7", "Bad sender address syntax");
    }
    return bad_param("Bad parameter syntax");
  }

  MailFrom mail;
  for (const Param& p : *params) {
    if (ext.smtputf8 && base::iequals(p.keyword, "SMTPUTF8")) mail.smtputf8 = true;
  }
  if (auto err = internal::check_path(*rest, *path, mail.smtputf8)) {
    switch (*err) {
      case PathError::kUtf8NotAllowed: return reply(553, "5.6.7", "Non-ASCII sender address requires SMTPUTF8");
      case PathError::kBadUtf8: return reply(501, "5.6.7", "Invalid UTF-8 in sender address");
      case PathError::kTooLong: return reply(501, "5.1.7", "Sender address too long");
      case PathError::kSyntax: break;
    }
    return reply(501, "5.1.7", "Bad sender address syntax");
  }
  if (auto err = check_value_utf8(*params, mail.smtputf8)) return err;
  mail.sender = std::move(path->address);

  // Each parameter once, and only when its extension was advertised.
  bool seen_size = false, seen_body = false, seen_utf8 = false, seen_ret = false, seen_envid = false;
  bool seen_auth = false;
  auto once = [](bool& seen) { return !std::exchange(seen, true); };
  for (const Param& p : *params) {
    if (ext.auth && base::iequals(p.keyword, "AUTH")) {
      // RFC 4954 5: AUTH=<mailbox> or AUTH=<>, the submitter as the client's server knew it.
      // We trust only our own authentication, so it is checked for form and otherwise ignored.
      if (!once(seen_auth)) return bad_param("Duplicate AUTH parameter");
      if (!p.value || p.value->empty()) return bad_param("Bad AUTH value");
    } else if (ext.size && base::iequals(p.keyword, "SIZE")) {
      // RFC 1870 6: SIZE=1*20DIGIT.
      if (!once(seen_size)) return bad_param("Duplicate SIZE parameter");
      auto n = p.value ? parse_decimal(*p.value) : std::nullopt;
      if (!n) return bad_param("Bad SIZE value");
      // RFC 1870 6.1: a declared size over the fixed maximum is refused with 552.
      if (ext.max_size > 0 && *n > ext.max_size) {
        return reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
      }
      mail.size = *n;
    } else if (ext.eight_bit_mime && base::iequals(p.keyword, "BODY")) {
      // RFC 6152 2: BODY=7BIT / 8BITMIME.
      if (!once(seen_body)) return bad_param("Duplicate BODY parameter");
      if (p.value && base::iequals(*p.value, "7BIT")) {
        mail.body = BodyType::k7Bit;
      } else if (p.value && base::iequals(*p.value, "8BITMIME")) {
        mail.body = BodyType::k8BitMime;
      } else {
        return bad_param("Bad BODY value");
      }
    } else if (ext.smtputf8 && base::iequals(p.keyword, "SMTPUTF8")) {
      // RFC 6531 3.4: SMTPUTF8 takes no value.
      if (!once(seen_utf8)) return bad_param("Duplicate SMTPUTF8 parameter");
      if (p.value) return bad_param("SMTPUTF8 takes no value");
    } else if (ext.dsn && base::iequals(p.keyword, "RET")) {
      // RFC 3461 4.3: RET=FULL / HDRS.
      if (!once(seen_ret)) return bad_param("Duplicate RET parameter");
      if (p.value && base::iequals(*p.value, "FULL")) {
        mail.ret = DsnRet::kFull;
      } else if (p.value && base::iequals(*p.value, "HDRS")) {
        mail.ret = DsnRet::kHeaders;
      } else {
        return bad_param("Bad RET value");
      }
    } else if (ext.dsn && base::iequals(p.keyword, "ENVID")) {
      // RFC 3461 4.4: ENVID=xtext, at most 100 printable ASCII characters.
      if (!once(seen_envid)) return bad_param("Duplicate ENVID parameter");
      auto id = p.value ? xtext_decode(*p.value) : std::nullopt;
      if (!id || id->empty() || id->size() > kMaxEnvid || internal::has_8bit(*id) || !printable(*id)) {
        return bad_param("Bad ENVID value");
      }
      mail.envid = std::move(*id);
    } else {
      return unknown_param();
    }
  }
  out = std::move(mail);
  return std::nullopt;
}

std::optional<Reply> parse_rcpt_to(std::string_view args, const Extensions& ext, bool utf8, RcptTo& out) {
  auto rest = after_prefix(args, "TO:");
  if (!rest) return reply(501, "5.5.2", "Syntax: RCPT TO:<address>");

  auto path = internal::scan_path(*rest, /*allow_null=*/false, /*allow_postmaster=*/true);
  if (!path) return reply(501, "5.1.3", "Bad recipient address syntax");
  if (auto err = internal::check_path(*rest, *path, utf8)) {
    switch (*err) {
      case PathError::kUtf8NotAllowed: return reply(553, "5.6.7", "Non-ASCII recipient address requires SMTPUTF8");
      case PathError::kBadUtf8: return reply(501, "5.6.7", "Invalid UTF-8 in recipient address");
      case PathError::kTooLong: return reply(501, "5.1.3", "Recipient address too long");
      case PathError::kSyntax: break;
    }
    return reply(501, "5.1.3", "Bad recipient address syntax");
  }
  auto params = split_params(rest->substr(path->consumed));
  if (!params) {
    if (rest->size() > path->consumed && (*rest)[path->consumed] != ' ') {
      return reply(501, "5.1.3", "Bad recipient address syntax");
    }
    return bad_param("Bad parameter syntax");
  }
  if (auto err = check_value_utf8(*params, utf8)) return err;

  RcptTo rcpt;
  rcpt.postmaster = path->address.domain.empty();
  rcpt.recipient.address = std::move(path->address);
  bool seen_notify = false, seen_orcpt = false;
  auto once = [](bool& seen) { return !std::exchange(seen, true); };
  for (const Param& p : *params) {
    if (ext.dsn && base::iequals(p.keyword, "NOTIFY")) {
      if (!once(seen_notify)) return bad_param("Duplicate NOTIFY parameter");
      auto flags = p.value ? parse_notify(*p.value) : std::nullopt;
      if (!flags) return bad_param("Bad NOTIFY value");
      rcpt.recipient.notify = *flags;
    } else if (ext.dsn && base::iequals(p.keyword, "ORCPT")) {
      if (!once(seen_orcpt)) return bad_param("Duplicate ORCPT parameter");
      if (!p.value || !parse_orcpt(*p.value, rcpt.recipient)) return bad_param("Bad ORCPT value");
    } else {
      return unknown_param();
    }
  }
  out = std::move(rcpt);
  return std::nullopt;
}

// RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT;
// end-marker = "LAST".
std::optional<Reply> parse_bdat(std::string_view args, std::uint64_t& chunk_size, bool& last) {
  std::size_t sp = args.find(' ');
  std::string_view size_text = args.substr(0, sp);
  bool is_last = false;
  if (sp != std::string_view::npos) {
    if (!base::iequals(args.substr(sp + 1), "LAST")) return reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
    is_last = true;
  }
  auto n = parse_decimal(size_text);
  if (!n) return reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
  chunk_size = *n;
  last = is_last;
  return std::nullopt;
}

}  // namespace petrel::mail
