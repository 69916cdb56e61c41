// scheduler.cc: the delivery scheduler: load, the tick, outcomes (results, expiry, DSNs,
// state commits), retiring, and the public Scheduler methods. Its other jobs:
// scheduler_window.cc, scheduler_lanes.cc, scheduler_control.cc (scheduler_impl.h says which).
// Design in queue/README.md ("Delivery scheduling"); contracts in scheduler.h.
#include "queue/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "base/log.h"
#include "base/strings.h"
#include "mail/dsn.h"
#include "queue/notice.h"
#include "queue/notice_policy.h"
#include "queue/retry_policy.h"
#include "queue/scheduler_impl.h"

namespace petrel::queue {

void Scheduler::Impl::schedule(const IdKey& id, Entry& e) {
  if (e.in_flight) return;
  Seconds at = expire_at(e);
  bool any = false;
  for (const Rcpt& r : e.rcpts) {
    if (resting(r.state) || r.busy) continue;
    any = true;
    at = std::min(at, rcpt_next(e, r));
  }
  if (!any) {
    e.due = kNever;
    return;
  }
  if (e.due == at) return;  // already there
  e.due = at;
  heap.push({at, id});
}

void Scheduler::Impl::retire(std::unordered_map<IdKey, Entry, IdHash>::iterator it) {
  Entry& e = it->second;
  if (e.spill) {
    // Every recipient is final and durable: the body is not needed any more. (Should this
    // fail or crash, recovery deletes the file once the segment naming it is gone.)
    std::string path = spool.spill_path(id_of(it->first));
    int err = off_lock([&] { return ::unlink(path.c_str()) != 0 ? errno : 0; });
    if (err != 0 && err != ENOENT) {
      PETREL_LOG(kWarn, "queue.unlink_failed", "id={} error=\"{}\"", id_of(it->first),
                 base::errno_error(path, err).message);
    }
  }
  PETREL_LOG(kDebug, "queue.done", "id={}", id_of(it->first));
  forget(it);
  ++stats.retired_messages;
  retire_check = true;
}

base::Status Scheduler::Impl::load() {
  Seconds now = to_seconds(clock.wall());
  if (auto st = read_in({{0, 0}, kLogEnd, now}, now, true); !st) return st;
  retire_check = true;
  PETREL_LOG(kInfo, "queue.loaded", "pending={} retired={} on_disk={}", entries.size(), stats.retired_messages,
             ranges.empty() ? "none" : "some");
  return {};
}

Scheduler::TimePoint Scheduler::Impl::tick() {
  // Read before draining the inbox: every message in a segment older than this one has been
  // handed to the commit listener already, so it is in what we drain (state_sink.h).
  std::uint64_t current = sink.current_segment();
  std::vector<Inbox::NewMessage> messages;
  std::vector<Inbox::Results> results;
  std::vector<Inbox::Committed> committed;
  std::vector<Inbox::NoticeQueued> notices_queued;
  std::vector<Inbox::Control> controls;
  {
    std::lock_guard lk(inbox->mu);
    messages.swap(inbox->messages);
    results.swap(inbox->results);
    committed.swap(inbox->committed);
    notices_queued.swap(inbox->notices);
    controls.swap(inbox->controls);
  }
  Seconds now = to_seconds(clock.wall());
  for (auto& m : messages) {
    add(m.id, m.segment, m.record_offset, m.received_at, m.nrcpt, m.spill, m.flags, now);
    auto it = entries.find(m.id);
    if (it != entries.end()) schedule(it->first, it->second);
  }
  for (auto& r : results) apply_results(r.id, std::move(r.results), now);
  for (auto& n : notices_queued) apply_notice(n, now);
  for (auto& c : committed) apply_commit(*c.commit, c.status, now);
  for (auto& c : controls) apply_control(c, now);

  // Due work, earliest first. Expiry needs no delivery slot; a delivery does.
  while (!heap.empty() && heap.top().at <= now) {
    Due d = heap.top();
    auto it = entries.find(d.id);
    if (it == entries.end() || it->second.due != d.at || it->second.in_flight) {
      heap.pop();  // stale: rescheduled, retired or busy since it was pushed
      continue;
    }
    Entry& e = it->second;
    if (now >= expire_at(e) && !attempt_before_expiry(e)) {
      heap.pop();
      e.due = kNever;
      expire(it->first, e, now);
      schedule(it->first, e);
      continue;
    }
    if (in_flight.size() >= config.concurrency) break;
    heap.pop();
    e.due = kNever;
    start_delivery(it->first, e, now);
  }

  refill(now);
  for (std::size_t i = 0; i < rewrites.size();) {
    if (rewrites[i].at > now) {
      ++i;
      continue;
    }
    submit(std::move(rewrites[i].commit));
    rewrites.erase(rewrites.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (retire_check) retire_segments(current);

  // Skip stale heads so the time returned is a real one.
  while (!heap.empty()) {
    auto it = entries.find(heap.top().id);
    if (it != entries.end() && it->second.due == heap.top().at && !it->second.in_flight) break;
    heap.pop();
  }
  // The next due entry (one due already waits for a free slot: a result wakes us), record
  // to write again, or range to read in.
  Seconds next = kNever;
  if (!heap.empty() && heap.top().at > now) next = heap.top().at;
  for (const Rewrite& r : rewrites) next = std::min(next, r.at);
  for (const Range& r : ranges) next = std::min(next, std::max(r.wake, last_refill + 1));
  return from_seconds(next);
}

bool Scheduler::Impl::attempt_before_expiry(const Entry& e) const {
  for (const Rcpt& r : e.rcpts) {
    if (!resting(r.state) && !r.busy && retry.still_tried(e.received_at, rcpt_next(e, r))) return true;
  }
  return false;
}

void Scheduler::Impl::apply_results(const IdKey& id, std::vector<RecipientResult> results, Seconds now) {
  auto f = in_flight.find(id);
  if (f == in_flight.end()) {
    PETREL_LOG(kError, "queue.unexpected_result", "id={}", id_of(id));  // `done` called twice
    return;
  }
  InFlight fl = std::move(f->second);
  in_flight.erase(f);
  end_flight_in_lane(fl.lane, now);
  auto it = entries.find(id);
  PETREL_ASSERT(it != entries.end(), "a message in flight has no entry");
  Entry& e = it->second;
  e.in_flight = false;
  quarantine_if_damaged(id, e, results);

  auto commit = std::make_shared<PendingCommit>();
  commit->id = id;
  for (std::size_t k = 0; k < fl.indices.size(); ++k) {
    std::uint32_t idx = fl.indices[k];
    const RecipientResult* res = nullptr;
    for (const auto& r : results) {
      if (r.index == idx) {
        res = &r;
        break;
      }
    }
    RecipientState st;
    st.id = id_of(id);
    st.recipient = idx;
    st.attempts = static_cast<std::uint32_t>(e.rcpts[idx].attempts) + 1;
    const RecipientResult none = RecipientResult::local(idx, RecipientResult::Outcome::kDeferred, "4.4.0",
                                                        "the transport gave no result");
    const RecipientResult& r = res ? *res : none;
    std::string why = r.why();
    st.enhanced = r.reply.enhanced;
    st.text = r.reply.text;
    // Only a next hop's code is recorded (and quoted in a DSN); 0 when Petrel composed it.
    st.reply_code = r.peer_reply && r.reply.code >= 200 && r.reply.code <= 599 ? static_cast<std::uint16_t>(r.reply.code) : 0;
    st.remote_host = r.remote_host;
    auto outcome = res ? res->outcome : RecipientResult::Outcome::kDeferred;
    if (outcome == RecipientResult::Outcome::kDelivered) {
      st.status = RecipientStatus::kDelivered;
      if (res->handoff == RecipientResult::Handoff::kPassedOn) st.flags |= format::kStateFlagDsnPassedOn;
      if (res->handoff == RecipientResult::Handoff::kRelayed) st.flags |= format::kStateFlagRelayed;
    } else if (outcome == RecipientResult::Outcome::kFailed) {
      st.status = RecipientStatus::kFailed;
    } else if (retry.expired(e.received_at, now)) {
      // RFC 3463 4.4.7 "delivery time expired"; the last attempt's answer stays in the text.
      st.status = RecipientStatus::kExpired;
      st.text = "not delivered within the queue lifetime; last attempt: " + why;
      st.enhanced = "4.4.7";
    } else {
      st.status = RecipientStatus::kDeferred;
      st.next_attempt = now + backoff(st.attempts);
    }
    commit->add(std::move(st), fl.names[k], std::move(why));
  }
  for (const auto& r : results) {
    if (std::find(fl.indices.begin(), fl.indices.end(), r.index) == fl.indices.end()) {
      PETREL_LOG(kError, "queue.unexpected_result", "id={} rcpt_index={}", id_of(id), r.index);
    }
  }
  record(std::move(commit), e, now);
  schedule(id, e);
}

void Scheduler::Impl::quarantine_if_damaged(const IdKey& id, Entry& e, std::vector<RecipientResult>& results) {
  bool local_error = std::any_of(results.begin(), results.end(), [](const RecipientResult& r) {
    return r.outcome == RecipientResult::Outcome::kDeferred && r.storage_trouble;
  });
  if (!local_error) return;
  auto m = off_lock([&] { return spool.read_message_at(e.segment, e.record_offset); });
  if (!m) return;
  auto damage = off_lock([&] { return spool.check_body(*m); });
  if (!damage || !*damage) return;  // whole, or the check itself failed: a temporary error
  if (auto q = off_lock([&] { return spool.quarantine_message(*m, **damage); }); !q) {
    PETREL_LOG(kError, "queue.quarantine_failed", "id={} error=\"{}\"", id_of(id), base::log_escape(q.error().message));
    return;
  }
  e.spill = false;  // moved to quarantine/
  for (auto& r : results) {
    r = RecipientResult::local(r.index, RecipientResult::Outcome::kFailed, "5.3.0",
                               "the message was damaged in the queue and moved to quarantine (" + **damage + ")");
  }
}

void Scheduler::Impl::expire(const IdKey& id, Entry& e, Seconds now) {
  auto commit = std::make_shared<PendingCommit>();
  commit->id = id;
  std::optional<StoredMessage> m;
  for (std::uint32_t i = 0; i < e.rcpts.size(); ++i) {
    Rcpt& r = e.rcpts[i];
    if (resting(r.state) || r.busy) continue;
    if (!m) {  // only for the addresses in the log lines
      auto read = off_lock([&] { return spool.read_message_at(e.segment, e.record_offset); });
      m = read ? std::move(*read) : StoredMessage{};
    }
    RecipientState st;
    st.id = id_of(id);
    st.recipient = i;
    st.status = RecipientStatus::kExpired;
    st.attempts = r.attempts;
    st.enhanced = "4.4.7";  // RFC 3463: delivery time expired
    st.text = "not delivered within the queue lifetime";
    r.busy = 1;
    commit->add(std::move(st), rcpt_name(m->envelope, i), "4.4.7 not delivered within the queue lifetime");
  }
  if (!commit->states.empty()) record(std::move(commit), e, now);
}

void Scheduler::Impl::record(std::shared_ptr<PendingCommit> commit, Entry& e, Seconds now) {
  bool bounce = false, success = false, deferred = false;
  for (const auto& st : commit->states) {
    bounce = bounce || bounce_state(st.status);
    success = success || (st.status == RecipientStatus::kDelivered && (e.flags & kSuccessNotify) &&
                          !(st.flags & format::kStateFlagDsnPassedOn));
    deferred = deferred || st.status == RecipientStatus::kDeferred;
  }
  bool null_sender = e.flags & kNullSender;
  bool delay = deferred && !null_sender && !(e.flags & kDelayWarned) && retry.delay_warning_due(e.received_at, now);
  bool double_bounce = null_sender && bounce && !config.double_bounce_to.empty();
  if (notices == nullptr || (null_sender ? !double_bounce : !(bounce || success || delay))) {
    if ((bounce || success) && (null_sender || notices == nullptr)) {
      PETREL_LOG(kInfo, "queue.no_notice", "id={} why=\"{}\"", id_of(commit->id),
                 notices == nullptr ? "notices are off" : "null sender and no double_bounce_to");
    }
    submit(std::move(commit));
    return;
  }
  auto m = off_lock([&] { return spool.read_message_at(e.segment, e.record_offset); });
  if (!m) {
    if (!bounce) {  // a success or delay notice is not worth holding the outcome back for
      submit(std::move(commit));
      return;
    }
    ++stats.recording;  // apply_notice undoes it
    apply_notice({std::move(commit), base::Status(m.error()), ""}, now);
    return;
  }
  NoticeRoute route;
  std::vector<mail::DsnRecipient> dsn;
  if (double_bounce) {
    // A bounce that cannot be delivered goes to the postmaster (with the failed bounce as its
    // original), from an address whose own failures are never reported.
    auto to = mail::parse_address(config.double_bounce_to);
    auto from = mail::parse_address(config.double_bounce_sender());
    if (!to || !from) {
      PETREL_LOG(kError, "queue.no_notice", "id={} why=\"bad double_bounce_to or host name\"", id_of(commit->id));
      submit(std::move(commit));
      return;
    }
    route.recipient = *to;
    route.sender = *from;
    dsn = notice_recipients(*commit, m->envelope, e, now, false, true);
  } else if (base::iequals(m->envelope.sender.str(), config.double_bounce_sender())) {
    PETREL_LOG(kWarn, "queue.no_notice", "id={} why=\"an undeliverable double bounce is dropped\"", id_of(commit->id));
    submit(std::move(commit));
    return;
  } else {
    dsn = notice_recipients(*commit, m->envelope, e, now, delay, false);
  }
  bool warns = std::any_of(dsn.begin(), dsn.end(), [](const mail::DsnRecipient& d) { return d.action == mail::DsnAction::kDelayed; });
  if (delay && !warns) e.flags |= kDelayWarned;  // nobody asked for one: do not look again
  commit->delay_notice = warns;
  if (dsn.empty()) {
    submit(std::move(commit));
    return;
  }
  ++stats.recording;
  NoticeConfig nc{config.hostname, config.postmaster};
  std::shared_ptr<Inbox> box = inbox;
  off_lock([&] {  // reads the original to quote it
    queue_notice(
        spool, *notices, *m, std::move(dsn), nc, now,
        [box, commit](base::Status s, const std::string& dsn_id) {
          box->push([&] { box->notices.push_back({commit, std::move(s), dsn_id}); });
        },
        route);
  });
}

std::vector<mail::DsnRecipient> Scheduler::Impl::notice_recipients(const PendingCommit& c, const mail::Envelope& env, const Entry& e,
                                                                   Seconds now, bool delay, bool all_failures) {
  std::vector<mail::DsnRecipient> out;
  for (std::size_t k = 0; k < c.states.size(); ++k) {
    const RecipientState& st = c.states[k];
    if (st.recipient >= env.recipients.size()) continue;
    const mail::Recipient& r = env.recipients[st.recipient];
    auto action = notice_for(st.status, st.flags, r.notify, delay, all_failures);  // notice_policy.h
    if (!action) continue;
    mail::DsnRecipient d;
    d.recipient = r.address;
    d.orcpt_type = r.orcpt_type;
    d.orcpt = r.orcpt;
    d.action = *action;
    d.status = notice_status(*action, st.enhanced);
    d.remote_mta = st.remote_host;
    d.diagnostic = st.reply_code != 0 ? std::to_string(st.reply_code) + " " : "";
    d.diagnostic += st.enhanced.empty() ? st.text : st.enhanced + " " + st.text;
    d.last_attempt = now;
    if (*action == mail::DsnAction::kDelayed) d.will_retry_until = expire_at(e);
    out.push_back(std::move(d));
  }
  return out;
}

void Scheduler::Impl::apply_notice(Inbox::NoticeQueued n, Seconds now) {
  --stats.recording;
  std::string id = id_of(n.commit->id);
  if (n.status) {
    ++stats.notices;
    if (n.commit->delay_notice) {
      // Durable with the DEFERRED records (README: flags hold for the message), and at once
      // in memory.
      for (auto& st : n.commit->states) {
        if (st.status == RecipientStatus::kDeferred) st.flags |= format::kStateFlagDelayNotified;
      }
      if (auto it = entries.find(n.commit->id); it != entries.end()) it->second.flags |= kDelayWarned;
      ++stats.delay_notices;
    }
    std::string rcpts;
    bool bounce = false;
    for (std::size_t k = 0; k < n.commit->states.size(); ++k) {
      bounce = bounce || bounce_state(n.commit->states[k].status);
      rcpts += (rcpts.empty() ? "" : ",") + n.commit->names[k];
    }
    PETREL_LOG(kInfo, bounce ? "queue.bounced" : n.commit->delay_notice ? "queue.delay_warned" : "queue.notified",
               "id={} dsn_id={} rcpts={}", id, n.dsn_id, rcpts);
    submit(std::move(n.commit));
    return;
  }
  ++stats.notice_failures;
  PETREL_LOG(kError, "queue.notice_failed", "id={} error=\"{}\"", id, base::log_escape(n.status.error().message));
  auto keep = std::make_shared<PendingCommit>();
  auto retry = std::make_shared<PendingCommit>();
  keep->id = retry->id = n.commit->id;
  for (std::size_t k = 0; k < n.commit->states.size(); ++k) {
    auto& target = bounce_state(n.commit->states[k].status) ? retry : keep;
    target->add(std::move(n.commit->states[k]), std::move(n.commit->names[k]), std::move(n.commit->why[k]));
  }
  if (!keep->states.empty()) submit(std::move(keep));
  if (!retry->states.empty()) {
    ++stats.recording;  // apply_commit undoes it
    apply_commit(*retry, n.status, now, false);
  }
}

void Scheduler::Impl::submit(std::shared_ptr<PendingCommit> commit) {
  ++stats.recording;
  std::shared_ptr<Inbox> box = inbox;
  std::vector<RecipientState> states = commit->states;
  sink.record_states(std::move(states), [box, commit](base::Status s) {
    box->push([&] { box->committed.push_back({commit, std::move(s)}); });
  });
}

void Scheduler::Impl::apply_commit(const PendingCommit& c, const base::Status& status, Seconds now, bool rewrite) {
  --stats.recording;
  auto it = entries.find(c.id);
  PETREL_ASSERT(it != entries.end(), "a message with states being recorded has no entry");
  Entry& e = it->second;
  std::string id = id_of(c.id);
  if (!status) {
    ++stats.state_failures;
    PETREL_LOG(kError, "queue.state_failed", "id={} records={} error=\"{}\"", id, c.states.size(),
               base::log_escape(status.error().message));
  }
  std::shared_ptr<PendingCommit> again;  // final outcomes to write again
  for (std::size_t k = 0; k < c.states.size(); ++k) {
    const RecipientState& st = c.states[k];
    Rcpt& r = e.rcpts[st.recipient];
    if (!status && rewrite && !c.by_operator && format::is_final(st.status)) {
      // The outcome happened (the mailbox file is synced, the DSN queued); only its record
      // is missing. Keep the recipient busy and write the record again in a while: a full
      // disk must not turn into a second copy. (A crash before then delivers it again, the
      // one window queue/README.md names.)
      if (!again) {
        again = std::make_shared<PendingCommit>();
        again->id = c.id;
      }
      again->add(st, c.names[k], c.why[k]);
      continue;
    }
    r.busy = 0;
    if (!status) {
      // Not recorded: still pending as far as the disk knows, so it stays pending here too
      // and is tried again (a delivery may then repeat: at least once, never lost).
      r.attempts = static_cast<std::uint16_t>(std::min<std::uint32_t>(st.attempts, 0xffff));
      set_next(e, r, now + config.retry_first.count());
      continue;
    }
    r.state = static_cast<std::uint8_t>(st.status);
    r.attempts = static_cast<std::uint16_t>(std::min<std::uint32_t>(st.attempts, 0xffff));
    const std::string& why = base::log_escape(c.why[k]);
    switch (st.status) {
      case RecipientStatus::kDelivered:
        ++stats.delivered;
        PETREL_LOG(kInfo, "queue.delivered", "id={} rcpt={} attempts={}", id, c.names[k], st.attempts);
        break;
      case RecipientStatus::kDeferred:
        set_next(e, r, st.next_attempt);
        if (c.by_operator) {
          ++stats.released;
          PETREL_LOG(kInfo, "queue.released", "id={} rcpt={}", id, c.names[k]);
          break;
        }
        ++stats.deferred;
        PETREL_LOG(kInfo, "queue.deferred", "id={} rcpt={} attempts={} next={} why=\"{}\"", id, c.names[k],
                   st.attempts, iso_time(st.next_attempt), why);
        break;
      case RecipientStatus::kFailed:
        ++stats.failed;
        PETREL_LOG(kInfo, "queue.failed", "id={} rcpt={} attempts={} why=\"{}\"", id, c.names[k], st.attempts, why);
        break;
      case RecipientStatus::kExpired:
        ++stats.expired;
        PETREL_LOG(kInfo, "queue.expired", "id={} rcpt={} attempts={} why=\"{}\"", id, c.names[k], st.attempts, why);
        break;
      case RecipientStatus::kHeld:
        ++stats.held;
        PETREL_LOG(kInfo, "queue.held", "id={} rcpt={}", id, c.names[k]);
        break;
      case RecipientStatus::kDeleted:
        ++stats.deleted;
        PETREL_LOG(kInfo, "queue.deleted", "id={} rcpt={}", id, c.names[k]);
        break;
    }
  }
  if (again) rewrites.push_back({now + kRewriteDelay, std::move(again)});
  if (c.waiter) c.waiter->finish_one(status);
  apply_pending_op(c.id, e, now);
  bool done = !e.in_flight && std::all_of(e.rcpts.begin(), e.rcpts.end(), [](const Rcpt& r) { return final_state(r.state); });
  if (done) {
    retire(it);
  } else {
    schedule(c.id, e);
  }
}

void Scheduler::Impl::retire_segments(std::uint64_t current) {
  retire_check = false;
  auto segs = off_lock([&] { return spool.list_segments(); });
  if (!segs) {
    PETREL_LOG(kError, "queue.retire_failed", "error=\"{}\"", base::log_escape(segs.error().message));
    return;
  }
  // With no current segment yet, any segment from the spool's next sequence on was created
  // after `current` was read: its messages may still be on their way through the inbox.
  std::uint64_t limit = current != 0 ? current : spool.next_sequence();
  if (!pending_per_segment.empty()) limit = std::min(limit, pending_per_segment.begin()->first);
  for (const Range& r : ranges) limit = std::min(limit, r.from.segment);  // mail waiting on disk
  for (std::uint64_t seq : *segs) {
    if (seq >= limit) break;
    if (spool.damaged_segments().count(seq)) continue;
    if (auto s = off_lock([&] { return spool.remove_segment(seq); }); !s) {
      PETREL_LOG(kError, "queue.retire_failed", "segment={} error=\"{}\"", seq, base::log_escape(s.error().message));
      retire_check = true;  // try again next time
      return;
    }
    ++stats.retired_segments;
    PETREL_LOG(kInfo, "queue.retired", "segment={}", seq);
  }
}

// ---- Scheduler ----

SchedulerConfig SchedulerConfig::from(const config::QueueConfig& q) {
  SchedulerConfig c;
  c.retry_first = std::max(std::chrono::duration_cast<std::chrono::seconds>(q.retry_first), std::chrono::seconds(1));
  c.retry_max = std::max(std::chrono::duration_cast<std::chrono::seconds>(q.retry_max), c.retry_first);
  c.lifetime = std::chrono::duration_cast<std::chrono::seconds>(q.lifetime);
  c.delay_warning = std::chrono::duration_cast<std::chrono::seconds>(q.delay_warning);
  c.concurrency = std::max<std::size_t>(q.delivery_concurrency, 1);
  c.active_limit = std::max<std::size_t>(q.active_limit, 1);
  return c;
}

Scheduler::Scheduler(const Spool& spool, StateSink& sink, Transport& transport, base::Clock& clock,
                     SchedulerConfig config, Intake* notices)
    : inbox_(std::make_shared<Inbox>()) {
  PETREL_ASSERT(spool.mode() == Spool::Mode::kWritable, "the scheduler needs a writable spool");
  impl_ = std::make_unique<Impl>(spool, sink, transport, clock, config, notices, inbox_);
  std::shared_ptr<Inbox> box = inbox_;
  sink.set_commit_listener([box](const StoredMessage& m) {
    Inbox::NewMessage n = Inbox::arrival(m);
    box->push([&] { box->messages.push_back(n); });
  });
}

Scheduler::~Scheduler() {
  stop();
  impl_->sink.set_commit_listener({});
}

base::Status Scheduler::load() {
  std::lock_guard serial(impl_->tick_mu);
  std::unique_lock view(impl_->mu);
  impl_->view = &view;
  base::Status s = impl_->load();
  impl_->view = nullptr;
  view.unlock();
  impl_->publish();
  return s;
}

void Scheduler::enqueue(const StoredMessage& m) {
  Inbox::NewMessage n = Inbox::arrival(m);
  inbox_->push([&] { inbox_->messages.push_back(n); });
}

Scheduler::TimePoint Scheduler::tick() {
  std::lock_guard serial(impl_->tick_mu);
  std::unique_lock view(impl_->mu);
  impl_->view = &view;
  TimePoint next = impl_->tick();
  impl_->view = nullptr;
  view.unlock();
  impl_->publish();
  return next;
}

void Scheduler::start() {
  PETREL_ASSERT(!thread_.joinable(), "Scheduler::start() twice");
  thread_ = std::thread([this] { run(); });
}

void Scheduler::run() {
  for (;;) {
    TimePoint next = tick();
    std::unique_lock lk(inbox_->mu);
    if (inbox_->stopping) return;
    if (!inbox_->woken) {
      // Sleep until the next due time, an arrival, or a minute (in case the wall clock jumps).
      auto wait = std::chrono::minutes(1);
      std::chrono::system_clock::duration until = std::chrono::minutes(1);
      if (next != TimePoint::max()) until = std::clamp<std::chrono::system_clock::duration>(
                                                next - impl_->clock.wall(), std::chrono::system_clock::duration::zero(), wait);
      inbox_->cv.wait_for(lk, until, [&] { return inbox_->woken || inbox_->stopping; });
    }
    inbox_->woken = false;
    if (inbox_->stopping) return;
  }
}

void Scheduler::stop() {
  {
    std::lock_guard lk(inbox_->mu);
    inbox_->stopping = true;
  }
  inbox_->cv.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Scheduler::control(ControlRequest request, std::function<void(ControlResult)> done) {
  inbox_->push([&] { inbox_->controls.push_back({std::move(request), std::move(done)}); });
}

std::vector<MessageSummary> Scheduler::snapshot() const {
  std::lock_guard lk(impl_->mu);
  std::vector<MessageSummary> out;
  out.reserve(impl_->entries.size());
  for (const auto& [id, e] : impl_->entries) {
    MessageSummary m;
    m.id = id_of(id);
    m.segment = e.segment;
    m.received = from_seconds(e.received_at);
    m.next_attempt = from_seconds(e.due);
    m.in_flight = e.in_flight;
    for (const Rcpt& r : e.rcpts) {
      m.recipients.push_back({static_cast<MessageSummary::State>(r.state), r.attempts,
                              from_seconds(impl_->rcpt_next(e, r)), r.busy != 0});
    }
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const MessageSummary& a, const MessageSummary& b) { return a.id < b.id; });
  return out;
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard lk(impl_->published_mu);  // never the tick's: see Impl::publish()
  return impl_->published;
}

std::size_t Scheduler::memory_bytes() const {
  std::lock_guard lk(impl_->mu);
  const auto& entries = impl_->entries;
  // A hash node holds the next pointer, the key/value pair and the cached hash; each bucket
  // is a pointer; a recipient vector's block is rounded up by malloc (16-byte granules, 8 of
  // header); the heap holds one Due per scheduled entry.
  std::size_t node = sizeof(void*) + sizeof(std::pair<const IdKey, Entry>) + sizeof(std::size_t);
  std::size_t bytes = entries.size() * node + entries.bucket_count() * sizeof(void*);
  for (const auto& [id, e] : entries) {
    std::size_t block = e.rcpts.capacity() * sizeof(Rcpt) + 8;
    bytes += (block + 15) / 16 * 16;
  }
  bytes += impl_->heap.size() * sizeof(Due);
  bytes += impl_->pending_per_segment.size() * 48;
  return bytes;
}

}  // namespace petrel::queue
