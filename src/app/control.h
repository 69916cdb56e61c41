// app/control.h: the control socket through which `petrel queue flush|hold|release|delete`
// reaches the running server.
//
// What it is: a Unix stream socket at <data_dir>/control.sock (mode 0600, owned by the server's
// user), served by app/unix_listener.h (at most kMaxControlClients requests at once). One request per connection: a single line
//   "flush" | "flush ID" | "hold ID|ALL" | "release ID|ALL" | "delete ID|ALL"
// answered with one line: "ok messages=N recipients=M" or "error TEXT".
// Promise: an "ok" is sent only once every state record the command wrote is durable
// (Scheduler::control). Only root and the server's own user may talk to it (SO_PEERCRED, on
// top of the file mode). A request line is at most kMaxRequest bytes and must arrive within
// a few seconds; anything else is refused and the connection closed.
// Not done here: the queue's logic (queue::Scheduler::control), reading the queue (the CLI
// reads the spool itself, read-only).
// Failure: start() fails when the socket cannot be created (path too long for sun_path, a
// permission problem); the server then runs without it and logs why.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "queue/scheduler.h"

namespace petrel::app {

inline constexpr std::size_t kMaxControlRequest = 256;
inline constexpr std::size_t kMaxControlClients = 4;

std::string control_socket_path(const std::string& data_dir);

class ControlServer {
 public:
  // Binds the socket (replacing a stale one: the caller holds the spool's lock, so no other
  // server uses this data dir) and starts serving. `scheduler` must outlive this object.
  static base::Result<std::unique_ptr<ControlServer>> start(const std::string& path, queue::Scheduler& scheduler);
  // Stops serving (waits for requests in progress), closes and removes the socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The client side, for the CLI: sends one request line and returns the answer line (without
// the newline). Fails when the server cannot be reached (not running) or does not answer in
// `timeout_seconds`.
base::Result<std::string> control_request(const std::string& path, const std::string& line, int timeout_seconds);

}  // namespace petrel::app
