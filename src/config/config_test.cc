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

TEST(Config, FutureListenerKindsAreRefusedUntilServed) {
  for (const char* kind : {"imap", "imaps", "pop3", "pop3s", "admin"}) {
    auto c = parse_config(std::string("[[listener]]\nkind = \"") + kind + "\"\naddress = \"127.0.0.1:1143\"\n", "t.toml");
    ASSERT_FALSE(c) << kind;
    EXPECT_NE(c.error().message.find("listener.kind: \"" + std::string(kind) + "\" is not yet supported"), std::string::npos)
        << c.error().message;
  }
}

TEST(Config, PrimaryDomain) {
  auto c = parse_config(std::string(kMinimal) + "", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->server.primary_domain, "");
  auto bad = parse_config("[server]\nprimary_domain = \"a@b\"\n[[listener]]\naddress = \"127.0.0.1:25\"\n", "t.toml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("server.primary_domain"), std::string::npos) << bad.error().message;
  auto ok = parse_config("[server]\nprimary_domain = \"Example.ORG\"\n[[listener]]\naddress = \"127.0.0.1:25\"\n", "t.toml");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->server.primary_domain, "example.org");
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

TEST(Config, DnsSection) {
  auto c = parse_config(std::string(kMinimal) +
                            "[dns]\nservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\ntimeout = \"2s\"\n"
                            "dnssec_trust_anchor = \"/usr/share/dns/root.key\"\n",
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->dns.servers, (std::vector<std::string>{"127.0.0.1:5353", "[::1]:53"}));
  EXPECT_EQ(c->dns.timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->dns.dnssec_trust_anchor, "/usr/share/dns/root.key");
  auto d = parse_config(kMinimal, "t.toml");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->dns.servers.empty());
  EXPECT_EQ(d->dns.timeout, std::chrono::seconds(10));

  auto bad = parse_config(std::string(kMinimal) + "[dns]\nservers = [\"ns.example.org:53\", \"127.0.0.1\", 53]\ntimeout = \"1ms\"\n",
                          "t.toml");
  ASSERT_FALSE(bad);
  const auto& m = bad.error().message;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 3) << m;
  EXPECT_NE(m.find("dns.servers: entries must be"), std::string::npos) << m;
  EXPECT_NE(m.find("dns.timeout: must be between"), std::string::npos) << m;
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

// [auth]: mechanisms by name (case-insensitive, known ones only, once each), limits, and
// [auth.send_as] grants; the effective config reads back the same.
TEST(Config, AuthSection) {
  auto c = parse_config(std::string(kMinimal) +
                            "[auth]\nmechanisms = [\"plain\", \"CRAM-MD5\"]\nallow_on_smtp = true\nmax_failures = 5\n"
                            "tarpit_delay = \"1s\"\n[auth.send_as]\n\"a@example.org\" = [\"b@example.org\", \"@c.example\"]\n",
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->auth.mechanisms, (std::vector<std::string>{"PLAIN", "CRAM-MD5"}));
  EXPECT_TRUE(c->auth.allow_on_smtp);
  EXPECT_EQ(c->auth.max_failures, 5u);
  EXPECT_EQ(c->auth.tarpit_delay, std::chrono::seconds(1));
  ASSERT_EQ(c->auth.send_as.count("a@example.org"), 1u);
  EXPECT_EQ(c->auth.send_as.at("a@example.org"), (std::vector<std::string>{"b@example.org", "@c.example"}));
  auto again = parse_config(to_toml(*c), "again.toml");
  ASSERT_TRUE(again) << again.error().message << "\n" << to_toml(*c);
  EXPECT_EQ(again->auth.mechanisms, c->auth.mechanisms);
  EXPECT_EQ(again->auth.send_as, c->auth.send_as);

  auto defaults = parse_config(kMinimal, "t.toml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->auth.mechanisms, (std::vector<std::string>{"PLAIN", "LOGIN", "SCRAM-SHA-256"}));
  EXPECT_FALSE(defaults->auth.allow_on_smtp);

  for (const char* bad : {"[auth]\nmechanisms = [\"DIGEST-MD5\"]\n", "[auth]\nmechanisms = [\"PLAIN\", \"plain\"]\n",
                          "[auth]\nmax_failures = 0\n", "[auth]\ntarpit_after = 5\nlockout_after = 4\n",
                          "[auth]\nnonsense = 1\n", "[auth.send_as]\n\"a@example.org\" = \"b@example.org\"\n",
                          "[auth.send_as]\n\"a@example.org\" = [\"nobody\"]\n"}) {
    EXPECT_FALSE(parse_config(std::string(kMinimal) + bad, "t.toml")) << bad;
  }
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

// Every ```toml block of docs/config.md is a config the loader accepts: the full examples as
// they stand, the fragments (no [server] table) completed by kMinimal's [server] and listener.
// The loader does not open the files a config names, so the example's certificate paths need
// not exist here. Blocks are padded with blank lines so that an error names the line in the
// docs.
TEST(Config, DocsExamplesLoad) {
  std::ifstream in(PETREL_SOURCE_DIR "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md not found";
  std::string line, block;
  int line_no = 0, blocks = 0, complete = 0;
  bool inside = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (!inside) {
      if (line == "```toml") {
        inside = true;
        block = std::string(line_no, '\n');  // the block's first line keeps its number
      }
      continue;
    }
    if (line != "```") {
      block += line + "\n";
      continue;
    }
    inside = false;
    ++blocks;
    const bool fragment = block.find("\n[server]\n") == std::string::npos;
    auto c = parse_config(fragment ? block + kMinimal : block, "docs/config.md");
    EXPECT_TRUE(c) << "the ```toml block ending at docs/config.md:" << line_no << " does not load:\n"
                   << c.error().message;
    if (!c || fragment) continue;

    // A full example is read as a whole, to its last table: one listener per [[listener]].
    ++complete;
    std::size_t tables = 0;
    for (auto at = block.find("\n[[listener]]\n"); at != std::string::npos; at = block.find("\n[[listener]]\n", at + 1)) {
      ++tables;
    }
    EXPECT_EQ(c->listeners.size(), tables) << "docs/config.md:" << line_no;
  }
  EXPECT_FALSE(inside) << "docs/config.md: a ```toml block is not closed";
  EXPECT_GE(blocks, 3);
  EXPECT_GE(complete, 1) << "no full example (a ```toml block with [server]) found in docs/config.md";
}

}  // namespace
}  // namespace petrel::config
