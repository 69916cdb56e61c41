// notice_policy.cc: the rules of notice_policy.h (design in queue/README.md, "Notices").
#include "queue/notice_policy.h"

#include "mail/envelope.h"

namespace petrel::queue {

std::optional<mail::DsnAction> notice_for(format::RecipientStatus status, std::uint8_t state_flags, std::uint8_t notify,
                                          bool delay, bool all_failures) {
  using format::RecipientStatus;
  const bool failed = status == RecipientStatus::kFailed || status == RecipientStatus::kExpired;
  const bool delayed = delay && status == RecipientStatus::kDeferred;
  const bool unspecified = notify == mail::kNotifyUnspecified;
  bool want = false;
  if (all_failures) {
    want = failed;
  } else if (failed) {
    want = unspecified || (notify & mail::kNotifyFailure);
  } else if (delayed) {
    want = unspecified || (notify & mail::kNotifyDelay);
  } else {
    // A next hop that took NOTIFY on reports the success itself (RFC 3461: one notice).
    want = status == RecipientStatus::kDelivered && (notify & mail::kNotifySuccess) &&
           !(state_flags & format::kStateFlagDsnPassedOn);
  }
  if (!want || (!all_failures && (notify & mail::kNotifyNever))) return std::nullopt;
  if (failed) return mail::DsnAction::kFailed;
  if (delayed) return mail::DsnAction::kDelayed;
  return (state_flags & format::kStateFlagRelayed) != 0 ? mail::DsnAction::kRelayed : mail::DsnAction::kDelivered;
}

std::string notice_status(mail::DsnAction action, const std::string& enhanced) {
  if (!enhanced.empty()) return enhanced;
  switch (action) {
    case mail::DsnAction::kFailed: return "5.0.0";
    case mail::DsnAction::kDelayed: return "4.0.0";
    default: return "2.0.0";
  }
}

}  // namespace petrel::queue
