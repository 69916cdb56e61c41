#include "dns/mx_route.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <set>

#include "dns/fake_resolver.h"

namespace petrel::dns {
namespace {

using Kind = Route::Kind;
using Strings = std::vector<std::string>;

class MxRouteTest : public ::testing::Test {
 protected:
  // Runs find_route to completion; fails the test unless `done` ran exactly once, after
  // find_route returned.
  Route route(const std::string& domain, RouteOptions options = {}) {
    int calls = 0;
    bool returned = false;
    Route out;
    find_route(dns_, domain, std::move(options), [&](Route r) {
      EXPECT_TRUE(returned) << "done ran inside find_route";
      ++calls;
      out = std::move(r);
    });
    returned = true;
    io_.run();
    io_.restart();
    EXPECT_EQ(calls, 1);
    return out;
  }
  static Strings hosts(const Route& r) {
    Strings out;
    for (const auto& h : r.hops) out.push_back(h.host);
    return out;
  }
  void host(const std::string& name, Strings v4, Strings v6 = {}) {
    dns_.set_addresses(name, Type::kA, std::move(v4));
    dns_.set_addresses(name, Type::kAaaa, std::move(v6));
  }

  boost::asio::io_context io_;
  FakeResolver dns_{io_.get_executor()};
};

TEST_F(MxRouteTest, SortsByPreference) {
  dns_.set_mx("example.org", {{30, "c.example.org"}, {10, "a.example.org"}, {20, "B.example.org"}});
  host("a.example.org", {"192.0.2.1"});
  host("b.example.org", {"192.0.2.2"});
  host("c.example.org", {"192.0.2.3"});
  auto r = route("Example.ORG");
  ASSERT_EQ(r.kind, Kind::kOk) << r.text;
  EXPECT_EQ(hosts(r), (Strings{"a.example.org", "b.example.org", "c.example.org"}));
  EXPECT_EQ(r.hops[1].preference, 20);
  EXPECT_EQ(r.hops[2].addresses, Strings{"192.0.2.3"});
  EXPECT_TRUE(r.enhanced.empty());
}

TEST_F(MxRouteTest, EqualPreferencesAreShuffledBySeededRandom) {
  dns_.set_mx("example.org", {{10, "a.x"}, {10, "b.x"}, {10, "c.x"}, {5, "first.x"}, {20, "last.x"}});
  for (auto n : {"a.x", "b.x", "c.x", "first.x", "last.x"}) host(n, {"192.0.2.9"});
  std::set<Strings> orders;
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    std::uint64_t state = seed;
    RouteOptions o;
    o.random = [&state] { return state++ * 0x9E3779B97F4A7C15ULL >> 7; };
    auto r = route("example.org", std::move(o));
    ASSERT_EQ(r.kind, Kind::kOk);
    auto h = hosts(r);
    ASSERT_EQ(h.size(), 5u);
    EXPECT_EQ(h.front(), "first.x");
    EXPECT_EQ(h.back(), "last.x");
    orders.insert(Strings(h.begin() + 1, h.end() - 1));
  }
  // Twelve seeds over 3! orders: several distinct ones, each a permutation of the three.
  EXPECT_GE(orders.size(), 3u);
  for (const auto& o : orders) EXPECT_EQ(std::set<std::string>(o.begin(), o.end()).size(), 3u);

  // The same random source gives the same order.
  auto fixed = [] {
    RouteOptions o;
    o.random = [] { return std::uint64_t{1}; };
    return o;
  };
  EXPECT_EQ(hosts(route("example.org", fixed())), hosts(route("example.org", fixed())));
}

TEST_F(MxRouteTest, NoMxMeansTheDomainIsItsOwnImplicitMx) {
  host("example.org", {"192.0.2.7"}, {"2001:db8::7"});
  auto r = route("example.org");
  ASSERT_EQ(r.kind, Kind::kOk) << r.text;
  ASSERT_EQ(r.hops.size(), 1u);
  EXPECT_EQ(r.hops[0].host, "example.org");
  EXPECT_EQ(r.hops[0].preference, 0);
  EXPECT_EQ(r.hops[0].addresses, (Strings{"2001:db8::7", "192.0.2.7"}));
  EXPECT_EQ(dns_.lookups("example.org", Type::kMx), 1u);
}

TEST_F(MxRouteTest, NoMxAndNoAddressIsPermanent) {
  dns_.set_texts("example.org", {"v=spf1 -all"});
  auto r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.4.4");
}

TEST_F(MxRouteTest, NullMxIsPermanent5_1_10WithoutAddressLookups) {
  dns_.set_mx("example.org", {{0, ""}});
  auto r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.1.10");
  EXPECT_NE(r.text.find("null MX"), std::string::npos);
  EXPECT_EQ(dns_.total_lookups(), 1u);
}

TEST_F(MxRouteTest, NullMxAmongRealOnesIsIgnored) {
  dns_.set_mx("example.org", {{0, ""}, {10, "mx.example.org"}});
  host("mx.example.org", {"192.0.2.1"});
  auto r = route("example.org");
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(hosts(r), Strings{"mx.example.org"});
}

TEST_F(MxRouteTest, SelfTrimsItsPreferenceAndWorse) {
  dns_.set_mx("example.org", {{10, "backup1.x"}, {5, "primary.x"}, {20, "us.x"}, {20, "peer.x"}, {30, "worse.x"}});
  host("primary.x", {"192.0.2.1"});
  host("backup1.x", {"192.0.2.2"});
  host("us.x", {"198.51.100.1"});
  host("peer.x", {"192.0.2.4"});
  host("worse.x", {"192.0.2.5"});
  RouteOptions o;
  o.is_self = [](std::string_view, std::string_view addr) { return addr == "198.51.100.1"; };
  auto r = route("example.org", o);
  ASSERT_EQ(r.kind, Kind::kOk) << r.text;
  EXPECT_EQ(hosts(r), (Strings{"primary.x", "backup1.x"}));

  // Self by name, with no address lookup needed to see it.
  RouteOptions by_name;
  by_name.is_self = [](std::string_view host, std::string_view addr) { return addr.empty() && host == "backup1.x"; };
  r = route("example.org", by_name);
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(hosts(r), Strings{"primary.x"});
}

TEST_F(MxRouteTest, BestMxIsUsIsPermanent5_4_6) {
  dns_.set_mx("example.org", {{10, "mx.example.org"}, {20, "backup.example.org"}});
  host("mx.example.org", {"127.0.0.1"});
  host("backup.example.org", {"192.0.2.2"});
  RouteOptions o;
  o.is_self = [](std::string_view, std::string_view addr) { return addr == "127.0.0.1"; };
  auto r = route("example.org", o);
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.4.6");
  EXPECT_TRUE(r.hops.empty());

  // An implicit MX that is us, too.
  host("self.example", {"127.0.0.1"});
  r = route("self.example", o);
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.4.6");
}

TEST_F(MxRouteTest, NxDomainIsPermanent5_1_2) {
  auto r = route("nowhere.example");
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.1.2");
}

TEST_F(MxRouteTest, MxServfailOrTimeoutIsTemporaryNeverABounce) {
  dns_.set_status("example.org", Type::kMx, Status::kTemporary, "SERVFAIL");
  host("example.org", {"192.0.2.1"});  // must not be used as an implicit MX
  auto r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kTemporary);
  EXPECT_EQ(r.enhanced, "4.4.3");
  EXPECT_NE(r.text.find("SERVFAIL"), std::string::npos);
  EXPECT_EQ(dns_.lookups("example.org", Type::kA), 0u);

  dns_.set_status("example.org", Type::kMx, Status::kTemporary, "timeout");
  r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kTemporary);
  EXPECT_NE(r.text.find("timeout"), std::string::npos);
}

TEST_F(MxRouteTest, HostWithTemporaryFailureIsSkipped) {
  dns_.set_mx("example.org", {{10, "broken.x"}, {20, "good.x"}});
  dns_.set_status("broken.x", Type::kA, Status::kTemporary, "SERVFAIL");
  dns_.set_status("broken.x", Type::kAaaa, Status::kTemporary, "timeout");
  host("good.x", {"192.0.2.2"});
  auto r = route("example.org");
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(hosts(r), Strings{"good.x"});
}

TEST_F(MxRouteTest, NoHostWithAnAddressAfterATemporaryFailureIsTemporary) {
  dns_.set_mx("example.org", {{10, "broken.x"}, {20, "empty.x"}});
  dns_.set_status("broken.x", Type::kA, Status::kTemporary, "SERVFAIL");
  dns_.set_status("broken.x", Type::kAaaa, Status::kNoData);
  dns_.set_texts("empty.x", {"exists, no address"});
  auto r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kTemporary);
  EXPECT_EQ(r.enhanced, "4.4.3");

  // With no temporary failure at all, it is permanent.
  dns_.set_status("broken.x", Type::kA, Status::kNxDomain);
  dns_.set_status("broken.x", Type::kAaaa, Status::kNxDomain);
  r = route("example.org");
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.4.4");
}

TEST_F(MxRouteTest, BothFamiliesLookedUpIpv6FirstUnlessPreferIpv4) {
  dns_.set_mx("example.org", {{10, "mx.x"}});
  host("mx.x", {"192.0.2.1", "192.0.2.2"}, {"2001:db8::1"});
  auto r = route("example.org");
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(r.hops[0].addresses, (Strings{"2001:db8::1", "192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(dns_.lookups("mx.x", Type::kA), 1u);
  EXPECT_EQ(dns_.lookups("mx.x", Type::kAaaa), 1u);
  RouteOptions v4;
  v4.prefer_ipv4 = true;
  r = route("example.org", v4);
  EXPECT_EQ(r.hops[0].addresses, (Strings{"192.0.2.1", "192.0.2.2", "2001:db8::1"}));

  // One family failing temporarily still leaves the other.
  dns_.set_status("mx.x", Type::kAaaa, Status::kTemporary, "timeout");
  r = route("example.org");
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(r.hops[0].addresses, (Strings{"192.0.2.1", "192.0.2.2"}));
}

TEST_F(MxRouteTest, AddressLiteralIsOneHopWithoutLookup) {
  auto r = route("[192.0.2.55]");
  ASSERT_EQ(r.kind, Kind::kOk) << r.text;
  ASSERT_EQ(r.hops.size(), 1u);
  EXPECT_EQ(r.hops[0].addresses, Strings{"192.0.2.55"});
  r = route("[IPv6:2001:DB8:0::5]");
  ASSERT_EQ(r.kind, Kind::kOk) << r.text;
  EXPECT_EQ(r.hops[0].addresses, Strings{"2001:db8::5"});
  EXPECT_EQ(dns_.total_lookups(), 0u);
  r = route("[300.1.1.1]");
  EXPECT_EQ(r.kind, Kind::kPermanent);
  EXPECT_EQ(r.enhanced, "5.1.2");
  RouteOptions o;
  o.is_self = [](std::string_view, std::string_view addr) { return addr == "127.0.0.1"; };
  r = route("[127.0.0.1]", o);
  EXPECT_EQ(r.enhanced, "5.4.6");
}

TEST_F(MxRouteTest, HostsAndAddressesAreCapped) {
  std::vector<MxRecord> mx;
  for (int i = 0; i < 30; ++i) {
    std::string name = "mx" + std::to_string(i) + ".x";
    mx.push_back({static_cast<std::uint16_t>(i), name});
    host(name, {"192.0.2." + std::to_string(i + 1), "198.51.100." + std::to_string(i + 1)});
  }
  dns_.set_mx("example.org", mx);
  RouteOptions o;
  o.max_hosts = 10;
  o.max_addresses = 15;
  auto r = route("example.org", o);
  ASSERT_EQ(r.kind, Kind::kOk);
  EXPECT_EQ(dns_.total_lookups(), 1u + 2 * 10);
  std::size_t total = 0;
  for (const auto& h : r.hops) total += h.addresses.size();
  EXPECT_EQ(total, 15u);
  EXPECT_EQ(r.hops.size(), 8u);
  EXPECT_EQ(r.hops.front().host, "mx0.x");
}

TEST_F(MxRouteTest, AddressLookupsRunConcurrently) {
  dns_.set_mx("example.org", {{10, "a.x"}, {20, "b.x"}});
  host("a.x", {"192.0.2.1"});
  host("b.x", {"192.0.2.2"});
  std::optional<Route> got;
  find_route(dns_, "example.org", {}, [&](Route r) { got = std::move(r); });
  io_.run();
  io_.restart();
  ASSERT_TRUE(got);
  dns_.hold(true);
  got.reset();
  find_route(dns_, "example.org", {}, [&](Route r) { got = std::move(r); });
  io_.run();
  io_.restart();
  EXPECT_EQ(dns_.held(), 1u);  // the MX lookup
  dns_.release_all();
  io_.run();
  io_.restart();
  EXPECT_EQ(dns_.held(), 4u);  // AAAA and A of both hosts, all in flight at once
  EXPECT_FALSE(got);
  dns_.release_all();
  io_.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, Kind::kOk);
}

}  // namespace
}  // namespace petrel::dns
