#include "smtp/client/session.h"

#include <gtest/gtest.h>

#include "base/temp_dir_testing.h"
#include "smtp/client/fake_server_testing.h"

namespace petrel::smtp::client {
namespace {

using testing::FakeServer;
using testing::kClose;
using testing::kSilent;
using namespace std::chrono_literals;

using OpenResult = std::variant<std::unique_ptr<Session>, OpenFailure>;

mail::Envelope envelope(int recipients = 2) {
  mail::Envelope env;
  env.sender = mail::Address{"alice", "example.org"};
  for (int i = 0; i < recipients; ++i) {
    mail::Recipient r;
    r.address = mail::Address{"rcpt" + std::to_string(i), "example.net"};
    r.notify = mail::kNotifyFailure;
    r.orcpt_type = "rfc822";
    r.orcpt = r.address.str();
    env.recipients.push_back(r);
  }
  env.body = mail::BodyType::k8BitMime;
  env.ret = mail::DsnRet::kHeaders;
  env.envid = "E1";
  return env;
}

// A body source over a string, read in small pieces so chunk boundaries vary.
struct Body {
  std::string text;
  std::size_t at = 0;
  std::size_t piece = 7;
  bool header_utf8 = false;  // passed as Transaction::header_utf8
  std::function<base::Result<std::size_t>(char*, std::size_t)> reader() {
    return [this](char* out, std::size_t cap) -> base::Result<std::size_t> {
      std::size_t n = std::min({cap, piece, text.size() - at});
      std::memcpy(out, text.data() + at, n);
      at += n;
      return n;
    };
  }
};

Transaction transaction(const mail::Envelope& env, Body& body) {
  Transaction tx;
  tx.envelope = &env;
  for (std::uint32_t i = 0; i < env.recipients.size(); ++i) tx.recipients.push_back(i);
  tx.body_size = body.text.size();
  tx.read_body = body.reader();
  tx.header_utf8 = body.header_utf8;
  return tx;
}

SessionOptions options() {
  SessionOptions o;
  o.helo_name = "petrel.test";
  o.tls = TlsPolicy::kNone;
  o.timeouts.greeting = o.timeouts.ehlo = o.timeouts.mail = o.timeouts.rcpt = o.timeouts.data_init =
      o.timeouts.data_done = o.timeouts.starttls = o.timeouts.auth = o.timeouts.rset = 10s;  // loaded machines
  return o;
}

class SessionTest : public ::testing::Test {
 protected:
  // Runs `client` against the server until it returns (bounded to 20 s).
  void run(std::function<net::awaitable<void>()> client) {
    server.start();
    bool finished = false;
    net::asio::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          co_await client();
          finished = true;
          server.stop();
        },
        net::asio::detached);
    io.run_for(20s);
    ASSERT_TRUE(finished) << "client did not finish";
  }

  net::awaitable<OpenResult> open(const SessionOptions& o) {
    co_return co_await Session::open(io.get_executor(), "127.0.0.1", server.port(), "mx.fake.test", o);
  }

  // Opens, sends one transaction, quits; fills `result` (or `failure`).
  void deliver(const SessionOptions& o, const mail::Envelope& env, Body& body) {
    run([&]() -> net::awaitable<void> {
      auto opened = co_await open(o);
      if (auto* f = std::get_if<OpenFailure>(&opened)) {
        failure = *f;
        co_return;
      }
      auto& s = std::get<0>(opened);
      caps = s->capabilities();
      tls = s->tls();
      result = co_await s->send(transaction(env, body));
      usable_after = s->usable();
      co_await s->quit();
    });
  }

  net::asio::io_context io;
  FakeServer server{io};
  std::optional<OpenFailure> failure;
  TransactionResult result;
  Capabilities caps;
  bool tls = false;
  bool usable_after = false;
};

std::size_t count(const std::vector<std::string>& lines, std::string_view prefix) {
  std::size_t n = 0;
  for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

// For tests that loop over variants, each against a server of its own: starts `srv`, opens a
// session with `o` and, when `env` is given, sends one transaction and quits (bounded to 20 s).
struct OneShot {
  std::optional<OpenFailure> failure;
  TransactionResult result;
};
OneShot deliver_once(net::asio::io_context& io, FakeServer& srv, const SessionOptions& o,
                     const mail::Envelope* env = nullptr, Body* body = nullptr) {
  OneShot out;
  srv.start();
  net::asio::co_spawn(io, [&]() -> net::awaitable<void> {
    auto opened = co_await Session::open(io.get_executor(), "127.0.0.1", srv.port(), "mx", o);
    if (auto* f = std::get_if<OpenFailure>(&opened)) {
      out.failure = *f;
    } else if (env) {
      auto& s = std::get<0>(opened);
      out.result = co_await s->send(transaction(*env, *body));
      co_await s->quit();
    }
    srv.stop();
  }, net::asio::detached);
  io.run_for(20s);
  return out;
}

// ---- the transaction ----------------------------------------------------------------------

TEST_F(SessionTest, PipelinedTransactionSendsOneGroupAndStuffsTheBody) {
  auto env = envelope(2);
  Body body{"Subject: x\n.hidden\r\n..two\rend"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure) << failure->reply.text;
  ASSERT_EQ(result.recipients.size(), 2u);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 250);
    EXPECT_EQ(r.reply.enhanced, "2.0.0");
    EXPECT_EQ(r.reply.text, "queued");
    EXPECT_TRUE(r.from_server);
  }
  EXPECT_TRUE(result.connection_usable);
  // EHLO alone, then MAIL + 2 RCPT + DATA in one read, then QUIT.
  ASSERT_GE(server.batches.size(), 3u);
  EXPECT_EQ(server.batches[1], 4);
  // SIZE and BODY were offered; DSN was not, so no RET/ENVID/NOTIFY/ORCPT.
  EXPECT_EQ(server.commands[1], "MAIL FROM:<alice@example.org> SIZE=29 BODY=8BITMIME");
  EXPECT_EQ(server.commands[2], "RCPT TO:<rcpt0@example.net>");
  ASSERT_EQ(server.bodies.size(), 1u);
  EXPECT_EQ(server.bodies[0], "Subject: x\r\n..hidden\r\n...two\r\nend\r\n");
  EXPECT_EQ(server.commands.back(), "QUIT");
}

TEST_F(SessionTest, WithoutPipeliningOneCommandAtATimeAndPerRecipientReplies) {
  server.ehlo = "250-fake.test\r\n250 DSN\r\n";
  server.script = [](const std::string& line) -> std::string {
    if (line.rfind("RCPT TO:<rcpt1@", 0) == 0) return "550-5.1.1 no such\r\n550 5.1.1 user\r\n";
    return "";
  };
  auto env = envelope(3);
  Body body{"hello\r\n"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  for (int b : server.batches) EXPECT_EQ(b, 1);
  ASSERT_EQ(result.recipients.size(), 3u);
  EXPECT_EQ(result.recipients[0].reply.code, 250);
  EXPECT_EQ(result.recipients[1].index, 1u);
  EXPECT_EQ(result.recipients[1].reply.code, 550);
  EXPECT_EQ(result.recipients[1].reply.enhanced, "5.1.1");
  EXPECT_EQ(result.recipients[1].reply.text, "no such user");
  EXPECT_EQ(result.recipients[2].reply.code, 250);
  // DSN offered: RET/ENVID on MAIL, NOTIFY/ORCPT on RCPT; no SIZE or BODY (not offered).
  EXPECT_EQ(server.commands[1], "MAIL FROM:<alice@example.org> RET=HDRS ENVID=E1");
  EXPECT_EQ(server.commands[2], "RCPT TO:<rcpt0@example.net> NOTIFY=FAILURE ORCPT=rfc822;rcpt0@example.net");
}

TEST_F(SessionTest, EveryRecipientRefusedWithoutPipeliningSendsNoData) {
  server.ehlo = "250 fake.test\r\n";
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("RCPT", 0) == 0 ? "451 4.7.1 later\r\n" : "";
  };
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(count(server.commands, "DATA"), 0u);
  EXPECT_TRUE(server.bodies.empty());
  for (const auto& r : result.recipients) EXPECT_EQ(r.reply.code, 451);
  EXPECT_TRUE(result.connection_usable);
}

TEST_F(SessionTest, EveryRecipientRefusedPipelinedAndDataAcceptedSendsOnlyTheDot) {
  server.script = [](const std::string& line) -> std::string {
    if (line.rfind("RCPT", 0) == 0) return "550 5.1.1 no\r\n";
    if (line == ".") return "554 5.5.1 no valid recipients\r\n";
    return "";
  };
  auto env = envelope(2);
  Body body{"secret body\r\n"};
  deliver(options(), env, body);
  ASSERT_EQ(server.bodies.size(), 1u);
  EXPECT_EQ(server.bodies[0], "");
  for (const auto& r : result.recipients) EXPECT_EQ(r.reply.code, 550);
  EXPECT_TRUE(result.connection_usable);
  EXPECT_EQ(server.commands.back(), "QUIT");
}

TEST_F(SessionTest, MailRefusedAnswersForEveryone) {
  server.script = [](const std::string& line) -> std::string {
    if (line.rfind("MAIL", 0) == 0) return "553 5.7.1 sender refused\r\n";
    if (line.rfind("RCPT", 0) == 0) return "503 5.5.1 need MAIL\r\n";
    if (line == "DATA") return "503 5.5.1 need RCPT\r\n";
    return "";
  };
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 553);
    EXPECT_EQ(r.reply.text, "sender refused");
  }
  EXPECT_TRUE(result.connection_usable);
  EXPECT_TRUE(server.bodies.empty());
}

TEST_F(SessionTest, DataReplyGoesToEveryAcceptedRecipient) {
  for (std::string reply : {"451 4.3.0 try later\r\n", "552 5.3.4 too big\r\n", "554 5.7.1 spam\r\n"}) {
    SCOPED_TRACE(reply);
    net::asio::io_context io2;
    FakeServer srv(io2);
    srv.data_reply = reply;
    srv.script = [](const std::string& line) -> std::string {
      return line.rfind("RCPT TO:<rcpt0@", 0) == 0 ? "550 5.1.1 gone\r\n" : "";
    };
    auto env = envelope(3);
    Body body{"x\r\n"};
    TransactionResult res = deliver_once(io2, srv, options(), &env, &body).result;
    ASSERT_EQ(res.recipients.size(), 3u);
    EXPECT_EQ(res.recipients[0].reply.code, 550);
    EXPECT_EQ(res.recipients[1].reply.code, std::stoi(reply.substr(0, 3)));
    EXPECT_EQ(res.recipients[2].reply.code, std::stoi(reply.substr(0, 3)));
    EXPECT_TRUE(res.connection_usable);
  }
}

TEST_F(SessionTest, SizeLimitBelowTheMessageSendsNothing) {
  server.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
  auto env = envelope(2);
  Body body{std::string(101, 'x')};
  deliver(options(), env, body);
  EXPECT_EQ(caps.size_limit, 100u);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 552);
    EXPECT_EQ(r.reply.enhanced, "5.3.4");
    EXPECT_FALSE(r.from_server);
  }
  EXPECT_TRUE(result.connection_usable);
}

TEST_F(SessionTest, Smtputf8MessageToAServerWithoutItSendsNothing) {
  auto env = envelope(1);
  env.smtputf8 = true;
  env.recipients[0].address.local = "j\xc3\xb6rg";
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
  ASSERT_EQ(result.recipients.size(), 1u);
  EXPECT_EQ(result.recipients[0].reply.code, 553);
  EXPECT_EQ(result.recipients[0].reply.enhanced, "5.6.7");
  EXPECT_TRUE(result.connection_usable);
}

TEST_F(SessionTest, Smtputf8FlagWithAsciiAddressesGoesWithoutIt) {
  auto env = envelope(1);
  env.smtputf8 = true;  // the client said SMTPUTF8, but nothing in the envelope needs it
  Body body{"x\r\n"};
  deliver(options(), env, body);
  ASSERT_GE(server.commands.size(), 2u);
  EXPECT_EQ(server.commands[1].find("SMTPUTF8"), std::string::npos) << server.commands[1];
  ASSERT_EQ(result.recipients.size(), 1u);
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(SessionTest, Smtputf8MessageWithUtf8HeaderTextToAServerWithoutItSendsNothing) {
  auto env = envelope(2);
  env.smtputf8 = true;  // ASCII addresses, but the header has UTF-8 (as the caller found)
  Body body{"Subject: J\xc3\xb6rg\r\n\r\nx\r\n"};
  body.header_utf8 = true;
  deliver(options(), env, body);
  ASSERT_EQ(result.recipients.size(), 2u);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 553);
    EXPECT_EQ(r.reply.enhanced, "5.6.7");
    EXPECT_FALSE(r.from_server);
  }
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
  EXPECT_TRUE(usable_after);
}

TEST_F(SessionTest, Smtputf8PassedOnWhenOffered) {
  server.ehlo = "250-fake.test\r\n250 SMTPUTF8\r\n";
  auto env = envelope(1);
  env.smtputf8 = true;
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(server.commands[1], "MAIL FROM:<alice@example.org> SMTPUTF8");
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(SessionTest, CrLfInTheEnvelopeIsNeverSent) {
  auto env = envelope(2);
  env.recipients[1].address.local = "evil\r\nRCPT TO:<x@y>";
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
  EXPECT_EQ(count(server.commands, "RCPT"), 0u);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_TRUE(r.reply.temporary());
  }
  EXPECT_TRUE(result.connection_usable);
}

TEST_F(SessionTest, NoRecipientsNoConversation) {
  auto env = envelope(1);
  Body body{"x\r\n"};
  run([&]() -> net::awaitable<void> {
    auto opened = co_await open(options());
    auto& s = std::get<0>(opened);
    auto tx = transaction(env, body);
    tx.recipients.clear();
    result = co_await s->send(tx);
    co_await s->quit();
  });
  EXPECT_TRUE(result.recipients.empty());
  EXPECT_TRUE(result.connection_usable);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
}

TEST_F(SessionTest, ReuseSendsRsetAndCountsTransactions) {
  auto env = envelope(1);
  Body a{"one\r\n"}, b{"two\r\n"};
  std::size_t transactions = 0;
  TransactionResult second;
  run([&]() -> net::awaitable<void> {
    auto opened = co_await open(options());
    auto& s = std::get<0>(opened);
    result = co_await s->send(transaction(env, a));
    second = co_await s->send(transaction(env, b));
    transactions = s->transactions();
    co_await s->quit();
  });
  EXPECT_EQ(server.connections, 1);
  EXPECT_EQ(transactions, 2u);
  EXPECT_EQ(server.bodies, (std::vector<std::string>{"one\r\n", "two\r\n"}));
  EXPECT_EQ(count(server.commands, "RSET"), 1u);
  EXPECT_EQ(second.recipients[0].reply.code, 250);
  // RSET went in the same pipelined group as MAIL, RCPT and DATA.
  EXPECT_EQ(server.batches[2], 4);
}

TEST_F(SessionTest, StaleReusedConnectionIsALostConnection) {
  // The server gave up on the idle connection ("421 idle timeout" to the RSET).
  server.script = [](const std::string& line) -> std::string {
    return line == "RSET" ? "421 4.4.2 idle timeout\r\n" + kClose : "";
  };
  auto env = envelope(1);
  Body a{"one\r\n"}, b{"two\r\n"};
  TransactionResult second;
  run([&]() -> net::awaitable<void> {
    auto opened = co_await open(options());
    auto& s = std::get<0>(opened);
    result = co_await s->send(transaction(env, a));
    second = co_await s->send(transaction(env, b));
  });
  EXPECT_EQ(result.recipients[0].reply.code, 250);
  EXPECT_EQ(second.recipients[0].reply.code, 421);
  EXPECT_EQ(second.recipients[0].reply.enhanced, "4.4.2");
  EXPECT_FALSE(second.recipients[0].from_server);
  EXPECT_FALSE(second.connection_usable);
  EXPECT_EQ(server.bodies.size(), 1u);
}

TEST_F(SessionTest, EhloKeywordsAreReadWhateverTheirCase) {
  server.ehlo = "250-fake.test\r\n250-pipelining\r\n250-size\r\n250-AUTH=LOGIN\r\n250-Dsn\r\n250 smtputf8\r\n";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_TRUE(caps.size);
  EXPECT_EQ(caps.size_limit, 0u);
  EXPECT_TRUE(caps.dsn);
  EXPECT_TRUE(caps.smtputf8);
  EXPECT_EQ(caps.auth, std::vector<std::string>{"LOGIN"});
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(SessionTest, ResetAfter354IsATemporaryFailureForEveryone) {
  server.script = [](const std::string& line) -> std::string {
    return line == "DATA" ? "354 go\r\n" + kClose : "";
  };
  auto env = envelope(2);
  Body body{std::string(100000, 'x') + "\r\n"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 421);
    EXPECT_EQ(r.reply.enhanced, "4.4.2");
    EXPECT_FALSE(r.from_server);
  }
  EXPECT_FALSE(result.connection_usable);
  EXPECT_FALSE(usable_after);
}

TEST_F(SessionTest, SilenceAfterTheDotIsATemporaryFailure) {
  server.data_reply = kSilent;
  auto o = options();
  o.timeouts.data_done = 300ms;
  auto env = envelope(2);
  Body body{"x\r\n"};
  auto start = std::chrono::steady_clock::now();
  deliver(o, env, body);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(server.bodies.size(), 1u);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 421);
    EXPECT_NE(r.reply.text.find("timed out"), std::string::npos) << r.reply.text;
  }
  EXPECT_FALSE(result.connection_usable);
  EXPECT_LT(took, 5s);
}

TEST_F(SessionTest, LostConnectionAtRcptKeepsEarlierAnswers) {
  server.ehlo = "250 fake.test\r\n";
  server.script = [](const std::string& line) -> std::string {
    if (line.rfind("RCPT TO:<rcpt0@", 0) == 0) return "550 5.1.1 gone\r\n";
    if (line.rfind("RCPT TO:<rcpt1@", 0) == 0) return kClose;
    return "";
  };
  auto env = envelope(3);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(result.recipients[0].reply.code, 550);
  EXPECT_EQ(result.recipients[1].reply.code, 421);
  EXPECT_EQ(result.recipients[2].reply.code, 421);
  EXPECT_NE(result.recipients[2].reply.text.find("lost connection"), std::string::npos);
  EXPECT_FALSE(result.connection_usable);
}

TEST_F(SessionTest, BodyReadErrorClosesWithoutTheDot) {
  auto env = envelope(1);
  Body body{"x\r\n"};
  TransactionResult res;
  run([&]() -> net::awaitable<void> {
    auto opened = co_await open(options());
    auto& s = std::get<0>(opened);
    auto tx = transaction(env, body);
    tx.read_body = [](char*, std::size_t) -> base::Result<std::size_t> { return base::temporary_error("disk"); };
    res = co_await s->send(tx);
  });
  EXPECT_EQ(res.recipients[0].reply.code, 451);
  EXPECT_EQ(res.recipients[0].reply.enhanced, "4.3.0");
  EXPECT_FALSE(res.connection_usable);
  EXPECT_TRUE(server.bodies.empty());
}

TEST_F(SessionTest, LargeBodyIsStreamedInPiecesAndArrivesIntact) {
  std::string text;
  std::uint32_t x = 12345;
  for (int i = 0; i < 300000; ++i) {
    x = x * 1103515245 + 12345;
    const char pick[] = {'.', '\r', '\n', 'a', 'b', 'c', ' ', 'z'};
    text.push_back(pick[(x >> 16) % 8]);
  }
  Body body{text};
  body.piece = 5000;
  auto env = envelope(1);
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  EXPECT_EQ(result.recipients[0].reply.code, 250);
  ASSERT_EQ(server.bodies.size(), 1u);
  // The fake keeps the stuffed lines; un-stuff and compare with the normalised input.
  std::string normal, unstuffed;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      normal += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      normal += "\r\n";
    } else {
      normal.push_back(text[i]);
    }
  }
  if (normal.size() < 2 || normal.compare(normal.size() - 2, 2, "\r\n") != 0) normal += "\r\n";
  std::string_view wire = server.bodies[0];
  for (std::size_t i = 0; i < wire.size();) {
    std::size_t end = wire.find("\r\n", i);
    ASSERT_NE(end, std::string_view::npos);
    std::string_view line = wire.substr(i, end - i);
    if (!line.empty() && line[0] == '.') {
      ASSERT_EQ(line.substr(0, 2), "..");
      line.remove_prefix(1);
    }
    unstuffed += line;
    unstuffed += "\r\n";
    i = end + 2;
  }
  EXPECT_TRUE(unstuffed == normal);
}

TEST_F(SessionTest, MalformedReplyMidTransactionIsTemporaryAndEndsTheConnection) {
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("RCPT TO:<rcpt1@", 0) == 0 ? "25O ok\r\n" : "";
  };
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  EXPECT_EQ(result.recipients[0].reply.code, 421);  // accepted, but no final answer
  EXPECT_EQ(result.recipients[1].reply.code, 421);
  EXPECT_EQ(result.recipients[1].reply.enhanced, "4.5.0");
  EXPECT_FALSE(result.connection_usable);
  EXPECT_TRUE(server.bodies.empty());
}

TEST_F(SessionTest, SkippedPipelinedReplyIsNotTakenForTheNextOne) {
  // The server says nothing to the second RCPT but answers DATA: the 354 arrives where the
  // RCPT reply belongs. It must not become that recipient's result.
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("RCPT TO:<rcpt1@", 0) == 0 ? kSilent : "";
  };
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  for (const auto& r : result.recipients) {
    EXPECT_EQ(r.reply.code, 421);
    EXPECT_EQ(r.reply.enhanced, "4.5.0");
    EXPECT_FALSE(r.from_server);
  }
  EXPECT_FALSE(result.connection_usable);
  EXPECT_TRUE(server.bodies.empty());
}

TEST_F(SessionTest, SilenceAtRcptTimesOut) {
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("RCPT TO:<rcpt1@", 0) == 0 || line == "DATA" ? kSilent : "";
  };
  auto o = options();
  o.timeouts.rcpt = 200ms;
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(o, env, body);
  EXPECT_EQ(result.recipients[0].reply.code, 421);
  EXPECT_EQ(result.recipients[1].reply.code, 421);
  EXPECT_NE(result.recipients[1].reply.text.find("timed out"), std::string::npos);
  EXPECT_FALSE(result.connection_usable);
}

// ---- CHUNKING (RFC 3030) -------------------------------------------------------------------

std::string big_body(std::size_t size) {
  std::string text;
  std::uint32_t x = 777;
  const char pick[] = {'.', '\r', '\n', 'a', 'b', 'c', ' ', 'z'};
  for (std::size_t i = 0; i < size; ++i) {
    x = x * 1103515245 + 12345;
    text.push_back(pick[(x >> 16) % 8]);
  }
  return text;
}

// The input with line ends made CRLF and a final CRLF (what BDAT must carry, unstuffed).
std::string normalised(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(text[i]);
    }
  }
  if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0)) out += "\r\n";
  return out;
}

TEST_F(SessionTest, ChunkingSendsBdatLastWithoutStuffing) {
  server.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  auto env = envelope(2);
  Body body{"Subject: x\n.hidden\r\n..two\rend"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  for (const auto& r : result.recipients) EXPECT_EQ(r.reply.code, 250);
  EXPECT_TRUE(result.connection_usable);
  EXPECT_EQ(count(server.commands, "DATA"), 0u);
  std::string expect = "Subject: x\r\n.hidden\r\n..two\r\nend\r\n";
  EXPECT_EQ(count(server.commands, "BDAT " + std::to_string(expect.size()) + " LAST"), 1u);
  ASSERT_EQ(server.bodies.size(), 1u);
  EXPECT_EQ(server.bodies[0], expect);
}

TEST_F(SessionTest, ChunkingLargeBodyInManyChunksPipelinedOrNot) {
  for (bool pipelining : {true, false}) {
    SCOPED_TRACE(pipelining);
    net::asio::io_context io2;
    FakeServer srv(io2);
    srv.ehlo = pipelining ? "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n" : "250-fake.test\r\n250 CHUNKING\r\n";
    auto env = envelope(1);
    std::string text = big_body(1000000);
    Body body{text};
    body.piece = 10000;
    TransactionResult res = deliver_once(io2, srv, options(), &env, &body).result;
    ASSERT_EQ(res.recipients.size(), 1u);
    EXPECT_EQ(res.recipients[0].reply.code, 250);
    EXPECT_TRUE(res.connection_usable);
    EXPECT_GT(count(srv.commands, "BDAT"), 20u);
    EXPECT_EQ(count(srv.commands, "DATA"), 0u);
    ASSERT_EQ(srv.bodies.size(), 1u);
    EXPECT_TRUE(srv.bodies[0] == normalised(text));
  }
}

TEST_F(SessionTest, RefusedChunkEndsTheBodyAndAnswersForTheAccepted) {
  server.ehlo = "250-fake.test\r\n250 CHUNKING\r\n";
  server.script = [](const std::string& line) -> std::string {
    if (line == "BDAT-CHUNK") return "452 4.3.1 disk full\r\n";
    if (line.rfind("RCPT TO:<rcpt0@", 0) == 0) return "550 5.1.1 gone\r\n";
    return "";
  };
  auto env = envelope(2);
  Body body{big_body(200000)};
  body.piece = 16384;
  deliver(options(), env, body);
  EXPECT_EQ(result.recipients[0].reply.code, 550);
  EXPECT_EQ(result.recipients[1].reply.code, 452);
  EXPECT_TRUE(result.recipients[1].from_server);
  EXPECT_TRUE(result.connection_usable);
  EXPECT_EQ(count(server.commands, "BDAT"), 1u);  // no chunk after the refused one
  EXPECT_TRUE(server.bodies.empty());
}

TEST_F(SessionTest, ChunkingWithEveryRecipientRefusedSendsNoChunk) {
  server.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("RCPT", 0) == 0 ? "550 5.1.1 no\r\n" : "";
  };
  auto env = envelope(2);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  EXPECT_EQ(count(server.commands, "BDAT"), 0u);
  EXPECT_EQ(count(server.commands, "DATA"), 0u);
  for (const auto& r : result.recipients) EXPECT_EQ(r.reply.code, 550);
  EXPECT_TRUE(result.connection_usable);
}

TEST_F(SessionTest, ChunkingCanBeTurnedOff) {
  server.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  auto o = options();
  o.use_chunking = false;
  auto env = envelope(1);
  Body body{".x\r\n"};
  deliver(o, env, body);
  EXPECT_EQ(count(server.commands, "BDAT"), 0u);
  EXPECT_EQ(count(server.commands, "DATA"), 1u);
  ASSERT_EQ(server.bodies.size(), 1u);
  EXPECT_EQ(server.bodies[0], "..x\r\n");
}

// ---- opening ------------------------------------------------------------------------------

TEST_F(SessionTest, Greeting421IsAnOpenFailureWithTheServersReply) {
  server.greeting = "421 4.3.2 busy\r\n";
  auto env = envelope(1);
  Body body{"x"};
  deliver(options(), env, body);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->stage, "greeting");
  EXPECT_EQ(failure->reply.code, 421);
  EXPECT_EQ(failure->reply.text, "busy");
  EXPECT_TRUE(failure->from_server);
}

TEST_F(SessionTest, EhloRefusedFallsBackToHelo) {
  server.script = [](const std::string& line) -> std::string {
    return line.rfind("EHLO", 0) == 0 ? "502 5.5.1 no ESMTP\r\n" : "";
  };
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(options(), env, body);
  ASSERT_FALSE(failure);
  EXPECT_FALSE(caps.esmtp);
  EXPECT_EQ(server.commands[1], "HELO petrel.test");
  EXPECT_EQ(server.commands[2], "MAIL FROM:<alice@example.org>");
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(SessionTest, ConnectRefusedIsATemporaryOpenFailure) {
  std::uint16_t port = server.port();
  server.stop();
  std::optional<OpenFailure> f;
  net::asio::co_spawn(io, [&]() -> net::awaitable<void> {
    auto opened = co_await Session::open(io.get_executor(), "127.0.0.1", port, "mx", options());
    if (auto* p = std::get_if<OpenFailure>(&opened)) f = *p;
  }, net::asio::detached);
  io.run_for(10s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->stage, "connect");
  EXPECT_EQ(f->reply.code, 421);
  EXPECT_EQ(f->reply.enhanced, "4.4.1");
  EXPECT_FALSE(f->from_server);
}

struct Hostile {
  const char* name;
  std::string greeting;
  std::string ehlo;
  const char* stage;
};

class HostileReplies : public SessionTest, public ::testing::WithParamInterface<Hostile> {};

TEST_P(HostileReplies, AreTemporaryOpenFailures) {
  server.greeting = GetParam().greeting;
  server.ehlo = GetParam().ehlo;
  auto o = options();
  o.timeouts.greeting = o.timeouts.ehlo = 1s;  // only SilentGreeting waits it out
  auto env = envelope(1);
  Body body{"x"};
  deliver(o, env, body);
  ASSERT_TRUE(failure) << GetParam().name;
  EXPECT_EQ(failure->stage, GetParam().stage);
  EXPECT_TRUE(failure->reply.temporary()) << failure->reply.code;
  EXPECT_FALSE(failure->from_server);
  EXPECT_LE(failure->reply.text.size(), 512u);
}

std::string endless_continuation() {
  std::string s;
  for (int i = 0; i < 500; ++i) s += "250-KEYWORD" + std::to_string(i) + "\r\n";
  return s + "250 END\r\n";
}

INSTANTIATE_TEST_SUITE_P(
    SessionTest, HostileReplies,
    ::testing::Values(Hostile{"WrongCode", "220 hi\r\n", "250-a\r\n251 b\r\n", "ehlo"},
                      Hostile{"NoCode", "hello there\r\n", "", "greeting"},
                      Hostile{"EndlessContinuation", "220 hi\r\n", endless_continuation(), "ehlo"},
                      Hostile{"HugeLine", "220 " + std::string(100000, 'x') + "\r\n", "", "greeting"},
                      Hostile{"BytesAfterTheGreeting", "220 hi\r\n250 extra\r\n", "250 ok\r\n", "ehlo"},
                      Hostile{"SilentGreeting", kSilent, "", "greeting"},
                      Hostile{"PositiveButWrongGreeting", "250 hi\r\n", "", "greeting"},
                      Hostile{"IntermediateReplyToEhlo", "220 hi\r\n", "354 what\r\n", "ehlo"}),
    [](const ::testing::TestParamInfo<Hostile>& p) { return std::string(p.param.name); });

// ---- STARTTLS and AUTH --------------------------------------------------------------------

class TlsTest : public SessionTest {
 protected:
  void SetUp() override {
    auto ctx = net::make_server_tls_context(net::TlsSettings{}, dir.path(), "mx.fake.test");
    ASSERT_TRUE(ctx);
    server_tls = *ctx;
    auto client = net::make_client_tls_context(net::ClientTlsSettings{});
    ASSERT_TRUE(client);
    client_tls = *client;
    server.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
    server.ehlo_after_tls = "250-fake.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n";
  }
  SessionOptions tls_options(TlsPolicy policy) {
    auto o = options();
    o.tls = policy;
    o.tls_context = client_tls.get();
    return o;
  }
  base::testing::TempDir dir{"petrel-client-tls"};
  std::shared_ptr<net::asio::ssl::context> server_tls, client_tls;
};

TEST_F(TlsTest, OpportunisticStartTlsThenEhloAgainWithNewCapabilities) {
  server.tls = server_tls;
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(tls_options(TlsPolicy::kOpportunistic), env, body);
  ASSERT_FALSE(failure) << failure->reply.text;
  EXPECT_TRUE(tls);
  EXPECT_TRUE(caps.pipelining);
  EXPECT_FALSE(caps.starttls);
  EXPECT_EQ(count(server.commands, "EHLO"), 2u);
  ASSERT_EQ(server.body_tls.size(), 1u);
  EXPECT_TRUE(server.body_tls[0]);
}

TEST_F(TlsTest, InjectedReplyAfterStartTlsIsDiscarded) {
  server.tls = server_tls;
  server.starttls_reply = "220 2.0.0 ready\r\n250 injected\r\n";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(tls_options(TlsPolicy::kOpportunistic), env, body);
  ASSERT_FALSE(failure) << failure->reply.text;
  EXPECT_TRUE(tls);
  // Had "250 injected" been read as the reply to the second EHLO, PIPELINING would be missing
  // and the replies after it off by one.
  EXPECT_TRUE(caps.pipelining);
  EXPECT_EQ(result.recipients[0].reply.code, 250);
  EXPECT_EQ(result.recipients[0].reply.text, "queued");
}

TEST_F(TlsTest, OpportunisticWithoutOfferGoesOnInPlainText) {
  server.ehlo = "250 fake.test\r\n";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(tls_options(TlsPolicy::kOpportunistic), env, body);
  ASSERT_FALSE(failure);
  EXPECT_FALSE(tls);
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(TlsTest, StartTlsRefusedGoesOnInPlainTextOnlyWhenOpportunistic) {
  server.starttls_reply = "454 4.7.0 TLS not available\r\n";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(tls_options(TlsPolicy::kOpportunistic), env, body);
  ASSERT_FALSE(failure);
  EXPECT_FALSE(tls);
  EXPECT_EQ(result.recipients[0].reply.code, 250);

  failure.reset();
  net::asio::io_context io2;
  FakeServer srv(io2);
  srv.ehlo = server.ehlo;
  srv.starttls_reply = server.starttls_reply;
  failure = deliver_once(io2, srv, tls_options(TlsPolicy::kRequired)).failure;
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->stage, "starttls");
  EXPECT_EQ(failure->reply.code, 454);
  EXPECT_TRUE(failure->from_server);
  EXPECT_FALSE(failure->tls_failed);
}

TEST_F(TlsTest, RequiredWithoutOfferFails475) {
  server.ehlo = "250 fake.test\r\n";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(tls_options(TlsPolicy::kRequired), env, body);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->stage, "starttls");
  EXPECT_EQ(failure->reply.code, 454);
  EXPECT_EQ(failure->reply.enhanced, "4.7.5");
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
}

TEST_F(TlsTest, HandshakeFailureIsMarkedForAPlainRetry) {
  // server.tls unset: the fake answers 220 and then speaks plain text.
  for (auto policy : {TlsPolicy::kOpportunistic, TlsPolicy::kRequired}) {
    failure.reset();
    net::asio::io_context io2;
    FakeServer srv(io2);
    srv.ehlo = server.ehlo;
    failure = deliver_once(io2, srv, tls_options(policy)).failure;
    ASSERT_TRUE(failure);
    EXPECT_EQ(failure->stage, "starttls");
    EXPECT_TRUE(failure->tls_failed);
    EXPECT_EQ(failure->reply.code, 454);
    EXPECT_EQ(count(srv.commands, "MAIL"), 0u);
  }
}

TEST_F(TlsTest, VerifyingContextRefusesAnUnknownCertificate) {
  server.tls = server_tls;
  auto verifying = net::make_client_tls_context(net::ClientTlsSettings{true, ""});
  ASSERT_TRUE(verifying);
  auto o = tls_options(TlsPolicy::kRequired);
  o.tls_context = verifying->get();
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(o, env, body);
  ASSERT_TRUE(failure);
  EXPECT_TRUE(failure->tls_failed);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
}

TEST_F(TlsTest, AuthPlainOverTls) {
  server.tls = server_tls;
  // base64("\0user\0secret")
  server.script = [](const std::string& line) -> std::string {
    if (line.rfind("AUTH", 0) != 0) return "";
    return line == "AUTH PLAIN AHVzZXIAc2VjcmV0" ? "235 2.7.0 ok\r\n" : "535 5.7.8 bad\r\n";
  };
  auto o = tls_options(TlsPolicy::kRequired);
  o.auth_user = "user";
  o.auth_password = "secret";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(o, env, body);
  ASSERT_FALSE(failure) << failure->reply.text;
  EXPECT_EQ(result.recipients[0].reply.code, 250);
}

TEST_F(TlsTest, AuthLoginWhenPlainIsNotOfferedAndFailureIsReported) {
  server.ehlo = "250-fake.test\r\n250 AUTH LOGIN\r\n";
  server.script = [](const std::string& line) -> std::string {
    if (line == "AUTH LOGIN") return "334 VXNlcm5hbWU6\r\n";
    if (line == "dXNlcg==") return "334 UGFzc3dvcmQ6\r\n";
    if (line == "d3Jvbmc=") return "535 5.7.8 bad credentials\r\n";
    return "";
  };
  auto o = options();
  o.auth_user = "user";
  o.auth_password = "wrong";
  o.allow_plain_auth = true;
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(o, env, body);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->stage, "auth");
  EXPECT_EQ(failure->reply.code, 535);
  EXPECT_TRUE(failure->from_server);
  EXPECT_EQ(count(server.commands, "MAIL"), 0u);
}

TEST_F(TlsTest, AuthIsWithheldWithoutTls) {
  server.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
  auto o = options();
  o.auth_user = "user";
  o.auth_password = "secret";
  auto env = envelope(1);
  Body body{"x\r\n"};
  deliver(o, env, body);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->stage, "auth");
  EXPECT_EQ(count(server.commands, "AUTH"), 0u);
}

}  // namespace
}  // namespace petrel::smtp::client
