// control.cc: the control socket's thread, its one-line protocol, and the CLI's client.
// A plain thread with poll(): a handful of operator commands a day do not need the event
// loops, and keeping them off the loops means a stuck CLI can never slow SMTP sessions.
#include "app/control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "base/log.h"
#include "base/strings.h"

namespace petrel::app {
namespace {

constexpr int kRequestSeconds = 5;    // for the request line to arrive
constexpr int kCommandSeconds = 60;   // for the scheduler to make its records durable

base::Result<sockaddr_un> socket_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return base::permanent_error("control socket path too long for a Unix socket (" + std::to_string(path.size()) +
                                 " bytes): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

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

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away: nothing to tell it
    data.remove_prefix(static_cast<std::size_t>(n));
  }
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
  std::string path;
  queue::Scheduler& scheduler;
  int listen_fd = -1;
  int stop_fd = -1;
  std::thread thread;

  Impl(std::string p, queue::Scheduler& s) : path(std::move(p)), scheduler(s) {}
  ~Impl() {
    if (stop_fd >= 0) {
      std::uint64_t one = 1;
      (void)!::write(stop_fd, &one, sizeof one);
    }
    if (thread.joinable()) thread.join();
    if (listen_fd >= 0) {
      ::close(listen_fd);
      ::unlink(path.c_str());
    }
    if (stop_fd >= 0) ::close(stop_fd);
  }

  void run() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      int n = ::poll(p, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || p[1].revents) return;
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve_one(fd);
      ::close(fd);
    }
  }

  void serve_one(int fd) {
    // Root, or the server's own user; the socket's mode says the same, this says it twice.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != 0 && cred.uid != ::getuid())) {
      PETREL_LOG(kWarn, "control.refused", "uid={}", cred.uid);
      write_all(fd, "error permission denied\n");
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kRequestSeconds);
    auto line = read_line(fd, deadline, stop_fd);
    if (!line) {
      write_all(fd, "error " + line.error().message + "\n");
      return;
    }
    auto request = parse_request(*line);
    if (!request) {
      write_all(fd, "error " + request.error().message + "\n");
      return;
    }
    PETREL_LOG(kInfo, "control.request", "uid={} command=\"{}\"", cred.uid, base::log_escape(*line, 100));
    auto promise = std::make_shared<std::promise<queue::ControlResult>>();
    auto future = promise->get_future();
    scheduler.control(*request, [promise](queue::ControlResult r) { promise->set_value(std::move(r)); });
    if (future.wait_for(std::chrono::seconds(kCommandSeconds)) != std::future_status::ready) {
      write_all(fd, "error the queue did not answer in time\n");
      return;
    }
    queue::ControlResult r = future.get();
    if (!r.status) {
      write_all(fd, "error " + base::log_escape(r.status.error().message, 200) + "\n");
      return;
    }
    write_all(fd, "ok messages=" + std::to_string(r.messages) + " recipients=" + std::to_string(r.recipients) + "\n");
  }
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

base::Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& path, queue::Scheduler& scheduler) {
  auto addr = socket_address(path);
  if (!addr) return addr.error();
  auto impl = std::make_unique<Impl>(path, scheduler);
  impl->stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (impl->stop_fd < 0) return base::errno_error("eventfd", errno);
  impl->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return base::errno_error("socket", errno);
  ::unlink(path.c_str());  // a stale socket from a server that is gone (we hold the spool lock)
  // Not umask(): it is process-wide, and delivery threads creating Maildir directories at
  // this moment would get it too (a 0600 directory cannot be entered). The socket is made
  // 0600 right after bind(); until then it sits in the data directory, which only the
  // server's user can enter, and nobody can connect before listen().
  if (::bind(impl->listen_fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    ::close(std::exchange(impl->listen_fd, -1));
    return base::errno_error("bind " + path, err);
  }
  if (::chmod(path.c_str(), 0600) != 0) return base::errno_error("chmod " + path, errno);
  if (::listen(impl->listen_fd, 8) != 0) return base::errno_error("listen " + path, errno);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

base::Result<std::string> control_request(const std::string& path, const std::string& line, int timeout_seconds) {
  auto addr = socket_address(path);
  if (!addr) return addr.error();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::errno_error("socket", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    return base::errno_error("cannot reach the server at " + path + " (is `petrel serve` running?)", errno);
  }
  write_all(fd, line + "\n");
  auto answer = read_line(fd, std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds));
  if (!answer) return base::temporary_error("no answer from the server: " + answer.error().message);
  return answer;
}

}  // namespace petrel::app
