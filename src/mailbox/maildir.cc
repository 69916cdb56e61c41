// maildir.cc: unique names, directory creation and the delivery procedure (README.md).
#include "mailbox/maildir.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/unique_fd.h"

namespace petrel::mailbox {

namespace {

constexpr std::size_t kBufferSize = 64 * 1024;
constexpr int kMaxDirDepth = 64;  // mkdir -p gives up beyond this (a loop or a bogus root)
constexpr int kNameAttempts = 5;  // O_EXCL collisions before giving up (one is already odd)

// The Q<counter> of unique names. One per process, not per Maildir: two Maildir objects for
// the same root in two threads must not produce the same name in the same microsecond.
std::atomic<std::uint64_t> g_name_counter{0};

bool is_disk_full(int err) { return err == ENOSPC || err == EDQUOT; }

// Maildir spec: "replace / with \057 and : with \072"; we add ',' (our field separator).
std::string escape_hostname(std::string host) {
  if (host.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) == 0) host = buf;
  }
  if (host.empty()) host = "localhost";
  std::string out;
  for (char c : host) {
    switch (c) {
      case '/': out += "\\057"; break;
      case ':': out += "\\072"; break;
      case ',': out += "\\054"; break;
      default: out += c;
    }
  }
  return out;
}

std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes on every path out of deliver(); close errors are checked where they matter.
using Fd = base::UniqueFd;

}  // namespace

Maildir::Maildir(std::string root, MaildirOptions options)
    : root_(std::move(root)),
      host_(escape_hostname(std::move(options.hostname))),
      clock_(options.clock ? options.clock : &real_clock_),
      io_(std::move(options.io)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  PETREL_ASSERT(!root_.empty(), "Maildir root must not be empty");
}

// <unix seconds>.M<usec>P<pid>Q<counter>.<host> (Maildir spec; Dovecot's form). The time
// and pid make it unique across processes of this host, the counter inside this process,
// the host across machines sharing the directory; O_EXCL catches whatever is left.
std::string Maildir::unique_name() const {
  auto since_epoch = clock_->wall().time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - secs);
  auto q = g_name_counter.fetch_add(1, std::memory_order_relaxed) + 1;
  return std::to_string(secs.count()) + ".M" + std::to_string(usec.count()) + "P" + std::to_string(::getpid()) + "Q" +
         std::to_string(q) + "." + host_;
}

// ---- directories ----

namespace {

// Deliveries into one Maildir at the same moment share the fsync of its new/ (a group commit,
// as the spool's committer does): each waits for a sync that began after its own rename, and
// whoever finds none running runs one for everybody waiting. On a busy mailbox this halves
// the syncs per message; a quiet one pays exactly what it did alone.
class DirSyncGroup {
 public:
  base::Status sync(const std::string& path, const std::function<base::Status(int*)>& do_sync, int* err) {
    std::unique_lock lk(mu_);
    State& st = dirs_[path];
    std::uint64_t mine = ++st.requested;
    ++st.waiters;
    while (st.done < mine) {
      if (st.running) {
        cv_.wait(lk);
        continue;
      }
      // Nobody is syncing: this thread syncs for every rename made so far.
      st.running = true;
      std::uint64_t target = st.requested;
      lk.unlock();
      int e = 0;
      base::Status s = do_sync(&e);
      lk.lock();
      st.running = false;
      st.done = target;
      st.last = s;
      st.last_err = e;
      cv_.notify_all();
    }
    // The latest completed sync covers this rename (a later failure is reported too: the
    // caller then retracts a file that is in fact durable, which only repeats a delivery).
    base::Status result = st.last;
    *err = st.last_err;
    if (--st.waiters == 0 && !st.running) dirs_.erase(path);
    return result;
  }

 private:
  struct State {
    std::uint64_t requested = 0, done = 0;
    std::size_t waiters = 0;
    bool running = false;
    base::Status last;
    int last_err = 0;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, State> dirs_;
};

DirSyncGroup& new_dir_syncs() {
  static DirSyncGroup group;
  return group;
}

}  // namespace

base::Status Maildir::sync_dir(const std::string& path, int* err) const {
  Fd fd(io_.open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
  if (fd.get() < 0) {
    *err = errno;
    return base::errno_error("open " + path, *err);
  }
  if (io_.fsync(fd.get()) != 0) {
    *err = errno;
    return base::errno_error("fsync " + path, *err);
  }
  return {};
}

// mkdir -p with mode 0700. A directory we create is fsynced, and so is its parent, so that
// the new entry survives a crash before the message that goes in it is acknowledged.
base::Status Maildir::make_dir(const std::string& path, int depth, int* err) const {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    *err = ENOTDIR;
    return base::errno_error("mkdir " + path, ENOTDIR);
  }
  if (errno != ENOENT) {
    *err = errno;
    return base::errno_error("stat " + path, *err);
  }
  if (depth >= kMaxDirDepth) {
    *err = ELOOP;
    return base::errno_error("mkdir " + path, ELOOP);
  }
  std::string parent = parent_of(path);
  if (auto s = make_dir(parent, depth + 1, err); !s) return s;
  // EEXIST: another delivery made it at the same moment; syncing again is harmless and
  // means we never return before the entry is durable.
  if (io_.mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    *err = errno;
    return base::errno_error("mkdir " + path, *err);
  }
  if (auto s = sync_dir(path, err); !s) return s;
  return sync_dir(parent, err);
}

base::Status Maildir::ensure_dirs(int* err) const {
  if (dirs_ready_.load(std::memory_order_acquire)) return {};
  for (const char* sub : {"/tmp", "/new", "/cur"}) {
    if (auto s = make_dir(root_ + sub, 0, err); !s) return s;
  }
  dirs_ready_.store(true, std::memory_order_release);
  return {};
}

// ---- delivery ----

base::Result<DeliveryResult> Maildir::deliver(const DeliveryRequest& request, DeliveryFailure* why) const {
  DeliveryFailure ignored;
  DeliveryFailure& failure = why ? *why : ignored;
  failure = DeliveryFailure::kNone;
  auto fail = [&](DeliveryFailure kind, base::Error error) {
    failure = kind;
    return error;
  };
  auto sys_fail = [&](const std::string& what, int err) {
    return fail(is_disk_full(err) ? DeliveryFailure::kDiskFull : DeliveryFailure::kIo, base::errno_error(what, err));
  };
  if (!request.body) return fail(DeliveryFailure::kBadInput, base::permanent_error("delivery without a body source"));

  // Quota first, with the size we expect, so a full mailbox costs no writing; usage is
  // taken once and the final size is checked again below when it was not known.
  std::optional<Usage> before;
  auto over_quota = [&](std::uint64_t size) {
    return request.quota_bytes > 0 && (before->bytes > request.quota_bytes || size > request.quota_bytes - before->bytes);
  };
  auto quota_error = [&](std::uint64_t size) {
    return fail(DeliveryFailure::kOverQuota,
                base::temporary_error("4.2.2 mailbox full: " + std::to_string(before->bytes) + " + " +
                                      std::to_string(size) + " bytes > quota " + std::to_string(request.quota_bytes)));
  };
  if (request.quota_bytes > 0) {
    auto u = usage();
    if (!u) return fail(DeliveryFailure::kIo, u.error());
    before = *u;
    if (request.expected_body_size && over_quota(request.headers.size() + *request.expected_body_size)) {
      return quota_error(request.headers.size() + *request.expected_body_size);
    }
  }

  // tmp/<unique>: O_EXCL so that two writers can never share a file. A directory removed
  // behind our back (ENOENT) is created again, once.
  int err = 0;
  if (auto s = ensure_dirs(&err); !s) return fail(is_disk_full(err) ? DeliveryFailure::kDiskFull : DeliveryFailure::kIo, s.error());
  std::string name;
  std::string tmp_path;
  int raw_fd = -1;
  bool recreated = false;
  for (int attempt = 0; raw_fd < 0; ++attempt) {
    name = unique_name();
    tmp_path = root_ + "/tmp/" + name;
    raw_fd = io_.open(tmp_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (raw_fd >= 0) break;
    int open_err = errno;
    if (open_err == ENOENT && !recreated) {
      recreated = true;
      dirs_ready_.store(false, std::memory_order_release);
      if (auto s = ensure_dirs(&err); !s) return fail(is_disk_full(err) ? DeliveryFailure::kDiskFull : DeliveryFailure::kIo, s.error());
      continue;
    }
    if (open_err != EEXIST || attempt + 1 >= kNameAttempts) return sys_fail("open " + tmp_path, open_err);
  }
  Fd fd(raw_fd);
  // From here on every failure removes the tmp/ file before returning.
  auto abandon = [&](base::Error error) {
    ::close(fd.release());
    io_.unlink(tmp_path.c_str());
    return error;
  };

  // Headers, then the body, through one 64 KiB buffer: memory does not grow with the message.
  std::vector<char> buf(kBufferSize);
  std::size_t fill = 0;
  std::uint64_t size = 0;
  auto flush = [&]() -> base::Status {
    std::size_t done = 0;
    while (done < fill) {
      ssize_t n = io_.write(fd.get(), buf.data() + done, fill - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int write_err = errno;
        return sys_fail("write " + tmp_path, write_err);
      }
      done += static_cast<std::size_t>(n);
    }
    size += fill;
    fill = 0;
    return {};
  };
  for (std::string_view rest = request.headers; !rest.empty();) {
    std::size_t n = std::min(rest.size(), buf.size() - fill);
    std::copy_n(rest.data(), n, buf.data() + fill);
    fill += n;
    rest.remove_prefix(n);
    if (fill == buf.size()) {
      if (auto s = flush(); !s) return abandon(s.error());
    }
  }
  std::uint64_t body_size = 0;
  for (;;) {
    auto got = request.body(buf.data() + fill, buf.size() - fill);
    if (!got) return abandon(fail(DeliveryFailure::kIo, got.error()));
    PETREL_ASSERT(*got <= buf.size() - fill, "body source returned more than asked");
    if (*got == 0) break;
    fill += *got;
    body_size += *got;
    if (request.expected_body_size && body_size > *request.expected_body_size) {
      return abandon(fail(DeliveryFailure::kIo, base::temporary_error("body longer than the expected " +
                                                                      std::to_string(*request.expected_body_size) +
                                                                      " bytes")));
    }
    if (fill == buf.size()) {
      if (auto s = flush(); !s) return abandon(s.error());
    }
  }
  if (auto s = flush(); !s) return abandon(s.error());
  if (request.expected_body_size && body_size != *request.expected_body_size) {
    return abandon(fail(DeliveryFailure::kIo, base::temporary_error("body ended after " + std::to_string(body_size) +
                                                                    " of " + std::to_string(*request.expected_body_size) +
                                                                    " bytes")));
  }
  if (before && over_quota(size)) return abandon(quota_error(size));

  // Data on disk before the name appears in new/: a reader (or a crash) never finds a file
  // in new/ whose bytes are not all there. close() is checked too (NFS reports late there).
  if (io_.fsync(fd.get()) != 0) {
    int sync_err = errno;
    return abandon(sys_fail("fsync " + tmp_path, sync_err));
  }
  if (::close(fd.release()) != 0) {
    int close_err = errno;
    io_.unlink(tmp_path.c_str());
    return sys_fail("close " + tmp_path, close_err);
  }

  // tmp/ → new/ under the final name, then the directory sync that makes the entry durable.
  // If that sync fails the file is taken back out of new/: the queue will deliver again,
  // and a message that might vanish in a crash must not be reported as delivered.
  DeliveryResult result;
  result.name = name + ",S=" + std::to_string(size);
  result.path = root_ + "/new/" + result.name;
  result.size = size;
  if (io_.rename(tmp_path.c_str(), result.path.c_str()) != 0) {
    int rename_err = errno;
    io_.unlink(tmp_path.c_str());
    return sys_fail("rename " + tmp_path + " to new/", rename_err);
  }
  std::string new_dir = root_ + "/new";
  if (auto s = new_dir_syncs().sync(new_dir, [&](int* e) { return sync_dir(new_dir, e); }, &err); !s) {
    io_.unlink(result.path.c_str());
    return fail(is_disk_full(err) ? DeliveryFailure::kDiskFull : DeliveryFailure::kIo, s.error());
  }
  return result;
}

std::string_view failure_name(DeliveryFailure failure) {
  switch (failure) {
    case DeliveryFailure::kNone: return "delivered";
    case DeliveryFailure::kBadInput: return "bad input";
    case DeliveryFailure::kIo: return "storage error";
    case DeliveryFailure::kDiskFull: return "disk full";
    case DeliveryFailure::kOverQuota: return "over quota";
  }
  return "unknown";
}

}  // namespace petrel::mailbox
