// submit_socket.cc: the local submission socket's threads and protocol (submit_socket.h).
#include "app/submit_socket.h"

#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <future>

#include "app/unix_listener.h"
#include "base/log.h"
#include "base/strings.h"
#include "mail/headers.h"

namespace petrel::app {
namespace {

constexpr int kReadSeconds = 60;
constexpr std::size_t kMaxLine = 1024;
constexpr std::size_t kMaxChunk = 64 * 1024;

struct Failure {
  std::string reply;  // "error 451 4.3.0 ..."
};

// A connection's input: bounded line and chunk reads, each within kReadSeconds, all of them
// within smtp.local_submission_timeout of the connection.
class Reader {
 public:
  Reader(int fd, int stop_fd, std::chrono::milliseconds total)
      : fd_(fd), stop_fd_(stop_fd), end_(std::chrono::steady_clock::now() + total) {}

  bool fill() {
    auto deadline = std::min(end_, std::chrono::steady_clock::now() + std::chrono::seconds(kReadSeconds));
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int n = ::poll(p, 2, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || p[1].revents) return false;
      char buf[16384];
      ssize_t got = ::read(fd_, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      buf_.append(buf, static_cast<std::size_t>(got));
      return true;
    }
  }
  std::optional<std::string> line() {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      if (buf_.size() > kMaxLine || !fill()) return std::nullopt;
    }
  }
  // Exactly n octets, handed to `sink` as they arrive.
  template <typename Sink>
  bool octets(std::size_t n, Sink sink) {
    while (n > 0) {
      if (buf_.empty() && !fill()) return false;
      std::size_t take = std::min(n, buf_.size());
      sink(std::string_view(buf_).substr(0, take));
      buf_.erase(0, take);
      n -= take;
    }
    return true;
  }

 private:
  int fd_, stop_fd_;
  std::chrono::steady_clock::time_point end_;
  std::string buf_;
};

// An address as sendmail users write it: "user@domain", "<user@domain>", or a bare local
// name, which means that name at our host name.
std::optional<mail::Address> local_address(std::string_view text, const std::string& hostname) {
  text = base::trim(text);
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
  if (text.empty()) return std::nullopt;
  std::string full(text);
  if (full.find('@') == std::string::npos) full += "@" + hostname;
  auto a = mail::parse_address(full);
  if (!a || a->domain.empty()) return std::nullopt;
  return std::move(a).value();
}

}  // namespace

std::string submit_socket_path(const std::string& data_dir) { return data_dir + "/submit.sock"; }

struct SubmitServer::Impl {
  Impl(const config::Config& c, queue::Intake& i) : config(c), intake(i) {}

  const config::Config& config;
  queue::Intake& intake;
  std::unique_ptr<UnixListener> listener;  // last: stopped first, while the rest still exists

  void serve(int fd, const ucred& cred, int stop_fd) { send_all(fd, submit(fd, cred, stop_fd) + "\n"); }

  std::string submit(int fd, const ucred& cred, int stop_fd) {
    const std::string& host = config.server.hostname;
    passwd pw{};
    passwd* found = nullptr;
    char pwbuf[4096];
    std::string user = (::getpwuid_r(cred.uid, &pw, pwbuf, sizeof pwbuf, &found) == 0 && found)
                           ? std::string(found->pw_name)
                           : "uid" + std::to_string(cred.uid);
    const bool privileged = cred.uid == 0 || cred.uid == ::getuid();
    Reader in(fd, stop_fd, config.smtp.local_submission_timeout);

    // The envelope.
    mail::Envelope env;
    auto own = local_address(user, host);
    if (!own) return "error 553 5.1.7 no usable address for local user " + base::log_escape(user, 64);
    env.sender = *own;
    std::string warning;
    std::optional<std::string> line;
    while ((line = in.line())) {
      std::string_view l = *line;
      // Defence in depth (sendmail refuses them first): no control octet in an envelope line,
      // not even one that trimming or the address parser would drop.
      if ((l.starts_with("SENDER ") || l.starts_with("RCPT ")) && mail::has_control(l)) {
        return l.starts_with("SENDER ") ? "error 553 5.1.7 control character in the sender address"
                                        : "error 553 5.1.3 control character in a recipient address";
      }
      if (l.starts_with("SENDER ")) {
        auto text = base::trim(l.substr(7));
        if (text == "<>") {
          env.sender = mail::Address{};
        } else {
          auto a = local_address(text, host);
          if (!a) return "error 553 5.1.7 bad sender address";
          env.sender = *a;
        }
        if (!privileged && !(env.sender == *own)) {
          warning = "X-Authentication-Warning: " + host + ": " + user + " set sender to <" + env.sender.str() +
                    "> using -f\r\n";
        }
      } else if (l.starts_with("RCPT ")) {
        auto a = local_address(l.substr(5), host);
        if (!a) return "error 553 5.1.3 bad recipient address: " + base::log_escape(l.substr(5), 100);
        if (env.recipients.size() >= config.smtp.max_recipients) return "error 452 4.5.3 too many recipients";
        env.recipients.push_back(mail::Recipient{*a, mail::kNotifyUnspecified, {}, {}});
      } else if (l == "DATA") {
        break;
      } else {
        return "error 500 5.5.2 unknown request";
      }
    }
    if (!line) return "error 421 4.4.2 the request did not arrive in time";
    if (env.recipients.empty()) return "error 554 5.5.1 no recipients";
    if (!intake.has_free_space()) return "error 452 4.3.1 insufficient system storage";
    env.auth_user = own->str();
    env.received_at = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();

    auto writer = intake.begin(env);
    if (!writer) {
      PETREL_LOG(kError, "submit.queue_error", "error=\"{}\"", base::log_escape(writer.error().message));
      return "error 451 4.3.0 local problem in processing";
    }
    auto& w = **writer;
    bool storage_ok = true;
    auto put = [&](std::string_view s) {
      if (storage_ok && !w.append(s)) storage_ok = false;
    };
    const std::string by_comment = "Petrel, from userid " + std::to_string(cred.uid);
    put(mail::received_field({.by = host, .by_comment = by_comment, .id = w.id(), .at = env.received_at}));
    put(warning);
    std::uint64_t size = 0;
    for (;;) {
      auto header = in.line();
      if (!header) {
        w.abort();
        return "error 421 4.4.2 the message did not arrive whole";
      }
      std::optional<std::uint64_t> n;
      if (!header->empty() && header->size() <= 6 && header->find_first_not_of("0123456789") == std::string::npos) {
        n = base::parse_size(*header);
      }
      if (!n || *n > kMaxChunk) {
        w.abort();
        return "error 500 5.5.2 bad chunk";
      }
      if (*n == 0) break;
      size += *n;
      if (!in.octets(static_cast<std::size_t>(*n), [&](std::string_view s) {
            if (size <= config.smtp.max_message_size) put(s);
          })) {
        w.abort();
        return "error 421 4.4.2 the message did not arrive whole";
      }
    }
    if (size > config.smtp.max_message_size) {
      w.abort();
      return "error 552 5.3.4 message size exceeds fixed maximum message size";
    }
    if (!storage_ok) {
      w.abort();
      return "error 451 4.3.0 local problem in processing";
    }
    std::promise<base::Status> done;
    auto committed = done.get_future();
    w.commit([&done](base::Status s) { done.set_value(std::move(s)); });
    auto status = committed.get();
    if (!status) {
      PETREL_LOG(kError, "submit.queue_error", "id={} error=\"{}\"", w.id(), base::log_escape(status.error().message));
      return "error 451 4.3.0 local problem in processing";
    }
    PETREL_LOG(kInfo, "submit.queued", "id={} uid={} user={} from=<{}> nrcpt={} size={}", w.id(), cred.uid,
               base::log_escape(user, 64), base::log_escape(env.sender.str()), env.recipients.size(), size);
    return "ok " + w.id();
  }
};

SubmitServer::SubmitServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SubmitServer::~SubmitServer() = default;

base::Result<std::unique_ptr<SubmitServer>> SubmitServer::start(const std::string& path, const config::Config& config,
                                                                queue::Intake& intake) {
  auto impl = std::make_unique<Impl>(config, intake);
  Impl* raw = impl.get();
  UnixListener::Options o;
  o.path = path;
  o.mode = 0666;  // every local user may submit; who they are comes from SO_PEERCRED, not the mode
  o.max_clients = kMaxSubmitClients;
  o.max_per_uid = kMaxSubmitClientsPerUid;
  o.busy_reply = "error 421 4.3.2 too many local submissions at once, try again later\n";
  o.serve = [raw](int fd, const ucred& peer, int stop_fd) { raw->serve(fd, peer, stop_fd); };
  auto listener = UnixListener::start(std::move(o));
  if (!listener) return listener.error();
  impl->listener = std::move(*listener);
  return std::unique_ptr<SubmitServer>(new SubmitServer(std::move(impl)));
}

}  // namespace petrel::app
