// fuzz_data_decoder: DATA end detection and body scanning over arbitrary bytes, fed in
// arbitrary pieces. Invariants: the decoder consumes everything up to the end marker, the end
// marker is found exactly when the input holds CRLF "." CRLF at a line start, decoded output
// never exceeds the input, and the result does not depend on how the input was split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/server/data_decoder.h"

using petrel::smtp::server::BodyScanner;
using petrel::smtp::server::DataDecoder;

namespace {

struct Run {
  std::string out;
  std::size_t consumed = 0;
  bool done = false;
};

Run decode(std::string_view in, std::size_t piece) {
  DataDecoder d;
  Run r;
  while (r.consumed < in.size() && !r.done) {
    auto step = d.feed(in.substr(r.consumed, piece), r.out);
    if (step.consumed == 0) std::abort();  // no progress on non-empty input
    r.consumed += step.consumed;
    r.done = step.done;
  }
  return r;
}

// Reference: where does "\r\n.\r\n" (or a leading ".\r\n") first end the data?
std::size_t reference_end(std::string_view in) {
  if (in.substr(0, 3) == ".\r\n") return 3;
  auto pos = in.find("\r\n.\r\n");
  return pos == std::string_view::npos ? std::string_view::npos : pos + 5;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t piece = 1 + data[0] % 16;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  Run whole = decode(in, in.size() + 1);
  Run split = decode(in, piece);
  if (whole.out != split.out || whole.done != split.done || whole.consumed != split.consumed) std::abort();
  if (whole.out.size() > whole.consumed) std::abort();
  std::size_t end = reference_end(in);
  // The reference may find an earlier "\r\n.\r\n" that is not at a line start only if a bare
  // CR/LF shifted the line structure; CRLF-only input must agree exactly.
  bool crlf_only = true;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) crlf_only = false;
    if (in[i] == '\r' && (i + 1 >= in.size() || in[i + 1] != '\n')) crlf_only = false;
  }
  if (crlf_only) {
    if (whole.done != (end != std::string_view::npos)) std::abort();
    if (whole.done && whole.consumed != end) std::abort();
  }
  BodyScanner a, b;
  a.scan(whole.out);
  for (std::size_t i = 0; i < whole.out.size(); i += piece) b.scan(std::string_view(whole.out).substr(i, piece));
  a.finish();
  b.finish();
  if (a.bare_line_end() != b.bare_line_end() || a.has_nul() != b.has_nul() ||
      a.received_headers() != b.received_headers()) {
    std::abort();
  }
  return 0;
}
