// mail/envelope.h: what SMTP says about a message besides its content: sender, recipients
// and their DSN requests (RFC 3461), body type, and where it came from.
//
// Pure data. The queue serialises it (queue/README.md); the SMTP server fills it in.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mail/address.h"

namespace petrel::mail {

enum class BodyType : std::uint8_t { kUnspecified = 0, k7Bit = 1, k8BitMime = 2 };
enum class DsnRet : std::uint8_t { kUnspecified = 0, kFull = 1, kHeaders = 2 };

// NOTIFY= bits (RFC 3461 4.1); kNever excludes the others.
enum NotifyFlags : std::uint8_t {
  kNotifyUnspecified = 0,
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct Recipient {
  Address address;
  std::uint8_t notify = kNotifyUnspecified;
  std::string orcpt_type;  // "rfc822" / "utf-8"; empty when no ORCPT
  std::string orcpt;       // xtext-decoded original recipient
};

struct Envelope {
  Address sender;  // null() for "<>"
  std::vector<Recipient> recipients;
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::kUnspecified;
  std::string envid;  // xtext-decoded ENVID, empty when absent
  std::uint64_t declared_size = 0;  // SIZE= on MAIL, 0 when absent

  // Where it came from, for logs, Received: and later policy.
  std::string client_ip;
  std::string helo;
  std::string auth_user;  // empty when not authenticated
  std::int64_t received_at = 0;  // seconds since the epoch
};

}  // namespace petrel::mail
