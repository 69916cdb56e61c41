// queue/spool_format.h: the bytes of the spool, and nothing else.
//
// What it is: encoders and decoders for the segment header, the record header, the MESSAGE
// payload (queue id, every field of mail::Envelope, body reference) and the RECIPIENT_STATE
// payload (one recipient's delivery outcome). The layout is
// documented byte by byte in queue/README.md; this file is its only implementation.
// Promise: decode_*() accept exactly what encode_*() produce, verify every length against the
// bytes actually present before allocating, and never read out of bounds, whatever the input
// (there is a fuzz target: tests/fuzz/fuzz_spool_record.cc). Allocation is bounded by the
// input size (and kMaxRecipients).
// Not done here: any I/O, any policy about torn tails or resynchronisation (spool.cc).
// Failure: a malformed input gives a temporary error naming the first problem found.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "mail/envelope.h"

namespace petrel::queue::format {

// ---- Segment header (40 bytes at offset 0 of every .seg file) ----
inline constexpr std::string_view kSegmentMagic{"PETRLSEG", 8};
inline constexpr std::uint32_t kSegmentVersion = 1;
inline constexpr std::size_t kSegmentHeaderSize = 40;

struct SegmentHeader {
  std::uint64_t sequence = 0;
  // Random per segment and mixed into every record's CRC, so that bytes inside a message body
  // that imitate a record never pass for one when a reader resynchronises after damage.
  std::uint64_t salt = 0;
};

std::array<char, kSegmentHeaderSize> encode_segment_header(const SegmentHeader& header);
base::Result<SegmentHeader> decode_segment_header(std::string_view bytes);

// ---- Record header (16 bytes) followed by `length` payload bytes ----
inline constexpr std::string_view kRecordMagic{"PREC", 4};
inline constexpr std::size_t kRecordHeaderSize = 16;
// No record payload may be larger: bounds what a reader allocates for one record. Inline
// bodies are kept well below it (kMaxInlineBody) so metadata always fits.
inline constexpr std::uint32_t kMaxRecordPayload = 16u << 20;
inline constexpr std::uint64_t kMaxInlineBody = 8u << 20;
inline constexpr std::uint32_t kMaxRecipients = 100000;

enum class RecordType : std::uint8_t {
  kMessage = 1,         // a committed message: id, envelope, body (inline or spill reference)
  kRecipientState = 2,  // one recipient's delivery state change (RecipientState)
};

struct RecordHeader {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t length = 0;  // payload bytes
  std::uint32_t crc = 0;     // crc32 of the segment salt (8 bytes LE), header bytes 0..11, payload
};

// Checks magic, reserved bytes and the length bound; does not check the CRC (needs payload).
base::Result<RecordHeader> decode_record_header(std::string_view bytes);
// True when `payload` matches the header's CRC. `header_bytes` are the 16 bytes as read.
bool record_crc_ok(std::uint64_t salt, std::string_view header_bytes, std::string_view payload, std::uint32_t crc);
// The same check from the payload's own crc32 (crc32(0, payload)) and its length.
bool record_crc_matches(std::uint64_t salt, std::string_view header_bytes, std::uint32_t payload_crc,
                        std::uint64_t length, std::uint32_t crc);
// The 16 header bytes for a payload of `length` bytes whose own crc32 is `payload_crc`
// (crc32(0, payload)): lets a writer checksum the payload in its own thread and frame it later
// in whatever segment (salt) it lands in. PETREL_ASSERTs length <= kMaxRecordPayload.
std::array<char, kRecordHeaderSize> encode_record_header(std::uint64_t salt, RecordType type, std::uint32_t length,
                                                         std::uint32_t payload_crc);
// Appends header + payload to `out`. PETREL_ASSERTs payload.size() <= kMaxRecordPayload.
void encode_record(std::uint64_t salt, RecordType type, std::string_view payload, std::string& out);

// ---- MESSAGE payload ----
inline constexpr std::uint8_t kMessageVersion = 1;

enum class BodyKind : std::uint8_t { kInline = 0, kSpill = 1 };

struct BodyRef {
  BodyKind kind = BodyKind::kInline;
  std::uint64_t length = 0;
  std::uint32_t crc = 0;  // zlib crc32 of the body bytes
};

struct MessageRecord {
  std::string id;
  mail::Envelope envelope;
  BodyRef body;
  // Inline bodies: where the body bytes start inside the payload (decode only).
  std::size_t inline_offset = 0;
};

// Encodes the payload. `inline_body` must be empty unless body.kind == kInline, and then its
// size must equal body.length. Fails (temporary) when the envelope exceeds the format's
// bounds (more than kMaxRecipients, a field over 4 GiB, a payload over kMaxRecordPayload).
base::Status encode_message(const std::string& id, const mail::Envelope& envelope, const BodyRef& body,
                            std::string_view inline_body, std::string& payload);
// Decodes a payload: every field is checked (enum ranges, queue-id syntax, lengths within the
// payload, nothing left over). The inline body is not copied: see MessageRecord::inline_offset.
base::Result<MessageRecord> decode_message(std::string_view payload);

// ---- RECIPIENT_STATE payload ----
inline constexpr std::uint8_t kStateVersion = 1;
// Version 2 is version 1 plus a flags octet (kStateFlag*), written only when a flag is set, so
// every state has exactly one encoding and version-1 readers' records stay valid.
inline constexpr std::uint8_t kStateVersionFlags = 2;
// A delay warning (DSN "delayed") about this message was queued: never send another.
inline constexpr std::uint8_t kStateFlagDelayNotified = 1;
// A DELIVERED state reached through a next hop (RecipientResult::Handoff): one that took the
// DSN request on (no success notice from us), or one without DSN (our notice says "relayed").
inline constexpr std::uint8_t kStateFlagDsnPassedOn = 2;
inline constexpr std::uint8_t kStateFlagRelayed = 4;
inline constexpr std::uint8_t kStateKnownFlags = kStateFlagDelayNotified | kStateFlagDsnPassedOn | kStateFlagRelayed;

enum class RecipientStatus : std::uint8_t {
  kDelivered = 1,  // final
  kDeferred = 2,   // temporary failure: `attempts` and `next_attempt` say when to try again
  kFailed = 3,     // final: permanent failure
  kExpired = 4,    // final: still not delivered when the queue lifetime ran out
  kHeld = 5,       // put on hold by the operator (`petrel queue hold`): neither tried nor expired
  kDeleted = 6,    // final: removed by the operator (`petrel queue delete`), no DSN
};

// True for the states after which a recipient is never tried again.
inline bool is_final(RecipientStatus s) { return s != RecipientStatus::kDeferred && s != RecipientStatus::kHeld; }

struct RecipientState {
  std::string id;               // the message's queue id
  std::uint32_t recipient = 0;  // index into the message's envelope.recipients
  RecipientStatus status = RecipientStatus::kDeferred;
  std::uint32_t attempts = 0;      // delivery attempts made so far, this one included
  std::int64_t next_attempt = 0;   // seconds since the epoch; 0 when final
  std::uint16_t reply_code = 0;    // last reply's code (0 = none, else 200..599)
  std::string enhanced;            // last reply's enhanced status code ("4.2.2"), may be empty
  std::string text;                // last reply's text
  std::string remote_host;         // who gave that reply ("" for local delivery)
  std::uint8_t flags = 0;          // kStateFlag* bits

  bool operator==(const RecipientState&) const = default;
};

// Encodes a RECIPIENT_STATE payload (replacing `payload`). PETREL_ASSERTs a valid queue id.
// Fails (temporary) when a field exceeds the format's bounds.
base::Status encode_state(const RecipientState& state, std::string& payload);
// Decodes one: the queue id, status and reply code are range-checked; nothing may follow.
base::Result<RecipientState> decode_state(std::string_view payload);

// zlib crc32 over any size (continues from `crc`; start with 0).
std::uint32_t crc32(std::uint32_t crc, std::string_view data);

}  // namespace petrel::queue::format
