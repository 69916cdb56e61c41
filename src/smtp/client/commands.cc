// commands.cc: MAIL and RCPT lines with their ESMTP parameters.
#include "smtp/client/commands.h"

#include <fmt/format.h>

#include "mail/command.h"
#include "smtp/client/session.h"

namespace petrel::smtp::client {
namespace {

bool has_forbidden(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

std::string path(const mail::Address& address) { return "<" + address.str() + ">"; }

// Length of the UTF-8 sequence at text[i] and its code point; 0 when invalid.
std::size_t decode_utf8(std::string_view text, std::size_t i, std::uint32_t& cp) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = at(i);
  std::size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                  : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < len; ++k) {
    if ((at(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (at(i + k) & 0x3F);
  }
  return len;
}

}  // namespace

std::string utf8_addr_xtext(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cp = 0;
    std::size_t len = decode_utf8(text, i, cp);
    if (len == 0) {  // not UTF-8: carry the octet's value rather than drop it
      cp = static_cast<unsigned char>(text[i]);
      len = 1;
    }
    // QCHAR = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e ('+', '=' and '\' are escaped).
    if (cp >= 0x21 && cp <= 0x7e && cp != '+' && cp != '=' && cp != '\\') {
      out.push_back(static_cast<char>(cp));
    } else {
      out += fmt::format("\\x{{{:X}}}", cp);
    }
    i += len;
  }
  return out;
}

base::Result<std::string> mail_from_line(const mail::Envelope& envelope, std::uint64_t body_size,
                                         const Capabilities& caps) {
  std::string line = "MAIL FROM:" + (envelope.sender.null() ? std::string("<>") : path(envelope.sender));
  // RFC 1870 6: the estimated size, when the server takes SIZE.
  if (caps.size) line += fmt::format(" SIZE={}", body_size);
  // RFC 6152 2: BODY= only to a server that announced 8BITMIME.
  if (caps.eight_bit_mime) {
    if (envelope.body == mail::BodyType::k8BitMime) line += " BODY=8BITMIME";
    if (envelope.body == mail::BodyType::k7Bit) line += " BODY=7BIT";
  }
  if (envelope.smtputf8 && caps.smtputf8) line += " SMTPUTF8";
  // RFC 3461 4.3, 4.4: RET and ENVID only to a server that announced DSN.
  if (caps.dsn) {
    if (envelope.ret == mail::DsnRet::kFull) line += " RET=FULL";
    if (envelope.ret == mail::DsnRet::kHeaders) line += " RET=HDRS";
    if (!envelope.envid.empty()) line += " ENVID=" + mail::xtext_encode(envelope.envid);
  }
  if (has_forbidden(line)) return base::temporary_error("CR, LF or NUL in the sender or its parameters");
  line += "\r\n";
  return line;
}

base::Result<std::string> rcpt_to_line(const mail::Recipient& recipient, const Capabilities& caps) {
  std::string line = "RCPT TO:" + path(recipient.address);
  // RFC 3461 4.1, 4.2: NOTIFY and ORCPT only to a server that announced DSN.
  if (caps.dsn) {
    if (recipient.notify & mail::kNotifyNever) {
      line += " NOTIFY=NEVER";
    } else if (recipient.notify != mail::kNotifyUnspecified) {
      std::string notify;
      if (recipient.notify & mail::kNotifySuccess) notify += ",SUCCESS";
      if (recipient.notify & mail::kNotifyFailure) notify += ",FAILURE";
      if (recipient.notify & mail::kNotifyDelay) notify += ",DELAY";
      if (!notify.empty()) line += " NOTIFY=" + notify.substr(1);
    }
    if (!recipient.orcpt_type.empty() && !recipient.orcpt.empty()) {
      bool utf8 = recipient.orcpt_type == "utf-8" || recipient.orcpt_type == "UTF-8";
      line += " ORCPT=" + recipient.orcpt_type + ";" +
              (utf8 ? utf8_addr_xtext(recipient.orcpt) : mail::xtext_encode(recipient.orcpt));
    }
  }
  if (has_forbidden(line)) return base::temporary_error("CR, LF or NUL in a recipient or its parameters");
  line += "\r\n";
  return line;
}

}  // namespace petrel::smtp::client
