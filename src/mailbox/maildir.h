// mailbox/maildir.h: durable delivery of one message into one Maildir (cr.yp.to/proto/maildir.html).
//
// What it is: Maildir for the directory <root> with tmp/ new/ cur/, the library the local
// delivery agent calls once per recipient. Layout, procedure and quota rule: mailbox/README.md.
// Promise: when deliver() succeeds, the file new/<name> holds exactly headers + body and is
// on stable storage (file fsynced, then renamed, then new/ fsynced); readers never see a
// partial file because it is written under tmp/ first. When deliver() fails, neither tmp/ nor
// new/ keeps anything from this attempt (best effort: if even unlink fails, the tmp/ file is
// left for the usual 36-hour tmp/ sweep of Maildir readers). Memory per delivery is one
// 64 KiB buffer, whatever the message size. The body is copied byte for byte: no dot
// unstuffing, no line-ending conversion (the spool gives CRLF; S= is the size on disk).
// Not done here: choosing the mailbox (auth/, delivery/), IMAP UIDs and flags (index), tmp/
// cleaning, Sieve, running programs.
// Failure: bad input (CR/LF in an address, an unsafe path component) is a permanent error;
// everything else is temporary (errno text). ENOSPC/EDQUOT and "over quota" (enhanced status
// 4.2.2, RFC 3463 3.3) are temporary too but classified through DeliveryFailure so the caller
// can log "disk full" or answer 452 4.2.2.
// Thread: deliver() and usage() may run concurrently on one Maildir and on several Maildir
// objects for the same root, in one or several processes. Every call blocks on the disk: run
// it on the blocking pool, never on an event-loop thread.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "mail/address.h"

namespace petrel::mailbox {

// The system calls a test may want to fail or count. Defaults are the real ones; each behaves
// like the syscall (returns -1 and sets errno on failure). fsync is used for files and
// directories alike.
struct MaildirIo {
  std::function<int(const char* path, int flags, mode_t mode)> open = [](const char* p, int f, mode_t m) {
    return ::open(p, f, m);
  };
  std::function<ssize_t(int fd, const void* buf, std::size_t n)> write = [](int fd, const void* b, std::size_t n) {
    return ::write(fd, b, n);
  };
  std::function<int(int fd)> fsync = [](int fd) { return ::fsync(fd); };
  std::function<int(const char* from, const char* to)> rename = [](const char* f, const char* t) {
    return ::rename(f, t);
  };
  std::function<int(const char* path)> unlink = [](const char* p) { return ::unlink(p); };
  std::function<int(const char* path, mode_t mode)> mkdir = [](const char* p, mode_t m) { return ::mkdir(p, m); };
};

struct MaildirOptions {
  // Host part of file names; empty = gethostname(). '/', ':' and ',' are escaped as \057,
  // \072 and \054 (the spec's advice for the first two; ',' separates our S= field).
  std::string hostname;
  const base::Clock* clock = nullptr;  // null = the real clock; must outlive the Maildir
  MaildirIo io;
};

// Where the body comes from: fills up to `len` bytes of `buf`, returns how many, 0 at the end.
// An error aborts the delivery and is returned as is (a spool BodyReader's CRC mismatch stays
// what the spool said it was).
using BodySource = std::function<base::Result<std::size_t>(char* buf, std::size_t len)>;

struct DeliveryRequest {
  std::string headers;  // prepended as is, normally delivery_headers(sender, recipient)
  BodySource body;
  // Body size when known (the spool knows it): checked against the quota before anything is
  // written, and a body that ends shorter or runs longer is an error (never a truncated mail).
  std::optional<std::uint64_t> expected_body_size;
  std::uint64_t quota_bytes = 0;  // 0 = no quota
};

struct DeliveryResult {
  std::string path;        // <root>/new/<name>
  std::string name;        // <unique>,S=<size>
  std::uint64_t size = 0;  // bytes in the file = headers + body
};

// Why deliver() failed, for the caller's log line and reply; the Error says the rest.
enum class DeliveryFailure {
  kNone,       // success
  kBadInput,   // permanent: the request can never be delivered as given
  kIo,         // temporary: any other storage error, or the body source's own error
  kDiskFull,   // temporary: ENOSPC or EDQUOT; log it loudly
  kOverQuota,  // temporary, "4.2.2 mailbox full": the queue retries, bounces on expiry
};

struct Usage {
  std::uint64_t bytes = 0;  // sum of the S= sizes (or stat sizes) of files in new/ and cur/
  std::uint64_t count = 0;  // number of such files
};

class Maildir {
 public:
  explicit Maildir(std::string root, MaildirOptions options = {});

  const std::string& root() const { return root_; }

  // Delivers one message (procedure: README.md). Creates <root> and its tmp/ new/ cur/ with
  // mode 0700 when missing, fsyncing each created directory's parent. Over quota when
  // usage().bytes + message size > quota_bytes. *why (when given) classifies the outcome.
  base::Result<DeliveryResult> deliver(const DeliveryRequest& request, DeliveryFailure* why = nullptr) const;

  // Current usage of new/ and cur/, through the cache file <root>/petrel-usage ("bytes
  // count\n"), recomputed when missing, unreadable, or not matching the directories' mtimes
  // (README.md, "Quota"). A missing mailbox has usage 0.
  base::Result<Usage> usage() const;

 private:
  // Both set *err to the failing errno (0 when the failure has none).
  base::Status ensure_dirs(int* err) const;
  base::Status make_dir(const std::string& path, int depth, int* err) const;
  base::Status sync_dir(const std::string& path, int* err) const;
  base::Result<Usage> scan() const;
  std::string unique_name() const;

  std::string root_;  // without a trailing '/'
  std::string host_;  // escaped
  const base::Clock* clock_;
  base::RealClock real_clock_;
  MaildirIo io_;
  mutable std::atomic<bool> dirs_ready_{false};
};

// "Return-Path: <sender>\r\nDelivered-To: <recipient>\r\n" (RFC 5321 4.4: the final delivery
// records the reverse-path; Delivered-To is the qmail/Postfix loop marker). The null sender
// gives "Return-Path: <>". Addresses are formatted with mail::Address::str(). An address whose
// text holds CR, LF or NUL is refused with a permanent error: a header must never be split.
base::Result<std::string> delivery_headers(const mail::Address& sender, const mail::Address& recipient);

// <data_dir>/mail/<domain lowercased>/<local>/ (the trailing '/' included). Refuses, with a
// permanent error, a domain or local part that could leave the tree or confuse a shell:
// empty, ".", "..", longer than 255 bytes, or holding '/', NUL or another control character.
base::Result<std::string> checked_mailbox_path(const std::string& data_dir, std::string_view domain,
                                               std::string_view local);
// The same for components already known to be safe (an account's canonical names from the
// store): an unsafe one is a bug and aborts (PETREL_ASSERT) rather than escaping the tree.
std::string mailbox_path(const std::string& data_dir, std::string_view domain, std::string_view local);

// "disk full", "over quota"...: a short name for logs.
std::string_view failure_name(DeliveryFailure failure);

}  // namespace petrel::mailbox
