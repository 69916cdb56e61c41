// notice.cc: read the original's first bytes, compose the DSN, commit it (notice.h).
#include "queue/notice.h"

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "base/strings.h"

namespace petrel::queue {
namespace {

// How much of the original is read: more than the DSN's cap for a whole message (so it knows
// when the message is too big) and enough for a long header section. Bounded whatever the
// message size: a 100 MB original costs 128 KiB here.
constexpr std::size_t kReadLimit = 128 * 1024;

base::Status read_prefix(const Spool& spool, const StoredMessage& m, std::string& out, bool& complete) {
  auto reader = spool.open_body(m);
  if (!reader) return reader.error();
  out.clear();
  out.resize(std::min<std::uint64_t>(m.body.length, kReadLimit));
  std::size_t have = 0;
  while (have < out.size()) {
    auto n = (*reader)->read(out.data() + have, out.size() - have);
    if (!n) return n.error();
    if (*n == 0) break;
    have += *n;
  }
  out.resize(have);
  complete = have == m.body.length;
  if (complete) {
    // Read to the end so the reader checks the length and the CRC: a damaged body is not
    // quoted back as if it were the message.
    char probe[1];
    auto n = (*reader)->read(probe, 1);
    if (!n) return n.error();
  }
  return {};
}

}  // namespace

void queue_notice(const Spool& spool, Intake& intake, const StoredMessage& original,
                  std::vector<mail::DsnRecipient> recipients, const NoticeConfig& config, std::int64_t now,
                  std::function<void(base::Status, const std::string& dsn_id)> done, const NoticeRoute& route) {
  // The original is quoted when it can be read; a DSN about a message whose body is damaged
  // or quarantined goes without it (mail/dsn.h: a 2-part report) rather than not at all.
  std::string prefix;
  bool complete = false;
  if (auto s = read_prefix(spool, original, prefix, complete); !s) {
    PETREL_LOG(kWarn, "queue.notice_without_original", "id={} error=\"{}\"", original.id,
               base::log_escape(s.error().message));
    prefix.clear();
    complete = false;
  }

  // The DSN's envelope: from <> (so it can never cause another DSN), to the original sender;
  // or as `route` says (a double bounce).
  mail::Envelope envelope;
  envelope.sender = route.sender;
  mail::Recipient to;
  to.address = route.recipient.null() ? original.envelope.sender : route.recipient;
  if (to.address.null()) {
    done(base::permanent_error("a notice needs a recipient: the original is from <>"), "");
    return;
  }
  envelope.recipients.push_back(to);
  envelope.received_at = now;
  envelope.helo = config.hostname;
  envelope.client_ip = "127.0.0.1";

  auto writer = intake.begin(envelope);
  if (!writer) {
    done(base::Status(writer.error()), "");
    return;
  }
  mail::DsnInput in;
  in.reporting_mta = config.hostname;
  in.queue_id = original.id;
  in.postmaster = config.postmaster.empty() ? "MAILER-DAEMON@" + config.hostname : config.postmaster;
  in.message_id = "<" + (*writer)->id() + "@" + config.hostname + ">";
  in.now = now;
  in.envelope = &original.envelope;
  in.to = route.recipient;
  in.recipients = std::move(recipients);
  in.original = prefix;
  in.original_complete = complete;
  mail::DsnMessage dsn = mail::compose_dsn(in);

  mail::Envelope& env = (*writer)->envelope();
  env.body = dsn.eight_bit ? mail::BodyType::k8BitMime : mail::BodyType::k7Bit;
  env.smtputf8 = dsn.smtputf8;
  if (auto s = (*writer)->append(dsn.bytes); !s) {
    (*writer)->abort();
    done(base::Status(s.error()), "");
    return;
  }
  // commit() takes what it needs; the writer may go once it returns (intake.h).
  std::string id = (*writer)->id();
  (*writer)->commit([id, done = std::move(done)](base::Status s) mutable { done(std::move(s), id); });
}

}  // namespace petrel::queue
