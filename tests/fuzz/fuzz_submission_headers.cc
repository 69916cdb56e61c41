// fuzz_submission_headers: arbitrary messages through the submission header checks
// (smtp/server/submission_headers.h) and the From: address list parser (mail/headers.h).
// Invariants: no crash; the collector holds at most kMaxSubmissionHeader octets and, whatever
// the chunking, finds the same header section and hands back exactly the octets after it;
// parse_mailbox_list never returns an empty list or an address without a domain.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mail/headers.h"
#include "smtp/server/submission_headers.h"
#include "fuzz_check.h"

namespace {

using petrel::smtp::server::HeaderCollector;

// Feeds `msg` in chunks of `step` octets; returns held() + everything handed back.
std::string collect(std::string_view msg, std::size_t step, HeaderCollector& h) {
  std::string after;
  for (std::size_t i = 0; i < msg.size(); i += step) {
    after += h.feed(msg.substr(i, step));
    CHECK(h.held().size() <= petrel::smtp::server::kMaxSubmissionHeader);
  }
  if (!h.done()) h.finish();
  return after;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;
  std::string_view msg(reinterpret_cast<const char*>(data) + 1, size - 1);

  HeaderCollector whole, chunked;
  std::string a = collect(msg, msg.size() + 1, whole);
  std::string b = collect(msg, step, chunked);
  CHECK(a == b);
  CHECK(whole.held() == chunked.held());
  CHECK(whole.too_large() == chunked.too_large());
  if (!whole.too_large()) CHECK(whole.held() + a == msg);

  auto facts = petrel::smtp::server::analyze_header(whole.header());
  CHECK(facts.from_values.size() == facts.from_fields);
  for (const auto& v : facts.from_values) {
    if (auto list = petrel::mail::parse_mailbox_list(v)) {
      CHECK(!list->empty());
      for (const auto& addr : *list) CHECK(!addr.domain.empty());
    }
  }
  if (auto list = petrel::mail::parse_mailbox_list(msg.substr(0, 4096))) {
    CHECK(!list->empty());
  }
  return 0;
}
