// cmd_queue.cc: `petrel queue list` and `petrel queue show` over a read-only Spool.
#include "app/cmd_queue.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "app/common.h"
#include "base/strings.h"
#include "queue/spool.h"

namespace petrel::app {
namespace {

std::string show(std::string_view peer_text) { return base::log_escape(peer_text, 1000); }

std::string address(const mail::Address& a) {
  if (a.null()) return "<>";
  return show(a.local + "@" + a.domain);
}

// "45s", "12m", "3h", "2d": the largest unit, rounded down.
std::string age(std::int64_t received_at) {
  std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  std::int64_t s = now > received_at ? now - received_at : 0;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  char buf[32];
  if (!::gmtime_r(&tt, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return std::to_string(t);
  return buf;
}

std::string notify(std::uint8_t bits) {
  if (bits == mail::kNotifyUnspecified) return "-";
  if (bits & mail::kNotifyNever) return "NEVER";
  std::string out;
  auto add = [&](std::uint8_t bit, const char* name) {
    if (!(bits & bit)) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(mail::kNotifySuccess, "SUCCESS");
  add(mail::kNotifyFailure, "FAILURE");
  add(mail::kNotifyDelay, "DELAY");
  return out;
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "petrel: " << message << "\n";
  std::exit(kExitFailure);
}

std::unique_ptr<queue::Spool> open_spool(const std::string& config_path) {
  auto config = load_config_or_exit(config_path);
  become_data_owner(config);
  auto spool = queue::Spool::open(config.server.data_dir, config.queue, queue::Spool::Mode::kReadOnly);
  if (!spool) fail("cannot read the queue: " + spool.error().message);
  return std::move(spool).value();
}

void list(const std::string& config_path) {
  auto spool = open_spool(config_path);
  std::uint64_t count = 0;
  auto s = spool->for_each_message([&](const queue::StoredMessage& m) {
    std::string rcpts;
    for (const auto& r : m.envelope.recipients) {
      if (!rcpts.empty()) rcpts += ",";
      rcpts += address(r.address);
    }
    std::printf("%s %5s %10llu %s %s\n", m.id.c_str(), age(m.envelope.received_at).c_str(),
                static_cast<unsigned long long>(m.body.length), address(m.envelope.sender).c_str(), rcpts.c_str());
    ++count;
  });
  if (!s) fail("cannot read the queue: " + s.error().message);
  std::printf("%llu message%s\n", static_cast<unsigned long long>(count), count == 1 ? "" : "s");
}

// raw: only the message octets as stored (for piping into other tools), no envelope.
void show_message(const std::string& config_path, const std::string& id, bool body, bool raw) {
  auto spool = open_spool(config_path);
  auto found = spool->find(id);
  if (!found) fail("cannot read the queue: " + found.error().message);
  if (!*found) fail("no message " + show(id) + " in the queue");
  const queue::StoredMessage& m = **found;
  const mail::Envelope& e = m.envelope;

  // The envelope, one field per line.
  if (raw) body = true;
  static const char* kBody[] = {"-", "7BIT", "8BITMIME"};
  static const char* kRet[] = {"-", "FULL", "HDRS"};
  if (!raw) {
  std::printf("id: %s\n", m.id.c_str());
  std::printf("received: %s (%s ago)\n", utc(e.received_at).c_str(), age(e.received_at).c_str());
  std::printf("client: %s helo=%s auth=%s\n", show(e.client_ip).c_str(), show(e.helo).c_str(),
              e.auth_user.empty() ? "-" : show(e.auth_user).c_str());
  std::printf("from: %s\n", address(e.sender).c_str());
  std::printf("body: %s smtputf8=%s ret=%s envid=%s declared_size=%llu\n", kBody[static_cast<int>(e.body)],
              e.smtputf8 ? "yes" : "no", kRet[static_cast<int>(e.ret)], e.envid.empty() ? "-" : show(e.envid).c_str(),
              static_cast<unsigned long long>(e.declared_size));
  std::printf("size: %llu (%s)\n", static_cast<unsigned long long>(m.body.length),
              m.body.kind == queue::format::BodyKind::kInline ? "inline" : m.body_path.c_str());
  for (const auto& r : e.recipients) {
    std::printf("to: %s notify=%s", address(r.address).c_str(), notify(r.notify).c_str());
    if (!r.orcpt_type.empty()) std::printf(" orcpt=%s;%s", show(r.orcpt_type).c_str(), show(r.orcpt).c_str());
    std::printf("\n");
  }
  std::printf("\n");
  }

  // Then the header section (up to the empty line), or with --body everything, as stored.
  auto reader = spool->open_body(m);
  if (!reader) fail("cannot read the body: " + reader.error().message);
  constexpr std::size_t kMaxHeaders = 1 << 20;
  std::string seen;  // header mode: what was read so far, to find the end of the headers
  char buf[64 * 1024];
  for (;;) {
    auto n = (*reader)->read(buf, sizeof buf);
    if (!n) {
      std::fflush(stdout);
      fail("body damaged: " + n.error().message);
    }
    if (*n == 0) break;
    if (body) {
      std::fwrite(buf, 1, *n, stdout);
      continue;
    }
    std::size_t from = seen.size() >= 3 ? seen.size() - 3 : 0;
    seen.append(buf, *n);
    std::size_t end = seen.find("\r\n\r\n", from);
    if (end != std::string::npos || seen.size() >= kMaxHeaders) {
      seen.resize(end != std::string::npos ? end + 2 : kMaxHeaders);
      break;
    }
  }
  if (!body) std::fwrite(seen.data(), 1, seen.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void register_queue_commands(CLI::App& app) {
  auto* queue = app.add_subcommand("queue", "Look into the mail queue (read-only; safe while the server runs)");
  queue->require_subcommand(1);

  auto* list_cmd = queue->add_subcommand("list", "One line per queued message: id, age, size, sender, recipients");
  auto list_config = std::make_shared<std::string>();
  add_config_option(list_cmd, *list_config);
  list_cmd->callback([list_config] { list(*list_config); });

  auto* show_cmd = queue->add_subcommand("show", "A message's envelope and headers (--body: the whole message)");
  auto show_config = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto body = std::make_shared<bool>(false);
  add_config_option(show_cmd, *show_config);
  show_cmd->add_option("ID", *id, "Queue id")->required();
  auto raw = std::make_shared<bool>(false);
  show_cmd->add_flag("--body", *body, "Print the whole message as stored, not only its headers");
  show_cmd->add_flag("--raw", *raw, "Print only the message as stored, without the envelope");
  show_cmd->callback([show_config, id, body, raw] { show_message(*show_config, *id, *body, *raw); });
}

}  // namespace petrel::app
