// RemoteTransport over a real spool, a fake resolver and scripted SMTP servers on 127.0.0.1:
// connection reuse, batching, MX order and fallback, route failures, per-recipient replies.
// (The integration tests run the whole binary against python fake DNS and SMTP servers.)
#include "delivery/remote_transport.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(results[0].outcome, Outcome::kDelivered) << results[0].diagnostic;
  EXPECT_EQ(results[0].code, 250);
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
    ASSERT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).diagnostic;
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
  for (const auto& x : r) EXPECT_EQ(x.outcome, Outcome::kDelivered) << x.diagnostic;
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
  EXPECT_EQ(r[1].code, 550);
  EXPECT_EQ(r[1].diagnostic, "5.1.1 no such user");
  EXPECT_EQ(r[2].outcome, Outcome::kDeferred);
  EXPECT_EQ(r[2].code, 451);
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
  EXPECT_EQ(r.at(0).outcome, Outcome::kDelivered) << r.at(0).diagnostic;
  EXPECT_EQ(r.at(0).remote_host, "backup.example.net");
  EXPECT_EQ(transport().stats().connect_failures, 1u);
}

TEST_F(RemoteTransportTest, A421GreetingOnTheOnlyHostDefers) {
  server_.greeting = "421 4.3.2 too busy\r\n";
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDeferred);
  EXPECT_NE(r.at(0).diagnostic.find("421 4.3.2 too busy"), std::string::npos) << r.at(0).diagnostic;
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
  EXPECT_EQ(r[0].diagnostic.substr(0, 6), "5.1.10");
  EXPECT_EQ(r[1].outcome, Outcome::kDeferred) << "SERVFAIL never bounces";
  EXPECT_EQ(r[1].diagnostic.substr(0, 5), "4.4.3");
  EXPECT_EQ(r[2].outcome, Outcome::kFailed);
  EXPECT_EQ(r[2].diagnostic.substr(0, 5), "5.1.2");
  EXPECT_EQ(r[3].outcome, Outcome::kFailed);
  EXPECT_EQ(r[3].diagnostic.substr(0, 5), "5.4.6");
  EXPECT_EQ(on_server([&] { return server_.connections; }), 0);
}

TEST_F(RemoteTransportTest, ASmarthostTakesEverythingWithoutMxLookups) {
  options_.relay_host = "127.0.0.1";
  options_.relay_port = server_.port();
  zone_ = [](dns::FakeResolver&) {};  // no DNS at all
  auto r = deliver(store({"x@one.test", "y@two.test"}));
  ASSERT_EQ(r.size(), 2u);
  for (const auto& x : r) EXPECT_EQ(x.outcome, Outcome::kDelivered) << x.diagnostic;
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
  EXPECT_EQ(first.at(0).outcome, Outcome::kDelivered) << first.at(0).diagnostic;
  auto second = deliver(store({"bob@example.net"}));
  EXPECT_EQ(second.at(0).outcome, Outcome::kDelivered) << second.at(0).diagnostic;
  EXPECT_EQ(on_server([&] { return server_.connections; }), 2) << "a new connection to the same host";
}

TEST_F(RemoteTransportTest, ALostConnectionAfterTheDataDefers) {
  server_.script = [](const std::string& line) -> std::string { return line == "." ? smtp::client::testing::kClose : ""; };
  auto r = deliver(store({"bob@example.net"}));
  EXPECT_EQ(r.at(0).outcome, Outcome::kDeferred) << r.at(0).diagnostic;
}

}  // namespace
}  // namespace petrel::delivery
