// queue/state_sink.h: where the scheduler writes delivery state, and how it hears of new mail.
//
// What it is: the narrow part of the spool writer the Scheduler needs. IntakeImpl implements
// it, so recipient-state records share the group commit with incoming messages (one pwritev
// and one fdatasync for both kinds); a test may implement it to watch or fail writes.
// Promise: record_states() completes `done(success)` only once every record is on stable
// storage; on failure none of them is (the batch is cut back, see README "Commit protocol").
// The commit listener hears of each committed message after its batch is durable.
// Not done here: deciding states (scheduler.h).
// Failure: storage problems complete `done` with a temporary error.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/result.h"
#include "queue/spool.h"

namespace petrel::queue {

class StateSink {
 public:
  virtual ~StateSink() = default;

  // Appends one RECIPIENT_STATE record per element, in order, in the next group commit.
  // `done` is called exactly once, on the committer thread (never inside this call unless
  // the writer is shutting down or `states` is empty). Thread: any.
  virtual void record_states(std::vector<RecipientState> states, std::function<void(base::Status)> done) = 0;

  // `listener` is called on the committer thread for each message, after the batch that
  // holds it is durable and before the next batch starts; it must not block. An empty
  // function removes it. Thread: any.
  virtual void set_commit_listener(std::function<void(const StoredMessage&)> listener) = 0;

  // The sequence of the segment being appended to (0 before the first). Only grows. A
  // segment older than this value receives no more records, and every message committed to
  // it has already been passed to the listener (read this before draining what the listener
  // delivered). Thread: any.
  virtual std::uint64_t current_segment() const = 0;
};

}  // namespace petrel::queue
