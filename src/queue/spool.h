// queue/spool.h: the durable spool on disk: opening it, recovering it after a crash, and
// reading the messages it holds.
//
// What it is: <data>/queue/ with log/NNNNNNNNNNNNNNNN.seg (append-only segments of records),
// body/<queue-id> (bodies too large to sit inline), quarantine/ (damaged bytes copied out for
// the operator) and the lock file. Layout, commit protocol and recovery: queue/README.md.
// Promise: open() in writable mode takes an exclusive flock on <data>/queue/lock (one writer
// per spool), truncates a torn tail of the last segment (bytes of a batch that was never
// acknowledged), deletes spill files that provably belong to no acknowledged message (moving
// to quarantine/ any whose record may sit in a skipped region), and leaves the spool ready
// for IntakeImpl to append. Read-only mode takes no lock and changes nothing, so the CLI can
// run beside the server; a torn tail is ignored. Every record is checked (magic, bounds, CRC);
// a corrupt record in the middle is skipped (counted and logged) and reading resumes at the
// next valid record, so every other message is still delivered. Reading memory is bounded by
// one record (format::kMaxRecordPayload) and a body is streamed, whatever the queue length.
// Quarantine: writable open() copies every damaged region (bytes skipped between valid
// records, a segment whose header is damaged, the abandoned tail of a segment that is not the
// last) to quarantine/<segment>.seg-<offset>.bin, synced, and logs `queue.quarantined`; a
// region already there from an earlier start (same name, same size) is not copied again.
// Once its damage is copied out a segment may be retired like any other; only a segment whose
// damage could not be copied (damaged_segments()) is kept for the operator.
// quarantine_message() takes one committed message out of delivery's way the same way.
// Delivery state: for_each_record() also reports RECIPIENT_STATE records; read_message_at()
// re-reads one message by its location; remove_segment() deletes a segment the scheduler has
// retired (scheduler.h decides which).
// Not done here: writing (intake_impl.h), delivery decisions, cleaning quarantine/ (the
// operator's: nothing in it is read again).
// Failure: I/O problems are temporary errors (base::errno_error). A region that cannot be
// quarantined does not stop open(): it is logged (`queue.quarantine_failed`) and its segment
// kept.
#pragma once

#include <sys/statvfs.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "mail/envelope.h"
#include "queue/spool_format.h"

namespace petrel::queue {

// The system calls a test may want to fail or count. Defaults are the real ones.
struct SpoolIo {
  std::function<int(int fd)> fdatasync = [](int fd) { return ::fdatasync(fd); };
  std::function<int(int fd)> fsync = [](int fd) { return ::fsync(fd); };
  std::function<int(const char* path, struct statvfs* out)> statvfs = [](const char* p, struct statvfs* o) {
    return ::statvfs(p, o);
  };
};

using RecipientState = format::RecipientState;
using RecipientStatus = format::RecipientStatus;

struct StoredMessage {
  std::string id;
  mail::Envelope envelope;
  format::BodyRef body;  // kind, length, crc
  // Where the body bytes are: the segment file and offset for inline bodies, the spill file
  // otherwise.
  std::string body_path;
  std::uint64_t body_offset = 0;
  // Where the record is: read_message_at(segment, record_offset) finds it again, and the
  // scheduler retires segments by their sequence.
  std::uint64_t segment = 0;
  std::uint64_t record_offset = 0;
};

// What a scan found; open() keeps the one it made (recovery()).
struct ScanReport {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t messages = 0;
  std::uint64_t states = 0;           // RECIPIENT_STATE records
  std::uint64_t unknown_records = 0;  // valid CRC, type we do not know: skipped
  std::uint64_t corrupt_regions = 0;  // bad bytes followed by a valid record: skipped
  std::uint64_t corrupt_bytes = 0;
  std::uint64_t torn_tail_bytes = 0;  // last segment: bad bytes up to the end
  // Bytes read while looking for the next valid record after damage (a measure of the work
  // resynchronising cost: linear in the bytes searched, see queue/README.md "Recovery").
  std::uint64_t resync_bytes_read = 0;
  std::uint64_t garbage_spills = 0;   // open(): spill files provably without a record, deleted
  // open(): spill files no readable record names while some region of the log was skipped
  // (their record may be there): moved to quarantine/<id>.body, never deleted.
  std::uint64_t quarantined_spills = 0;
  // open(): damaged regions (corrupt regions, bad headers, abandoned tails of segments other
  // than the last) copied to quarantine/ during this open; those already there from an earlier
  // start are not counted again.
  std::uint64_t quarantined = 0;
  std::uint64_t quarantine_failed = 0;  // open(): damaged regions that could not be copied
};

// Streams one body and verifies its length and CRC at the end.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Reads up to `n` bytes; 0 at the end. At the end, a length or CRC mismatch is an error.
  virtual base::Result<std::size_t> read(char* buf, std::size_t n) = 0;
};

class Spool {
 public:
  enum class Mode { kWritable, kReadOnly };

  // Opens <data_dir>/queue (creating it in writable mode) and scans it: see the file comment.
  static base::Result<std::unique_ptr<Spool>> open(const std::string& data_dir, const config::QueueConfig& config,
                                                  Mode mode, SpoolIo io = {});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Calls `fn` for every committed message, in commit order. Rescans the segments each time
  // (no index is held in memory). Bytes past the valid end of the last segment (a batch being
  // written right now, or a torn tail) are not reported. Thread: any; reads only.
  base::Status for_each_message(const std::function<void(const StoredMessage&)>& fn,
                                ScanReport* report = nullptr) const;
  // Calls `on_message` for every committed message and `on_state` for every recipient-state
  // record, interleaved in log order (segment by segment, in each in write order), with the
  // sequence of the segment that holds the record. Same rules as for_each_message().
  base::Status for_each_record(const std::function<void(const StoredMessage&)>& on_message,
                               const std::function<void(const RecipientState&, std::uint64_t segment)>& on_state,
                               ScanReport* report = nullptr) const;
  // The message whose record starts at `record_offset` in segment `segment` (as reported in
  // StoredMessage): header, bounds and CRC checked, payload decoded. Thread: any.
  base::Result<StoredMessage> read_message_at(std::uint64_t segment, std::uint64_t record_offset) const;
  // The message with this id, or nullopt.
  base::Result<std::optional<StoredMessage>> find(std::string_view id) const;

  base::Result<std::unique_ptr<BodyReader>> open_body(const StoredMessage& message) const;
  // The whole body into `out` (replacing it), CRC verified.
  base::Status read_body(const StoredMessage& message, std::string& out) const;

  // Sequence numbers of the segment files now in log/, ascending.
  base::Result<std::vector<std::uint64_t>> list_segments() const;
  // Deletes one segment file and syncs log/ (writable mode only). The caller guarantees that
  // nothing in it is needed any more and that it is not the segment being appended to.
  base::Status remove_segment(std::uint64_t sequence) const;
  // Segments in which open() found damage (a bad header, corrupt records, an abandoned tail)
  // that it could NOT copy to quarantine/: they hold the only copy of those bytes, so they are
  // kept for the operator and never removed by retiring. A segment whose damage is safely in
  // quarantine/ is not listed and may be retired like any other.
  const std::set<std::uint64_t>& damaged_segments() const { return damaged_; }

  // Why the body of `message` cannot be delivered: nullopt when it is whole (length and CRC
  // match), else the damage ("spill file missing", a wrong length, a CRC mismatch), ready to
  // pass to quarantine_message(). Any other I/O error (EIO, EMFILE...) is returned as an error:
  // that is not known damage, try again later. Reads the whole body (streamed). Thread: any.
  base::Result<std::optional<std::string>> check_body(const StoredMessage& message) const;
  // Takes a committed message whose body cannot be delivered (check_body()) out of delivery's
  // way and into quarantine/ for the operator: copies its record (header and payload, as on
  // disk) to quarantine/<id>.record, then moves its spill file, if it has one and it is there,
  // to quarantine/<id>.body; each synced, then `queue.quarantined id= ... reason=` is logged.
  // The record itself stays in its segment: the caller (the scheduler) must then make the
  // message final (FAILED records), so that it is neither tried again nor keeps its segment.
  // Idempotent: a second call finds the .record there (same size) and no spill to move.
  // Writable mode only. Thread: any; call it when no delivery of the message is in flight.
  // Failure: temporary error; nothing is deleted (a spill file is renamed, never copied and
  // removed), and the spill file is not moved unless the record copy is durable.
  base::Status quarantine_message(const StoredMessage& message, std::string_view reason) const;

  const ScanReport& recovery() const { return recovery_; }
  Mode mode() const { return mode_; }
  const config::QueueConfig& config() const { return config_; }
  const SpoolIo& io() const { return io_; }
  const std::string& queue_dir() const { return queue_dir_; }
  const std::string& log_dir() const { return log_dir_; }
  const std::string& body_dir() const { return body_dir_; }
  const std::string& quarantine_dir() const { return quarantine_dir_; }
  std::string segment_path(std::uint64_t sequence) const;
  std::string spill_path(std::string_view id) const;

  // Where appending continues (writable mode): the last segment's sequence (0 when there is
  // none, or it cannot take more records), its valid size and salt; and the sequence number
  // the next new segment must take.
  std::uint64_t last_segment() const { return last_segment_; }
  std::uint64_t last_segment_size() const { return last_segment_size_; }
  std::uint64_t last_segment_salt() const { return last_segment_salt_; }
  std::uint64_t next_sequence() const { return next_sequence_; }

 private:
  Spool() = default;
  base::Status recover();
  // Copies `length` bytes at `offset` of segment `seq` (open as `fd`) to quarantine/ unless
  // they are already there; counts and logs. False when the copy failed (logged).
  bool quarantine_region(int fd, std::uint64_t seq, std::uint64_t offset, std::uint64_t length,
                         std::string_view reason);
  // Deals with the files of body/ that no committed record in `committed` names: deletes those
  // that are provably garbage, moves the others to quarantine/ when `unreadable` (segments
  // with a skipped region) is not empty. See queue/README.md, recovery step 6.
  base::Status sweep_spills(const std::unordered_set<std::string>& committed,
                            const std::vector<std::uint64_t>& unreadable);

  Mode mode_ = Mode::kReadOnly;
  config::QueueConfig config_;
  SpoolIo io_;
  std::string queue_dir_, log_dir_, body_dir_, quarantine_dir_;
  int lock_fd_ = -1;
  ScanReport recovery_;
  std::set<std::uint64_t> damaged_;
  std::uint64_t last_segment_ = 0;
  std::uint64_t last_segment_size_ = 0;
  std::uint64_t last_segment_salt_ = 0;
  std::uint64_t next_sequence_ = 1;
};

// Helpers shared with intake_impl.cc. All retry on EINTR and report errno_error.
namespace io {
base::Status write_all(int fd, std::string_view data, const char* what);
base::Status pread_all(int fd, char* buf, std::size_t n, std::uint64_t offset, const char* what);
// Opens the directory and fsyncs it (through `sys`), so a created or removed name is durable.
base::Status sync_dir(const std::string& path, const SpoolIo& sys);
}  // namespace io

}  // namespace petrel::queue
