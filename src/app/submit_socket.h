// app/submit_socket.h: local submission for `petrel sendmail`: a Unix stream socket at
// <data_dir>/submit.sock through which local programs queue mail without a network connection.
//
// Why a socket to the running server (OpenSMTPD's way) rather than a maildrop directory that
// the server picks up later (Postfix's way): the message goes through the same Intake as SMTP
// mail, so "queued" means durable before sendmail exits 0, and the sender's identity comes
// from the kernel (SO_PEERCRED), not from file ownership in a world-writable directory. The
// price: with the server stopped, sendmail cannot queue; it says so and exits EX_TEMPFAIL (75),
// which cron and most programs treat as "try again later".
//
// Protocol (one message per connection; lines end with "\n"):
//   client: "SENDER <addr>" (optional; "<>" for the null sender), then one "RCPT <addr>" per
//           recipient, then "DATA", then chunks "<decimal length>\n<octets>", ended by "0\n".
//           The octets are the message with CRLF line ends, headers complete. A SENDER or
//           RCPT line with a control octet (CR, TAB, NUL...) is refused with a 553.
//   server: "ok <queue-id>" once the message is durable, or "error <code> <status> <text>"
//           (4xx: try later, 5xx: refused).
// Promise: the envelope sender is <user>@<hostname> for the connecting uid; another sender
// (sendmail -f) is taken from root and from the server's own user as is, and from anyone else
// with an X-Authentication-Warning: header recording who set it (as sendmail does). A
// Received: header names the uid. Local users may send to any domain, like authenticated ones.
// Bounds: at most kMaxSubmitClients connections at once, at most kMaxSubmitClientsPerUid of
// them for one local user (one user's stuck or slow clients never lock everyone else out);
// each read waits at most 60 s and a whole submission at most smtp.local_submission_timeout,
// after which it is answered 421 and closed; the message streams into the Intake (nothing held beyond one
// chunk of 64 KiB).
// Thread: app/unix_listener.h's: one accept thread plus one per connection, none on an event loop.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "queue/intake.h"

namespace petrel::app {

inline constexpr std::size_t kMaxSubmitClients = 16;
inline constexpr std::size_t kMaxSubmitClientsPerUid = 4;

std::string submit_socket_path(const std::string& data_dir);

class SubmitServer {
 public:
  // Binds the socket (mode 0666: every local user may submit) and starts accepting. `config`
  // and `intake` must outlive the server.
  static base::Result<std::unique_ptr<SubmitServer>> start(const std::string& path, const config::Config& config,
                                                           queue::Intake& intake);
  // Stops accepting, waits for connections in progress, removes the socket.
  ~SubmitServer();
  SubmitServer(const SubmitServer&) = delete;
  SubmitServer& operator=(const SubmitServer&) = delete;

  struct Impl;

 private:
  explicit SubmitServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace petrel::app
