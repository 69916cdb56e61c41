// data_dir.cc: entering the data directory, handing it to the run user, opening the log file
// (data_dir.h).
#include "app/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "base/unique_fd.h"

namespace petrel::app {
namespace {

using Fd = base::UniqueFd;

base::Error errno_failure(const std::string& what, int err) {
  return base::permanent_error(what + ": " + std::strerror(err));
}

// mkdir -p: parents 0755 (they must be searchable to be of use), the last 0750. True when
// the last directory was made here.
base::Result<bool> make_dirs(const std::string& path) {
  bool made = false;
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const bool last = slash == std::string::npos;
    std::string prefix = path.substr(0, slash);
    if (!prefix.empty() && prefix.back() != '/') {
      if (::mkdir(prefix.c_str(), last ? 0750 : 0755) == 0) {
        made = last;
      } else if (errno != EEXIST) {
        return errno_failure("cannot create " + prefix, errno);
      }
    }
    if (last) break;
  }
  return made;
}

// The walk of hand_over_data_dir(): post-order, so a directory stays root's (and so out of the
// run user's reach) until everything below it has been handled. `depth` bounds the recursion
// (the data directory is a few levels deep: mail/<domain>/<user>/.Folder/cur/).
constexpr int kMaxDepth = 16;

base::Status hand_over_entries(int dir_fd, RunUser user, int depth) {
  if (depth > kMaxDepth) return {};
  Fd list_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (list_fd.get() < 0) return errno_failure("cannot read a directory of the data directory", errno);
  DIR* dir = ::fdopendir(list_fd.get());
  if (!dir) return errno_failure("cannot read a directory of the data directory", errno);
  list_fd.release();  // closedir() closes it
  base::Status status;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    // O_PATH: the object itself, never opened for reading (a FIFO or a device would react);
    // O_NOFOLLOW: a symbolic link is the link, which is skipped below.
    Fd fd(::openat(::dirfd(dir), e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) continue;
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0 || st.st_uid != 0) continue;  // the user's already: not walked
    if (S_ISDIR(st.st_mode)) {
      if (auto s = hand_over_entries(fd.get(), user, depth + 1); !s) status = s;
    } else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
      continue;  // links, sockets, devices; a hard link may name a file outside
    }
    if (::fchownat(fd.get(), "", user.uid, user.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      status = errno_failure("cannot give " + std::string(name) + " in the data directory to the run user", errno);
    }
  }
  ::closedir(dir);
  return status;
}

}  // namespace

std::optional<RunUser> lookup_run_user(const config::Config& config) {
  if (::geteuid() != 0 || config.server.user.empty() || config.server.user == "root") return std::nullopt;
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwnam_r(config.server.user.c_str(), &pw, buf, sizeof buf, &found) != 0 || !found) return std::nullopt;
  if (found->pw_uid == 0) return std::nullopt;
  return RunUser{found->pw_uid, found->pw_gid};
}

base::Result<std::string> enter_data_dir(const config::Config& config, bool create) {
  const std::string& path = config.server.data_dir;
  if (path.empty()) return base::permanent_error("server.data_dir is empty");
  bool made = false;
  if (create) {
    auto m = make_dirs(path);
    if (!m) return m.error();
    made = *m;
  }
  // The top may be a symbolic link: the config is the operator's, and so is that choice.
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_failure("cannot open data_dir " + path, errno);
  if (made) {
    if (auto user = lookup_run_user(config); user && ::fchown(fd.get(), user->uid, user->gid) != 0) {
      return errno_failure("cannot give " + path + " to " + config.server.user, errno);
    }
  }
  if (::fchdir(fd.get()) != 0) return errno_failure("cannot enter data_dir " + path, errno);
  return std::string(".");
}

base::Status hand_over_data_dir(RunUser user) {
  Fd top(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (top.get() < 0) return errno_failure("cannot open the data directory", errno);
  struct stat st{};
  if (::fstat(top.get(), &st) != 0) return errno_failure("cannot stat the data directory", errno);
  if (st.st_uid != 0) {
    // The top is the user's: only what root left at the first level (a command run as root
    // before the server first started) is handed over.
    return hand_over_entries(top.get(), user, 1);
  }
  auto status = hand_over_entries(top.get(), user, 1);
  if (::fchown(top.get(), user.uid, user.gid) != 0) return errno_failure("cannot give the data directory to the run user", errno);
  return status;
}

base::Result<int> open_log_file(const std::string& path, std::optional<RunUser> user) {
  // O_EXCL first, so that "created here" is certain; O_NONBLOCK so that a FIFO planted at the
  // path cannot hang the start (it is refused below).
  constexpr int kFlags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  Fd fd(::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0640));
  const bool created = fd.get() >= 0;
  if (!created) {
    if (errno != EEXIST) return errno_failure("cannot open log file " + path, errno);
    fd = Fd(::open(path.c_str(), kFlags));
    if (fd.get() < 0) {
      return errno_failure("cannot open log file " + path + (errno == ELOOP ? " (a symbolic link)" : ""), errno);
    }
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errno_failure("cannot stat log file " + path, errno);
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    return base::permanent_error("log file " + path + " is not a regular file with a single link");
  }
  if (::fcntl(fd.get(), F_SETFL, O_WRONLY | O_APPEND) != 0) return errno_failure("fcntl " + path, errno);
  if (created && user && ::fchown(fd.get(), user->uid, user->gid) != 0) {
    return errno_failure("cannot give log file " + path + " to the run user", errno);
  }
  return fd.release();
}

}  // namespace petrel::app
