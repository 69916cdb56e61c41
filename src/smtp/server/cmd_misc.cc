// cmd_misc.cc: RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS.
#include "smtp/server/session.h"

namespace petrel::smtp::server {

Session::Next Session::handle_rset(std::string_view args) {
  if (!args.empty()) {
    send(501, "5.5.4", "Syntax: RSET");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  reset_transaction();
  send(250, "2.0.0", "Ok");
  return Next::kContinue;
}

Session::Next Session::handle_noop(std::string_view) {
  send(250, "2.0.0", "Ok");  // RFC 5321 4.1.1.9: a parameter is allowed and ignored
  return Next::kContinue;
}

Session::Next Session::handle_quit(std::string_view) {
  send(221, "2.0.0", "Bye");
  return Next::kClose;
}

Session::Next Session::handle_vrfy(std::string_view args) {
  if (args.empty()) {
    send(501, "5.5.4", "Syntax: VRFY address");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 5321 3.5.3: 252 without looking, so VRFY cannot be used to harvest addresses.
  send(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
  return Next::kContinue;
}

Session::Next Session::handle_expn(std::string_view) {
  send(502, "5.5.1", "EXPN not available");
  return count_error() ? Next::kClose : Next::kContinue;
}

Session::Next Session::handle_help(std::string_view) {
  send(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
  return Next::kContinue;
}

Session::Next Session::handle_starttls(std::string_view args) {
  if (!args.empty()) {
    send(501, "5.5.4", "Syntax: STARTTLS");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  if (stream_.is_tls()) {
    send(503, "5.5.1", "Already using TLS");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  if (!ctx_.tls) {
    send(454, "4.7.0", "TLS not available");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  send(220, "2.0.0", "Ready to start TLS");
  return Next::kStartTls;
}

}  // namespace petrel::smtp::server
