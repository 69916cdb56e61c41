// paths.cc: where a mailbox lives, and the trace headers a delivery prepends.
#include <string_view>

#include "base/assert.h"
#include "base/strings.h"
#include "mailbox/maildir.h"

namespace petrel::mailbox {

namespace {

constexpr std::size_t kMaxComponent = 255;  // NAME_MAX on every file system we care about

// One directory name taken from mail data: it must stay one name inside its parent.
bool is_safe_component(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.size() > kMaxComponent) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || u < 0x20 || u == 0x7f) return false;  // NUL and every other control too
  }
  return true;
}

bool breaks_header(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }

}  // namespace

base::Result<std::string> delivery_headers(const mail::Address& sender, const mail::Address& recipient) {
  // Checked on the formatted text, since that is what lands in the header.
  std::string from = sender.str();
  std::string to = recipient.str();
  if (breaks_header(from)) return base::permanent_error("sender address contains CR, LF or NUL");
  if (to.empty() || breaks_header(to)) return base::permanent_error("recipient address is empty or contains CR, LF or NUL");
  // RFC 5321 4.4: the delivery that puts the message in its final place adds Return-Path with
  // the reverse-path of MAIL FROM; "<>" for the null reverse-path.
  return "Return-Path: <" + from + ">\r\nDelivered-To: " + to + "\r\n";
}

base::Result<std::string> checked_mailbox_path(const std::string& data_dir, std::string_view domain,
                                               std::string_view local) {
  std::string dom = base::to_lower(domain);
  if (!is_safe_component(dom)) return base::permanent_error("unsafe mailbox domain: " + base::log_escape(domain));
  if (!is_safe_component(local)) return base::permanent_error("unsafe mailbox local part: " + base::log_escape(local));
  std::string out = data_dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += "mail/";
  out += dom;
  out += '/';
  out += local;
  out += '/';
  return out;
}

std::string mailbox_path(const std::string& data_dir, std::string_view domain, std::string_view local) {
  auto path = checked_mailbox_path(data_dir, domain, local);
  PETREL_ASSERT(path.has_value(), "mailbox_path on an unsafe domain or local part");
  return std::move(path).value();
}

}  // namespace petrel::mailbox
