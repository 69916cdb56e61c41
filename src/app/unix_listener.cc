// unix_listener.cc: the accept thread and per-connection threads of a local socket
// (unix_listener.h).
#include "app/unix_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <thread>

namespace petrel::app {

base::Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return base::permanent_error("socket path too long for a Unix socket (" + std::to_string(path.size()) +
                                 " bytes): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

base::Result<int> unix_connect(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return addr.error();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::errno_error("socket", errno);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    ::close(fd);
    return base::errno_error(path, err);
  }
  return fd;
}

struct UnixListener::Impl {
  explicit Impl(Options o) : options(std::move(o)) {}

  Options options;
  int listen_fd = -1;
  int stop_fd = -1;
  std::thread acceptor;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> workers;  // touched by the accept thread, then by the destructor after it
  std::atomic<std::size_t> active{0};
  std::mutex per_uid_mu;                     // held only to count
  std::map<uid_t, std::size_t> per_uid;      // connections being served, by peer uid

  // Takes a slot for `uid`, or says there is none (the total or the uid's share is used up).
  bool admit(uid_t uid) {
    std::lock_guard lock(per_uid_mu);
    const std::size_t cap = options.max_per_uid ? options.max_per_uid : options.max_clients;
    auto& mine = per_uid[uid];
    if (active.load() >= options.max_clients || mine >= cap) {
      if (mine == 0) per_uid.erase(uid);
      return false;
    }
    ++mine;
    ++active;
    return true;
  }
  void release(uid_t uid) {
    std::lock_guard lock(per_uid_mu);
    if (auto it = per_uid.find(uid); it != per_uid.end() && --it->second == 0) per_uid.erase(it);
    --active;
  }

  ~Impl() {
    if (stop_fd >= 0) {
      std::uint64_t one = 1;
      (void)!::write(stop_fd, &one, sizeof one);
    }
    if (acceptor.joinable()) acceptor.join();
    for (auto& w : workers) w.thread.join();
    if (listen_fd >= 0) {
      ::close(listen_fd);
      ::unlink(options.path.c_str());
    }
    if (stop_fd >= 0) ::close(stop_fd);
  }

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      int n = ::poll(p, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || p[1].revents) return;
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      reap();
      ucred peer{};
      socklen_t len = sizeof peer;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
        ::close(fd);  // cannot say who it is: nobody is served blind
        continue;
      }
      if (!admit(peer.uid)) {
        send_all(fd, options.busy_reply);
        ::close(fd);
        continue;
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers.push_back(Worker{std::thread([this, fd, peer, done] {
                                 options.serve(fd, peer, stop_fd);
                                 ::close(fd);
                                 release(peer.uid);
                                 done->store(true);
                               }),
                               done});
    }
  }

  void reap() {
    for (auto it = workers.begin(); it != workers.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }
};

UnixListener::UnixListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UnixListener::~UnixListener() = default;

base::Result<std::unique_ptr<UnixListener>> UnixListener::start(Options options) {
  auto addr = unix_address(options.path);
  if (!addr) return addr.error();
  auto impl = std::make_unique<Impl>(std::move(options));
  const std::string& path = impl->options.path;
  impl->stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (impl->stop_fd < 0) return base::errno_error("eventfd", errno);
  impl->listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->listen_fd < 0) return base::errno_error("socket", errno);
  ::unlink(path.c_str());  // a stale socket from a server that is gone (the caller holds the spool lock)
  // Not umask(): it is process-wide, and delivery threads creating Maildir directories at this
  // moment would get it too (a 0600 directory cannot be entered). The mode is set right after
  // bind(); until listen() nobody can connect anyway.
  if (::bind(impl->listen_fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    ::close(std::exchange(impl->listen_fd, -1));
    return base::errno_error("bind " + path, err);
  }
  if (::chmod(path.c_str(), impl->options.mode) != 0) return base::errno_error("chmod " + path, errno);
  if (::listen(impl->listen_fd, 16) != 0) return base::errno_error("listen " + path, errno);
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->accept_loop(); });
  return std::unique_ptr<UnixListener>(new UnixListener(std::move(impl)));
}

}  // namespace petrel::app
