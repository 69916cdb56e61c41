#include "config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace petrel::config {
namespace {

constexpr const char* kMinimal = R"(
[server]
hostname = "mx.example.test"
data_dir = "/tmp/petrel"

[[listener]]
kind = "smtp"
address = "127.0.0.1:2525"
)";

TEST(Config, MinimalFileGetsDefaults) {
  auto c = parse_config(kMinimal, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server.hostname, "mx.example.test");
  EXPECT_EQ(c->smtp.max_line_length, 512u);
  EXPECT_EQ(c->smtp.max_recipients, 1000u);
  EXPECT_EQ(c->smtp.max_message_size, 50u << 20);
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].port, 2525);
  EXPECT_EQ(c->listeners[0].host, "127.0.0.1");
  EXPECT_EQ(c->listeners[0].name, "smtp");
}

TEST(Config, UnknownKeysAreErrorsWithLineNumbers) {
  auto c = parse_config(std::string(kMinimal) + "[smtp]\nmax_recipeints = 5\n[bogus]\n", "t.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("t.toml:10: smtp.max_recipeints: unknown key"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("bogus: unknown key"), std::string::npos) << c.error().message;
}

TEST(Config, EveryProblemIsOneLine) {
  auto c = parse_config(R"(
[smtp]
max_recipients = 5
max_message_size = "lots"
command_timeout = 5
[[listener]]
kind = "pop"
address = "nowhere"
)", "t.toml");
  ASSERT_FALSE(c);
  const auto& m = c.error().message;
  EXPECT_NE(m.find("smtp.max_recipients: must be between 100"), std::string::npos) << m;
  EXPECT_NE(m.find("smtp.max_message_size: must be a size"), std::string::npos) << m;
  EXPECT_NE(m.find("smtp.command_timeout: must be a duration"), std::string::npos) << m;
  EXPECT_NE(m.find("listener.kind"), std::string::npos) << m;
  EXPECT_NE(m.find("listener.address"), std::string::npos) << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 4);
}

TEST(Config, SyntaxErrorIsReported) {
  auto c = parse_config("[server\n", "t.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("t.toml:1: syntax"), std::string::npos) << c.error().message;
}

TEST(Config, EffectiveConfigRoundTrips) {
  auto c = parse_config(std::string(kMinimal) +
                            "[smtp]\nmax_message_size = \"10MiB\"\ntrusted_networks = [\"10.0.0.0/8\", \"::1\"]\n"
                            "[[listener]]\nkind = \"submissions\"\naddress = \"[::1]:2465\"\n",
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  auto again = parse_config(to_toml(*c), "again.toml");
  ASSERT_TRUE(again) << again.error().message << "\n" << to_toml(*c);
  EXPECT_EQ(to_toml(*again).substr(to_toml(*again).find('\n')), to_toml(*c).substr(to_toml(*c).find('\n')));
  EXPECT_EQ(again->smtp.max_message_size, 10u << 20);
  EXPECT_EQ(again->listeners[1].host, "::1");
  EXPECT_EQ(again->listeners[1].kind, ListenerKind::kSubmissions);
}

TEST(Networks, ContainsAddresses) {
  Network n;
  ASSERT_TRUE(parse_network("192.0.2.0/24", n));
  std::uint8_t in[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 77};
  std::uint8_t out[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 3, 1};
  EXPECT_TRUE(network_contains(n, in));
  EXPECT_FALSE(network_contains(n, out));
  ASSERT_TRUE(parse_network("::1", n));
  std::uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_TRUE(network_contains(n, lo6));
  EXPECT_FALSE(network_contains(n, in));
  EXPECT_FALSE(parse_network("10.0.0.0/33", n));
  EXPECT_FALSE(parse_network("10.0.0/8", n));
  EXPECT_FALSE(parse_network("example.com", n));
}

TEST(HostPort, Parses) {
  std::string h;
  std::uint16_t p = 0;
  EXPECT_TRUE(parse_host_port("[::1]:587", h, p));
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 587);
  EXPECT_FALSE(parse_host_port("::1:587", h, p));
  EXPECT_FALSE(parse_host_port("host:99999", h, p));
  EXPECT_FALSE(parse_host_port("host:", h, p));
}

// docs/config.md must list every key the program knows, in its section, with its default.
TEST(Config, DocsListEveryKeyWithItsDefault) {
  std::ifstream in(PETREL_SOURCE_DIR "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md not found";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string docs = ss.str();
  auto c = parse_config(kMinimal, "t.toml");
  ASSERT_TRUE(c);
  // Walk the effective config of the defaults: "[section]" then "key = value" lines.
  std::istringstream eff(to_toml(*c));
  std::string line, section;
  int checked = 0;
  while (std::getline(eff, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line;
      continue;
    }
    if (section == "[[listener]]" || (section == "[server]" && (line.rfind("hostname", 0) == 0 || line.rfind("data_dir", 0) == 0))) {
      continue;  // values that kMinimal sets rather than defaults
    }
    auto eq = line.find(" = ");
    ASSERT_NE(eq, std::string::npos) << line;
    std::string key = line.substr(0, eq), value = line.substr(eq + 3);
    for (char& ch : value) if (ch == '\'') ch = '"';
    auto heading = docs.find("## " + section);
    ASSERT_NE(heading, std::string::npos) << "docs/config.md has no section " << section;
    auto next = docs.find("\n## ", heading + 1);
    std::string part = docs.substr(heading, next == std::string::npos ? std::string::npos : next - heading);
    std::string row = "| `" + key + "` | `" + value + "` |";
    EXPECT_NE(part.find(row), std::string::npos) << "docs/config.md " << section << " lacks the row " << row;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace petrel::config
