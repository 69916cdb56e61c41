// RemoteTransport over a real spool, a fake resolver and scripted SMTP servers on 127.0.0.1:
// connection reuse, batching, MX order and fallback, route failures, per-recipient replies,
// the connection limits, SIZE, IPv6 to IPv4 fallback.
// (The integration tests run the whole binary against python fake DNS and SMTP servers.)
#include "delivery/remote_transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "dns/fake_resolver.h"
#include "queue/intake_impl.h"
#include "queue/spool_test_util.h"
#include "smtp/client/fake_server_testing.h"

namespace petrel::delivery {
namespace {

using namespace std::chrono_literals;
using queue::RecipientResult;
using Outcome = RecipientResult::Outcome;
using smtp::client::testing::FakeServer;

class RemoteTransportTest : public queue::testing::QuietLogs {
 protected:
  void SetUp() override {
    QuietLogs::SetUp();
    if (std::getenv("PETREL_TEST_LOGS")) (void)base::log::init(base::log::Level::kDebug, "");
    auto spool = queue::Spool::open(dir_.path(), config::QueueConfig{}, queue::Spool::Mode::kWritable);
    ASSERT_TRUE(spool) << spool.error().message;
    spool_ = std::move(spool).value();
    auto intake = queue::IntakeImpl::create(*spool_, clock_);
    ASSERT_TRUE(intake) << intake.error().message;
    intake_ = std::move(intake).value();
    options_.hostname = "petrel.test";
    options_.tls = TlsLevel::kNone;
    options_.connect_timeout = 2s;
    options_.command_timeout = 2s;
    options_.data_timeout = 2s;
    options_.idle_time = 500ms;
    server_.start();
    server_thread_ = std::thread([this] { io_.run_for(60s); });
    options_.port = server_.port();
    // The fake zone: example.net's MX is this machine's fake server.
    zone_ = [](dns::FakeResolver& r) {
      r.set_mx("example.net", {{10, "mx.example.net"}});
      r.set_addresses("mx.example.net", dns::Type::kA, {"127.0.0.1"});
      r.set_status("mx.example.net", dns::Type::kAaaa, dns::Status::kNoData);
    };
  }
  void TearDown() override {
    transport_.reset();
    net::asio::post(io_, [this] { server_.stop(); });
    io_.stop();
    server_thread_.join();
    QuietLogs::TearDown();
  }

  RemoteTransport& transport() {
    if (!transport_) {
      auto zone = zone_;
      auto t = RemoteTransport::create(*spool_, options_, [zone](boost::asio::any_io_executor ex)
                                           -> base::Result<std::unique_ptr<dns::Resolver>> {
        auto r = std::make_unique<dns::FakeResolver>(ex);
        zone(*r);
        return std::unique_ptr<dns::Resolver>(std::move(r));
      });
      EXPECT_TRUE(t) << t.error().message;
      transport_ = std::move(t).value();
    }
    return *transport_;
  }

  queue::StoredMessage store(const std::vector<std::string>& recipients, std::string body = "Subject: t\r\n\r\nhello\r\n.dot\r\n") {
    mail::Envelope e;
    e.sender = {"alice", "example.org"};
    for (const auto& r : recipients) {
      auto a = mail::parse_address(r);
      EXPECT_TRUE(a) << r;
      e.recipients.push_back(mail::Recipient{*a, mail::kNotifyUnspecified, "", ""});
    }
    e.received_at = 1767225600;
    std::string id = queue::testing::put_message(*intake_, e, body);
    auto m = spool_->find(id);
    EXPECT_TRUE(m && *m);
    return **m;
  }

  // Delivers every recipient of `m` and waits (bounded) for the answer.
  std::vector<RecipientResult> deliver(const queue::StoredMessage& m) {
    queue::DeliveryJob job{m, {}};
    for (std::uint32_t i = 0; i < m.envelope.recipients.size(); ++i) job.recipients.push_back(i);
    auto p = std::make_shared<std::promise<std::vector<RecipientResult>>>();
    auto f = p->get_future();
    transport().deliver(job, [p](std::vector<RecipientResult> r) { p->set_value(std::move(r)); });
    if (f.wait_for(30s) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within 30 s";
      std::abort();  // the transport still holds the callback: no clean way on
    }
    return f.get();
  }

  // Hands every message to the transport at once (each its own job, all recipients) and waits,
  // 30 s at most in all, for every answer; one that did not come is an empty vector. (The
  // promises are shared, so an answer that comes after the test gave up harms nothing.)
  std::vector<std::vector<RecipientResult>> deliver_all(const std::vector<queue::StoredMessage>& messages) {
    std::vector<std::future<std::vector<RecipientResult>>> futures;
    for (const auto& m : messages) {
      queue::DeliveryJob job{m, {}};
      for (std::uint32_t i = 0; i < m.envelope.recipients.size(); ++i) job.recipients.push_back(i);
      auto p = std::make_shared<std::promise<std::vector<RecipientResult>>>();
      futures.push_back(p->get_future());
      transport().deliver(job, [p](std::vector<RecipientResult> r) { p->set_value(std::move(r)); });
    }
    auto until = std::chrono::steady_clock::now() + 30s;
    std::vector<std::vector<RecipientResult>> out;
    for (std::size_t k = 0; k < futures.size(); ++k) {
      if (futures[k].wait_until(until) != std::future_status::ready) {
        ADD_FAILURE() << "no answer for job " << k << " within 30 s";
        out.emplace_back();
        continue;
      }
      out.push_back(futures[k].get());
    }
    return out;
  }

  // Reads the fake server's records on its own thread.
  template <typename F>
  auto on_server(F f) {
    std::promise<decltype(f())> p;
    net::asio::post(io_, [&] { p.set_value(f()); });
    return p.get_future().get();
  }

  queue::testing::TempDir dir_;
  base::FakeClock clock_;
  std::unique_ptr<queue::Spool> spool_;
  std::unique_ptr<queue::IntakeImpl> intake_;
  net::asio::io_context io_;
  FakeServer server_{io_};
  std::thread server_thread_;
  RemoteOptions options_;
  std::function<void(dns::FakeResolver&)> zone_;
  std::unique_ptr<RemoteTransport> transport_;
};

TEST_F(RemoteTransportTest, DeliversThroughTheMxAndDotStuffs) {
  auto results = deliver(store({"bob@example.net"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, Outcome::kDelivered) << results[0].why();
  EXPECT_EQ(results[0].reply.code, 250);
  EXPECT_EQ(results[0].remote_host, "mx.example.net");
  auto bodies = on_server([&] { return server_.bodies; });
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0], "Subject: t\r\n\r\nhello\r\n..dot\r\n") << "the leading dot is stuffed on the wire";
  auto commands = on_server([&] { return server_.commands; });
  EXPECT_NE(std::find(commands.begin(), commands.end(), "MAIL FROM:<alice@example.org> SIZE=27"), commands.end());
}

TEST_F(RemoteTransportTest, MessagesForOneDestinationShareAConnection) {
  options_.connections_per_destination = 1;
  options_.idle_time = 2s;
  for (int i = 0; i < 5; ++i) {
    auto r = deliver(store({"bob@example.net"}));
    ASSERT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).why();
  }
  EXPECT_EQ(on_server([&] { return server_.connections; }), 1);
  RemoteStats s = transport().stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.transactions, 5u);
  EXPECT_EQ(s.reused, 4u);
}

TEST_F(RemoteTransportTest, RecipientsAreBatchedUpToTheLimitPerTransaction) {
  options_.max_recipients = 2;
  options_.connections_per_destination = 1;
  auto r = deliver(store({"a@example.net", "b@example.net", "c@example.net", "d@example.net", "e@example.net"}));
  ASSERT_EQ(r.size(), 5u);
  for (const auto& x : r) EXPECT_EQ(x.outcome, Outcome::kDelivered) << x.why();
  EXPECT_EQ(on_server([&] { return server_.bodies.size(); }), 3u) << "2 + 2 + 1 recipients";
  EXPECT_EQ(transport().stats().transactions, 3u);
}

TEST_F(RemoteTransportTest, EachRecipientGetsItsOwnReply) {
  server_.script = [](const std::string& line) -> std::string {
    if (line.find("<gone@") != std::string::npos) return "550 5.1.1 no such user\r\n";
    if (line.find("<busy@") != std::string::npos) return "451 4.3.0 try later\r\n";
    return "";
  };
  auto r = deliver(store({"ok@example.net", "gone@example.net", "busy@example.net"}));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].outcome, Outcome::kDelivered);
  EXPECT_EQ(r[1].outcome, Outcome::kFailed);
  EXPECT_EQ(r[1].reply.code, 550);
  EXPECT_EQ(r[1].why(), "5.1.1 no such user");
  EXPECT_EQ(r[2].outcome, Outcome::kDeferred);
  EXPECT_EQ(r[2].reply.code, 451);
  // Typed (issue 11): the next hop's answers, as they were, and its 4.3.0 is not ours: no
  // storage trouble here for the scheduler to check.
  for (const auto& x : r) EXPECT_TRUE(x.peer_reply) << x.why();
  EXPECT_EQ(r[2].reply.enhanced, "4.3.0");
  EXPECT_EQ(r[2].reply.text, "try later");
  EXPECT_FALSE(r[2].storage_trouble);
}

TEST_F(RemoteTransportTest, AnUnreachableMxIsSkippedForTheNextOne) {
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("example.net", {{20, "backup.example.net"}, {10, "dead.example.net"}});
    r.set_addresses("dead.example.net", dns::Type::kA, {"127.0.0.2"});  // nothing listens there
    r.set_status("dead.example.net", dns::Type::kAaaa, dns::Status::kNoData);
    r.set_addresses("backup.example.net", dns::Type::kA, {"127.0.0.1"});
    r.set_status("backup.example.net", dns::Type::kAaaa, dns::Status::kNoData);
  };
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).why();
  EXPECT_EQ(r.at(0).remote_host, "backup.example.net");
  EXPECT_EQ(transport().stats().connect_failures, 1u);
}

TEST_F(RemoteTransportTest, A421GreetingOnTheOnlyHostDefers) {
  server_.greeting = "421 4.3.2 too busy\r\n";
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDeferred);
  EXPECT_EQ(r.at(0).reply.code, 421) << r.at(0).why();
  EXPECT_EQ(r.at(0).reply.enhanced, "4.3.2") << r.at(0).why();
  EXPECT_TRUE(r.at(0).reply.text.starts_with("too busy (")) << r.at(0).why();
  EXPECT_TRUE(r.at(0).peer_reply) << "the server's answer: its code is recorded and quoted in a DSN";
  EXPECT_EQ(r.at(0).remote_host, "mx.example.net");
}

TEST_F(RemoteTransportTest, RouteFailuresAreClassified) {
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("null.test", {{0, ""}});
    r.set_status("broken.test", dns::Type::kMx, dns::Status::kTemporary, "SERVFAIL");
    r.set_status("nowhere.test", dns::Type::kMx, dns::Status::kNxDomain);
    r.set_mx("loop.test", {{10, "petrel.test"}});
    r.set_addresses("petrel.test", dns::Type::kA, {"127.0.0.1"});
  };
  options_.is_self = [](const std::string& host, const std::string&) { return host == "petrel.test"; };
  auto r = deliver(store({"a@null.test", "b@broken.test", "c@nowhere.test", "d@loop.test"}));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].outcome, Outcome::kFailed);
  EXPECT_EQ(r[0].why().substr(0, 6), "5.1.10");
  EXPECT_EQ(r[1].outcome, Outcome::kDeferred) << "SERVFAIL never bounces";
  EXPECT_EQ(r[1].why().substr(0, 5), "4.4.3");
  EXPECT_EQ(r[2].outcome, Outcome::kFailed);
  EXPECT_EQ(r[2].why().substr(0, 5), "5.1.2");
  EXPECT_EQ(r[3].outcome, Outcome::kFailed);
  EXPECT_EQ(r[3].why().substr(0, 5), "5.4.6");
  EXPECT_EQ(on_server([&] { return server_.connections; }), 0);
}

TEST_F(RemoteTransportTest, ASmarthostTakesEverythingWithoutMxLookups) {
  options_.relay_host = "127.0.0.1";
  options_.relay_port = server_.port();
  zone_ = [](dns::FakeResolver&) {};  // no DNS at all
  auto r = deliver(store({"x@one.test", "y@two.test"}));
  ASSERT_EQ(r.size(), 2u);
  for (const auto& x : r) EXPECT_EQ(x.outcome, Outcome::kDelivered) << x.why();
  EXPECT_EQ(on_server([&] { return server_.bodies.size(); }), 1u) << "one transaction for both domains";
}

TEST_F(RemoteTransportTest, AReusedConnectionTheServerEndedIsReplacedNotDeferred) {
  options_.connections_per_destination = 1;
  options_.idle_time = 2s;
  // The server ends each connection after one message: RSET before the second gets 421.
  server_.script = [](const std::string& line) -> std::string {
    return line == "RSET" ? "421 4.7.0 one message per connection\r\n" + smtp::client::testing::kClose : "";
  };
  auto first = deliver(store({"bob@example.net"}));
  EXPECT_EQ(first.at(0).outcome, Outcome::kDelivered) << first.at(0).why();
  auto second = deliver(store({"bob@example.net"}));
  EXPECT_EQ(second.at(0).outcome, Outcome::kDelivered) << second.at(0).why();
  EXPECT_EQ(on_server([&] { return server_.connections; }), 2) << "a new connection to the same host";
}

TEST_F(RemoteTransportTest, ALostConnectionAfterTheDataDefers) {
  server_.script = [](const std::string& line) -> std::string { return line == "." ? smtp::client::testing::kClose : ""; };
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDeferred) << r.at(0).why();
}

TEST_F(RemoteTransportTest, NoMoreConnectionsToOneDestinationThanItsLimit) {
  options_.connections_per_destination = 2;
  server_.data_reply_delay = 150ms;  // each transaction stays open a while: the others must wait
  std::vector<queue::StoredMessage> messages;
  for (int i = 0; i < 8; ++i) messages.push_back(store({"bob@example.net"}));
  auto results = deliver_all(messages);
  ASSERT_EQ(results.size(), 8u);
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].outcome, Outcome::kDelivered) << r[0].why();
  }
  EXPECT_EQ(on_server([&] { return server_.bodies.size(); }), 8u);
  EXPECT_EQ(on_server([&] { return server_.max_open_connections; }), 2)
      << "8 jobs at once: 2 connections, never more (and both used)";
}

TEST_F(RemoteTransportTest, NoMoreConnectionsInAllThanTheLimitAndAStarvedDestinationGetsTheNextSlot) {
  options_.max_connections = 2;
  zone_ = [](dns::FakeResolver& r) {
    for (const char* domain : {"a.test", "b.test", "c.test", "d.test"}) r.set_mx(domain, {{10, "mx.example.net"}});
    r.set_addresses("mx.example.net", dns::Type::kA, {"127.0.0.1"});
    r.set_status("mx.example.net", dns::Type::kAaaa, dns::Status::kNoData);
  };
  // Four destinations, one message each: two connect, the other two wait for a slot, which
  // frees when a connection has been idle for idle_time and says QUIT.
  auto results = deliver_all({store({"x@a.test"}), store({"x@b.test"}), store({"x@c.test"}), store({"x@d.test"})});
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].outcome, Outcome::kDelivered) << r[0].why();
  }
  EXPECT_EQ(on_server([&] { return server_.bodies.size(); }), 4u);
  EXPECT_EQ(on_server([&] { return server_.connections; }), 4) << "one connection per destination";
  EXPECT_EQ(on_server([&] { return server_.max_open_connections; }), 2);
}

TEST_F(RemoteTransportTest, AHostWhoseSizeIsBelowTheMessageIsSkippedForTheNextOne) {
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("example.net", {{10, "small.example.net"}, {20, "big.example.net"}});
    for (const char* host : {"small.example.net", "big.example.net"}) {
      r.set_addresses(host, dns::Type::kA, {"127.0.0.1"});
      r.set_status(host, dns::Type::kAaaa, dns::Status::kNoData);
    }
  };
  // Both hosts are the one fake server: its first EHLO answer (the preferred host's, tried
  // first) takes 10 bytes, the next 1000000. The message is 27 bytes.
  auto ehlos = std::make_shared<int>(0);
  server_.script = [ehlos](const std::string& line) -> std::string {
    if (line.rfind("EHLO", 0) != 0) return "";
    return ++*ehlos == 1 ? "250-small.test\r\n250 SIZE 10\r\n" : "250-big.test\r\n250 SIZE 1000000\r\n";
  };
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).why();
  EXPECT_EQ(r.at(0).remote_host, "big.example.net");
  EXPECT_EQ(on_server([&] { return server_.connections; }), 2);
  EXPECT_EQ(on_server([&] { return server_.bodies.size(); }), 1u);
}

TEST_F(RemoteTransportTest, AMessageAboveEveryHostsSizeFails534) {
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("example.net", {{10, "one.example.net"}, {20, "two.example.net"}});
    for (const char* host : {"one.example.net", "two.example.net"}) {
      r.set_addresses(host, dns::Type::kA, {"127.0.0.1"});
      r.set_status(host, dns::Type::kAaaa, dns::Status::kNoData);
    }
  };
  server_.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n";
  auto r = deliver(store({"bob@example.net", "carol@example.net"}));
  ASSERT_EQ(r.size(), 2u);
  for (const auto& x : r) {
    EXPECT_EQ(x.outcome, Outcome::kFailed) << x.why();
    EXPECT_EQ(x.why().substr(0, 6), "5.3.4 ") << x.why();
  }
  EXPECT_EQ(on_server([&] { return server_.connections; }), 2) << "both hosts were asked";
  auto commands = on_server([&] { return server_.commands; });
  EXPECT_EQ(std::count_if(commands.begin(), commands.end(), [](const std::string& c) { return c.rfind("MAIL", 0) == 0; }), 0)
      << "RFC 1870 6: nothing is sent to a server that said it will not take it";
}

TEST_F(RemoteTransportTest, TooBigForOneHostAndTheOtherUnreachableIsDeferredNotFailed) {
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("example.net", {{10, "small.example.net"}, {20, "down.example.net"}});
    r.set_addresses("small.example.net", dns::Type::kA, {"127.0.0.1"});
    r.set_addresses("down.example.net", dns::Type::kA, {"127.0.0.5"});  // nothing listens there
    for (const char* host : {"small.example.net", "down.example.net"}) {
      r.set_status(host, dns::Type::kAaaa, dns::Status::kNoData);
    }
  };
  server_.ehlo = "250-fake.test\r\n250 SIZE 10\r\n";
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDeferred) << r.at(0).why();
  EXPECT_EQ(r.at(0).why().substr(0, 2), "4.") << r.at(0).why();
}

TEST_F(RemoteTransportTest, AnUnreachableIpv6AddressFallsBackToTheHostsIpv4One) {
  // ::1 on the fake server's port must exist and be closed (the server listens on 127.0.0.1).
  {
    net::asio::io_context io;
    net::tcp::acceptor probe(io);
    net::error_code ec;
    probe.open(net::tcp::v6(), ec);
    if (!ec) probe.bind(net::tcp::endpoint(net::asio::ip::make_address("::1"), server_.port()), ec);
    if (ec) GTEST_SKIP() << "cannot use [::1]:" << server_.port() << " here: " << ec.message();
  }
  zone_ = [](dns::FakeResolver& r) {
    r.set_mx("example.net", {{10, "mx.example.net"}});
    r.set_addresses("mx.example.net", dns::Type::kAaaa, {"::1"});
    r.set_addresses("mx.example.net", dns::Type::kA, {"127.0.0.1"});
  };
  options_.prefer_ipv4 = false;  // the AAAA addresses first
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).why();
  EXPECT_EQ(r.at(0).remote_host, "mx.example.net");
  RemoteStats s = transport().stats();
  EXPECT_EQ(s.connect_failures, 1u) << "::1 was tried first, and refused";
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(on_server([&] { return server_.connections; }), 1);
}

}  // namespace
}  // namespace petrel::delivery
