// usage.cc: how much a Maildir holds, and the petrel-usage cache (README.md, "Quota").
//
// The cache is trusted only when its mtime equals the newest mtime of new/ and cur/, which
// we set ourselves (futimens) to the value the scan started from. Any change to either
// directory after that scan (a delivery, an IMAP client moving or expunging a file) moves the
// directory's mtime away from it. The one blind spot is a change in the same timestamp tick
// as the scan; so a cache is written only when the scan began at least kRacyWindow after the
// directories last changed (git's "racy clean" rule), and otherwise the next call scans again.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <string_view>

#include "mailbox/maildir.h"

namespace petrel::mailbox {

namespace {

constexpr auto kRacyWindow = std::chrono::seconds(2);
constexpr std::string_view kCacheName = "/petrel-usage";

struct DirTimes {
  bool any = false;  // at least one of new/ cur/ exists
  timespec newest{0, 0};
};

bool operator==(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }
bool later(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}

base::Result<DirTimes> dir_times(const std::string& root) {
  DirTimes t;
  for (const char* sub : {"/new", "/cur"}) {
    struct stat st;
    std::string path = root + sub;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return base::errno_error("stat " + path, errno);
    }
    t.any = true;
    if (later(st.st_mtim, t.newest)) t.newest = st.st_mtim;
  }
  return t;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty() || s.size() > 20) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The S=<size> field of a file name: among the ','-separated fields after the unique part and
// before the ':' that starts the info ("1.M2P3Q4.host,S=1234:2,S" → 1234; the ",S" after
// ":2" is the Seen flag, not a size).
std::optional<std::uint64_t> size_from_name(std::string_view name) {
  name = name.substr(0, name.find(':'));
  for (auto comma = name.find(','); comma != std::string_view::npos;) {
    auto next = name.find(',', comma + 1);
    auto field = name.substr(comma + 1, next == std::string_view::npos ? std::string_view::npos : next - comma - 1);
    if (field.size() > 2 && field.substr(0, 2) == "S=") {
      if (auto v = parse_u64(field.substr(2))) return v;
    }
    comma = next;
  }
  return std::nullopt;
}

// "bytes count\n" exactly; anything else (a torn write after a crash, an editor) is no cache.
std::optional<Usage> read_cache(const std::string& path, timespec* mtime) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct stat st;
  char buf[64];
  ssize_t n = -1;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(buf)) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(n));
  if (text.back() != '\n') return std::nullopt;
  text.remove_suffix(1);
  auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto bytes = parse_u64(text.substr(0, space));
  auto count = parse_u64(text.substr(space + 1));
  if (!bytes || !count) return std::nullopt;
  *mtime = st.st_mtim;
  return Usage{*bytes, *count};
}

// Best effort: a cache that cannot be written is only a slower next call. Written to a
// temporary name, stamped, then renamed over the old one, so readers see old or new, whole.
void write_cache(const std::string& root, const std::string& tmp_name, const Usage& u, const timespec& stamp) {
  std::string tmp = root + "/.petrel-usage." + tmp_name;
  int fd = ::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string text = std::to_string(u.bytes) + " " + std::to_string(u.count) + "\n";
  timespec times[2] = {{0, UTIME_OMIT}, stamp};
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::futimens(fd, times) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), (root + std::string(kCacheName)).c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace

base::Result<Usage> Maildir::scan() const {
  Usage u;
  for (const char* sub : {"/new", "/cur"}) {
    std::string path = root_ + sub;
    DIR* dir = ::opendir(path.c_str());
    if (!dir) {
      if (errno == ENOENT) continue;
      return base::errno_error("opendir " + path, errno);
    }
    errno = 0;
    while (struct dirent* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (name.empty() || name.front() == '.') continue;  // ".", "..", dot files are not mail
      if (auto s = size_from_name(name)) {
        u.bytes += *s;
        ++u.count;
      } else {
        // No S=: ask the file. Gone since readdir (moved or expunged) means not counted.
        struct stat st;
        if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
          u.bytes += static_cast<std::uint64_t>(st.st_size);
          ++u.count;
        }
      }
      errno = 0;
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return base::errno_error("readdir " + path, err);
  }
  return u;
}

base::Result<Usage> Maildir::usage() const {
  auto before = dir_times(root_);
  if (!before) return before.error();
  if (!before->any) return Usage{};

  // The cache, when it was made from exactly the directories we see now.
  std::string cache_path = root_ + std::string(kCacheName);
  timespec cache_mtime{0, 0};
  if (auto cached = read_cache(cache_path, &cache_mtime); cached && cache_mtime == before->newest) return *cached;

  // Otherwise count, and keep the count only if nothing moved meanwhile and the snapshot is
  // not racy (see the top of this file).
  auto scan_start = clock_->wall();
  auto counted = scan();
  if (!counted) return counted.error();
  auto after = dir_times(root_);
  if (after && after->newest == before->newest) {
    auto changed = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds(before->newest.tv_sec) +
                                                                         std::chrono::nanoseconds(before->newest.tv_nsec)));
    if (scan_start >= changed + kRacyWindow) write_cache(root_, unique_name(), *counted, before->newest);
  }
  return counted;
}

}  // namespace petrel::mailbox
