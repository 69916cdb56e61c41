// queue/intake_impl.h: the Intake over the on-disk spool, with group commit.
//
// What it is: MessageWriterImpl buffers a body in memory up to memory_per_message (capped at
// format::kMaxInlineBody) and spills the rest to body/<id> with plain write(); commit() encodes
// the record in the caller's thread and hands it to one committer thread. The committer takes
// every pending commit at once, fdatasyncs their spill files (and body/ once), writes all the
// records with one pwritev at the segment's end, fdatasyncs the segment once, then calls
// every `done`. Commits that arrive during a sync form the next batch, so the cost of a sync
// is shared by all the sessions that wait on it.
// Promise: `done(success)` only after the record and its body are on stable storage. On any
// error the whole batch fails with a temporary error and leaves no trace: the segment is cut
// back to its length before the batch (or, if that fails, abandoned for a new segment) and
// the batch's spill files are removed. Memory per message is bounded whatever its size.
// Delivery state: record_states() (StateSink) frames RECIPIENT_STATE records into the same
// batches, and the commit listener hears of every message once it is durable.
// Not done here: deciding what to accept (smtp/), deciding delivery states (scheduler.h).
// Thread: begin() and has_free_space() from any thread; a writer is used by one thread at a
// time. `done` runs on the committer thread and must not block on the disk.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "base/clock.h"
#include "queue/intake.h"
#include "queue/spool.h"
#include "queue/state_sink.h"

namespace petrel::queue {

class Committer;

class IntakeImpl final : public Intake, public StateSink {
 public:
  struct Stats {
    std::uint64_t messages = 0;        // committed successfully
    std::uint64_t states = 0;          // recipient-state records committed
    std::uint64_t batches = 0;         // batches written (successful or not)
    std::uint64_t failed_batches = 0;
    std::uint64_t data_syncs = 0;      // fdatasync calls on segments and spill files
    std::uint64_t segments_created = 0;
  };

  // `spool` must be open in writable mode; it is only read here (paths, config, where its last
  // segment ends) and may be used for reading afterwards. `clock` must outlive this object.
  // Starts the committer thread.
  static base::Result<std::unique_ptr<IntakeImpl>> create(const Spool& spool, base::Clock& clock);
  // Completes every commit already submitted, then stops the committer thread. Writers that
  // outlive it fail their commit (done is then called inside commit()).
  ~IntakeImpl() override;
  // The same first step, ahead of destruction: returns once every commit submitted so far has
  // completed (its `done` called); later commits fail at once. The server drains the intake
  // before it destroys the event loops that the completions are posted to. Idempotent.
  void drain();

  base::Result<MessageWriterPtr> begin(const mail::Envelope& envelope) override;
  bool has_free_space() override;

  // StateSink (state_sink.h).
  void record_states(std::vector<RecipientState> states, std::function<void(base::Status)> done) override;
  void set_commit_listener(std::function<void(const StoredMessage&)> listener) override;
  std::uint64_t current_segment() const override;

  Stats stats() const;

 private:
  IntakeImpl(const Spool& spool, base::Clock& clock, std::shared_ptr<Committer> committer);

  base::Clock& clock_;
  SpoolIo io_;
  std::string queue_dir_;
  std::string body_dir_;
  std::size_t memory_limit_;
  std::uint64_t min_free_space_;
  std::shared_ptr<Committer> committer_;

  // has_free_space() cache: refreshed at most once a second (monotonic clock).
  std::mutex space_mu_;
  bool space_known_ = false;
  bool space_ok_ = false;
  std::chrono::steady_clock::time_point space_checked_{};
};

}  // namespace petrel::queue
