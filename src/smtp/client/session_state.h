// smtp/client/session_state.h: what one client connection holds, shared by session.cc (open,
// I/O, quit) and transaction.cc (send). Internal to the library; callers use session.h.
//
// Lifetime: held by a shared_ptr that the Session and the Deadline's watch coroutine share, so
// the watcher never outlives the stream it cancels. Thread: the session's executor only.
#pragma once

#include <string>

#include "net/input_buffer.h"
#include "net/stream.h"
#include "smtp/client/reply_parser.h"
#include "smtp/client/session.h"

namespace petrel::smtp::client {

// What came back when a reply was awaited (or a line written).
struct Got {
  enum Kind { kReply, kTimeout, kLost, kProtocol } kind = kReply;
  ParsedReply reply;   // kReply
  std::string detail;  // kProtocol: why; kLost: the error
  bool ok() const { return kind == kReply; }
};

class Session::State {
 public:
  State(const net::asio::any_io_executor& executor, std::string address, std::uint16_t port,
        std::string host_name, const SessionOptions& options);

  // Starts the deadline watcher (once); `self` is this State.
  void watch(const std::shared_ptr<State>& self);
  // Writes all of `data` within `timeout`. Refuses (kProtocol) when the server has sent
  // octets we did not ask for yet (RFC 5321 4.1.1: one reply per command), unless replies to
  // pipelined commands are still due (replies_pending).
  net::awaitable<Got> write(std::string_view data, Timeouts::duration timeout, bool replies_pending = false);
  // Reads one whole reply within `timeout`; an overlong reply is kProtocol.
  net::awaitable<Got> read_reply(Timeouts::duration timeout);
  // Closes the connection for good.
  void close();

  // A synthesized reply for a failure `got` (not kReply) while doing `what` ("RCPT", ...).
  mail::Reply failure_reply(const Got& got, std::string_view what) const;
  std::string peer() const;

  net::Stream stream;
  net::Deadline deadline;
  net::InputBuffer input{4096};
  ReplyParser parser;
  std::string address;
  std::uint16_t port;
  std::string host_name;
  SessionOptions options;
  Capabilities caps;
  bool usable = false;
  std::size_t transactions = 0;

 private:
  void disarm();
  bool watching_ = false;
};

}  // namespace petrel::smtp::client
