// check.cc: verdict constructors and names (check.h).
#include "policy/check.h"

#include "base/assert.h"

namespace petrel::policy {

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::kConnect: return "connect";
    case Stage::kHelo: return "helo";
    case Stage::kMail: return "mail";
    case Stage::kRcpt: return "rcpt";
    case Stage::kData: return "data";
  }
  return "?";
}

std::string_view kind_name(Verdict::Kind kind) {
  switch (kind) {
    case Verdict::Kind::kAccept: return "accept";
    case Verdict::Kind::kReject: return "reject";
    case Verdict::Kind::kDefer: return "defer";
    case Verdict::Kind::kAddHeader: return "add_header";
  }
  return "?";
}

Verdict Verdict::accept(std::string reason) { return Verdict{Kind::kAccept, {}, {}, std::move(reason)}; }

Verdict Verdict::reject(mail::Reply reply, std::string reason) {
  PETREL_ASSERT(reply.code >= 500 && reply.code < 600, "a reject verdict needs a 5xx reply");
  return Verdict{Kind::kReject, std::move(reply), {}, std::move(reason)};
}

Verdict Verdict::defer(mail::Reply reply, std::string reason) {
  PETREL_ASSERT(reply.code >= 400 && reply.code < 500, "a defer verdict needs a 4xx reply");
  return Verdict{Kind::kDefer, std::move(reply), {}, std::move(reason)};
}

Verdict Verdict::add_header(std::string field, std::string reason) {
  PETREL_ASSERT(field.find(':') != std::string::npos, "a header verdict needs a \"Name: value\" field");
  return Verdict{Kind::kAddHeader, {}, std::move(field), std::move(reason)};
}

}  // namespace petrel::policy
