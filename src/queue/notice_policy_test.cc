// The notice policy, one row per rule (queue/notice_policy.h, RFC 3461 4.1).
#include "queue/notice_policy.h"

#include <gtest/gtest.h>

#include "mail/envelope.h"

namespace petrel::queue {
namespace {

using format::RecipientStatus;
using mail::DsnAction;

constexpr std::uint8_t kUnspec = mail::kNotifyUnspecified;
constexpr std::uint8_t kNever = mail::kNotifyNever;
constexpr std::uint8_t kSuccess = mail::kNotifySuccess;
constexpr std::uint8_t kFailure = mail::kNotifyFailure;
constexpr std::uint8_t kDelay = mail::kNotifyDelay;
constexpr std::uint8_t kPassedOn = format::kStateFlagDsnPassedOn;
constexpr std::uint8_t kRelayed = format::kStateFlagRelayed;

TEST(NoticePolicy, WhoIsToldWhat) {
  struct Row {
    const char* why;
    RecipientStatus status;
    std::uint8_t flags, notify;
    bool delay, all_failures;
    std::optional<DsnAction> want;
  };
  const Row rows[] = {
      {"failed, no NOTIFY: told", RecipientStatus::kFailed, 0, kUnspec, false, false, DsnAction::kFailed},
      {"expired, no NOTIFY: told", RecipientStatus::kExpired, 0, kUnspec, false, false, DsnAction::kFailed},
      {"failed, NOTIFY=FAILURE", RecipientStatus::kFailed, 0, kFailure, false, false, DsnAction::kFailed},
      {"failed, NOTIFY=SUCCESS only", RecipientStatus::kFailed, 0, kSuccess, false, false, std::nullopt},
      {"failed, NOTIFY=NEVER", RecipientStatus::kFailed, 0, kNever, false, false, std::nullopt},
      {"double bounce: every failure", RecipientStatus::kFailed, 0, kNever, false, true, DsnAction::kFailed},
      {"double bounce: not a success", RecipientStatus::kDelivered, 0, kSuccess, false, true, std::nullopt},
      {"double bounce: not a delay", RecipientStatus::kDeferred, 0, kUnspec, true, true, std::nullopt},
      {"deferred, no warning being made", RecipientStatus::kDeferred, 0, kUnspec, false, false, std::nullopt},
      {"deferred, warning, no NOTIFY", RecipientStatus::kDeferred, 0, kUnspec, true, false, DsnAction::kDelayed},
      {"deferred, warning, NOTIFY=DELAY", RecipientStatus::kDeferred, 0, kDelay, true, false, DsnAction::kDelayed},
      {"deferred, warning, NOTIFY=FAILURE", RecipientStatus::kDeferred, 0, kFailure, true, false, std::nullopt},
      {"delivered, no NOTIFY", RecipientStatus::kDelivered, 0, kUnspec, false, false, std::nullopt},
      {"delivered, NOTIFY=SUCCESS", RecipientStatus::kDelivered, 0, kSuccess, false, false, DsnAction::kDelivered},
      {"relayed to a hop without DSN", RecipientStatus::kDelivered, kRelayed, kSuccess, false, false, DsnAction::kRelayed},
      {"passed on to a hop with DSN", RecipientStatus::kDelivered, kPassedOn, kSuccess, false, false, std::nullopt},
      {"held", RecipientStatus::kHeld, 0, kUnspec, true, false, std::nullopt},
      {"deleted by the operator", RecipientStatus::kDeleted, 0, kUnspec, false, false, std::nullopt},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(notice_for(r.status, r.flags, r.notify, r.delay, r.all_failures), r.want) << r.why;
  }
}

TEST(NoticePolicy, StatusIsTheRecordsOrTheClassDefault) {
  EXPECT_EQ(notice_status(DsnAction::kFailed, "5.1.1"), "5.1.1");
  EXPECT_EQ(notice_status(DsnAction::kFailed, ""), "5.0.0");
  EXPECT_EQ(notice_status(DsnAction::kDelayed, ""), "4.0.0");
  EXPECT_EQ(notice_status(DsnAction::kDelivered, ""), "2.0.0");
  EXPECT_EQ(notice_status(DsnAction::kRelayed, ""), "2.0.0");
}

}  // namespace
}  // namespace petrel::queue
