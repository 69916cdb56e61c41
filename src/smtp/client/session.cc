// session.cc: connection set-up (greeting, EHLO/HELO, STARTTLS, AUTH), bounded I/O, QUIT.
#include "smtp/client/session.h"

// GCC 12 reports -Wmismatched-new-delete on Asio's coroutine frames (its own operator new and
// delete) in some coroutines: GCC bug 109224, a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <openssl/evp.h>

#include "base/log.h"
#include "base/strings.h"
#include "smtp/client/session_state.h"

namespace petrel::smtp::client {
namespace {

constexpr auto kIdle = std::chrono::hours(24 * 365);

std::string base64(std::string_view octets) {
  std::string out(4 * ((octets.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(octets.data()), static_cast<int>(octets.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

// RFC 5321 4.1.1.1 / RFC 1869 4.3: the EHLO reply's lines after the first are keywords with
// optional parameters. Only what the transaction needs is kept.
Capabilities parse_ehlo(const ParsedReply& reply) {
  Capabilities caps;
  caps.esmtp = true;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    std::string_view line = base::trim(reply.lines[i]);
    std::string_view keyword = line.substr(0, line.find(' '));
    std::string_view params = keyword.size() < line.size() ? base::trim(line.substr(keyword.size())) : "";
    if (base::iequals(keyword, "PIPELINING")) {
      caps.pipelining = true;
    } else if (base::iequals(keyword, "SIZE")) {
      caps.size = true;
      auto limit = base::parse_size(params);  // RFC 1870 4: absent or 0 = no fixed limit
      caps.size_limit = limit ? *limit : 0;
    } else if (base::iequals(keyword, "8BITMIME")) {
      caps.eight_bit_mime = true;
    } else if (base::iequals(keyword, "SMTPUTF8")) {
      caps.smtputf8 = true;
    } else if (base::iequals(keyword, "DSN")) {
      caps.dsn = true;
    } else if (base::iequals(keyword, "CHUNKING")) {
      caps.chunking = true;
    } else if (base::iequals(keyword, "STARTTLS")) {
      caps.starttls = true;
    } else if (base::iequals(keyword, "AUTH") || base::istarts_with(keyword, "AUTH=")) {
      // "AUTH=LOGIN PLAIN" is the pre-RFC 4954 form some old servers still send.
      if (keyword.size() > 5) params = base::trim(line.substr(5));
      while (!params.empty() && caps.auth.size() < 32) {
        std::string_view mech = params.substr(0, params.find(' '));
        if (!mech.empty()) {
          std::string upper(mech);
          for (char& c : upper) c = base::ascii_upper(c);
          caps.auth.push_back(std::move(upper));
        }
        params = base::trim(params.substr(mech.size()));
      }
    }
  }
  return caps;
}

bool offers(const Capabilities& caps, std::string_view mech) {
  for (const auto& m : caps.auth) {
    if (m == mech) return true;
  }
  return false;
}

}  // namespace

// ---- State: bounded reads and writes -------------------------------------------------------

Session::State::State(const net::asio::any_io_executor& executor, std::string address_in, std::uint16_t port_in,
                      std::string host_name_in, const SessionOptions& options_in)
    : stream(net::tcp::socket(executor)),
      deadline(executor),
      address(std::move(address_in)),
      port(port_in),
      host_name(std::move(host_name_in)),
      options(options_in) {}

void Session::State::watch(const std::shared_ptr<State>& self) {
  if (watching_) return;
  watching_ = true;
  disarm();
  // The coroutine holds `self`, so the stream it cancels lives as long as it runs.
  net::asio::co_spawn(
      stream.socket().get_executor(), [self]() -> net::awaitable<void> { co_await self->deadline.watch(self->stream); },
      net::asio::detached);
}

void Session::State::disarm() { deadline.expire_after(kIdle); }

void Session::State::close() {
  usable = false;
  stream.close();
  deadline.cancel();
}

std::string Session::State::peer() const {
  // A domain literal ("[192.0.2.1]", a smarthost given by address) names no host: show the
  // address, as Postfix logs relay=192.0.2.1[192.0.2.1], not the literal twice.
  bool literal = host_name.size() >= 2 && host_name.front() == '[' && host_name.back() == ']';
  std::string name = host_name.empty() ? std::string("unknown") : literal ? address : host_name;
  return name + "[" + address + "]";
}

net::awaitable<Got> Session::State::write(std::string_view data, Timeouts::duration timeout, bool replies_pending) {
  Got got;
  if (input.size() > 0 && !replies_pending) {
    got.kind = Got::kProtocol;
    got.detail = "unexpected data from the server before our command";
    co_return got;
  }
  deadline.expire_after(timeout);
  net::error_code ec = co_await stream.write(net::asio::buffer(data.data(), data.size()));
  disarm();
  if (ec) {
    got.kind = deadline.expired() ? Got::kTimeout : Got::kLost;
    got.detail = ec.message();
  }
  co_return got;
}

net::awaitable<Got> Session::State::read_reply(Timeouts::duration timeout) {
  Got got;
  deadline.expire_after(timeout);
  for (;;) {
    if (input.size() > 0) {
      std::size_t used = 0;
      auto status = parser.feed(input.unread(), &used);
      input.consume(used);
      if (status == ReplyParser::Status::kDone) {
        got.reply = parser.reply();
        if (got.reply.overlong) {
          got.kind = Got::kProtocol;
          got.detail = "reply line longer than 4096 octets";
        }
        break;
      }
      if (status == ReplyParser::Status::kMalformed) {
        got.kind = Got::kProtocol;
        got.detail = parser.error();
        break;
      }
    }
    auto [ec, n] = co_await stream.read_some(net::asio::buffer(input.write_ptr(), input.write_space()));
    if (ec) {
      got.kind = deadline.expired() ? Got::kTimeout : Got::kLost;
      got.detail = ec.message();
      break;
    }
    input.commit(n);
  }
  disarm();
  co_return got;
}

mail::Reply Session::State::failure_reply(const Got& got, std::string_view what) const {
  switch (got.kind) {
    case Got::kTimeout:
      return mail::reply(421, "4.4.2", fmt::format("conversation with {} timed out {}", peer(), what));
    case Got::kProtocol:
      return mail::reply(421, "4.5.0",
                         fmt::format("protocol error from {} {}: {}", peer(), what, base::log_escape(got.detail)));
    case Got::kLost:
    case Got::kReply:
      break;
  }
  return mail::reply(421, "4.4.2", fmt::format("lost connection with {} {}", peer(), what));
}

// ---- open: greeting, EHLO, STARTTLS, AUTH ---------------------------------------------------

namespace {

using State = Session::State;
using OpenResult = std::variant<std::unique_ptr<Session>, OpenFailure>;

OpenFailure failure(State& s, std::string stage, mail::Reply reply, bool from_server, std::string detail) {
  PETREL_LOG(kInfo, "smtp.client.open_failed", "peer={} stage={} reply=\"{} {} {}\" detail={}", s.peer(), stage,
             reply.code, reply.enhanced, base::log_escape(reply.text), base::log_escape(detail));
  s.close();
  OpenFailure f;
  f.reply = std::move(reply);
  f.stage = std::move(stage);
  f.detail = std::move(detail);
  f.from_server = from_server;
  return f;
}

OpenFailure io_failure(State& s, std::string stage, const Got& got, const std::string& what) {
  return failure(s, std::move(stage), s.failure_reply(got, what), false, got.detail);
}

// The server's refusal. A 2xx/3xx where a refusal was expected is a reply out of place: a
// protocol error, never a "positive" failure the caller could misread.
OpenFailure server_failure(State& s, std::string stage, const Got& got) {
  if (got.reply.code < 400) {
    Got odd = got;
    odd.kind = Got::kProtocol;
    odd.detail = fmt::format("unexpected reply {} at {}", got.reply.code, stage);
    return io_failure(s, std::move(stage), odd, "during " + stage);
  }
  return failure(s, std::move(stage), got.reply.to_reply(), true, "");
}

// EHLO, or HELO when EHLO gets a 5xx (RFC 5321 4.1.4 / 3.2). Sets s.caps. nullopt on success.
net::awaitable<std::optional<OpenFailure>> hello(State& s) {
  const auto& t = s.options.timeouts;
  Got got = co_await s.write("EHLO " + s.options.helo_name + "\r\n", t.ehlo);
  if (got.ok()) got = co_await s.read_reply(t.ehlo);
  if (!got.ok()) co_return io_failure(s, "ehlo", got, "while receiving the reply to EHLO");
  if (got.reply.code / 100 == 2) {
    s.caps = parse_ehlo(got.reply);
    co_return std::nullopt;
  }
  if (got.reply.code / 100 != 5) co_return server_failure(s, "ehlo", got);
  got = co_await s.write("HELO " + s.options.helo_name + "\r\n", t.ehlo);
  if (got.ok()) got = co_await s.read_reply(t.ehlo);
  if (!got.ok()) co_return io_failure(s, "ehlo", got, "while receiving the reply to HELO");
  if (got.reply.code / 100 != 2) co_return server_failure(s, "ehlo", got);
  s.caps = Capabilities{};
  co_return std::nullopt;
}

// RFC 3207. nullopt when the session may go on (encrypted, or plain where policy allows).
net::awaitable<std::optional<OpenFailure>> starttls(State& s) {
  const auto& o = s.options;
  if (o.tls == TlsPolicy::kNone) co_return std::nullopt;
  bool required = o.tls == TlsPolicy::kRequired;
  if (!o.tls_context || !s.caps.starttls) {
    if (!required) co_return std::nullopt;
    co_return failure(s, "starttls",
                      mail::reply(454, "4.7.5", fmt::format("TLS is required, but {} does not offer STARTTLS", s.peer())),
                      false, o.tls_context ? "" : "no client TLS context");
  }
  Got got = co_await s.write("STARTTLS\r\n", o.timeouts.starttls);
  if (got.ok()) got = co_await s.read_reply(o.timeouts.starttls);
  if (!got.ok()) co_return io_failure(s, "starttls", got, "while receiving the reply to STARTTLS");
  if (got.reply.code != 220) {
    // The session is still in its plain state; opportunistic TLS goes on without it.
    if (!required && got.reply.code / 100 != 2 && got.reply.code != 421) co_return std::nullopt;
    co_return server_failure(s, "starttls", got);
  }
  // RFC 3207 4.2 / CVE-2021-33515 class: nothing read before the handshake may be taken as part
  // of the protected session.
  if (s.input.size() > 0) {
    PETREL_LOG(kWarn, "smtp.client.starttls_injection", "peer={} discarded={}", s.peer(), s.input.size());
    s.input.clear();
  }
  s.deadline.expire_after(o.timeouts.starttls);
  std::string name = o.tls_name.empty() ? s.host_name : o.tls_name;
  // A domain literal ("[192.0.2.1]", a smarthost given by address) is checked as that address.
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = s.address;
  net::error_code ec = co_await s.stream.start_tls_client(*o.tls_context, name);
  bool expired = s.deadline.expired();
  s.deadline.expire_after(kIdle);
  if (ec) {
    auto f = failure(s, "starttls",
                     mail::reply(454, "4.7.5", fmt::format("TLS handshake with {} failed{}", s.peer(),
                                                           expired ? " (timeout)" : "")),
                     false, ec.message());
    f.tls_failed = true;
    co_return f;
  }
  // RFC 3207 4.2: forget what was learnt in plain text; ask again.
  s.caps = Capabilities{};
  co_return co_await hello(s);
}

// RFC 4954 with PLAIN (RFC 4616) or LOGIN. nullopt on success or when no AUTH is asked for.
net::awaitable<std::optional<OpenFailure>> authenticate(State& s) {
  const auto& o = s.options;
  if (o.auth_user.empty()) co_return std::nullopt;
  if (!s.stream.is_tls() && !o.allow_plain_auth) {
    co_return failure(s, "auth", mail::reply(454, "4.7.0", "credentials are sent over TLS only"), false,
                      "no TLS with " + s.peer());
  }
  const auto& t = o.timeouts.auth;
  Got got;
  if (offers(s.caps, "PLAIN")) {
    std::string response = base64(std::string(1, '\0') + o.auth_user + std::string(1, '\0') + o.auth_password);
    got = co_await s.write("AUTH PLAIN " + response + "\r\n", t);
    if (got.ok()) got = co_await s.read_reply(t);
    if (got.ok() && got.reply.code == 334) {  // a server that wants the response on its own line
      got = co_await s.write(response + "\r\n", t);
      if (got.ok()) got = co_await s.read_reply(t);
    }
  } else if (offers(s.caps, "LOGIN")) {
    got = co_await s.write("AUTH LOGIN\r\n", t);
    if (got.ok()) got = co_await s.read_reply(t);
    if (got.ok() && got.reply.code == 334) {
      got = co_await s.write(base64(o.auth_user) + "\r\n", t);
      if (got.ok()) got = co_await s.read_reply(t);
    }
    if (got.ok() && got.reply.code == 334) {
      got = co_await s.write(base64(o.auth_password) + "\r\n", t);
      if (got.ok()) got = co_await s.read_reply(t);
    }
  } else {
    co_return failure(s, "auth", mail::reply(454, "4.7.0", fmt::format("{} offers neither AUTH PLAIN nor LOGIN", s.peer())),
                      false, "");
  }
  if (!got.ok()) co_return io_failure(s, "auth", got, "while authenticating");
  if (got.reply.code != 235) {
    // A 334 here is a third challenge nobody asked for: cancel and give up.
    if (got.reply.code == 334) (void)co_await s.write("*\r\n", t);
    co_return server_failure(s, "auth", got);
  }
  co_return std::nullopt;
}

}  // namespace

Session::Session(std::shared_ptr<State> state) : state_(std::move(state)) {}

Session::~Session() { state_->close(); }

net::awaitable<OpenResult> Session::open(net::asio::any_io_executor executor, std::string address, std::uint16_t port,
                                         std::string host_name, const SessionOptions& options) {
  auto state = std::make_shared<State>(executor, std::move(address), port, std::move(host_name), options);
  State& s = *state;
  const auto& t = s.options.timeouts;

  // Connect.
  net::error_code ec;
  auto ip = net::asio::ip::make_address(s.address, ec);
  if (ec) co_return failure(s, "connect", mail::reply(421, "4.4.1", "bad address " + s.peer()), false, ec.message());
  s.watch(state);
  s.deadline.expire_after(t.connect);
  auto [cec] = co_await s.stream.socket().async_connect(net::tcp::endpoint(ip, s.port), net::use_nothrow);
  bool expired = s.deadline.expired();
  s.deadline.expire_after(kIdle);
  if (cec) {
    co_return failure(s, "connect",
                      mail::reply(421, "4.4.1", fmt::format("connect to {}:{} failed{}", s.peer(), s.port,
                                                            expired ? ": timed out" : "")),
                      false, cec.message());
  }
  net::error_code nodelay_ec;
  s.stream.socket().set_option(net::tcp::no_delay(true), nodelay_ec);

  // Greeting (RFC 5321 3.1): 220, or a refusal we report as given.
  Got got = co_await s.read_reply(t.greeting);
  if (!got.ok()) co_return io_failure(s, "greeting", got, "while receiving the initial server greeting");
  if (got.reply.code != 220) {
    (void)co_await s.write("QUIT\r\n", std::chrono::seconds(1));
    co_return server_failure(s, "greeting", got);
  }

  if (auto f = co_await hello(s)) co_return std::move(*f);
  if (auto f = co_await starttls(s)) co_return std::move(*f);
  if (auto f = co_await authenticate(s)) co_return std::move(*f);

  s.usable = true;
  PETREL_LOG(kDebug, "smtp.client.open", "peer={} tls={} pipelining={}", s.peer(), s.stream.is_tls(),
             s.caps.pipelining);
  co_return std::unique_ptr<Session>(new Session(std::move(state)));
}

net::awaitable<void> Session::quit() {
  State& s = *state_;
  if (s.stream.is_open() && s.usable) {
    s.usable = false;
    Got got = co_await s.write("QUIT\r\n", s.options.timeouts.quit);
    if (got.ok()) (void)co_await s.read_reply(s.options.timeouts.quit);
  }
  s.close();
}

const Capabilities& Session::capabilities() const { return state_->caps; }
bool Session::usable() const { return state_->usable; }
bool Session::tls() const { return state_->stream.is_tls(); }
std::string Session::tls_description() const { return state_->stream.tls_description(); }
std::string Session::peer() const { return state_->peer(); }
std::size_t Session::transactions() const { return state_->transactions; }

}  // namespace petrel::smtp::client
