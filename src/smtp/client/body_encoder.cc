// body_encoder.cc: CRLF normalisation and dot-stuffing of outgoing DATA.
#include "smtp/client/body_encoder.h"

namespace petrel::smtp::client {

void BodyEncoder::encode(std::string_view in, std::string& out) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    // A CR seen at the end of the previous step: CRLF if an LF follows, else a bare CR → CRLF.
    if (pending_cr_) {
      pending_cr_ = false;
      out += "\r\n";
      line_start_ = true;
      if (in[i] == '\n') {
        ++i;
        continue;
      }
    }
    char c = in[i];
    if (c == '\r') {
      pending_cr_ = true;
      ++i;
      continue;
    }
    if (c == '\n') {  // bare LF
      out += "\r\n";
      line_start_ = true;
      ++i;
      continue;
    }
    // RFC 5321 4.5.2: a line that starts with "." gets one more.
    if (line_start_ && c == '.' && mode_ == Mode::kData) out.push_back('.');
    line_start_ = false;
    // Copy the run of ordinary octets up to the next CR or LF in one go.
    std::size_t j = i;
    while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
    out.append(in.data() + i, j - i);
    i = j;
  }
}

void BodyEncoder::finish(std::string& out) {
  if (pending_cr_ || !line_start_) out += "\r\n";
  if (mode_ == Mode::kData) out += ".\r\n";
  pending_cr_ = false;
  line_start_ = true;
}

}  // namespace petrel::smtp::client
