// scheduler_lanes.cc: starting a delivery, and the lanes: per-lane in-flight limits
// (Transport::lane), the entries waiting for a full lane and their turn when a job of it
// ends (queue/README.md "Lanes"). Contracts in scheduler.h, types in scheduler_impl.h.
#include "base/log.h"
#include "base/strings.h"
#include "queue/scheduler_impl.h"

namespace petrel::queue {

void Scheduler::Impl::start_delivery(const IdKey& id, Entry& e, Seconds now) {
  DeliveryJob job;
  for (std::uint32_t i = 0; i < e.rcpts.size(); ++i) {
    const Rcpt& r = e.rcpts[i];
    if (!resting(r.state) && !r.busy && rcpt_next(e, r) <= now) job.recipients.push_back(i);
  }
  if (job.recipients.empty()) {
    schedule(id, e);
    return;
  }
  auto m = off_lock([&] { return spool.read_message_at(e.segment, e.record_offset); });
  if (!m) {
    // Cannot read it back: a temporary failure like any other (it may be an I/O hiccup).
    PETREL_LOG(kError, "queue.read_failed", "id={} error=\"{}\"", id_of(id), base::log_escape(m.error().message));
    InFlight& f = begin_flight(id, e, job.recipients);
    for (std::uint32_t i : job.recipients) f.names.push_back("#" + std::to_string(i));
    std::vector<RecipientResult> results;
    for (std::uint32_t i : job.recipients) {
      results.push_back(RecipientResult::local(i, RecipientResult::Outcome::kDeferred, "4.3.0",
                                               "cannot read the message from the spool", true));
    }
    apply_results(id, std::move(results), now);
    return;
  }
  job.message = std::move(*m);
  // The lane needs the envelope, so a message that must wait has been read for nothing; it
  // is read again when its turn comes (from the page cache, as a rule).
  Transport::Lane lane = transport.lane(job);
  if (lane.limit > 0) {
    LaneState& l = lanes[lane.key];
    if (l.in_flight >= lane.limit) {
      l.parked.push_back(id);  // due kNever now (popped from the heap): out of the way
      ++stats.lane_waits;
      return;
    }
    ++l.in_flight;
  }
  InFlight& f = begin_flight(id, e, job.recipients);
  if (lane.limit > 0) f.lane = std::move(lane.key);
  for (std::uint32_t i : job.recipients) f.names.push_back(rcpt_name(job.message.envelope, i));
  PETREL_LOG(kDebug, "queue.delivering", "id={} nrcpt={}", id_of(id), job.recipients.size());
  // The callback holds the inbox, not the scheduler: a late answer after the scheduler is
  // gone lands in an inbox nobody reads, harmlessly.
  std::shared_ptr<Inbox> box = inbox;
  transport.deliver(std::move(job), [box, id](std::vector<RecipientResult> results) {
    box->push([&] { box->results.push_back({id, std::move(results)}); });
  });
}

Scheduler::Impl::InFlight& Scheduler::Impl::begin_flight(const IdKey& id, Entry& e, const std::vector<std::uint32_t>& recipients) {
  InFlight& f = in_flight[id];
  f.indices = recipients;
  for (std::uint32_t i : recipients) e.rcpts[i].busy = 1;
  e.in_flight = true;
  return f;
}

void Scheduler::Impl::end_flight_in_lane(const std::string& key, Seconds now) {
  if (key.empty()) return;
  auto it = lanes.find(key);
  if (it == lanes.end()) return;
  LaneState& l = it->second;
  if (l.in_flight > 0) --l.in_flight;
  while (!l.parked.empty()) {
    IdKey id = l.parked.front();
    l.parked.pop_front();
    auto e = entries.find(id);
    // Gone (delivered, deleted, paged out), busy, or scheduled again meanwhile (a flush):
    // not waiting here any more.
    if (e == entries.end() || e->second.in_flight || e->second.due != kNever) continue;
    if (next_due(e->second) > now) continue;  // held or changed since: schedule() knows
    schedule(id, e->second);
    break;
  }
  if (l.in_flight == 0 && l.parked.empty()) lanes.erase(it);
}

}  // namespace petrel::queue
