// control.cc: the control socket's one-line protocol and the CLI's client. The socket and
// its threads are app/unix_listener.h's.
#include "app/control.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "app/unix_listener.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::app {
namespace {

constexpr int kRequestSeconds = 5;    // for the request line to arrive
constexpr int kCommandSeconds = 60;   // for the scheduler to make its records durable

// Waits until `fd` is readable/writable or the deadline passes. False on timeout or error.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline, int stop_fd = -1) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(p, stop_fd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (stop_fd >= 0 && p[1].revents) return false;
    return (p[0].revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

// Reads one line (up to '\n', at most kMaxControlRequest bytes) before the deadline.
base::Result<std::string> read_line(int fd, std::chrono::steady_clock::time_point deadline, int stop_fd = -1) {
  std::string line;
  char buf[256];
  while (line.find('\n') == std::string::npos) {
    if (line.size() > kMaxControlRequest) return base::permanent_error("line too long");
    if (!wait_for(fd, POLLIN, deadline, stop_fd)) return base::temporary_error("timed out");
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::errno_error("read", errno);
    if (n == 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  auto nl = line.find('\n');
  if (nl == std::string::npos) return base::permanent_error("no complete line");
  line.resize(nl);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::vector<std::string_view> words_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// "hold ID" → request; "ALL" means every pending message (flush alone means the same).
base::Result<queue::ControlRequest> parse_request(std::string_view line) {
  auto words = words_of(line);
  if (words.empty() || words.size() > 2) return base::permanent_error("usage: flush [ID] | hold|release|delete ID|ALL");
  queue::ControlRequest r;
  std::string_view verb = words[0];
  if (verb == "flush") r.op = queue::ControlRequest::Op::kFlush;
  else if (verb == "hold") r.op = queue::ControlRequest::Op::kHold;
  else if (verb == "release") r.op = queue::ControlRequest::Op::kRelease;
  else if (verb == "delete") r.op = queue::ControlRequest::Op::kDelete;
  else return base::permanent_error("unknown command " + base::log_escape(verb, 40));
  if (words.size() == 1 && r.op != queue::ControlRequest::Op::kFlush) {
    return base::permanent_error(std::string(verb) + " needs a queue id or ALL");
  }
  if (words.size() == 2 && words[1] != "ALL") r.id = std::string(words[1]);
  return r;
}

}  // namespace

std::string control_socket_path(const std::string& data_dir) { return data_dir + "/control.sock"; }

struct ControlServer::Impl {
  explicit Impl(queue::Scheduler& s) : scheduler(s) {}

  queue::Scheduler& scheduler;
  std::unique_ptr<UnixListener> listener;  // last: stopped first, while the rest still exists

  void serve_one(int fd, const ucred& peer, int stop_fd) {
    // Root, or the server's own user; the socket's mode says the same, this says it twice.
    if (peer.uid != 0 && peer.uid != ::getuid()) {
      PETREL_LOG(kWarn, "control.refused", "uid={}", peer.uid);
      send_all(fd, "error permission denied\n");
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRequestSeconds);
    auto line = read_line(fd, deadline, stop_fd);
    if (!line) {
      send_all(fd, "error " + line.error().message + "\n");
      return;
    }
    auto request = parse_request(*line);
    if (!request) {
      send_all(fd, "error " + request.error().message + "\n");
      return;
    }
    PETREL_LOG(kInfo, "control.request", "uid={} command=\"{}\"", peer.uid, base::log_escape(*line, 100));
    auto promise = std::make_shared<std::promise<queue::ControlResult>>();
    auto future = promise->get_future();
    scheduler.control(*request, [promise](queue::ControlResult r) { promise->set_value(std::move(r)); });
    if (future.wait_for(std::chrono::seconds(kCommandSeconds)) != std::future_status::ready) {
      send_all(fd, "error the queue did not answer in time\n");
      return;
    }
    queue::ControlResult r = future.get();
    if (!r.status) {
      send_all(fd, "error " + base::log_escape(r.status.error().message, 200) + "\n");
      return;
    }
    send_all(fd, "ok messages=" + std::to_string(r.messages) + " recipients=" + std::to_string(r.recipients) + "\n");
  }
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

base::Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& path, queue::Scheduler& scheduler) {
  auto impl = std::make_unique<Impl>(scheduler);
  Impl* raw = impl.get();
  UnixListener::Options o;
  o.path = path;
  o.mode = 0600;
  o.max_clients = kMaxControlClients;
  o.busy_reply = "error busy: too many control requests at once\n";
  o.serve = [raw](int fd, const ucred& peer, int stop_fd) { raw->serve_one(fd, peer, stop_fd); };
  auto listener = UnixListener::start(std::move(o));
  if (!listener) return listener.error();
  impl->listener = std::move(*listener);
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

base::Result<std::string> control_request(const std::string& path, const std::string& line, int timeout_seconds) {
  auto fd = unix_connect(path);
  if (!fd) return base::temporary_error("cannot reach the server at " + fd.error().message + " (is `petrel serve` running?)");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  send_all(*fd, line + "\n");
  auto answer = read_line(*fd, std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds));
  if (!answer) return base::temporary_error("no answer from the server: " + answer.error().message);
  return answer;
}

}  // namespace petrel::app
