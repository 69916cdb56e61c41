// cmd_mail.cc: MAIL and RCPT (RFC 5321 4.1.1.2-3): syntax and protocol limits here; whether
// the sender and each recipient are welcome (relaying, unknown users, sender ownership) is
// policy's decision (policy/README.md), asked before the 250.
#include "base/assert.h"
#include "base/log.h"
#include "base/strings.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

Session::Next Session::handle_mail(std::string_view args) {
  // RFC 6409 4.3: the submission service takes mail from authenticated users only.
  if (submission() && auth_user_.empty()) {
    send(530, "5.7.0", "Authentication required");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  mail::MailFrom mf;
  if (auto err = mail::parse_mail_from(args, extensions(), mf)) {
    send(*err);
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // Refuse before the client sends a byte of content when the spool is short of space.
  if (!ctx_.intake.has_free_space()) {
    send(452, "4.3.1", "Insufficient system storage");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  auto& env = tx_.envelope;
  env.auth_user = auth_user_;
  env.sender = std::move(mf.sender);
  env.declared_size = mf.size;
  env.body = mf.body;
  env.smtputf8 = mf.smtputf8;
  env.ret = mf.ret;
  env.envid = std::move(mf.envid);
  env.client_ip = client_ip_;
  env.helo = helo_;
  // Policy decides the rest (RFC 6409 6.1 sender ownership among it), then proceed_mail.
  return ask_policy(policy::Stage::kMail, &Session::proceed_mail);
}

Session::Next Session::proceed_mail(const policy::Decision& decision) {
  if (refused(decision)) {
    reset_transaction();
    return count_error() ? Next::kClose : Next::kContinue;
  }
  tx_.policy_headers = decision.headers;
  state_ = State::kMail;
  send(250, "2.1.0", "Ok");
  return Next::kContinue;
}

Session::Next Session::handle_rcpt(std::string_view args) {
  mail::RcptTo rt;
  if (auto err = mail::parse_rcpt_to(args, extensions(), tx_.envelope.smtputf8, rt)) {
    send(*err);
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted; beyond the configured limit
  // answer 452 so the client retries the rest later. Not an error: it is flow control.
  if (tx_.envelope.recipients.size() >= limits_.max_recipients) {
    send(452, "4.5.3", "Too many recipients");
    return Next::kContinue;
  }
  // RFC 5321 4.5.1: "<Postmaster>" without a domain must be accepted. It has no domain to be
  // delivered in, so it becomes postmaster@<primary domain> and from here on is an ordinary
  // recipient: the alias/account rules decide where it goes, and it is never relayed out.
  if (rt.postmaster) {
    auto domain = postmaster_domain();
    if (!domain) {
      // No served domain to give it to: a configuration problem the operator can fix, so
      // temporary (the client retries) rather than accepted and bounced or relayed.
      PETREL_LOG(kError, "smtp.no_postmaster_domain", "session={} hostname={} primary_domain=\"{}\"", session_id_,
                 ctx_.config.server.hostname, base::log_escape(ctx_.config.server.primary_domain));
      send(451, "4.3.0", "<Postmaster>: no local domain configured for the postmaster, try again later");
      return count_error() ? Next::kClose : Next::kContinue;
    }
    rt.recipient.address = mail::Address{"postmaster", std::move(*domain)};
  }
  // Unknown users (550 5.1.1) and relaying (554 5.7.1) are policy's checks.
  pending_rcpt_ = std::move(rt.recipient);
  return ask_policy(policy::Stage::kRcpt, &Session::proceed_rcpt);
}

Session::Next Session::proceed_rcpt(const policy::Decision& decision) {
  auto recipient = std::move(pending_rcpt_);
  pending_rcpt_.reset();
  if (refused(decision)) return count_error() ? Next::kClose : Next::kContinue;
  PETREL_ASSERT(recipient, "RCPT decision without a recipient");
  for (auto& h : decision.headers) tx_.policy_headers.push_back(h);
  tx_.envelope.recipients.push_back(std::move(*recipient));
  state_ = State::kRcpt;
  send(250, "2.1.5", "Ok");
  return Next::kContinue;
}

// server.primary_domain when set and served; else server.hostname or the nearest parent of it
// that we serve ("mx.example.org" -> "example.org"). Read from the directory's snapshot at each
// use, so a domain added while the server runs counts at once.
std::optional<std::string> Session::postmaster_domain() const {
  const auto& server = ctx_.config.server;
  if (!server.primary_domain.empty()) {
    if (ctx_.directory.serves_domain(server.primary_domain)) return server.primary_domain;
    return std::nullopt;
  }
  std::string_view name = server.hostname;
  while (!name.empty()) {
    if (ctx_.directory.serves_domain(name)) return base::to_lower(name);
    auto dot = name.find('.');
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  return std::nullopt;
}

}  // namespace petrel::smtp::server
