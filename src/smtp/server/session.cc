// session.cc: the session loop, the command table, replies and deadlines.
#include "smtp/server/session.h"

#include <algorithm>
#include <atomic>

#include "base/assert.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::smtp::server {

using State = Session::State;
using Next = Session::Next;

namespace {

constexpr std::size_t kInputBufferSize = 4096;
constexpr auto kGoodbyeTimeout = std::chrono::milliseconds(10000);

std::atomic<std::uint64_t> g_session_counter{0};

// The states a command is allowed in, as a bit set.
constexpr unsigned bit(State s) { return 1u << static_cast<unsigned>(s); }
constexpr unsigned kAnyState = bit(State::kConnected) | bit(State::kGreeted) | bit(State::kMail) |
                               bit(State::kRcpt) | bit(State::kChunking);

}  // namespace

// OpenSMTPD-style command table: verb, the states it may run in, its handler, and the reply
// when it comes out of order (RFC 5321 4.1.4 and 3.3 → 503 5.5.1).
struct CommandTable {
  struct Row {
    mail::Verb verb;
    unsigned allowed;
    Next (Session::*handle)(std::string_view);
    const char* out_of_order;
  };
  static constexpr Row kRows[] = {
      {mail::Verb::kEhlo, kAnyState, &Session::handle_ehlo, nullptr},
      {mail::Verb::kHelo, kAnyState, &Session::handle_helo, nullptr},
      {mail::Verb::kMail, bit(State::kGreeted), &Session::handle_mail, nullptr},  // message depends on state
      {mail::Verb::kRcpt, bit(State::kMail) | bit(State::kRcpt), &Session::handle_rcpt, "Need MAIL before RCPT"},
      {mail::Verb::kData, bit(State::kRcpt), &Session::handle_data, nullptr},
      {mail::Verb::kBdat, kAnyState, &Session::handle_bdat, nullptr},  // checks after consuming the chunk
      {mail::Verb::kRset, kAnyState, &Session::handle_rset, nullptr},
      {mail::Verb::kNoop, kAnyState, &Session::handle_noop, nullptr},
      {mail::Verb::kQuit, kAnyState, &Session::handle_quit, nullptr},
      {mail::Verb::kVrfy, kAnyState, &Session::handle_vrfy, nullptr},
      {mail::Verb::kExpn, kAnyState, &Session::handle_expn, nullptr},
      {mail::Verb::kHelp, kAnyState, &Session::handle_help, nullptr},
      {mail::Verb::kStartTls, bit(State::kConnected) | bit(State::kGreeted), &Session::handle_starttls,
       "STARTTLS not allowed during a mail transaction"},
      // RFC 4954 4: AUTH after EHLO, not during a mail transaction.
      {mail::Verb::kAuth, bit(State::kGreeted), &Session::handle_auth, nullptr},
  };

  static const Row* find(mail::Verb verb) {
    for (const auto& row : kRows) {
      if (row.verb == verb) return &row;
    }
    return nullptr;
  }

  // The 503 text for a verb used in the wrong state.
  static const char* out_of_order(const Row& row, State state) {
    if (row.out_of_order) return row.out_of_order;
    switch (row.verb) {
      case mail::Verb::kMail:
        return state == State::kConnected ? "Send EHLO or HELO first" : "Nested MAIL command";
      case mail::Verb::kAuth:
        return state == State::kConnected ? "Send EHLO first" : "AUTH not allowed during a mail transaction";
      case mail::Verb::kData:
        if (state == State::kChunking) return "DATA not allowed after BDAT";
        return state == State::kMail ? "Need RCPT before DATA" : "Need MAIL and RCPT before DATA";
      default:
        return "Bad sequence of commands";
    }
  }
};

Session::Session(SessionContext& ctx, const config::ListenerConfig& listener, net::tcp::socket socket,
                 std::unique_ptr<ConnectionSlot> slot)
    : ctx_(ctx),
      listener_(listener),
      limits_(ctx.config.smtp),
      stream_(std::move(socket)),
      deadline_(stream_.socket().get_executor()),
      slot_(std::move(slot)),
      // RFC 4954 4: AUTH responses of 12,288 octets must fit, where AUTH may be offered.
      in_(std::max({kInputBufferSize, limits_.max_line_length + 2,
                    auth_configured() ? auth::kMaxResponseLength + 2 : std::size_t{0}})) {
  net::error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = net::asio::ip::make_address_v4(net::asio::ip::v4_mapped, addr.to_v6());
    client_ip_ = addr.to_string();
    std::uint8_t bytes[16] = {};
    if (addr.is_v4()) {
      bytes[10] = bytes[11] = 0xff;
      auto b = addr.to_v4().to_bytes();
      std::memcpy(bytes + 12, b.data(), 4);
    } else {
      auto b = addr.to_v6().to_bytes();
      std::memcpy(bytes, b.data(), 16);
    }
    for (const auto& net : limits_.trusted_networks) trusted_ = trusted_ || config::network_contains(net, bytes);
  }
  PETREL_ASSERT(ctx_.policy, "a session needs its policy chain");
  session_id_ = fmt::format("s{:x}", g_session_counter.fetch_add(1, std::memory_order_relaxed));
}

Session::~Session() {
  if (tx_.writer) tx_.writer->abort();
}

void Session::start(std::shared_ptr<Session> session) {
  auto ex = session->stream_.socket().get_executor();
  // The watcher and the session coroutine each hold the session alive (see session.h).
  net::asio::co_spawn(
      ex, [](std::shared_ptr<Session> s) -> net::awaitable<void> { co_await s->deadline_.watch(s->stream_); }(session),
      net::asio::detached);
  net::asio::co_spawn(
      ex, [](std::shared_ptr<Session> s) -> net::awaitable<void> { co_await s->run(); }(std::move(session)),
      net::asio::detached);
}

net::awaitable<void> Session::run() {
  PETREL_LOG(kInfo, "smtp.connect", "session={} listener={} client={} tls={}", session_id_, listener_.name,
             client_ip_, listener_.kind == config::ListenerKind::kSubmissions ? "implicit" : "no");

  // RFC 8314 3.3: implicit TLS starts with the handshake, before any SMTP.
  bool alive = true;
  if (listener_.kind == config::ListenerKind::kSubmissions) alive = co_await start_tls();

  // Early talkers (RFC 5321 4.3.1: the client waits for the greeting): anything already
  // readable when the greeting is due is a protocol violation, typical of spam bots.
  if (alive && !stream_.is_tls()) {
    if (limits_.banner_delay.count() > 0) {
      net::asio::steady_timer pause(stream_.socket().get_executor(), limits_.banner_delay);
      co_await pause.async_wait(net::use_nothrow);
    }
    if (stream_.available() > 0) {
      send(554, "5.5.0", "Protocol error: data sent before the greeting");
      co_await flush();
      alive = false;
    }
  }
  // Policy at connect (policy/README.md): a refusal replaces the banner and ends the session.
  if (alive) {
    verb_ = "(connect)";
    auto context = policy_context(policy::Stage::kConnect);
    auto decision = co_await await_policy(context);
    if (refused(decision)) {
      alive = false;
    } else {
      connect_headers_ = std::move(decision.headers);
    }
  }
  if (alive) {
    send(220, "", ctx_.config.server.hostname + " ESMTP Petrel");
    bool skipping = false;  // discarding the rest of an over-long line
    while (alive) {
      std::string_view line;
      if (skipping) {
        skipping = !in_.skip_line();
      }
      auto status = skipping ? net::InputBuffer::LineStatus::kNeedMore : in_.next_line(limits_.max_line_length, line);
      if (status == net::InputBuffer::LineStatus::kNeedMore) {
        if (!co_await flush() || !co_await read_more(limits_.command_timeout)) break;
        continue;
      }
      Next next = Next::kContinue;
      if (status == net::InputBuffer::LineStatus::kTooLong) {
        // RFC 5321 4.5.3.1.4: 512 octets per command line including CRLF.
        verb_ = "(long line)";
        send(500, "5.5.2", "Line too long");
        skipping = !in_.skip_line();
        if (count_error()) next = Next::kClose;
      } else {
        dispatch_line(line, next);
      }
      switch (next) {
        case Next::kContinue:
          break;
        case Next::kClose:
          alive = false;
          break;
        case Next::kData:
          alive = co_await receive_data();
          break;
        case Next::kBdat:
          alive = co_await receive_bdat_chunk();
          break;
        case Next::kStartTls:
          alive = co_await start_tls();
          break;
        case Next::kAuth:
          alive = co_await authenticate();
          break;
        case Next::kPolicy:
          alive = co_await run_policy();
          break;
      }
    }
  }

  // Goodbye: a timed-out session hears why (RFC 5321 4.5.3.2), then everything is closed.
  if (deadline_.expired() && stream_.is_open()) {
    send(421, "4.4.2", ctx_.config.server.hostname + " Timeout, closing connection");
  }
  // The session is over: its connection slot is free before the last reply goes out, so a
  // client that reconnects as soon as it reads 221 is not counted twice.
  slot_.reset();
  if (stream_.is_open()) co_await flush(kGoodbyeTimeout);
  reset_transaction();
  deadline_.cancel();
  stream_.close();
  PETREL_LOG(kInfo, "smtp.disconnect", "session={} client={} messages={} errors={} replies=2xx:{},3xx:{},4xx:{},5xx:{}{}",
             session_id_, client_ip_, messages_, errors_, replies_by_class_[0], replies_by_class_[1],
             replies_by_class_[2], replies_by_class_[3], deadline_.expired() ? " timeout=yes" : "");
}

void Session::dispatch_line(std::string_view line, Next& next) {
  // A command line is text: NUL or a lone CR inside it is never valid (RFC 5321 2.3.8).
  if (line.find('\0') != std::string_view::npos || line.find('\r') != std::string_view::npos) {
    verb_ = "(invalid)";
    send(500, "5.5.2", "Invalid characters in command");
    if (count_error()) next = Next::kClose;
    return;
  }
  auto cmd = mail::split_command(line);
  verb_ = cmd.verb_text;
  const CommandTable::Row* row = CommandTable::find(cmd.verb);
  if (!row) {
    send(500, "5.5.2", "Command unrecognized");
    if (count_error()) next = Next::kClose;
    return;
  }
  if (!(row->allowed & bit(state_))) {
    send(503, "5.5.1", CommandTable::out_of_order(*row, state_));
    if (count_error()) next = Next::kClose;
    return;
  }
  next = (this->*(row->handle))(cmd.args);
  if (next == Next::kContinue && errors_ >= limits_.max_errors) next = Next::kClose;
}

bool Session::count_error() {
  if (++errors_ < limits_.max_errors) return false;
  send(421, "4.7.0", ctx_.config.server.hostname + " Too many errors, closing connection");
  return true;
}

void Session::send(int code, std::string_view enhanced, std::string_view text) {
  send(mail::reply(code, enhanced, text));
}

void Session::send(const mail::Reply& reply) {
  out_ += reply.render();
  if (reply.code >= 200 && reply.code < 600) ++replies_by_class_[reply.code / 100 - 2];
  if (reply.code >= 400) log_reply(reply);
}

void Session::log_reply(const mail::Reply& reply) {
  PETREL_LOG(kInfo, "smtp.reject", "session={} client={} command={} code={} status={} text=\"{}\"", session_id_,
             client_ip_, base::log_escape(verb_, 16), reply.code, reply.enhanced, base::log_escape(reply.text));
}

net::awaitable<bool> Session::flush(std::optional<std::chrono::milliseconds> timeout) {
  if (out_.empty()) co_return stream_.is_open();
  deadline_.expire_after(timeout ? std::min(*timeout, limits_.command_timeout) : limits_.command_timeout);
  auto ec = co_await stream_.write(net::asio::buffer(out_));
  out_.clear();
  if (out_.capacity() > 4096) out_.shrink_to_fit();
  co_return !ec;
}

net::awaitable<bool> Session::read_more(std::chrono::milliseconds timeout) {
  // write_ptr() first: it compacts, so the space that lines already handled occupied is
  // reusable. Asking write_space() before that saw a full buffer whenever a pipelined batch
  // (RFC 2920) filled it and ended in a partial line, and the session ended mid-batch.
  char* dst = in_.write_ptr();
  std::size_t space = in_.write_space();
  if (space == 0) co_return false;  // cannot happen: lines are bounded below capacity
  deadline_.expire_after(timeout);
  auto [ec, n] = co_await stream_.read_some(net::asio::buffer(dst, space));
  if (ec || n == 0) co_return false;
  in_.commit(n);
  co_return true;
}

net::awaitable<bool> Session::start_tls() {
  if (!ctx_.tls) co_return false;
  // RFC 3207 5 / CVE-2011-0411: plaintext that arrived after STARTTLS must not be read as if it
  // came over TLS.
  if (in_.size() > 0) {
    PETREL_LOG(kWarn, "smtp.starttls_injection", "session={} client={} discarded={}", session_id_, client_ip_,
               in_.size());
    in_.clear();
  }
  if (!co_await flush()) co_return false;
  deadline_.expire_after(limits_.command_timeout);
  auto ec = co_await stream_.start_tls(*ctx_.tls);
  if (ec) {
    PETREL_LOG(kInfo, "smtp.tls_failed", "session={} client={} error=\"{}\"", session_id_, client_ip_,
               base::log_escape(ec.message()));
    // No TLS session means no channel for a goodbye: a 421 would either be plaintext inside a
    // handshake or block in SSL_write until another timeout, holding the connection slot.
    stream_.close();
    co_return false;
  }
  // RFC 3207 4.2: forget everything learnt before the handshake, authentication included
  // (RFC 4954 4).
  reset_transaction();
  auth_user_.clear();
  state_ = State::kConnected;
  esmtp_ = false;
  helo_.clear();
  helo_headers_.clear();
  PETREL_LOG(kInfo, "smtp.tls", "session={} client={} tls=\"{}\"", session_id_, client_ip_, stream_.tls_description());
  co_return true;
}

void Session::reset_transaction() {
  if (tx_.writer) tx_.writer->abort();
  tx_ = Transaction{};
  if (state_ != State::kConnected) state_ = State::kGreeted;
}

mail::Extensions Session::extensions() const {
  mail::Extensions ext;
  if (!esmtp_) {
    ext.size = ext.eight_bit_mime = ext.smtputf8 = ext.dsn = false;
    return ext;
  }
  ext.max_size = limits_.max_message_size;
  ext.auth = auth_offered();
  return ext;
}

}  // namespace petrel::smtp::server
