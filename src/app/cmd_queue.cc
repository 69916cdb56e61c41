// cmd_queue.cc: `petrel queue list` and `show` over a read-only Spool; `flush`, `hold`, `release`
// and `delete` through the running server's control socket (app/control.h).
#include "app/cmd_queue.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/common.h"
#include "app/control.h"
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
  const std::string data = enter_data_dir_as_owner(config, /*create=*/false);
  auto spool = queue::Spool::open(data, config.queue, queue::Spool::Mode::kReadOnly);
  if (!spool) fail("cannot read the queue: " + spool.error().message);
  return std::move(spool).value();
}

const char* state_name(int status) {
  switch (status) {
    case 0: return "new";
    case 1: return "delivered";
    case 2: return "deferred";
    case 3: return "failed";
    case 4: return "expired";
    case 5: return "held";
    case 6: return "deleted";
  }
  return "?";
}

// "in 4m" / "now": when a deferred recipient is next due.
std::string due_in(std::int64_t at) {
  std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  if (at <= now) return "now";
  std::int64_t s = at - now;
  if (s < 60) return "in " + std::to_string(s) + "s";
  if (s < 3600) return "in " + std::to_string(s / 60) + "m";
  return "in " + std::to_string(s / 3600) + "h";
}

// "deferred bob@example.net attempts=2 next=... (in 4m) "4.4.3 ..."": one recipient's last
// recorded state (an empty `st.id`: none yet, "new"), for list and show.
std::string recipient_state(const queue::RecipientState& st, const std::string& who = "") {
  int status = st.id.empty() ? 0 : static_cast<int>(st.status);
  std::string line = state_name(status);
  if (!who.empty()) line += " " + who;
  if (status != 0) line += " attempts=" + std::to_string(st.attempts);
  if (status == static_cast<int>(queue::RecipientStatus::kDeferred)) {
    line += " next=" + utc(st.next_attempt) + " (" + due_in(st.next_attempt) + ")";
  }
  std::string why = st.enhanced.empty() ? st.text : st.enhanced + " " + st.text;
  if (st.reply_code != 0) why = std::to_string(st.reply_code) + " " + why;
  if (!why.empty()) line += " \"" + show(why) + "\"";
  return line;
}

// What the spool says about one message: its envelope and each recipient's last state.
struct Listed {
  queue::StoredMessage message;
  std::vector<queue::RecipientState> last;  // status 0 (none yet) = new
  std::size_t open = 0;                     // recipients not final
};

// The queue as the spool records it: one pass in log order, keeping only messages that still
// have a recipient to deliver (or, with `all`, every message the spool still holds).
void list(const std::string& config_path, bool all) {
  auto spool = open_spool(config_path);
  std::map<std::string, Listed> listed;
  auto s = spool->for_each_record(
      [&](const queue::StoredMessage& m) {
        Listed& l = listed[m.id];
        l.message = m;
        l.last.assign(m.envelope.recipients.size(), queue::RecipientState{});
        l.open = m.envelope.recipients.size();
      },
      [&](const queue::RecipientState& st, std::uint64_t) {
        auto it = listed.find(st.id);
        if (it == listed.end() || st.recipient >= it->second.last.size()) return;
        auto& slot = it->second.last[st.recipient];
        bool was_open = slot.id.empty() || !queue::format::is_final(slot.status);
        if (!was_open) return;
        slot = st;
        if (queue::format::is_final(st.status) && --it->second.open == 0 && !all) listed.erase(it);
      });
  if (!s) fail("cannot read the queue: " + s.error().message);

  std::uint64_t count = 0, rcpts = 0;
  std::map<std::string, std::uint64_t> by_state;
  for (const auto& [id, l] : listed) {
    if (l.open == 0 && !all) continue;
    const auto& m = l.message;
    std::printf("%s %5s %10llu %s\n", id.c_str(), age(m.envelope.received_at).c_str(),
                static_cast<unsigned long long>(m.body.length), address(m.envelope.sender).c_str());
    for (std::size_t i = 0; i < m.envelope.recipients.size(); ++i) {
      const auto& st = l.last[i];
      int status = st.id.empty() ? 0 : static_cast<int>(st.status);
      std::printf("    %s\n", recipient_state(st, address(m.envelope.recipients[i].address)).c_str());
      if (status == 0 || !queue::format::is_final(st.status)) {
        ++rcpts;
        ++by_state[state_name(status)];
      }
    }
    ++count;
  }
  std::string detail;
  for (const auto& [name, n] : by_state) detail += (detail.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  std::printf("%llu message%s, %llu recipient%s to deliver%s%s%s\n", static_cast<unsigned long long>(count),
              count == 1 ? "" : "s", static_cast<unsigned long long>(rcpts), rcpts == 1 ? "" : "s",
              detail.empty() ? "" : " (", detail.c_str(), detail.empty() ? "" : ")");
}

// flush/hold/release/delete: one line to the running server's control socket (app/control.h).
void control(const std::string& config_path, const std::string& verb, const std::string& target) {
  auto config = load_config_or_exit(config_path);
  const std::string data = enter_data_dir_as_owner(config, /*create=*/false);
  std::string line = verb + (target.empty() ? "" : " " + target);
  auto answer = control_request(control_socket_path(data), line, 90);
  if (!answer) fail(answer.error().message);
  if (answer->rfind("ok", 0) != 0) {
    fail(answer->rfind("error ", 0) == 0 ? answer->substr(6) : *answer);
  }
  std::printf("%s: %s\n", verb.c_str(), answer->c_str() + (answer->size() > 3 ? 3 : answer->size()));
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
  // Each recipient's last recorded state (the state records follow the message in the log).
  std::vector<queue::RecipientState> last(e.recipients.size());
  (void)spool->for_each_record([](const queue::StoredMessage&) {},
                               [&](const queue::RecipientState& st, std::uint64_t) {
                                 if (st.id != m.id || st.recipient >= last.size()) return;
                                 auto& slot = last[st.recipient];
                                 if (slot.id.empty() || !queue::format::is_final(slot.status)) slot = st;
                               });
  for (std::size_t i = 0; i < e.recipients.size(); ++i) {
    const auto& r = e.recipients[i];
    std::printf("to: %s notify=%s", address(r.address).c_str(), notify(r.notify).c_str());
    if (!r.orcpt_type.empty()) std::printf(" orcpt=%s;%s", show(r.orcpt_type).c_str(), show(r.orcpt).c_str());
    std::printf("\n    %s\n", recipient_state(last[i]).c_str());
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
  auto* queue = app.add_subcommand("queue", "Look into the mail queue and act on it (safe while the server runs)");
  queue->require_subcommand(1);

  auto* list_cmd = queue->add_subcommand(
      "list", "Messages still to deliver: id, age, size, sender, then each recipient's state, attempts, next try");
  auto list_config = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  add_config_option(list_cmd, *list_config);
  list_cmd->add_flag("--all", *all, "Also list messages whose recipients are all done but not yet removed");
  list_cmd->callback([list_config, all] { list(*list_config, *all); });

  // The commands that change the queue go through the running server (app/control.h).
  struct Action {
    const char* verb;
    const char* help;
    bool target_required;
  };
  static const Action kActions[] = {
      {"flush", "Try deferred mail now: one message, or every one when no ID is given", false},
      {"hold", "Stop delivering a message (ID, or ALL) until it is released; held mail does not expire", true},
      {"release", "Release held mail (ID, or ALL): it is tried at once", true},
      {"delete", "Delete a message (ID, or ALL) from the queue without delivering it and without a bounce", true},
  };
  for (const Action& a : kActions) {
    auto* cmd = queue->add_subcommand(a.verb, a.help);
    auto cfg = std::make_shared<std::string>();
    auto target = std::make_shared<std::string>();
    add_config_option(cmd, *cfg);
    auto* opt = cmd->add_option("ID", *target, a.target_required ? "Queue id, or ALL" : "Queue id (default: all)");
    if (a.target_required) opt->required();
    std::string verb = a.verb;
    cmd->callback([cfg, target, verb] { control(*cfg, verb, *target); });
  }

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
