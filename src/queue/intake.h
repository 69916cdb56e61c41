// queue/intake.h: the door through which accepted mail enters the queue.
//
// Promise: when MessageWriter::commit() completes with success, the message and its envelope
// are on stable storage (data and directory synced, self-checking with length and checksum)
// and will be delivered at least once, whatever happens next. Concurrent commits share one
// sync (group commit); none waits for more than the sync in progress plus its own.
// Not done here: deciding whether mail is welcome (smtp/, policy/), delivering it (delivery/).
// Failure: any storage problem completes commit() with a temporary error; the caller answers
// 451 4.3.0 and the message is not in the queue.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mail/envelope.h"

namespace petrel::queue {

class MessageWriter {
 public:
  virtual ~MessageWriter() = default;

  // The queue id given to this message.
  virtual const std::string& id() const = 0;

  // Appends body bytes, in order, exactly as they will be delivered (CRLF line ends, no
  // dot-stuffing). Memory: at most QueueConfig::memory_per_message bytes are held; beyond
  // that the body spills to a file in the spool with plain write() (no sync until commit).
  // Thread: the caller's; not thread-safe.
  virtual base::Status append(std::string_view data) = 0;

  // Makes the message durable. `done` is called exactly once, on the queue's commit thread
  // (never inside this call): the caller re-posts to its own executor. The envelope given
  // to Intake::begin() may be amended up to this call through envelope().
  virtual void commit(std::function<void(base::Status)> done) = 0;

  // Drops the message: nothing of it stays in the spool. Safe to call after a failed commit.
  virtual void abort() = 0;

  virtual mail::Envelope& envelope() = 0;
  virtual std::uint64_t size() const = 0;  // body bytes appended so far
};

using MessageWriterPtr = std::unique_ptr<MessageWriter>;

class Intake {
 public:
  virtual ~Intake() = default;

  // Starts a message. Thread: any. Fails (temporary) when the spool cannot take it.
  virtual base::Result<MessageWriterPtr> begin(const mail::Envelope& envelope) = 0;

  // False when the spool's file system has less free space than the configured reserve:
  // the server answers MAIL with 452 4.3.1. Cheap: the figure is refreshed at most once a
  // second. Thread: any.
  virtual bool has_free_space() = 0;
};

}  // namespace petrel::queue
