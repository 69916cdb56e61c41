// cmd_helo.cc: EHLO and HELO (RFC 5321 4.1.1.1) and the extensions we advertise.
#include "base/strings.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

namespace {

// The client's name is only recorded (Received:, logs), never trusted: any printable token is
// taken, as Postfix does by default; what it may not be is empty or full of control octets.
bool acceptable_helo(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

Session::Next Session::handle_ehlo(std::string_view args) {
  auto name = base::trim(args);
  if (auto space = name.find(' '); space != std::string_view::npos) name = name.substr(0, space);
  if (!acceptable_helo(name)) {
    send(501, "5.5.4", "Syntax: EHLO hostname");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 5321 4.1.4: EHLO in the middle of a transaction resets it.
  reset_transaction();
  helo_ = std::string(name);
  esmtp_ = true;
  state_ = State::kGreeted;

  mail::Reply r;
  r.code = 250;
  r.text = ctx_.config.server.hostname + " Hello [" + client_ip_ + "]";
  r.more = {"PIPELINING", "SIZE " + std::to_string(limits_.max_message_size), "8BITMIME", "SMTPUTF8",
            "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"};
  if (ctx_.tls && !stream_.is_tls()) r.more.push_back("STARTTLS");
  send(r);
  return Next::kContinue;
}

Session::Next Session::handle_helo(std::string_view args) {
  auto name = base::trim(args);
  if (auto space = name.find(' '); space != std::string_view::npos) name = name.substr(0, space);
  if (!acceptable_helo(name)) {
    send(501, "5.5.4", "Syntax: HELO hostname");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  reset_transaction();
  helo_ = std::string(name);
  esmtp_ = false;
  state_ = State::kGreeted;
  send(250, "", ctx_.config.server.hostname);
  return Next::kContinue;
}

}  // namespace petrel::smtp::server
