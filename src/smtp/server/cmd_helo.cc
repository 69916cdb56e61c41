// cmd_helo.cc: EHLO and HELO (RFC 5321 4.1.1.1) and the extensions we advertise.
#include "base/strings.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

namespace {

// The client's name is only recorded (Received:, logs), never trusted: any printable token is
// taken, as Postfix does by default; what it may not be is empty or full of control octets.
// Returns the name (the first word of the arguments), or nullopt when it is unacceptable.
std::optional<std::string_view> helo_name(std::string_view args) {
  auto name = base::trim(args);
  if (auto space = name.find(' '); space != std::string_view::npos) name = name.substr(0, space);
  if (name.empty() || name.size() > 255) return std::nullopt;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::nullopt;
  }
  return name;
}

}  // namespace

std::optional<Session::Next> Session::greet(std::string_view args, bool esmtp) {
  auto name = helo_name(args);
  if (!name) {
    send(501, "5.5.4", esmtp ? "Syntax: EHLO hostname" : "Syntax: HELO hostname");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 5321 4.1.4: EHLO/HELO in the middle of a transaction resets it.
  reset_transaction();
  helo_headers_.clear();
  helo_ = std::string(*name);
  esmtp_ = esmtp;
  state_ = State::kGreeted;
  return std::nullopt;
}

Session::Next Session::handle_ehlo(std::string_view args) {
  if (auto refused = greet(args, true)) return *refused;
  return ask_policy(policy::Stage::kHelo, &Session::proceed_ehlo);
}

Session::Next Session::refuse_greeting(const policy::Decision& decision) {
  send(decision.reply);
  state_ = State::kConnected;
  esmtp_ = false;
  helo_.clear();
  return count_error() ? Next::kClose : Next::kContinue;
}

Session::Next Session::proceed_ehlo(const policy::Decision& decision) {
  if (decision.kind != policy::Decision::Kind::kAccept) return refuse_greeting(decision);
  helo_headers_ = decision.headers;
  mail::Reply r;
  r.code = 250;
  r.text = ctx_.config.server.hostname + " Hello [" + client_ip_ + "]";
  r.more = {"PIPELINING", "SIZE " + std::to_string(limits_.max_message_size), "8BITMIME", "SMTPUTF8",
            "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"};
  if (ctx_.tls && !stream_.is_tls()) r.more.push_back("STARTTLS");
  // RFC 4954 4 / RFC 6409 4.3: AUTH is offered once the channel is encrypted, never in clear.
  if (auth_offered()) {
    std::string line = "AUTH";
    for (const auto& m : ctx_.sasl->mechanisms()) line += " " + m;
    r.more.push_back(line);
  }
  send(r);
  return Next::kContinue;
}

Session::Next Session::handle_helo(std::string_view args) {
  if (auto refused = greet(args, false)) return *refused;
  return ask_policy(policy::Stage::kHelo, &Session::proceed_helo);
}

Session::Next Session::proceed_helo(const policy::Decision& decision) {
  if (decision.kind != policy::Decision::Kind::kAccept) return refuse_greeting(decision);
  helo_headers_ = decision.headers;
  send(250, "", ctx_.config.server.hostname);
  return Next::kContinue;
}

}  // namespace petrel::smtp::server
