// smtp/client/fake_server_testing.h: a scripted SMTP server on 127.0.0.1 (ephemeral port), run
// in-process on the test's io_context, for the client's unit tests. Test-only.
//
// It answers from defaults (220 greeting, EHLO from `ehlo`, 250 to MAIL/RCPT/RSET, 354 to DATA,
// `data_reply` to the final dot), unless `script` returns something for a command line. A
// reply may be kSilent (say nothing) or end with kClose (say the rest, then close).
// It records every command line, how many command lines arrived in each read (pipelining),
// the raw DATA text of each message (still dot-stuffed; BDAT chunks joined), whether TLS
// was on, and the most connections open at once (one counts until its QUIT arrives or it
// ends). BDAT chunks get "250 chunk ok" (or script("BDAT-CHUNK")), the LAST one script(".")
// or data_reply. `data_reply_delay` holds that answer to the end of the data back, to keep
// transactions open for a while.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/stream.h"
#include "net/tls.h"

namespace petrel::smtp::client::testing {

inline const std::string kSilent = "<silent>";
inline const std::string kClose = "<close>";

class FakeServer {
 public:
  explicit FakeServer(net::asio::io_context& io)
      : acceptor_(io, net::tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0)) {}

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start() { net::asio::co_spawn(acceptor_.get_executor(), accept_loop(), net::asio::detached); }
  void stop() {
    net::error_code ec;
    acceptor_.close(ec);
  }

  // Behaviour.
  std::string greeting = "220 fake.test ESMTP\r\n";
  std::string ehlo = "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";
  std::string ehlo_after_tls;  // empty = same as ehlo
  std::string data_reply = "250 2.0.0 queued\r\n";
  std::string starttls_reply = "220 2.0.0 ready\r\n";  // the bytes sent before the handshake
  std::shared_ptr<net::asio::ssl::context> tls;        // set to offer a working handshake
  std::function<std::string(const std::string& line)> script;  // empty string = default
  std::chrono::milliseconds data_reply_delay{0};  // before answering the final dot / BDAT LAST

  // Records.
  std::vector<std::string> commands;
  std::vector<int> batches;  // command lines per read
  std::vector<std::string> bodies;
  std::vector<bool> body_tls;
  int connections = 0;
  int open_connections = 0;      // now
  int max_open_connections = 0;  // the most at any moment

 private:
  std::string answer(const std::string& line, bool in_tls) {
    if (script) {
      std::string r = script(line);
      if (!r.empty()) return r;
    }
    std::string verb = line.substr(0, line.find(' '));
    for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (verb == "EHLO") return in_tls && !ehlo_after_tls.empty() ? ehlo_after_tls : ehlo;
    if (verb == "HELO") return "250 fake.test\r\n";
    if (verb == "MAIL") return "250 2.1.0 ok\r\n";
    if (verb == "RCPT") return "250 2.1.5 ok\r\n";
    if (verb == "DATA") return "354 go ahead\r\n";
    if (verb == "RSET") return "250 2.0.0 reset\r\n";
    if (verb == "QUIT") return "221 2.0.0 bye\r\n";
    if (verb == "STARTTLS") return starttls_reply;
    return "502 5.5.2 what\r\n";
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(net::use_nothrow);
      if (ec) co_return;
      ++connections;
      net::asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), net::asio::detached);
    }
  }

  // Counts a connection as open from its first moment until its QUIT arrives or it ends: a
  // client that has the 221 may open its next connection before this coroutine ends.
  struct OpenCount {
    explicit OpenCount(FakeServer& s) : server(s) {
      server.max_open_connections = std::max(server.max_open_connections, ++server.open_connections);
    }
    ~OpenCount() { end(); }
    void end() {
      if (counted) --server.open_connections;
      counted = false;
    }
    FakeServer& server;
    bool counted = true;
  };

  net::awaitable<void> delay_data_reply() {
    if (data_reply_delay.count() <= 0) co_return;
    net::asio::steady_timer timer(acceptor_.get_executor(), data_reply_delay);
    (void)co_await timer.async_wait(net::use_nothrow);
  }

  net::awaitable<void> serve(net::tcp::socket socket) {
    OpenCount open(*this);
    net::Stream st(std::move(socket));
    if (co_await send(st, greeting)) co_return;
    std::string buf;
    std::string body;
    bool in_data = false;
    bool in_bdat = false;  // reading a BDAT chunk's octets
    bool bdat_last = false;
    std::size_t bdat_left = 0;
    char tmp[8192];
    for (;;) {
      auto [ec, n] = co_await st.read_some(net::asio::buffer(tmp, sizeof tmp));
      if (ec) co_return;
      buf.append(tmp, n);
      int lines = 0;
      std::string out;
      std::size_t pos;
      for (;;) {
        // RFC 3030: a BDAT chunk is octets, not lines.
        if (in_bdat) {
          std::size_t take = std::min(bdat_left, buf.size());
          body.append(buf, 0, take);
          buf.erase(0, take);
          bdat_left -= take;
          if (bdat_left > 0) break;
          in_bdat = false;
          std::string r = "250 2.0.0 chunk ok\r\n";
          if (bdat_last) {
            bodies.push_back(body);
            body_tls.push_back(st.is_tls());
            body.clear();
            co_await delay_data_reply();
            r = script ? script(".") : "";
            if (r.empty()) r = data_reply;
          } else if (script) {
            std::string scripted = script("BDAT-CHUNK");
            if (!scripted.empty()) r = scripted;
          }
          if (r == kClose) co_return;
          if (r != kSilent) out += r;
          continue;
        }
        if ((pos = buf.find("\r\n")) == std::string::npos) break;
        std::string line = buf.substr(0, pos);
        buf.erase(0, pos + 2);
        if (in_data) {
          if (line == ".") {
            in_data = false;
            bodies.push_back(body);
            body_tls.push_back(st.is_tls());
            co_await delay_data_reply();
            std::string r = script ? script(".") : "";
            if (r.empty()) r = data_reply;
            if (r == kClose) co_return;
            if (r != kSilent) out += r;
          } else {
            body += line + "\r\n";
          }
          continue;
        }
        if (lines++ == 0) batches.push_back(0);
        ++batches.back();
        commands.push_back(line);
        if (line == "QUIT") open.end();
        if (line.rfind("BDAT ", 0) == 0) {
          bdat_left = std::stoul(line.substr(5));
          bdat_last = line.find(" LAST") != std::string::npos;
          in_bdat = true;
          continue;  // the reply comes when the chunk is complete
        }
        if (line.rfind("MAIL", 0) == 0) body.clear();  // a new transaction
        std::string r = answer(line, st.is_tls());
        if (r.ends_with(kClose)) {  // "354 go\r\n" + kClose: say it, then hang up
          (void)co_await send(st, out + r.substr(0, r.size() - kClose.size()));
          st.close();
          co_return;
        }
        if (r == kSilent) continue;
        out += r;
        if (line == "DATA" && r.rfind("354", 0) == 0) {
          in_data = true;
          body.clear();
        }
        if (line == "STARTTLS" && r.rfind("220", 0) == 0) {
          if (co_await send(st, out)) co_return;
          out.clear();
          buf.clear();
          if (!tls) {  // a broken handshake: say something that is not TLS and hang up
            (void)co_await send(st, "this is not TLS\r\n");
            st.close();
            co_return;
          }
          if (co_await st.start_tls(*tls)) co_return;
        }
        if (line == "QUIT") {
          (void)co_await send(st, out);
          st.close();
          co_return;
        }
      }
      if (!out.empty() && co_await send(st, out)) co_return;
    }
  }

  static net::awaitable<bool> send(net::Stream& st, const std::string& data) {
    if (data.empty()) co_return false;
    auto ec = co_await st.write(net::asio::buffer(data));
    co_return static_cast<bool>(ec);
  }

  net::tcp::acceptor acceptor_;
};

}  // namespace petrel::smtp::client::testing
