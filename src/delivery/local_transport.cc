// local_transport.cc: the worker pool, one recipient's targets, the mail-loop check and the
// Maildir delivery (rules: local_transport.h).
#include "delivery/local_transport.h"

#include <algorithm>
#include <future>
#include <optional>
#include <string_view>
#include <utility>

#include "base/assert.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::delivery {

namespace {

using Outcome = queue::RecipientResult::Outcome;

constexpr std::size_t kReadChunk = 64 * 1024;

// What one target came to. `enhanced` and `text` may reach the sender (a DSN); `detail` only
// the log.
struct TargetOutcome {
  Outcome outcome = Outcome::kDeferred;
  std::string enhanced;  // RFC 3463
  std::string text;
  std::string detail;
  bool storage_trouble = false;  // queue::RecipientResult::storage_trouble

  std::string why() const { return enhanced + " " + text; }
};

TargetOutcome delivered(std::string detail) { return {Outcome::kDelivered, "2.0.0", "delivered", std::move(detail)}; }
TargetOutcome deferred(std::string enhanced, std::string text, std::string detail = {}) {
  return {Outcome::kDeferred, std::move(enhanced), std::move(text), std::move(detail)};
}
TargetOutcome failed(std::string enhanced, std::string text, std::string detail = {}) {
  return {Outcome::kFailed, std::move(enhanced), std::move(text), std::move(detail)};
}

// Local delivery has no next hop: the reply is composed here (queue/transport.h).
queue::RecipientResult make_result(std::uint32_t index, const TargetOutcome& o) {
  return queue::RecipientResult::local(index, o.outcome, o.enhanced, o.text, o.storage_trouble);
}

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDelivered: return "delivered";
    case Outcome::kDeferred: return "deferred";
    case Outcome::kFailed: return "failed";
  }
  return "?";
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Does `text` begin with an RFC 3463 enhanced status code of class `cls` ("5.1.1 ...")?
bool has_status(std::string_view text, char cls) {
  if (text.size() < 5 || text[0] != cls || text[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
    if (i == start) return false;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
  }
  return i == text.size() || text[i] == ' ';
}

// A lower layer's message that begins with its own status ("5.1.1 unknown user", as the
// directory and the Maildir word theirs) as an outcome of that code.
TargetOutcome with_status(Outcome outcome, std::string_view message, std::string detail = {}) {
  auto sp = message.find(' ');
  std::string text = sp == std::string_view::npos ? std::string() : std::string(message.substr(sp + 1));
  return {outcome, std::string(message.substr(0, sp)), std::move(text), std::move(detail)};
}

// An error from a lower layer as an outcome of the class its kind says: its own status when
// its message begins with one of that class (resolution's "5.1.1 ..."), else the fallback,
// with the message as detail. The temporary fallback is storage trouble: every caller uses it
// for reading the queued message or writing the mailbox or the queue.
TargetOutcome from_error(const base::Error& error, std::string_view perm_enhanced, std::string_view perm_text,
                         std::string_view temp_enhanced, std::string_view temp_text) {
  if (error.temporary()) {
    if (has_status(error.message, '4')) return with_status(Outcome::kDeferred, error.message);
    TargetOutcome o = deferred(std::string(temp_enhanced), std::string(temp_text), error.message);
    o.storage_trouble = true;
    return o;
  }
  if (has_status(error.message, '5')) return with_status(Outcome::kFailed, error.message);
  return failed(std::string(perm_enhanced), std::string(perm_text), error.message);
}

// local@domain split at the last '@' (a quoted local part may hold '@'), compared as the
// Maildir writer formats Delivered-To: local part exactly, domain case-insensitively.
bool same_address(std::string_view a, std::string_view b) {
  auto at_a = a.rfind('@');
  auto at_b = b.rfind('@');
  if (at_a == std::string_view::npos || at_b == std::string_view::npos) return a == b;
  return a.substr(0, at_a) == b.substr(0, at_b) && base::iequals(a.substr(at_a + 1), b.substr(at_b + 1));
}

// Collects the values of the Delivered-To: fields of a header section fed in chunks. Stops at
// the empty line that ends the header section (RFC 5322 2.1); folded fields are unfolded
// (2.2.3). Memory: the values and one partial line, both within what was fed.
class DeliveredToScanner {
 public:
  // Returns false once the header section has ended: nothing more needs to be fed.
  bool feed(std::string_view data) {
    while (!ended_ && !data.empty()) {
      auto nl = data.find('\n');
      if (nl == std::string_view::npos) {
        partial_.append(data);
        return true;
      }
      if (partial_.empty()) {
        end_line(data.substr(0, nl));
      } else {
        partial_.append(data.substr(0, nl));
        end_line(partial_);
        partial_.clear();
      }
      data.remove_prefix(nl + 1);
    }
    return !ended_;
  }

  // The input ended (end of message, or the scan limit): a last line without its line end
  // is not trusted to be whole, but a field already complete counts.
  void finish() { end_field(); }

  const std::vector<std::string>& values() const { return values_; }

 private:
  void end_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      end_field();
      ended_ = true;
      return;
    }
    if (line.front() == ' ' || line.front() == '\t') {  // a continuation of the current field
      if (in_delivered_to_) field_.append(line);
      return;
    }
    end_field();
    constexpr std::string_view kName = "Delivered-To:";
    if (base::istarts_with(line, kName)) {
      in_delivered_to_ = true;
      field_.assign(line.substr(kName.size()));
    }
  }

  void end_field() {
    if (!in_delivered_to_) return;
    std::string_view v = base::trim(field_);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    values_.emplace_back(v);
    in_delivered_to_ = false;
    field_.clear();
  }

  std::string partial_;
  std::string field_;
  bool in_delivered_to_ = false;
  bool ended_ = false;
  std::vector<std::string> values_;
};

}  // namespace

// ---- one job on one worker ----

class LocalTransport::Attempt {
 public:
  Attempt(const LocalTransport& transport, const queue::DeliveryJob& job) : t_(transport), job_(job) {}

  std::vector<queue::RecipientResult> run() {
    std::vector<queue::RecipientResult> results;
    results.reserve(job_.recipients.size());
    for (std::uint32_t index : job_.recipients) results.push_back(deliver_recipient(index));
    return results;
  }

 private:
  // Resolves one recipient, delivers to each of its targets and combines their outcomes by
  // the rule in local_transport.h.
  queue::RecipientResult deliver_recipient(std::uint32_t index) {
    const mail::Address& rcpt = job_.message.envelope.recipients[index].address;
    auto resolution = t_.directory_.resolve(rcpt);
    if (!resolution) {
      // Resolution errors are permanent by contract (unknown user 5.1.1, expansion too large);
      // should a temporary one appear, it defers like any unclassified failure.
      TargetOutcome o = from_error(resolution.error(), "5.1.1", "unknown recipient", "4.3.0", "recipient lookup failed");
      log(rcpt, rcpt.str(), o);
      return make_result(index, o);
    }

    // Remote targets (an alias or forward to another domain) are forwarded first, all of them
    // in one new queued message: if that cannot be queued, the recipient waits whole, before
    // any mailbox gets a copy.
    std::vector<mail::Address> remote;
    for (const auth::DeliveryTarget& target : *resolution) {
      if (target.kind == auth::DeliveryTarget::Kind::kRemote) remote.push_back(target.address);
    }
    std::size_t delivered_count = 0, failed_count = 0;
    std::optional<TargetOutcome> first_deferred, first_failed;
    if (!remote.empty()) {
      // The message was forwarded from this recipient before and came back: a loop. Fail the
      // whole recipient, as Postfix's local(8) does, so the loop ends in one bounce.
      auto seen = delivered_to();
      if (!seen) {
        TargetOutcome o = from_error(seen.error(), "5.3.0", "cannot read the queued message", "4.3.0", "forwarding failed");
        log(rcpt, rcpt.str(), o);
        return make_result(index, o);
      }
      for (const std::string& value : **seen) {
        if (same_address(value, rcpt.str())) {
          TargetOutcome o = failed("5.4.6", "mail forwarding loop for " + rcpt.str());
          log(rcpt, rcpt.str(), o);
          return make_result(index, o);
        }
      }
      TargetOutcome o = forward(index, remote);
      log(rcpt, remote.size() == 1 ? remote[0].str() : remote[0].str() + " and " + std::to_string(remote.size() - 1) + " more", o);
      if (o.outcome == Outcome::kDeferred) return make_result(index, o);
      if (o.outcome == Outcome::kDelivered) delivered_count += remote.size();
      if (o.outcome == Outcome::kFailed) {
        failed_count += remote.size();
        first_failed = o;
      }
    }
    for (const auth::DeliveryTarget& target : *resolution) {
      if (target.kind == auth::DeliveryTarget::Kind::kRemote) continue;  // forwarded above
      TargetOutcome o = deliver_target(rcpt, target);
      switch (o.outcome) {
        case Outcome::kDelivered: ++delivered_count; break;
        case Outcome::kDeferred:
          if (!first_deferred) first_deferred = o;
          break;
        case Outcome::kFailed:
          ++failed_count;
          if (!first_failed) first_failed = o;
          break;
      }
    }

    // Any deferral defers the whole recipient: the next attempt delivers every target again,
    // so those delivered now get a duplicate then (one state per recipient; per-target state
    // is later).
    if (first_deferred) return make_result(index, *first_deferred);
    if (delivered_count == 0) {
      PETREL_ASSERT(first_failed.has_value(), "a resolution is never empty");
      return make_result(index, *first_failed);
    }
    if (failed_count == 0) return make_result(index, delivered({}));
    // Some targets delivered, some failed for good: delivered, with the failures named. They
    // are not bounced yet (that needs per-target state and the DSN generator).
    TargetOutcome some = delivered({});
    some.text = fmt::format("delivered to {} of {} targets; not delivered: {}", delivered_count,
                            delivered_count + failed_count, first_failed->why());
    return make_result(index, some);
  }

  TargetOutcome deliver_target(const mail::Address& rcpt, const auth::DeliveryTarget& target) {
    switch (target.kind) {
      case auth::DeliveryTarget::Kind::kMailbox: return deliver_mailbox(rcpt, target);
      case auth::DeliveryTarget::Kind::kRemote: {
        PETREL_ASSERT(false, "remote targets are forwarded by deliver_recipient()");
        return {};
      }
      case auth::DeliveryTarget::Kind::kFailed: {
        TargetOutcome o = has_status(target.reason, '5') ? with_status(Outcome::kFailed, target.reason)
                                                          : failed("5.1.1", "undeliverable address", target.reason);
        log(rcpt, target.address.str(), o);
        return o;
      }
    }
    PETREL_ASSERT(false, "unknown delivery target kind");
    return {};
  }

  TargetOutcome deliver_mailbox(const mail::Address& rcpt, const auth::DeliveryTarget& target) {
    // Where: the account's canonical names come from the store and are safe, so this cannot
    // fail today. It is checked anyway rather than asserted (mailbox_path): an abort here would
    // recur on every restart, as the message is delivered again.
    auto root = mailbox::checked_mailbox_path(t_.options_.data_dir, target.mailbox_domain, target.mailbox_local);
    if (!root) {
      TargetOutcome o = failed("5.3.0", "cannot deliver to this mailbox", root.error().message);
      log(rcpt, target.address.str(), o);
      return o;
    }
    TargetOutcome o = write_mailbox(target, *root);
    log(rcpt, *root, o);
    return o;
  }

  // Forwards the message to `targets` (addresses in other domains) as a new queued message,
  // as Postfix's local(8) does: same envelope sender (no SRS yet), each target with the
  // recipient's NOTIFY and ORCPT = the recipient, the body with "Delivered-To: <recipient>"
  // prepended (so a forward that comes back is caught as a loop). Done when the copy is
  // durable in the queue; the remote transport takes it from there.
  TargetOutcome forward(std::uint32_t index, const std::vector<mail::Address>& targets) {
    if (t_.options_.forward == nullptr) return deferred("4.4.3", "forwarding is not configured");
    const mail::Envelope& original = job_.message.envelope;
    const mail::Recipient& from_rcpt = original.recipients[index];
    const std::string alias = from_rcpt.address.str();  // deliver_recipient() checked it for loops

    mail::Envelope env;
    env.sender = original.sender;
    env.body = original.body;
    env.smtputf8 = original.smtputf8;
    env.ret = original.ret;
    env.envid = original.envid;
    env.client_ip = "127.0.0.1";
    env.helo = "forward";
    env.received_at = original.received_at;
    for (const mail::Address& a : targets) {
      mail::Recipient r;
      r.address = a;
      r.notify = from_rcpt.notify;
      r.orcpt_type = from_rcpt.orcpt.empty() ? (from_rcpt.address.has_utf8() ? "utf-8" : "rfc822") : from_rcpt.orcpt_type;
      r.orcpt = from_rcpt.orcpt.empty() ? alias : from_rcpt.orcpt;
      env.recipients.push_back(std::move(r));
    }
    auto writer = t_.options_.forward->begin(env);
    if (!writer) return from_error(writer.error(), "5.3.0", "cannot forward", "4.3.0", "forwarding failed");
    auto abort = [&](const base::Error& e) {
      (*writer)->abort();
      return from_error(e, "5.3.0", "cannot forward", "4.3.0", "forwarding failed");
    };
    if (auto s = (*writer)->append("Delivered-To: " + alias + "\r\n"); !s) return abort(s.error());
    auto reader = t_.spool_.open_body(job_.message);
    if (!reader) return abort(reader.error());
    std::string buf(kReadChunk, '\0');
    for (;;) {
      auto n = (*reader)->read(buf.data(), buf.size());
      if (!n) return abort(n.error());
      if (*n == 0) break;
      if (auto s = (*writer)->append(std::string_view(buf.data(), *n)); !s) return abort(s.error());
    }
    // This worker waits for the group commit (a few milliseconds): the forward counts only
    // once the copy is durable.
    std::promise<base::Status> committed;
    auto done = committed.get_future();
    std::string id = (*writer)->id();
    (*writer)->commit([&committed](base::Status st) { committed.set_value(std::move(st)); });
    base::Status st = done.get();
    if (!st) return from_error(st.error(), "5.3.0", "cannot forward", "4.3.0", "forwarding failed");
    return delivered("forwarded as " + id);
  }

  TargetOutcome write_mailbox(const auth::DeliveryTarget& target, const std::string& root) {
    const mail::Address& sender = job_.message.envelope.sender;
    // Format the address as the Delivered-To: line will hold it, so the loop check compares
    // like with like.
    const std::string address = target.address.str();

    // RFC 5321 6.3: a message that already went through this mailbox is looping (an alias or
    // a forward that brought it back). Failing it here makes the loop end in one bounce.
    auto seen = delivered_to();
    if (!seen) return from_error(seen.error(), "5.3.0", "cannot read the queued message", "4.3.0", "local delivery failed");
    for (const std::string& value : **seen) {
      if (same_address(value, address)) return failed("5.4.6", "mail loop: already delivered to " + address);
    }

    auto headers = mailbox::delivery_headers(sender, target.address);
    if (!headers) return from_error(headers.error(), "5.3.0", "cannot deliver to this mailbox", "4.3.0", "local delivery failed");

    // The body streams from the spool into the Maildir's buffer; the reader checks the length
    // and CRC at the end, and the Maildir refuses a body that does not match the size.
    auto reader = t_.spool_.open_body(job_.message);
    if (!reader) return from_error(reader.error(), "5.3.0", "cannot read the queued message", "4.3.0", "local delivery failed");
    mailbox::DeliveryRequest request;
    request.headers = std::move(*headers);
    request.body = [r = reader->get()](char* buf, std::size_t len) { return r->read(buf, len); };
    request.expected_body_size = job_.message.body.length;
    // The account's quota as the Directory's snapshot holds it (0 = none). Maildir applies it
    // before writing, the size being known: over it is 4.2.2, temporary (RFC 3463 3.3).
    request.quota_bytes = target.quota_bytes;

    mailbox::Maildir maildir(root, t_.options_.maildir);
    mailbox::DeliveryFailure why = mailbox::DeliveryFailure::kNone;
    auto result = maildir.deliver(request, &why);
    if (result) return delivered("new/" + result->name);
    switch (why) {
      case mailbox::DeliveryFailure::kDiskFull:
        return deferred("4.3.1", "mail system full", result.error().message);
      case mailbox::DeliveryFailure::kOverQuota:
        return deferred(has_status(result.error().message, '4') ? result.error().message : "4.2.2 mailbox full",
                        result.error().message);
      case mailbox::DeliveryFailure::kBadInput:
        return failed("5.3.0", "cannot deliver to this mailbox", result.error().message);
      case mailbox::DeliveryFailure::kNone:
      case mailbox::DeliveryFailure::kIo:
        break;
    }
    // Storage trouble or the spool's own error: temporary unless it says otherwise.
    return from_error(result.error(), "5.3.0", "cannot deliver to this mailbox", "4.3.0", "local delivery failed");
  }

  // The Delivered-To: values of the message's header section, read once per job and only when
  // a mailbox target needs them. Bounded: stops at the end of the header section or after
  // kMaxHeaderScan bytes.
  base::Result<const std::vector<std::string>*> delivered_to() {
    if (scanned_) return &scanner_.values();
    auto reader = t_.spool_.open_body(job_.message);
    if (!reader) return reader.error();
    std::string buf(kReadChunk, '\0');
    std::size_t total = 0;
    while (total < kMaxHeaderScan) {
      auto n = (*reader)->read(buf.data(), std::min(buf.size(), kMaxHeaderScan - total));
      if (!n) return n.error();
      if (*n == 0) break;
      total += *n;
      if (!scanner_.feed(std::string_view(buf.data(), *n))) break;
    }
    scanner_.finish();
    scanned_ = true;
    return &scanner_.values();
  }

  void log(const mail::Address& rcpt, const std::string& to, const TargetOutcome& o) const {
    std::string why = o.detail.empty() ? o.why() : o.why() + " (" + o.detail + ")";
    auto line = [&](base::log::Level level) {
      if (!base::log::enabled(level)) return;
      base::log::write(level, "delivery.local",
                       fmt::format("id={} rcpt=\"{}\" to=\"{}\" result={} why=\"{}\"", job_.message.id,
                                   base::log_escape(rcpt.str()), base::log_escape(to, 400),
                                   outcome_name(o.outcome), base::log_escape(why, 400)));
    };
    // Delivered and failed are the normal ends of a delivery; a deferral is worth a look, and
    // a full disk needs the operator.
    if (o.outcome != Outcome::kDeferred) {
      line(base::log::Level::kInfo);
    } else if (o.enhanced == "4.3.1") {
      line(base::log::Level::kError);
    } else {
      line(base::log::Level::kWarn);
    }
  }

  const LocalTransport& t_;
  const queue::DeliveryJob& job_;
  bool scanned_ = false;
  DeliveredToScanner scanner_;
};

// ---- the pool ----

LocalTransport::LocalTransport(const queue::Spool& spool, const auth::Directory& directory,
                               LocalTransportOptions options)
    : spool_(spool), directory_(directory), options_(std::move(options)) {
  std::size_t n = std::max<std::size_t>(options_.workers, 1);
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this] { run_worker(); });
}

LocalTransport::~LocalTransport() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void LocalTransport::deliver(queue::DeliveryJob job, std::function<void(std::vector<queue::RecipientResult>)> done) {
  PETREL_ASSERT(done != nullptr, "LocalTransport::deliver without a done callback");
  for (std::uint32_t index : job.recipients) {
    PETREL_ASSERT(index < job.message.envelope.recipients.size(), "delivery job names a recipient index out of range");
  }
  {
    std::lock_guard lock(mutex_);
    PETREL_ASSERT(!stopping_, "LocalTransport::deliver after shutdown began");
    queue_.push_back(Pending{std::move(job), std::move(done)});
  }
  wake_.notify_one();
}

void LocalTransport::run_worker() {
  for (;;) {
    std::optional<Pending> pending;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Stopping still drains what was queued: every done is called exactly once.
      if (queue_.empty()) return;
      pending.emplace(std::move(queue_.front()));
      queue_.pop_front();
    }
    std::vector<queue::RecipientResult> results = Attempt(*this, pending->job).run();
    pending->done(std::move(results));
  }
}

}  // namespace petrel::delivery
