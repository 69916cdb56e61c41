#include "dns/fake_resolver.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace petrel::dns {
namespace {

TEST(FakeResolver, AnswersArePostedNeverInline) {
  boost::asio::io_context io;
  FakeResolver dns(io.get_executor());
  dns.set_addresses("Host.Example.", Type::kA, {"192.0.2.1"});
  int calls = 0;
  Answer got;
  dns.lookup("host.example", Type::kA, [&](Answer a) { ++calls, got = std::move(a); });
  EXPECT_EQ(calls, 0);
  io.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.status, Status::kOk);
  EXPECT_EQ(got.addresses, std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(dns.lookups("HOST.example", Type::kA), 1u);
}

TEST(FakeResolver, UnknownTypeOfAKnownNameIsNoDataUnknownNameIsNxDomain) {
  boost::asio::io_context io;
  FakeResolver dns(io.get_executor());
  dns.set_addresses("host.example", Type::kA, {"192.0.2.1"});
  dns.set_status("gone.example", Type::kA, Status::kNxDomain);
  std::vector<Status> got;
  for (const char* n : {"host.example", "nowhere.example", "gone.example"}) {
    dns.lookup(n, Type::kAaaa, [&](Answer a) { got.push_back(a.status); });
  }
  io.run();
  EXPECT_EQ(got, (std::vector<Status>{Status::kNoData, Status::kNxDomain, Status::kNxDomain}));
  EXPECT_EQ(dns.total_lookups(), 3u);
}

TEST(FakeResolver, HeldAnswersWaitForRelease) {
  boost::asio::io_context io;
  FakeResolver dns(io.get_executor());
  dns.set_texts("a.example", {"one"});
  dns.set_texts("b.example", {"two"});
  dns.hold(true);
  std::vector<std::string> order;
  dns.lookup("a.example", Type::kTxt, [&](Answer a) { order.push_back(a.texts.at(0)); });
  dns.lookup("b.example", Type::kTxt, [&](Answer a) { order.push_back(a.texts.at(0)); });
  io.run();
  io.restart();
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(dns.held(), 2u);
  EXPECT_EQ(dns.release("b.example", Type::kTxt), 1u);
  io.run();
  io.restart();
  EXPECT_EQ(order, std::vector<std::string>{"two"});
  EXPECT_EQ(dns.release_all(), 1u);
  io.run();
  EXPECT_EQ(order, (std::vector<std::string>{"two", "one"}));
  EXPECT_EQ(dns.held(), 0u);
}

}  // namespace
}  // namespace petrel::dns
