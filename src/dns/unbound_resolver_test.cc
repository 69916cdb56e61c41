// UnboundResolver against tests/testlib/fake_dns.py on loopback (a real DNS server process).
#include "dns/unbound_resolver.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "base/temp_dir_testing.h"
#include "dns/mx_route.h"

extern char** environ;

namespace petrel::dns {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

constexpr const char* kZone = R"({
  "records": {
    "example.example": {"MX": [[20, "MX2.Example.EXAMPLE."], [10, "mx1.example.example"]],
                     "TXT": [["v=spf1 ", "-all"], "second"]},
    "mx1.example.example": {"A": ["127.0.0.1"]},
    "mx2.example.example": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
    "dual.example": {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"]},
    "nullmx.example": {"MX": [[0, "."]]},
    "alias.example": {"CNAME": ["dual.example"]},
    "34.216.184.93.in-addr.arpa": {"PTR": ["Host.Example.Example."]},
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.5.4.1.0.0.a.2.ip6.arpa": {"PTR": ["v6.example.example"]},
    "textonly.example": {"TXT": ["x"]}
  },
  "behaviours": {"servfail.example": "servfail", "refused.example": "refused", "silent.example": "drop"}
})";

// Names are under .example, addresses outside the documentation ranges: unbound answers the
// RFC 6761 special-use zones (test., invalid., localhost., the reverse zones of TEST-NET and
// 2001:db8::/32, private ranges) itself, with NXDOMAIN, without asking any server.
// One fake DNS server process for the whole suite; each test makes a fresh resolver (and so a
// fresh cache), and names differ between tests where a cached answer could hide a bug.
class FakeDnsProcess {
 public:
  FakeDnsProcess() {
    std::string zone = dir_.path() + "/zone.json", port_file = dir_.path() + "/port";
    std::ofstream(zone) << kZone;
    std::string script = std::string(PETREL_SOURCE_DIR) + "/tests/testlib/fake_dns.py";
    const char* argv[] = {"/usr/bin/python3", script.c_str(), "--zone", zone.c_str(), "--port-file", port_file.c_str(), nullptr};
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
      pid_ = -1;
      return;
    }
    // Bounded wait for the port file: 10 s at most.
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      if (!(in >> port_)) port_ = 0;
      if (port_ == 0) std::this_thread::sleep_for(20ms);
    }
  }
  ~FakeDnsProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }

 private:
  base::testing::TempDir dir_{"petrel-dns"};
  pid_t pid_ = -1;
  int port_ = 0;
};

class UnboundResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new FakeDnsProcess(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(server_->port(), 0) << "fake_dns.py did not start";
    resolver_ = make({"127.0.0.1:" + std::to_string(server_->port())}, 1500ms);
    ASSERT_TRUE(resolver_);
  }

  std::unique_ptr<UnboundResolver> make(Strings servers, std::chrono::milliseconds timeout) {
    UnboundOptions o;
    o.servers = std::move(servers);
    o.timeout = timeout;
    auto r = UnboundResolver::create(io_.get_executor(), o);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? std::move(*r) : nullptr;
  }

  // Runs until `done` ran (at most 10 s); fails unless it ran exactly once.
  Answer ask(const std::string& name, Type type) {
    int calls = 0;
    Answer out;
    resolver_->lookup(name, type, [&](Answer a) {
      ++calls;
      out = std::move(a);
    });
    EXPECT_EQ(calls, 0) << "done ran inside lookup()";
    run_until([&] { return calls > 0; });
    EXPECT_EQ(calls, 1) << name;
    return out;
  }

  // Runs the loop until `ready()` (at most 10 s). An io_context that ran out of work stops, so
  // it is restarted first.
  template <typename Ready>
  void run_until(Ready ready) {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (!ready() && std::chrono::steady_clock::now() < until) {
      io_.restart();
      io_.run_one_for(100ms);
    }
  }

  static FakeDnsProcess* server_;
  boost::asio::io_context io_;
  std::unique_ptr<UnboundResolver> resolver_;
};
FakeDnsProcess* UnboundResolverTest::server_ = nullptr;

TEST_F(UnboundResolverTest, Mx) {
  auto a = ask("Example.EXAMPLE.", Type::kMx);
  ASSERT_EQ(a.status, Status::kOk) << a.why;
  ASSERT_EQ(a.mx.size(), 2u);
  std::sort(a.mx.begin(), a.mx.end(), [](auto& x, auto& y) { return x.preference < y.preference; });
  EXPECT_EQ(a.mx[0], (MxRecord{10, "mx1.example.example"}));
  EXPECT_EQ(a.mx[1], (MxRecord{20, "mx2.example.example"}));
  EXPECT_FALSE(a.secure);
}

TEST_F(UnboundResolverTest, NullMx) {
  auto a = ask("nullmx.example", Type::kMx);
  ASSERT_EQ(a.status, Status::kOk) << a.why;
  EXPECT_EQ(a.mx, (std::vector<MxRecord>{{0, ""}}));
}

TEST_F(UnboundResolverTest, AAndAaaa) {
  auto a = ask("dual.example", Type::kA);
  ASSERT_EQ(a.status, Status::kOk) << a.why;
  std::sort(a.addresses.begin(), a.addresses.end());
  EXPECT_EQ(a.addresses, (Strings{"192.0.2.1", "192.0.2.2"}));
  auto aaaa = ask("dual.example", Type::kAaaa);
  ASSERT_EQ(aaaa.status, Status::kOk) << aaaa.why;
  EXPECT_EQ(aaaa.addresses, Strings{"2001:db8::1"});
  auto via = ask("alias.example", Type::kAaaa);  // unbound follows the CNAME
  EXPECT_EQ(via.addresses, Strings{"2001:db8::1"});
}

TEST_F(UnboundResolverTest, TxtConcatenatesEachRecordsStrings) {
  auto a = ask("example.example", Type::kTxt);
  ASSERT_EQ(a.status, Status::kOk) << a.why;
  std::sort(a.texts.begin(), a.texts.end());
  EXPECT_EQ(a.texts, (Strings{"second", "v=spf1 -all"}));
}

TEST_F(UnboundResolverTest, PtrBuildsTheReverseName) {
  auto a = ask("93.184.216.34", Type::kPtr);
  ASSERT_EQ(a.status, Status::kOk) << a.why;
  EXPECT_EQ(a.names, Strings{"host.example.example"});
  auto v6 = ask("2a00:1450::1", Type::kPtr);
  ASSERT_EQ(v6.status, Status::kOk) << v6.why;
  EXPECT_EQ(v6.names, Strings{"v6.example.example"});
  EXPECT_EQ(ask("not-an-address", Type::kPtr).status, Status::kNxDomain);
}

TEST_F(UnboundResolverTest, NxDomainAndNoData) {
  EXPECT_EQ(ask("nowhere.example", Type::kA).status, Status::kNxDomain);
  EXPECT_EQ(ask("textonly.example", Type::kMx).status, Status::kNoData);
  EXPECT_EQ(ask("", Type::kA).status, Status::kNxDomain);
  EXPECT_EQ(ask("bad name.example", Type::kA).status, Status::kNxDomain);
}

TEST_F(UnboundResolverTest, ServfailAndRefusedAreTemporary) {
  auto a = ask("servfail.example", Type::kMx);
  EXPECT_EQ(a.status, Status::kTemporary);
  EXPECT_FALSE(a.why.empty());
  EXPECT_EQ(ask("refused.example", Type::kA).status, Status::kTemporary);
}

TEST_F(UnboundResolverTest, SilentServerIsATemporaryTimeoutWithinTheTimeout) {
  resolver_ = make({"127.0.0.1:" + std::to_string(server_->port())}, 400ms);
  auto start = std::chrono::steady_clock::now();
  auto a = ask("silent.example", Type::kMx);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(a.status, Status::kTemporary);
  EXPECT_EQ(a.why, "timeout");
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 1500ms);
}

TEST_F(UnboundResolverTest, ManyConcurrentLookupsEachCompleteOnce) {
  std::vector<int> calls(40, 0);
  int finished = 0;
  for (int i = 0; i < 40; ++i) {
    std::string name = i % 2 ? "dual.example" : "n" + std::to_string(i) + ".nowhere.example";
    resolver_->lookup(name, Type::kA, [&, i](Answer a) {
      ++calls[i];
      ++finished;
      EXPECT_EQ(a.status, i % 2 ? Status::kOk : Status::kNxDomain) << i << " " << a.why;
    });
  }
  run_until([&] { return finished == 40; });
  io_.poll();
  EXPECT_EQ(finished, 40);
  for (int c : calls) EXPECT_EQ(c, 1);
}

TEST_F(UnboundResolverTest, DestroyingCompletesPendingLookups) {
  std::optional<Answer> got;
  resolver_->lookup("silent.example", Type::kA, [&](Answer a) { got = std::move(a); });
  io_.poll();  // the query is on its way
  resolver_.reset();
  run_until([&] { return got.has_value(); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, Status::kTemporary);
  EXPECT_EQ(got->why, "resolver closed");
}

TEST_F(UnboundResolverTest, FindRouteEndToEnd) {
  std::optional<Route> route;
  RouteOptions o;
  o.prefer_ipv4 = true;
  find_route(*resolver_, "example.example", o, [&](Route r) { route = std::move(r); });
  run_until([&] { return route.has_value(); });
  ASSERT_TRUE(route);
  ASSERT_EQ(route->kind, Route::Kind::kOk) << route->text;
  ASSERT_EQ(route->hops.size(), 2u);
  EXPECT_EQ(route->hops[0], (Hop{"mx1.example.example", 10, {"127.0.0.1"}, false}));
  EXPECT_EQ(route->hops[1], (Hop{"mx2.example.example", 20, {"127.0.0.2", "::1"}, false}));
}

TEST(UnboundResolverOptions, BadOptionsFailAtCreate) {
  boost::asio::io_context io;
  for (const char* bad : {"localhost:53", "127.0.0.1", "127.0.0.1:0", "[::1]53", "1.2.3.4:70000"}) {
    UnboundOptions o;
    o.servers = {bad};
    auto r = UnboundResolver::create(io.get_executor(), o);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  UnboundOptions o;
  o.servers = {"[::1]:53"};
  o.trust_anchor_file = "/nonexistent/root.key";
  auto r = UnboundResolver::create(io.get_executor(), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/root.key"), std::string::npos);
  o.trust_anchor_file.clear();
  EXPECT_TRUE(UnboundResolver::create(io.get_executor(), o));
}

}  // namespace
}  // namespace petrel::dns
