// spool.cc: opening, recovering and reading the spool (layout in queue/README.md).
#include "queue/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/unique_fd.h"

namespace petrel::queue {

// ---- small I/O helpers ----

namespace io {

base::Status write_all(int fd, std::string_view data, const char* what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::errno_error(what, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

base::Status pread_all(int fd, char* buf, std::size_t n, std::uint64_t offset, const char* what) {
  while (n > 0) {
    ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return base::errno_error(what, errno);
    }
    if (got == 0) return base::temporary_error(std::string(what) + ": unexpected end of file");
    buf += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return {};
}

base::Status sync_dir(const std::string& path, const SpoolIo& sys) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return base::errno_error("open " + path, errno);
  int rc = sys.fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return base::errno_error("fsync " + path, err);
  return {};
}

}  // namespace io

namespace {

using Fd = base::UniqueFd;

base::Status make_dir(const std::string& path, bool* created) {
  if (::mkdir(path.c_str(), 0700) == 0) {
    if (created) *created = true;
    return {};
  }
  if (errno == EEXIST) return {};
  return base::errno_error("mkdir " + path, errno);
}

// "0000000000000042.seg" → 42; nullopt for any other name.
std::optional<std::uint64_t> segment_number(std::string_view name) {
  if (name.size() != 20 || name.substr(16) != ".seg") return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name.substr(0, 16)) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

base::Result<std::vector<std::string>> list_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return base::errno_error("opendir " + path, errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return base::errno_error("readdir " + path, err);
  return names;
}

base::Result<std::vector<std::uint64_t>> list_segment_files(const std::string& log_dir) {
  auto names = list_dir(log_dir);
  if (!names) return names.error();
  std::vector<std::uint64_t> seqs;
  for (const auto& n : *names) {
    if (auto s = segment_number(n)) seqs.push_back(*s);
  }
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

using RecordFn = std::function<void(std::uint64_t offset, const format::RecordHeader&, std::string_view payload)>;
// A corrupt region in the middle of a segment: `length` bytes at `offset` of the file open as `fd`.
using RegionFn = std::function<void(int fd, std::uint64_t offset, std::uint64_t length)>;

// The CRC of any byte range [a, b) of a file, without reading the range: from prefix CRCs
// Q(x) = crc32 of bytes [base, x), kept at every kBlock-th offset, crc[a, b) is
// crc32_combine(Q(a), Q(b), b - a) (CRC-32 is linear: Q(b) = Q(a)·x^(8(b-a)) + crc[a, b)), and
// Q(x) is the entry below x continued over at most kBlock - 1 bytes. The table is computed
// forward once, and entries below the last `a` asked for are dropped, so calls must not move
// `a` back. Cost: each byte of [base, largest b) is read once for the table, plus at most
// 2 × kBlock bytes per call; memory: one u32 per kBlock bytes between the last `a` and the
// largest `b` (at most kMaxRecordPayload / kBlock × 4 = 1 MiB).
class RangeCrc {
 public:
  static constexpr std::uint64_t kBlock = 64;

  RangeCrc(int fd, std::uint64_t base, std::uint64_t size) : fd_(fd), base_(base), size_(size) { q_.push_back(0); }

  base::Result<std::uint32_t> crc(std::uint64_t a, std::uint64_t b, std::uint64_t& bytes_read) {
    PETREL_ASSERT(base_ <= a && a <= b && b <= size_, "RangeCrc range out of order");
    std::uint64_t first = (a - base_) / kBlock;
    PETREL_ASSERT(first >= first_, "RangeCrc asked to move back");
    while (first_ < first && q_.size() > 1) {
      q_.pop_front();
      ++first_;
    }
    auto qa = prefix(a, bytes_read);
    if (!qa) return qa.error();
    auto qb = prefix(b, bytes_read);
    if (!qb) return qb.error();
    return static_cast<std::uint32_t>(::crc32_combine(*qa, *qb, static_cast<z_off_t>(b - a)));
  }

 private:
  // Q(x).
  base::Result<std::uint32_t> prefix(std::uint64_t x, std::uint64_t& bytes_read) {
    std::uint64_t k = (x - base_) / kBlock;
    // Extend the table to block k, reading forward in large chunks.
    while (first_ + q_.size() - 1 < k) {
      std::uint64_t at = base_ + (first_ + q_.size() - 1) * kBlock;
      std::uint64_t blocks = std::min<std::uint64_t>(k - (first_ + q_.size() - 1), 1024);
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(blocks * kBlock, size_ - at));
      buf_.resize(n);
      if (auto s = io::pread_all(fd_, buf_.data(), n, at, "read spool segment"); !s) return s.error();
      bytes_read += n;
      for (std::size_t off = 0; off + kBlock <= n; off += kBlock) {
        q_.push_back(format::crc32(q_.back(), std::string_view(buf_.data() + off, kBlock)));
      }
    }
    PETREL_ASSERT(k >= first_, "RangeCrc entry dropped");
    std::uint32_t q = q_[k - first_];
    std::uint64_t at = base_ + k * kBlock;
    if (x > at) {
      auto n = static_cast<std::size_t>(x - at);
      buf_.resize(n);
      if (auto s = io::pread_all(fd_, buf_.data(), n, at, "read spool segment"); !s) return s.error();
      bytes_read += n;
      q = format::crc32(q, std::string_view(buf_.data(), n));
    }
    return q;
  }

  int fd_;
  std::uint64_t base_, size_;
  std::uint64_t first_ = 0;       // the block index of q_[0]
  std::deque<std::uint32_t> q_;   // q_[i] = Q(base_ + (first_ + i) × kBlock)
  std::string buf_;
};

// Reads the records of one segment file, verifying each, resynchronising after damage.
class SegmentScanner {
 public:
  SegmentScanner(int fd, std::uint64_t size, std::uint64_t salt, std::string name)
      : fd_(fd), size_(size), salt_(salt), name_(std::move(name)) {}

  // Calls `fn` for each valid record, and `on_corrupt` (when given) for each corrupt region in
  // the middle. Returns the end of the last valid record: everything from there to the end of
  // the file is a torn tail (counted in the report).
  base::Result<std::uint64_t> scan(ScanReport& report, const RecordFn& fn, const RegionFn* on_corrupt = nullptr) {
    std::uint64_t pos = format::kSegmentHeaderSize;
    std::uint64_t valid_end = pos;
    while (pos < size_) {
      auto h = try_record(pos);
      if (!h) return h.error();
      if (*h) {
        ++report.records;
        fn(pos, **h, payload_);
        pos += format::kRecordHeaderSize + (*h)->length;
        valid_end = pos;
        continue;
      }
      // Damage at `pos`: a valid record further on means the damage is in the middle (skip
      // it); none means a torn tail (a batch that was being written when we stopped).
      auto next = find_next(pos + 1, report.resync_bytes_read);
      if (!next) return next.error();
      if (!*next) {
        report.torn_tail_bytes += size_ - pos;
        break;
      }
      ++report.corrupt_regions;
      report.corrupt_bytes += **next - pos;
      PETREL_LOG(kError, "queue.corrupt", "segment={} offset={} skipped={}", name_, pos, **next - pos);
      if (on_corrupt) (*on_corrupt)(fd_, pos, **next - pos);
      pos = **next;
    }
    return valid_end;
  }

 private:
  // The record at `pos` when it is whole and its CRC matches (payload left in payload_).
  base::Result<std::optional<format::RecordHeader>> try_record(std::uint64_t pos) {
    if (size_ - pos < format::kRecordHeaderSize) return std::optional<format::RecordHeader>();
    char hb[format::kRecordHeaderSize];
    if (auto s = io::pread_all(fd_, hb, sizeof hb, pos, "read spool segment"); !s) return s.error();
    std::string_view hv(hb, sizeof hb);
    auto h = format::decode_record_header(hv);
    if (!h || size_ - pos - format::kRecordHeaderSize < h->length) return std::optional<format::RecordHeader>();
    payload_.resize(h->length);
    if (auto s = io::pread_all(fd_, payload_.data(), h->length, pos + format::kRecordHeaderSize, "read spool segment");
        !s) {
      return s.error();
    }
    if (!format::record_crc_ok(salt_, hv, payload_, h->crc)) return std::optional<format::RecordHeader>();
    return std::optional<format::RecordHeader>(*h);
  }

  // The offset of the next valid record at or after `from`, found by its magic. Each
  // candidate's CRC is checked without reading its payload (RangeCrc): a region full of fake
  // headers claiming long payloads costs linear work, not one payload read per candidate.
  base::Result<std::optional<std::uint64_t>> find_next(std::uint64_t from, std::uint64_t& bytes_read) {
    constexpr std::size_t kChunk = 64 * 1024;
    const std::size_t m = format::kRecordMagic.size();
    if (!ranges_) ranges_.emplace(fd_, from, size_);
    std::string chunk;
    for (std::uint64_t at = from; at < size_ && size_ - at >= format::kRecordHeaderSize;) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size_ - at));
      chunk.resize(n);
      if (auto s = io::pread_all(fd_, chunk.data(), n, at, "read spool segment"); !s) return s.error();
      bytes_read += n;
      for (std::size_t i = std::string_view(chunk).find(format::kRecordMagic); i != std::string_view::npos;
           i = std::string_view(chunk).find(format::kRecordMagic, i + 1)) {
        auto ok = candidate_ok(at + i, bytes_read);
        if (!ok) return ok.error();
        if (!*ok) continue;
        // Found (its CRC matched): read it whole, as the caller will.
        auto h = try_record(at + i);
        if (!h) return h.error();
        bytes_read += format::kRecordHeaderSize + payload_.size();
        if (*h) return std::optional<std::uint64_t>(at + i);
      }
      if (n <= m) break;
      at += n - (m - 1);  // overlap, so a magic split across chunks is still seen
    }
    return std::optional<std::uint64_t>();
  }

  // Whether the record header at `pos` is well formed, its payload fits in the file and its CRC
  // matches, with the payload's CRC from ranges_ (never read whole).
  base::Result<bool> candidate_ok(std::uint64_t pos, std::uint64_t& bytes_read) {
    if (size_ - pos < format::kRecordHeaderSize) return false;
    char hb[format::kRecordHeaderSize];
    if (auto s = io::pread_all(fd_, hb, sizeof hb, pos, "read spool segment"); !s) return s.error();
    bytes_read += sizeof hb;
    auto h = format::decode_record_header(std::string_view(hb, sizeof hb));
    if (!h || size_ - pos - format::kRecordHeaderSize < h->length) return false;
    std::uint64_t a = pos + format::kRecordHeaderSize;
    auto payload_crc = ranges_->crc(a, a + h->length, bytes_read);
    if (!payload_crc) return payload_crc.error();
    return format::record_crc_matches(salt_, std::string_view(hb, sizeof hb), *payload_crc, h->length, h->crc);
  }

  int fd_;
  std::uint64_t size_;
  std::uint64_t salt_;
  std::string name_;
  std::string payload_;
  // Made at the first damage; positions only move forward from there (see RangeCrc).
  std::optional<RangeCrc> ranges_;
};

StoredMessage to_stored(const Spool& spool, std::uint64_t seq, std::uint64_t offset, format::MessageRecord&& m) {
  StoredMessage s;
  s.id = std::move(m.id);
  s.envelope = std::move(m.envelope);
  s.body = m.body;
  s.segment = seq;
  s.record_offset = offset;
  if (m.body.kind == format::BodyKind::kInline) {
    s.body_path = spool.segment_path(seq);
    s.body_offset = offset + format::kRecordHeaderSize + m.inline_offset;
  } else {
    s.body_path = spool.spill_path(s.id);
  }
  return s;
}

struct SegmentResult {
  bool header_ok = false;
  format::SegmentHeader header;
  std::uint64_t size = 0;
  std::uint64_t valid_end = 0;
  bool missing = false;  // removed between listing and opening
};

using MessageFn = std::function<void(std::uint64_t, format::MessageRecord&&)>;
using StateFn = std::function<void(format::RecipientState&&)>;

// Scans one segment; `fn` gets each decoded message, `on_state` (when given) each decoded
// recipient state, `on_corrupt` (when given) each corrupt region in the middle. Header damage
// is reported in the result (and counted), not as an error: the other segments are still
// worth reading.
base::Result<SegmentResult> scan_one(const Spool& spool, std::uint64_t seq, ScanReport& report, const MessageFn& fn,
                                     const StateFn* on_state = nullptr, const RegionFn* on_corrupt = nullptr) {
  std::string path = spool.segment_path(seq);
  SegmentResult r;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) {
    r.missing = true;
    return r;
  }
  if (fd.get() < 0) return base::errno_error("open " + path, errno);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return base::errno_error("stat " + path, errno);
  r.size = static_cast<std::uint64_t>(st.st_size);
  ++report.segments;

  char hb[format::kSegmentHeaderSize];
  if (r.size < sizeof hb) return r;
  if (auto s = io::pread_all(fd.get(), hb, sizeof hb, 0, "read spool segment"); !s) return s.error();
  auto h = format::decode_segment_header(std::string_view(hb, sizeof hb));
  if (!h || h->sequence != seq) return r;
  r.header_ok = true;
  r.header = *h;

  SegmentScanner scanner(fd.get(), r.size, h->salt, path);
  auto end = scanner.scan(report, [&](std::uint64_t offset, const format::RecordHeader& rh, std::string_view payload) {
    if (rh.type == static_cast<std::uint8_t>(format::RecordType::kRecipientState)) {
      auto state = format::decode_state(payload);
      if (!state) {
        ++report.unknown_records;
        PETREL_LOG(kError, "queue.corrupt", "segment={} offset={} error=\"{}\"", path, offset, state.error().message);
        return;
      }
      ++report.states;
      if (on_state) (*on_state)(std::move(*state));
      return;
    }
    if (rh.type != static_cast<std::uint8_t>(format::RecordType::kMessage)) {
      ++report.unknown_records;  // a later type: not ours to read
      return;
    }
    auto m = format::decode_message(payload);
    if (!m) {
      // A valid CRC over a payload we cannot decode: a writer bug or a newer format.
      ++report.unknown_records;
      PETREL_LOG(kError, "queue.corrupt", "segment={} offset={} error=\"{}\"", path, offset, m.error().message);
      return;
    }
    ++report.messages;
    fn(offset, std::move(*m));
  }, on_corrupt);
  if (!end) return end.error();
  r.valid_end = *end;
  return r;
}

// ---- body reading ----

class BodyReaderImpl final : public BodyReader {
 public:
  BodyReaderImpl(int fd, std::uint64_t offset, const format::BodyRef& ref, std::string path)
      : fd_(fd), offset_(offset), left_(ref.length), expected_crc_(ref.crc), path_(std::move(path)) {}
  ~BodyReaderImpl() override { ::close(fd_); }

  base::Result<std::size_t> read(char* buf, std::size_t n) override {
    if (left_ == 0) {
      if (crc_ != expected_crc_) return base::temporary_error("body CRC mismatch in " + path_);
      return std::size_t{0};
    }
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, left_));
    ssize_t got;
    do {
      got = ::pread(fd_, buf, n, static_cast<off_t>(offset_));
    } while (got < 0 && errno == EINTR);
    if (got < 0) return base::errno_error("read " + path_, errno);
    if (got == 0) return base::temporary_error("body truncated in " + path_);
    auto g = static_cast<std::size_t>(got);
    crc_ = format::crc32(crc_, std::string_view(buf, g));
    offset_ += g;
    left_ -= g;
    return g;
  }

 private:
  int fd_;
  std::uint64_t offset_;
  std::uint64_t left_;
  std::uint32_t expected_crc_;
  std::uint32_t crc_ = 0;
  std::string path_;
};

// ---- quarantine ----

// Creates `dir` (0700) if it is missing, making the new name durable in `parent`.
base::Status ensure_dir(const std::string& dir, const std::string& parent, const SpoolIo& sys) {
  bool created = false;
  if (auto r = make_dir(dir, &created); !r) return r;
  if (created) return io::sync_dir(parent, sys);
  return {};
}

// True when `path` is a regular file of exactly `size` bytes: a copy an earlier start made
// (copies are renamed into place only once whole and synced).
bool have_copy(const std::string& path, std::uint64_t size) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size;
}

// Copies `length` bytes at `offset` of `src_fd` to `dir`/`name`, durably: written under a
// temporary name, fdatasync'ed, renamed, `dir` fsync'ed. So a file under its final name is
// always whole; a crash leaves at most `name`.tmp behind, overwritten by the next attempt.
base::Status copy_out(int src_fd, std::uint64_t offset, std::uint64_t length, const std::string& dir,
                      const std::string& name, const SpoolIo& sys) {
  std::string path = dir + "/" + name;
  std::string tmp = path + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.get() < 0) return base::errno_error("open " + tmp, errno);
  std::string buf;
  for (std::uint64_t done = 0; done < length;) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, length - done));
    buf.resize(n);
    if (auto s = io::pread_all(src_fd, buf.data(), n, offset + done, "read spool segment"); !s) return s;
    if (auto s = io::write_all(out.get(), buf, ("write " + tmp).c_str()); !s) return s;
    done += n;
  }
  if (sys.fdatasync(out.get()) != 0) return base::errno_error("fdatasync " + tmp, errno);
  if (::close(out.release()) != 0) return base::errno_error("close " + tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return base::errno_error("rename " + tmp, errno);
  return io::sync_dir(dir, sys);
}

}  // namespace

// ---- Spool ----

std::string Spool::segment_path(std::uint64_t sequence) const { return log_dir_ + "/" + fmt::format("{:016}.seg", sequence); }

std::string Spool::spill_path(std::string_view id) const { return body_dir_ + "/" + std::string(id); }

Spool::~Spool() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

base::Result<std::unique_ptr<Spool>> Spool::open(const std::string& data_dir, const config::QueueConfig& config,
                                                Mode mode, SpoolIo sys) {
  std::unique_ptr<Spool> s(new Spool());
  s->mode_ = mode;
  s->config_ = config;
  s->io_ = std::move(sys);
  s->queue_dir_ = data_dir + "/queue";
  s->log_dir_ = s->queue_dir_ + "/log";
  s->body_dir_ = s->queue_dir_ + "/body";
  s->quarantine_dir_ = s->queue_dir_ + "/quarantine";

  if (mode == Mode::kReadOnly) {
    struct stat st{};
    if (::stat(s->log_dir_.c_str(), &st) != 0) return base::errno_error("spool " + s->log_dir_, errno);
    return s;
  }

  // Directories, each new name made durable in its parent.
  bool created_queue = false, created_sub = false;
  if (auto r = make_dir(data_dir, nullptr); !r) return r.error();
  if (auto r = make_dir(s->queue_dir_, &created_queue); !r) return r.error();
  if (auto r = make_dir(s->log_dir_, &created_sub); !r) return r.error();
  if (auto r = make_dir(s->body_dir_, &created_sub); !r) return r.error();
  if (created_queue) {
    if (auto r = io::sync_dir(data_dir, s->io_); !r) return r.error();
  }
  if (created_sub) {
    if (auto r = io::sync_dir(s->queue_dir_, s->io_); !r) return r.error();
  }

  // One writer per spool: the server holds this lock for its lifetime.
  std::string lock_path = s->queue_dir_ + "/lock";
  s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd_ < 0) return base::errno_error("open " + lock_path, errno);
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return base::temporary_error("spool " + s->queue_dir_ + " is in use by another process");
    return base::errno_error("flock " + lock_path, errno);
  }

  if (auto r = s->recover(); !r) return r.error();
  return s;
}

base::Status Spool::recover() {
  auto seqs = list_segment_files(log_dir_);
  if (!seqs) return seqs.error();
  std::unordered_set<std::string> spilled;  // ids whose body is a committed spill file
  // Segments with a region that was skipped rather than read (damage in the middle, a bad
  // header, an abandoned tail, a record we could not decode): it may hold acknowledged
  // messages, whose spilled bodies no readable record names.
  std::vector<std::uint64_t> unreadable;

  // Every segment: verify, count, remember the committed spill files.
  for (std::size_t i = 0; i < seqs->size(); ++i) {
    std::uint64_t seq = (*seqs)[i];
    bool last = i + 1 == seqs->size();
    ScanReport before = recovery_;
    // Damage in the middle is copied out as the scan meets it. A segment keeps the only copy
    // of any region that could not be copied: it stays in damaged_ (never retired).
    bool kept = false;
    bool skipped = false;
    RegionFn on_corrupt = [&](int fd, std::uint64_t offset, std::uint64_t length) {
      skipped = true;
      if (!quarantine_region(fd, seq, offset, length, "corrupt-record")) kept = true;
    };
    auto r = scan_one(
        *this, seq, recovery_,
        [&](std::uint64_t, format::MessageRecord&& m) {
          if (m.body.kind == format::BodyKind::kSpill) spilled.insert(std::move(m.id));
        },
        nullptr, &on_corrupt);
    if (!r) return r.error();
    if (r->missing) return base::temporary_error("segment " + segment_path(seq) + " vanished during recovery");
    if (recovery_.unknown_records > before.unknown_records) skipped = true;
    next_sequence_ = seq + 1;
    std::string path = segment_path(seq);
    // The whole file (bad header) or its tail (abandoned segment), copied out by path.
    auto quarantine_file_part = [&](std::uint64_t offset, std::uint64_t length, std::string_view reason) {
      Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0) {
        base::Error e = base::errno_error("open " + path, errno);
        ++recovery_.quarantine_failed;
        PETREL_LOG(kError, "queue.quarantine_failed", "segment={} offset={} bytes={} reason={} error=\"{}\"", path,
                   offset, length, reason, base::log_escape(e.message));
        kept = true;
        return;
      }
      if (!quarantine_region(fd.get(), seq, offset, length, reason)) kept = true;
    };

    if (!r->header_ok) {
      // A segment created but whose header never reached the disk holds nothing acknowledged
      // (records follow the header's sync): remove it. A damaged header on a segment with
      // content is copied whole to quarantine/ (kept in log/ if that fails), and never
      // appended to.
      if (last && r->size <= format::kSegmentHeaderSize) {
        if (::unlink(path.c_str()) != 0) return base::errno_error("unlink " + path, errno);
        if (auto d = io::sync_dir(log_dir_, io_); !d) return d.error();
        PETREL_LOG(kWarn, "queue.recover", "segment={} action=removed-empty", path);
      } else {
        recovery_.corrupt_bytes += r->size;
        ++recovery_.corrupt_regions;
        PETREL_LOG(kError, "queue.corrupt", "segment={} error=\"bad segment header\" skipped={}", path, r->size);
        quarantine_file_part(0, r->size, "bad-header");
        skipped = true;
      }
      if (kept) damaged_.insert(seq);
      if (skipped) unreadable.push_back(seq);
      continue;
    }

    // A torn tail is a batch that was being written when we stopped: never acknowledged.
    std::uint64_t torn = recovery_.torn_tail_bytes - before.torn_tail_bytes;
    if (last && torn > 0) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return base::errno_error("open " + path, errno);
      int rc = ::ftruncate(fd, static_cast<off_t>(r->valid_end));
      int err = errno;
      if (rc == 0) {
        rc = io_.fdatasync(fd);
        err = errno;
      }
      ::close(fd);
      if (rc != 0) return base::errno_error("truncate torn tail of " + path, err);
      PETREL_LOG(kWarn, "queue.recover", "segment={} action=truncated torn_bytes={} size={}", path, torn, r->valid_end);
    } else if (torn > 0) {
      // Not the last segment: abandoned by the committer (its end was unknown) and never
      // appended to again. Nothing in the tail was acknowledged, but it is copied out like any
      // damage before the segment may go.
      PETREL_LOG(kWarn, "queue.recover", "segment={} damaged_tail_bytes={}", path, torn);
      PETREL_ASSERT(r->valid_end + torn == r->size, "a torn tail runs to the end of its segment");
      quarantine_file_part(r->valid_end, torn, "abandoned-tail");
      skipped = true;
    }
    if (kept) damaged_.insert(seq);
    if (skipped) unreadable.push_back(seq);
    if (last) {
      last_segment_ = seq;
      last_segment_size_ = r->valid_end;
      last_segment_salt_ = r->header.salt;
    }
  }

  if (auto s = sweep_spills(spilled, unreadable); !s) return s;

  PETREL_LOG(kInfo, "queue.open",
             "segments={} messages={} corrupt_regions={} corrupt_bytes={} torn_tail_bytes={} garbage_spills={} "
             "quarantined={} quarantine_failed={} quarantined_spills={}",
             recovery_.segments, recovery_.messages, recovery_.corrupt_regions, recovery_.corrupt_bytes,
             recovery_.torn_tail_bytes, recovery_.garbage_spills, recovery_.quarantined, recovery_.quarantine_failed,
             recovery_.quarantined_spills);
  return {};
}

base::Status Spool::sweep_spills(const std::unordered_set<std::string>& committed,
                                 const std::vector<std::uint64_t>& unreadable) {
  auto names = list_dir(body_dir_);
  if (!names) return names.error();
  bool removed = false, moved = false, failed = false;
  for (const auto& n : *names) {
    if (committed.count(n)) continue;
    std::string path = body_dir_ + "/" + n;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) return base::errno_error("stat " + path, errno);
    // Provably not the body of an acknowledged message: a name no record can carry (records
    // name spills by queue id), an empty file (a committed spill holds more than the inline
    // limit, synced before its record), or any unclaimed spill when every record of the log
    // was read (then no record names it: a message that never committed, or one retired
    // whose spill could not be removed).
    bool garbage = !base::is_queue_id(n) || !S_ISREG(st.st_mode) || st.st_size == 0 || unreadable.empty();
    if (garbage) {
      if (::unlink(path.c_str()) != 0) return base::errno_error("unlink " + path, errno);
      ++recovery_.garbage_spills;
      removed = true;
      continue;
    }
    // Else its record may be in a region that was skipped: the body of a message that may
    // have had its 250. It goes beside the quarantined region, never away.
    std::string to = quarantine_dir_ + "/" + n + ".body";
    base::Status s = ensure_dir(quarantine_dir_, queue_dir_, io_);
    if (s && ::access(to.c_str(), F_OK) == 0) s = base::temporary_error(to + " exists");
    if (s && ::rename(path.c_str(), to.c_str()) != 0) s = base::errno_error("rename " + path, errno);
    if (!s) {
      failed = true;
      ++recovery_.quarantine_failed;
      PETREL_LOG(kError, "queue.quarantine_failed", "id={} file={} reason=unclaimed-spill error=\"{}\"", n, path,
                 base::log_escape(s.error().message));
      continue;
    }
    moved = true;
    ++recovery_.quarantined_spills;
    PETREL_LOG(kWarn, "queue.quarantined", "id={} file={} bytes={} reason=unclaimed-spill", n, to,
               static_cast<std::uint64_t>(st.st_size));
  }
  if (moved) {
    if (auto d = io::sync_dir(quarantine_dir_, io_); !d) return d.error();
  }
  if (removed || moved) {
    if (auto d = io::sync_dir(body_dir_, io_); !d) return d.error();
  }
  // A spill left in body/ stays unclaimed only while its region is still in log/: keep those
  // segments, so the next start sees the damage and tries again instead of deleting it.
  if (failed) damaged_.insert(unreadable.begin(), unreadable.end());
  return {};
}

bool Spool::quarantine_region(int fd, std::uint64_t seq, std::uint64_t offset, std::uint64_t length,
                              std::string_view reason) {
  // Named after where the bytes were, so the operator can find them in log/ (while the segment
  // is still there) and so that the next start recognises its own copy.
  std::string name = fmt::format("{:016}.seg-{}.bin", seq, offset);
  std::string path = quarantine_dir_ + "/" + name;
  std::string segment = segment_path(seq);
  if (have_copy(path, length)) {
    PETREL_LOG(kDebug, "queue.quarantine_present", "file={} segment={} offset={} bytes={} reason={}", path, segment,
               offset, length, reason);
    return true;
  }
  base::Status s = ensure_dir(quarantine_dir_, queue_dir_, io_);
  if (s) s = copy_out(fd, offset, length, quarantine_dir_, name, io_);
  if (!s) {
    ++recovery_.quarantine_failed;
    PETREL_LOG(kError, "queue.quarantine_failed", "segment={} offset={} bytes={} reason={} error=\"{}\"", segment,
               offset, length, reason, base::log_escape(s.error().message));
    return false;
  }
  ++recovery_.quarantined;
  PETREL_LOG(kWarn, "queue.quarantined", "file={} segment={} offset={} bytes={} reason={}", path, segment, offset,
             length, reason);
  return true;
}

base::Status Spool::quarantine_message(const StoredMessage& m, std::string_view reason) const {
  PETREL_ASSERT(mode_ == Mode::kWritable, "quarantine_message on a read-only spool");
  // The id names the files below: it must be one of ours, not a path.
  if (!base::is_queue_id(m.id)) return base::temporary_error("quarantine: not a queue id");
  if (auto s = ensure_dir(quarantine_dir_, queue_dir_, io_); !s) return s;

  // The record as it is on disk (header and payload, inline body included): its header gives
  // the length. The CRC is not checked: this is a copy for the operator, not a read.
  std::string segment = segment_path(m.segment);
  Fd fd(::open(segment.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return base::errno_error("open " + segment, errno);
  char hb[format::kRecordHeaderSize];
  if (auto s = io::pread_all(fd.get(), hb, sizeof hb, m.record_offset, "read spool record"); !s) return s;
  auto rh = format::decode_record_header(std::string_view(hb, sizeof hb));
  if (!rh) return base::temporary_error(fmt::format("{} offset {}: no record header", segment, m.record_offset));
  std::uint64_t record_bytes = format::kRecordHeaderSize + rh->length;
  std::string record_name = m.id + ".record";
  std::string record_path = quarantine_dir_ + "/" + record_name;
  if (!have_copy(record_path, record_bytes)) {
    if (auto s = copy_out(fd.get(), m.record_offset, record_bytes, quarantine_dir_, record_name, io_); !s) return s;
  }

  // The spill file is moved, not copied: delivery must not find it again, and a rename within
  // the spool's file system cannot leave half a file. Missing is fine (it may be the reason,
  // or an earlier call moved it).
  std::string body_path = "-";
  if (m.body.kind == format::BodyKind::kSpill) {
    std::string from = spill_path(m.id);
    std::string to = quarantine_dir_ + "/" + m.id + ".body";
    if (::rename(from.c_str(), to.c_str()) == 0) {
      if (auto s = io::sync_dir(quarantine_dir_, io_); !s) return s;
      if (auto s = io::sync_dir(body_dir_, io_); !s) return s;
      body_path = to;
    } else if (errno != ENOENT) {
      return base::errno_error("rename " + from, errno);
    }
  }
  PETREL_LOG(kWarn, "queue.quarantined", "id={} file={} body={} segment={} offset={} bytes={} reason=\"{}\"", m.id,
             record_path, body_path, segment, m.record_offset, record_bytes, base::log_escape(reason));
  return {};
}

base::Result<std::optional<std::string>> Spool::check_body(const StoredMessage& m) const {
  using Damage = std::optional<std::string>;
  bool spill = m.body.kind == format::BodyKind::kSpill;
  Fd fd(::open(m.body_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 && errno == ENOENT) return Damage(spill ? "spill file missing" : "segment missing");
  if (fd.get() < 0) return base::errno_error("open " + m.body_path, errno);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return base::errno_error("stat " + m.body_path, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (spill && size != m.body.length) {
    return Damage(fmt::format("spill file has {} bytes, {} committed", size, m.body.length));
  }
  if (!spill && (size < m.body_offset || size - m.body_offset < m.body.length)) return Damage("inline body truncated");

  std::string buf(64 * 1024, '\0');
  std::uint32_t crc = 0;
  for (std::uint64_t done = 0; done < m.body.length;) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m.body.length - done));
    ssize_t got;
    do {
      got = ::pread(fd.get(), buf.data(), n, static_cast<off_t>(m.body_offset + done));
    } while (got < 0 && errno == EINTR);
    if (got < 0) return base::errno_error("read " + m.body_path, errno);
    if (got == 0) return Damage("body truncated");  // shrank since the fstat
    crc = format::crc32(crc, std::string_view(buf.data(), static_cast<std::size_t>(got)));
    done += static_cast<std::uint64_t>(got);
  }
  if (crc != m.body.crc) return Damage("body CRC mismatch");
  return Damage();
}

base::Status Spool::for_each_message(const std::function<void(const StoredMessage&)>& fn, ScanReport* report) const {
  auto seqs = list_segment_files(log_dir_);
  if (!seqs) return seqs.error();
  ScanReport local;
  ScanReport& rep = report ? *report : local;
  for (std::uint64_t seq : *seqs) {
    auto r = scan_one(*this, seq, rep, [&](std::uint64_t offset, format::MessageRecord&& m) {
      fn(to_stored(*this, seq, offset, std::move(m)));
    });
    if (!r) return r.error();  // (a segment removed since the listing comes back as `missing`)
  }
  return {};
}

base::Status Spool::for_each_record(const std::function<void(const StoredMessage&)>& on_message,
                                    const std::function<void(const RecipientState&, std::uint64_t)>& on_state,
                                    ScanReport* report) const {
  auto seqs = list_segment_files(log_dir_);
  if (!seqs) return seqs.error();
  ScanReport local;
  ScanReport& rep = report ? *report : local;
  for (std::uint64_t seq : *seqs) {
    StateFn states = [&](format::RecipientState&& st) { on_state(st, seq); };
    auto r = scan_one(
        *this, seq, rep,
        [&](std::uint64_t offset, format::MessageRecord&& m) { on_message(to_stored(*this, seq, offset, std::move(m))); },
        &states);
    if (!r) return r.error();
  }
  return {};
}

base::Result<StoredMessage> Spool::read_message_at(std::uint64_t segment, std::uint64_t record_offset) const {
  std::string path = segment_path(segment);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return base::errno_error("open " + path, errno);
  char hb[format::kSegmentHeaderSize];
  if (auto s = io::pread_all(fd.get(), hb, sizeof hb, 0, "read spool segment"); !s) return s.error();
  auto h = format::decode_segment_header(std::string_view(hb, sizeof hb));
  if (!h) return h.error();
  char rb[format::kRecordHeaderSize];
  if (auto s = io::pread_all(fd.get(), rb, sizeof rb, record_offset, "read spool record"); !s) return s.error();
  std::string_view rv(rb, sizeof rb);
  auto rh = format::decode_record_header(rv);
  if (!rh) return rh.error();
  if (rh->type != static_cast<std::uint8_t>(format::RecordType::kMessage)) {
    return base::temporary_error(fmt::format("{} offset {}: not a message record", path, record_offset));
  }
  std::string payload(rh->length, '\0');
  if (auto s = io::pread_all(fd.get(), payload.data(), payload.size(), record_offset + format::kRecordHeaderSize,
                             "read spool record");
      !s) {
    return s.error();
  }
  if (!format::record_crc_ok(h->salt, rv, payload, rh->crc)) {
    return base::temporary_error(fmt::format("{} offset {}: record CRC mismatch", path, record_offset));
  }
  auto m = format::decode_message(payload);
  if (!m) return m.error();
  return to_stored(*this, segment, record_offset, std::move(*m));
}

base::Result<std::vector<std::uint64_t>> Spool::list_segments() const { return queue::list_segment_files(log_dir_); }

base::Status Spool::remove_segment(std::uint64_t sequence) const {
  PETREL_ASSERT(mode_ == Mode::kWritable, "remove_segment on a read-only spool");
  std::string path = segment_path(sequence);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return base::errno_error("unlink " + path, errno);
  return io::sync_dir(log_dir_, io_);
}

base::Result<std::optional<StoredMessage>> Spool::find(std::string_view id) const {
  std::optional<StoredMessage> found;
  auto s = for_each_message([&](const StoredMessage& m) {
    if (m.id == id && !found) found = m;
  });
  if (!s) return s.error();
  return found;
}

base::Result<std::unique_ptr<BodyReader>> Spool::open_body(const StoredMessage& m) const {
  int fd = ::open(m.body_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::errno_error("open " + m.body_path, errno);
  if (m.body.kind == format::BodyKind::kSpill) {
    struct stat st{};
    if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != m.body.length) {
      ::close(fd);
      return base::temporary_error("spill file " + m.body_path + " does not have the committed length");
    }
  }
  return std::unique_ptr<BodyReader>(std::make_unique<BodyReaderImpl>(fd, m.body_offset, m.body, m.body_path));
}

base::Status Spool::read_body(const StoredMessage& m, std::string& out) const {
  auto reader = open_body(m);
  if (!reader) return reader.error();
  out.clear();
  out.reserve(static_cast<std::size_t>(m.body.length));
  char buf[64 * 1024];
  for (;;) {
    auto n = (*reader)->read(buf, sizeof buf);
    if (!n) return n.error();
    if (*n == 0) return {};
    out.append(buf, *n);
  }
}

}  // namespace petrel::queue
