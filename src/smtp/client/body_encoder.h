// smtp/client/body_encoder.h: turns a stored message body into the DATA stream (RFC 5321
// 4.5.2 transparency, 2.3.8 line ends), chunk by chunk.
//
// Promise: whatever the input holds, the output has no bare CR and no bare LF (each becomes
// CRLF), every line that starts with "." gets one more ".", and finish() ends it with CRLF (if
// the data did not already end with one) and ".\r\n". Chunk boundaries may fall anywhere,
// also between a CR and its LF: the output is the same as for one big chunk. Undoing the
// stuffing gives back the input with its line ends normalised. NUL and 8-bit octets pass as
// they are (not the encoder's business). Memory: two bits of state. For BDAT the same, minus
// the stuffing and the terminator.
// Thread: one encoder per transaction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace petrel::smtp::client {

class BodyEncoder {
 public:
  enum class Mode : std::uint8_t {
    kData,  // DATA: line ends normalised, dots stuffed, finish() adds ".\r\n"
    kBdat,  // BDAT (RFC 3030 2): line ends normalised only; finish() adds no terminator
  };
  explicit BodyEncoder(Mode mode = Mode::kData) : mode_(mode) {}

  // Appends the encoded form of `in` to `out`; at most 2 * in.size() + 1 octets.
  void encode(std::string_view in, std::string& out);
  // Appends the end of the body: CRLF when needed, then ".\r\n" (kData). The encoder is then
  // reset.
  void finish(std::string& out);

 private:
  Mode mode_;
  bool line_start_ = true;  // the next octet starts a line
  bool pending_cr_ = false;  // the last octet seen was a CR whose LF may come next
};

}  // namespace petrel::smtp::client
