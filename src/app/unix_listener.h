// app/unix_listener.h: a Unix stream socket served by plain threads, shared by the control
// socket (control.h) and the local submission socket (submit_socket.h).
//
// What it is: bind `path` (replacing a stale socket: callers hold the spool lock, so no other
// server uses the data directory), chmod it to `mode` right after bind, listen, and run one
// accept thread. Each connection is served on its own thread by `serve(fd, peer, stop_fd)`;
// `stop_fd` becomes readable when the listener stops, so a handler blocked in poll() can give
// up. The listener closes `fd` after `serve` returns.
// Why threads, not the event loops: a few local clients at a time (operator commands, cron's
// sendmail) need no loop, and keeping them off the loops means a stuck local client can never
// slow an SMTP session.
// Bounds: at most `max_clients` connections are served at once, and at most `max_per_uid` of
// them for one peer uid (so that one local user cannot take every slot); one more is sent
// `busy_reply` and closed. Finished threads are joined at the next accept, so at most max_clients threads
// plus those that ended since the last connection exist.
// Not done here: who may connect (each handler checks `peer` from SO_PEERCRED; the file mode
// is only the first fence) and the protocol spoken.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::app {

// The address for `path`; fails when the path does not fit in sun_path.
base::Result<sockaddr_un> unix_address(const std::string& path);

// Writes all of `data` (MSG_NOSIGNAL). False when the peer went away.
bool send_all(int fd, std::string_view data);

// A connected client socket (close-on-exec); the caller closes it. Fails with a message that
// names the path when nothing listens there.
base::Result<int> unix_connect(const std::string& path);

class UnixListener {
 public:
  using Serve = std::function<void(int fd, const ucred& peer, int stop_fd)>;

  struct Options {
    std::string path;
    unsigned mode = 0600;
    std::size_t max_clients = 1;
    std::size_t max_per_uid = 0;  // 0: max_clients
    std::string busy_reply;  // sent to a connection over max_clients, then closed
    Serve serve;
  };

  static base::Result<std::unique_ptr<UnixListener>> start(Options options);
  // Stops accepting, signals stop_fd, waits for every handler, closes and removes the socket.
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  struct Impl;

 private:
  explicit UnixListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace petrel::app
