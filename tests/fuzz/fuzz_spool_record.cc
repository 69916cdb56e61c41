// fuzz_spool_record: arbitrary bytes into the spool's record, envelope and recipient-state
// decoders.
//
// Checks that decoding never crashes, never reads out of bounds and never allocates more than
// the input justifies; and that whatever decodes re-encodes to the very same bytes (the
// format has one encoding per value, so recovery cannot be fooled by a second spelling).
// Target: fuzz_spool_record; links petrel::queue.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "queue/spool_format.h"

using namespace petrel::queue::format;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  (void)decode_segment_header(in);

  // As a record: header, then CRC over what follows under a fixed salt.
  if (auto h = decode_record_header(in); h && in.size() - kRecordHeaderSize >= h->length) {
    (void)record_crc_ok(0, in, in.substr(kRecordHeaderSize, h->length), h->crc);
  }

  // As a MESSAGE payload (the whole input, and past a would-be record header).
  for (std::string_view payload : {in, in.size() > kRecordHeaderSize ? in.substr(kRecordHeaderSize) : in}) {
    auto m = decode_message(payload);
    if (!m) continue;
    std::string again;
    std::string_view body = m->body.kind == BodyKind::kInline ? payload.substr(m->inline_offset) : std::string_view();
    if (!encode_message(m->id, m->envelope, m->body, body, again) || again != payload) __builtin_trap();
  }

  // As a RECIPIENT_STATE payload, the same two ways.
  for (std::string_view payload : {in, in.size() > kRecordHeaderSize ? in.substr(kRecordHeaderSize) : in}) {
    auto st = decode_state(payload);
    if (!st) continue;
    std::string again;
    if (!encode_state(*st, again) || again != payload) __builtin_trap();
  }
  return 0;
}
