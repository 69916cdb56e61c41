// data_decoder.cc: DATA end detection, dot-unstuffing, and body scanning.
#include "smtp/server/data_decoder.h"

#include <strings.h>

#include <cstring>

namespace petrel::smtp::server {

DataDecoder::Step DataDecoder::feed(std::string_view in, std::string& out) {
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    char c = in[i];
    switch (state_) {
      case State::kMid: {
        // Fast path: copy up to the next CR or LF in one go.
        std::size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
        out.append(in.data() + i, j - i);
        i = j;
        if (i == n) break;
        c = in[i];
        ++i;
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          out += '\n';  // bare LF: data, and not the start of a line
        }
        break;
      }
      case State::kLineStart:
        ++i;
        if (c == '.') state_ = State::kDot;
        else if (c == '\r') state_ = State::kCr;
        else {
          out += c;
          state_ = State::kMid;
        }
        break;
      case State::kCr:
        ++i;
        if (c == '\n') {
          out += "\r\n";
          state_ = State::kLineStart;
        } else if (c == '\r') {
          out += '\r';  // the first CR was bare; the second may still start a CRLF
        } else {
          out += '\r';
          out += c;
          state_ = State::kMid;
        }
        break;
      case State::kDot:
        // RFC 5321 4.5.2: a line's leading dot is removed, unless the line is the lone dot.
        ++i;
        if (c == '\r') state_ = State::kDotCr;
        else if (c == '\n') {
          out += '\n';
          state_ = State::kMid;
        } else {
          out += c;
          state_ = State::kMid;
        }
        break;
      case State::kDotCr:
        ++i;
        if (c == '\n') {
          state_ = State::kLineStart;
          return Step{i, true};
        }
        out += '\r';
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          out += c;
          state_ = State::kMid;
        }
        break;
    }
  }
  return Step{i, false};
}

void BodyScanner::end_line() {
  if (in_headers_) {
    if (line_len_ == 0) in_headers_ = false;  // the empty line ends the header section
  }
  line_len_ = 0;
}

void BodyScanner::scan(std::string_view bytes) {
  for (char c : bytes) {
    if (cr_) {
      cr_ = false;
      if (c == '\n') {
        end_line();
        continue;
      }
      bare_line_end_ = true;
      ++line_len_;
    }
    if (c == '\r') {
      cr_ = true;
      continue;
    }
    if (c == '\n') {
      bare_line_end_ = true;
      end_line();
      continue;
    }
    if (c == '\0') nul_ = true;
    if (in_headers_ && line_len_ < sizeof(prefix_)) {
      prefix_[line_len_] = c;
      if (line_len_ + 1 == sizeof(prefix_) && strncasecmp(prefix_, "received:", sizeof(prefix_)) == 0) ++received_;
    }
    ++line_len_;
  }
}

void BodyScanner::finish() {
  if (cr_) bare_line_end_ = true;
  cr_ = false;
}

}  // namespace petrel::smtp::server
