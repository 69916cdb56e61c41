// intake_impl.cc: message writers and the group-committing committer thread.
// The commit protocol step by step is in queue/README.md ("Commit protocol").
#include "queue/intake_impl.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <cerrno>
#include <condition_variable>
#include <thread>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::queue {
namespace {

// One record to write: its type, its payload and the payload's own crc32.
struct Frame {
  format::RecordType type = format::RecordType::kMessage;
  std::string payload;
  std::uint32_t payload_crc = 0;
  std::uint64_t offset = 0;  // where it landed in the segment (set by the committer)
};

// What a writer hands to the committer: a message (one frame) or a set of recipient states
// (one frame each), and everything needed to finish.
struct Request {
  bool message = true;
  std::vector<Frame> frames;
  std::string id;
  mail::Envelope envelope;  // messages: for the commit listener
  format::BodyRef body;
  int spill_fd = -1;        // owned; closed by the committer
  std::string spill_path;   // empty when the body is inline
  std::uint64_t size = 0;
  std::string from;         // for the log line, already escaped
  std::size_t nrcpt = 0;
  std::function<void(base::Status)> done;
  std::optional<base::Error> failed;  // the writer already knows this commit cannot succeed
};

std::string log_sender(const mail::Address& a) {
  if (a.null()) return "<>";
  return base::log_escape(a.local + "@" + a.domain);
}

base::Result<std::uint64_t> random_salt() {
  std::uint64_t salt = 0;
  char* p = reinterpret_cast<char*>(&salt);
  std::size_t got = 0;
  while (got < sizeof salt) {
    ssize_t n = ::getrandom(p + got, sizeof salt - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::errno_error("getrandom", errno);
    }
    got += static_cast<std::size_t>(n);
  }
  return salt;
}

}  // namespace

// ---- the committer thread ----

class Committer {
 public:
  explicit Committer(const Spool& spool)
      : io_(spool.io()),
        log_dir_(spool.log_dir()),
        body_dir_(spool.body_dir()),
        segment_limit_(spool.config().segment_size),
        seg_seq_(spool.last_segment()),
        seg_size_(spool.last_segment_size()),
        seg_salt_(spool.last_segment_salt()),
        next_seq_(spool.next_sequence()),
        current_seq_(spool.last_segment()) {}

  ~Committer() { stop(); }

  base::Status start(const Spool& spool) {
    if (seg_seq_ != 0) {
      std::string path = spool.segment_path(seg_seq_);
      seg_fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (seg_fd_ < 0) return base::errno_error("open " + path, errno);
    }
    thread_ = std::thread([this] { run(); });
    return {};
  }

  // Drains what is pending, then joins. Idempotent.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    if (seg_fd_ >= 0) ::close(seg_fd_);
    seg_fd_ = -1;
  }

  void submit(Request r) {
    std::unique_lock lk(mu_);
    if (stopping_) {
      lk.unlock();
      fail_one(r, base::temporary_error("queue is shutting down"));
      return;
    }
    pending_.push_back(std::move(r));
    lk.unlock();
    cv_.notify_one();
  }

  bool stopping() {
    std::lock_guard lk(mu_);
    return stopping_;
  }

  void set_listener(std::function<void(const StoredMessage&)> listener) {
    std::lock_guard lk(mu_);
    listener_ = std::move(listener);
  }

  std::uint64_t current_segment() const { return current_seq_.load(std::memory_order_acquire); }

  IntakeImpl::Stats stats() const {
    IntakeImpl::Stats s;
    s.messages = messages_.load();
    s.states = states_.load();
    s.batches = batches_.load();
    s.failed_batches = failed_batches_.load();
    s.data_syncs = data_syncs_.load();
    s.segments_created = segments_created_.load();
    return s;
  }

 private:
  // Takes everything pending as one batch; what arrives meanwhile waits for the next.
  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and nothing left to complete
      std::vector<Request> batch;
      batch.swap(pending_);
      auto listener = listener_;
      lk.unlock();
      commit_batch(batch, listener);
      lk.lock();
    }
  }

  void commit_batch(std::vector<Request>& batch, const std::function<void(const StoredMessage&)>& listener) {
    ++batches_;
    // Commits that failed in their writer complete with their own error; they take no part.
    std::vector<Request*> live;
    for (auto& r : batch) {
      if (r.failed) {
        fail_one(r, *r.failed);
      } else {
        live.push_back(&r);
      }
    }
    if (live.empty()) return;

    bool wrote = false;
    std::uint64_t before = seg_size_;
    base::Status st = sync_spills(live);
    if (st) st = ensure_segment(live);
    if (st) {
      before = seg_size_;
      wrote = true;
      st = write_records(live);
    }
    if (st) st = data_sync(seg_fd_, "fdatasync spool segment");

    if (st) {
      seg_size_ = before + batch_bytes(live);
      std::uint64_t at = before;
      for (Request* r : live) {
        for (Frame& f : r->frames) {
          f.offset = at;
          at += format::kRecordHeaderSize + f.payload.size();
        }
      }
      for (Request* r : live) {
        if (!r->message) {
          states_ += r->frames.size();
          r->done(base::Status());
          continue;
        }
        ++messages_;
        PETREL_LOG(kInfo, "queue.accepted", "id={} size={} from={} nrcpt={}", r->id, r->size, r->from, r->nrcpt);
        if (listener) listener(stored(*r));
        r->done(base::Status());
      }
      return;
    }

    // The batch failed: no record of it may survive, or a client told 451 could see its
    // message delivered from a record whose body we are about to delete.
    ++failed_batches_;
    if (wrote) undo_append(before);
    PETREL_LOG(kError, "queue.commit_failed", "messages={} error=\"{}\"", live.size(), base::log_escape(st.error().message));
    for (Request* r : live) fail_one(*r, st.error());
  }

  // What the commit listener is told about a message that just became durable.
  StoredMessage stored(Request& r) {
    const Frame& f = r.frames.front();
    StoredMessage m;
    m.id = r.id;
    m.envelope = std::move(r.envelope);
    m.body = r.body;
    m.segment = seg_seq_;
    m.record_offset = f.offset;
    if (r.body.kind == format::BodyKind::kInline) {
      m.body_path = segment_path(seg_seq_);
      m.body_offset = f.offset + format::kRecordHeaderSize + (f.payload.size() - r.body.length);
    } else {
      m.body_path = r.spill_path;
    }
    return m;
  }

  std::string segment_path(std::uint64_t seq) const { return log_dir_ + "/" + fmt::format("{:016}.seg", seq); }

  // Bodies first: a record must never be durable before the body it names.
  base::Status sync_spills(const std::vector<Request*>& live) {
    bool any = false;
    for (Request* r : live) {
      if (r->spill_fd < 0) continue;
      any = true;
      base::Status s = data_sync(r->spill_fd, "fdatasync spill file");
      ::close(r->spill_fd);
      r->spill_fd = -1;
      if (!s) return s;
    }
    if (any) return io::sync_dir(body_dir_, io_);
    return {};
  }

  // The segment to append to: the current one, or a new one when there is none, the last
  // attempt to undo a failed batch failed, or this batch would take it past segment_size.
  base::Status ensure_segment(const std::vector<Request*>& live) {
    bool full = seg_size_ > format::kSegmentHeaderSize && seg_size_ + batch_bytes(live) > segment_limit_;
    if (seg_fd_ >= 0 && !full) return {};
    if (seg_fd_ >= 0) ::close(seg_fd_);
    seg_fd_ = -1;

    // Numbers are never reused, even when creating one fails half way.
    std::uint64_t seq = next_seq_++;
    std::string path = segment_path(seq);
    auto salt = random_salt();
    if (!salt) return salt.error();
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return base::errno_error("create " + path, errno);
    auto header = format::encode_segment_header({seq, *salt});
    base::Status s = io::write_all(fd, std::string_view(header.data(), header.size()), "write segment header");
    if (s) s = data_sync(fd, "fdatasync new segment");
    if (s) s = io::sync_dir(log_dir_, io_);
    if (!s) {
      ::close(fd);
      ::unlink(path.c_str());  // best effort: an empty or headerless segment is ignored anyway
      return s;
    }
    ++segments_created_;
    seg_fd_ = fd;
    seg_seq_ = seq;
    current_seq_.store(seq, std::memory_order_release);
    seg_salt_ = *salt;
    seg_size_ = format::kSegmentHeaderSize;
    PETREL_LOG(kInfo, "queue.segment", "created={}", path);
    return {};
  }

  // One pwritev for the whole batch (more only past IOV_MAX or on a short write).
  base::Status write_records(const std::vector<Request*>& live) {
    std::size_t frames = 0;
    for (Request* r : live) frames += r->frames.size();
    std::vector<std::array<char, format::kRecordHeaderSize>> headers;
    headers.reserve(frames);
    std::vector<iovec> iov;
    iov.reserve(frames * 2);
    for (Request* r : live) {
      for (Frame& f : r->frames) {
        headers.push_back(format::encode_record_header(seg_salt_, f.type, static_cast<std::uint32_t>(f.payload.size()),
                                                       f.payload_crc));
        iov.push_back({headers.back().data(), headers.back().size()});
        iov.push_back({f.payload.data(), f.payload.size()});
      }
    }
    std::uint64_t offset = seg_size_;
    std::size_t first = 0;
    while (first < iov.size()) {
      int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
      ssize_t n = ::pwritev(seg_fd_, &iov[first], count, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return base::errno_error("write spool segment", errno);
      }
      offset += static_cast<std::uint64_t>(n);
      // Advance past what was written, trimming a partially written iovec.
      auto left = static_cast<std::size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < iov.size()) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return {};
  }

  // Cuts the segment back to `length` and makes that durable; if that fails, the segment's
  // end is unknown and we never append to it again (recovery skips its damaged tail).
  void undo_append(std::uint64_t length) {
    if (seg_fd_ < 0) return;
    int rc = ::ftruncate(seg_fd_, static_cast<off_t>(length));
    if (rc == 0) rc = io_.fdatasync(seg_fd_);
    if (rc == 0) {
      seg_size_ = length;
      return;
    }
    PETREL_LOG(kError, "queue.segment_abandoned", "sequence={} error=\"{}\"", seg_seq_,
               base::errno_error("truncate", errno).message);
    ::close(seg_fd_);
    seg_fd_ = -1;
  }

  base::Status data_sync(int fd, const char* what) {
    ++data_syncs_;
    if (io_.fdatasync(fd) != 0) return base::errno_error(what, errno);
    return {};
  }

  static std::uint64_t batch_bytes(const std::vector<Request*>& live) {
    std::uint64_t n = 0;
    for (Request* r : live) {
      for (const Frame& f : r->frames) n += format::kRecordHeaderSize + f.payload.size();
    }
    return n;
  }

  // Completes one request with an error and removes its spill file: nothing of it remains.
  void fail_one(Request& r, const base::Error& e) {
    if (r.spill_fd >= 0) ::close(r.spill_fd);
    r.spill_fd = -1;
    if (!r.spill_path.empty()) ::unlink(r.spill_path.c_str());
    r.done(e);
  }

  SpoolIo io_;
  std::string log_dir_;
  std::string body_dir_;
  std::uint64_t segment_limit_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> pending_;
  bool stopping_ = false;
  std::thread thread_;
  std::function<void(const StoredMessage&)> listener_;

  // Committer-thread state.
  int seg_fd_ = -1;
  std::uint64_t seg_seq_;
  std::uint64_t seg_size_;
  std::uint64_t seg_salt_;
  std::uint64_t next_seq_;
  std::atomic<std::uint64_t> current_seq_;

  std::atomic<std::uint64_t> messages_{0}, states_{0}, batches_{0}, failed_batches_{0}, data_syncs_{0}, segments_created_{0};
};

// ---- message writer ----

namespace {

class MessageWriterImpl final : public MessageWriter {
 public:
  MessageWriterImpl(std::shared_ptr<Committer> committer, std::string id, const mail::Envelope& envelope,
                    std::string spill_path, std::size_t limit)
      : committer_(std::move(committer)),
        id_(std::move(id)),
        envelope_(envelope),
        spill_path_(std::move(spill_path)),
        limit_(limit) {}

  ~MessageWriterImpl() override {
    if (state_ == State::kOpen) abort();
  }

  const std::string& id() const override { return id_; }
  mail::Envelope& envelope() override { return envelope_; }
  std::uint64_t size() const override { return size_; }

  base::Status append(std::string_view data) override {
    if (state_ != State::kOpen) return base::temporary_error("message " + id_ + " is no longer open");
    if (error_) return *error_;
    crc_ = format::crc32(crc_, data);
    size_ += data.size();

    // In memory while it fits; past that, the buffer only batches small writes to the file.
    if (spill_fd_ < 0 && buf_.size() + data.size() <= limit_) {
      buf_.append(data);
      return {};
    }
    if (spill_fd_ < 0) {
      spill_fd_ = ::open(spill_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (spill_fd_ < 0) return remember(base::errno_error("create " + spill_path_, errno));
    }
    if (buf_.size() + data.size() > limit_) {
      if (auto s = flush(); !s) return s;
      if (data.size() > limit_) return write(data);
    }
    buf_.append(data);
    return {};
  }

  void commit(std::function<void(base::Status)> done) override {
    Request r;
    r.id = id_;
    r.size = size_;
    r.from = log_sender(envelope_.sender);
    r.nrcpt = envelope_.recipients.size();
    r.done = std::move(done);
    if (state_ != State::kOpen) {
      r.failed = base::temporary_error("message " + id_ + " is no longer open");
      committer_->submit(std::move(r));
      return;
    }
    state_ = State::kCommitted;

    // Everything the committer needs is encoded here, in the caller's thread.
    base::Status s = error_ ? base::Status(*error_) : base::Status();
    if (s && spill_fd_ >= 0) s = flush();
    format::BodyRef ref{spill_fd_ >= 0 ? format::BodyKind::kSpill : format::BodyKind::kInline, size_, crc_};
    Frame& f = r.frames.emplace_back();
    if (s) s = format::encode_message(id_, envelope_, ref, spill_fd_ >= 0 ? std::string_view() : buf_, f.payload);
    f.payload_crc = format::crc32(0, f.payload);
    r.envelope = envelope_;
    r.body = ref;
    if (spill_fd_ >= 0) r.spill_path = spill_path_;
    r.spill_fd = std::exchange(spill_fd_, -1);
    if (!s) r.failed = s.error();
    std::string().swap(buf_);
    committer_->submit(std::move(r));
  }

  void abort() override {
    if (state_ != State::kOpen) return;  // after commit(), the committer owns what is left
    state_ = State::kAborted;
    if (spill_fd_ >= 0) ::close(spill_fd_);
    spill_fd_ = -1;
    ::unlink(spill_path_.c_str());  // ENOENT when it never spilled: fine
    std::string().swap(buf_);
  }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  base::Status flush() {
    auto s = write(buf_);
    buf_.clear();
    return s;
  }
  base::Status write(std::string_view data) {
    if (auto s = io::write_all(spill_fd_, data, "write spill file"); !s) return remember(s.error());
    return {};
  }
  base::Status remember(base::Error e) {
    error_ = e;
    return e;
  }

  std::shared_ptr<Committer> committer_;
  std::string id_;
  mail::Envelope envelope_;
  std::string spill_path_;
  std::size_t limit_;
  State state_ = State::kOpen;
  std::string buf_;
  std::uint64_t size_ = 0;
  std::uint32_t crc_ = 0;
  int spill_fd_ = -1;
  std::optional<base::Error> error_;  // an append failed: commit() will fail
};

}  // namespace

// ---- IntakeImpl ----

base::Result<std::unique_ptr<IntakeImpl>> IntakeImpl::create(const Spool& spool, base::Clock& clock) {
  PETREL_ASSERT(spool.mode() == Spool::Mode::kWritable, "IntakeImpl needs a writable spool");
  auto committer = std::make_shared<Committer>(spool);
  if (auto s = committer->start(spool); !s) return s.error();
  return std::unique_ptr<IntakeImpl>(new IntakeImpl(spool, clock, std::move(committer)));
}

IntakeImpl::IntakeImpl(const Spool& spool, base::Clock& clock, std::shared_ptr<Committer> committer)
    : clock_(clock),
      io_(spool.io()),
      queue_dir_(spool.queue_dir()),
      body_dir_(spool.body_dir()),
      memory_limit_(static_cast<std::size_t>(std::min<std::uint64_t>(spool.config().memory_per_message, format::kMaxInlineBody))),
      min_free_space_(spool.config().min_free_space),
      committer_(std::move(committer)) {}

IntakeImpl::~IntakeImpl() { committer_->stop(); }

void IntakeImpl::drain() { committer_->stop(); }

base::Result<MessageWriterPtr> IntakeImpl::begin(const mail::Envelope& envelope) {
  if (committer_->stopping()) return base::temporary_error("queue is shutting down");
  std::string id = base::new_queue_id(clock_.wall());
  std::string spill = body_dir_ + "/" + id;
  return MessageWriterPtr(std::make_unique<MessageWriterImpl>(committer_, std::move(id), envelope, std::move(spill), memory_limit_));
}

bool IntakeImpl::has_free_space() {
  std::lock_guard lk(space_mu_);
  auto now = clock_.mono();
  if (space_known_ && now - space_checked_ < std::chrono::seconds(1)) return space_ok_;
  struct statvfs st{};
  if (io_.statvfs(queue_dir_.c_str(), &st) != 0) {
    // Cannot tell: refuse (a temporary 452) rather than accept into a spool we cannot see.
    PETREL_LOG(kError, "queue.statvfs_failed", "error=\"{}\"", base::errno_error(queue_dir_, errno).message);
    space_ok_ = false;
  } else {
    space_ok_ = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize >= min_free_space_;
  }
  space_known_ = true;
  space_checked_ = now;
  return space_ok_;
}

IntakeImpl::Stats IntakeImpl::stats() const { return committer_->stats(); }

void IntakeImpl::record_states(std::vector<RecipientState> states, std::function<void(base::Status)> done) {
  if (states.empty()) {
    done(base::Status());
    return;
  }
  // Encoded here, in the caller's thread, like a message.
  Request r;
  r.message = false;
  r.done = std::move(done);
  r.frames.reserve(states.size());
  for (const auto& st : states) {
    Frame& f = r.frames.emplace_back();
    f.type = format::RecordType::kRecipientState;
    if (auto s = format::encode_state(st, f.payload); !s) {
      r.failed = s.error();
      break;
    }
    f.payload_crc = format::crc32(0, f.payload);
  }
  committer_->submit(std::move(r));
}

void IntakeImpl::set_commit_listener(std::function<void(const StoredMessage&)> listener) {
  committer_->set_listener(std::move(listener));
}

std::uint64_t IntakeImpl::current_segment() const { return committer_->current_segment(); }

}  // namespace petrel::queue
