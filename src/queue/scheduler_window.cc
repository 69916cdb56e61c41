// scheduler_window.cc: the scheduler's active window: taking a message into memory or
// leaving it on disk, the ranges of the log that wait there, paging idle entries out and
// reading due ranges back in (queue/README.md "The active window"). Contracts in scheduler.h,
// types in scheduler_impl.h.
#include <algorithm>

#include "base/log.h"
#include "base/strings.h"
#include "queue/scheduler_impl.h"

namespace petrel::queue {

void Scheduler::Impl::add(const IdKey& id, std::uint64_t segment, std::uint64_t offset, Seconds received, std::uint32_t nrcpt,
                          bool spill, std::uint8_t flags, Seconds now) {
  if (nrcpt == 0 || entries.count(id)) return;  // nothing to deliver, or already known
  if (entries.size() >= limit()) {
    wait_on_disk({segment, offset}, {segment, offset + 1}, now);
    return;
  }
  insert(id, segment, offset, received, nrcpt, spill, flags);
}

Entry& Scheduler::Impl::insert(const IdKey& id, std::uint64_t segment, std::uint64_t offset, Seconds received, std::uint32_t nrcpt,
                               bool spill, std::uint8_t flags) {
  Entry& e = entries[id];
  e.segment = segment;
  e.record_offset = offset;
  e.received_at = received;
  e.spill = spill;
  e.flags = flags;
  e.rcpts.resize(nrcpt);
  ++pending_per_segment[segment];
  return e;
}

void Scheduler::Impl::wait_on_disk(Position from, Position to, Seconds wake) {
  ++stats.paged_out;
  add_range({from, to, wake});
}

void Scheduler::Impl::add_range(Range range) {
  auto [from, to, wake] = range;
  for (Range& r : ranges) {
    // A range that starts earlier and wakes no later may simply grow to cover this one:
    // its claim ("nothing here is due before r.wake") holds for this message, and any
    // message it newly spans is still covered by its own range too (arrivals in log order
    // all land in one range this way).
    if (r.from <= from && r.wake <= wake) {
      r.to = std::max(r.to, to);
      return;
    }
  }
  ranges.push_back({from, to, wake});
  if (ranges.size() <= kMaxRanges) return;
  // Too many: merge the two neighbours (in log order) closest together. The merged range
  // may cover messages in memory; a refill skips those.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.from < b.from; });
  std::size_t best = 0;
  for (std::size_t i = 1; i + 1 < ranges.size(); ++i) {
    auto gap = [&](std::size_t k) {  // overlapping neighbours: no gap at all
      return ranges[k + 1].from.segment > ranges[k].to.segment ? ranges[k + 1].from.segment - ranges[k].to.segment
                                                               : 0;
    };
    if (gap(i) < gap(best)) best = i;
  }
  Range& a = ranges[best];
  const Range& b = ranges[best + 1];
  a.to = std::max(a.to, b.to);
  a.wake = std::min(a.wake, b.wake);
  ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(best) + 1);
}

Seconds Scheduler::Impl::next_due(const Entry& e) const {
  Seconds at = kNever;
  for (const Rcpt& r : e.rcpts) {
    if (!resting(r.state) && !r.busy) at = std::min(at, rcpt_next(e, r));
  }
  return at;
}

void Scheduler::Impl::page_out(std::unordered_map<IdKey, Entry, IdHash>::iterator it, Seconds wake) {
  const Entry& e = it->second;
  wait_on_disk({e.segment, e.record_offset}, {e.segment, e.record_offset + 1}, wake);
  forget(it);
}

void Scheduler::Impl::forget(std::unordered_map<IdKey, Entry, IdHash>::iterator it) {
  auto p = pending_per_segment.find(it->second.segment);
  if (p != pending_per_segment.end() && --p->second == 0) pending_per_segment.erase(p);
  entries.erase(it);
}

bool Scheduler::Impl::pageable(const Entry& e, Seconds now) const {
  if (e.in_flight || e.pending_op != 0) return false;
  bool held = false;
  for (const Rcpt& r : e.rcpts) {
    if (r.busy) return false;
    held = held || r.state == kHeld;
  }
  return !held && next_due(e) > now + kPageOutMargin;
}

void Scheduler::Impl::refill(Seconds now) {
  if (ranges.empty() || now < last_refill + 1) return;
  auto due = std::min_element(ranges.begin(), ranges.end(),
                              [](const Range& a, const Range& b) { return a.wake < b.wake; });
  if (due->wake > now) return;
  last_refill = now;
  if (entries.size() >= limit()) {
    // Room for a tenth of the window, taken from the entries due last.
    std::vector<std::pair<Seconds, IdKey>> idle;
    for (const auto& [id, e] : entries) {
      if (pageable(e, now)) idle.push_back({next_due(e), id});
    }
    std::size_t want = std::min(idle.size(), std::max<std::size_t>(1, limit() / 10));
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(want), idle.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < want; ++i) page_out(entries.find(idle[i].second), idle[i].first);
    if (entries.size() >= limit()) return;  // nothing idle: the window is all busy or due
  }
  // Read in the due range that comes first in the log.
  std::size_t pick = ranges.size();
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].wake <= now && (pick == ranges.size() || ranges[i].from < ranges[pick].from)) pick = i;
  }
  Range r = ranges[pick];
  ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(pick));
  if (auto s = read_in(r, now, false); !s) {
    PETREL_LOG(kError, "queue.refill_failed", "error=\"{}\"", base::log_escape(s.error().message));
    add_range({r.from, r.to, now + 60});  // try again in a minute
  }
}

base::Status Scheduler::Impl::read_in(const Range& r, Seconds now, bool at_startup) {
  ++stats.refills;
  // What this pass admits is marked kFresh in its entry (no separate set: memory stays the
  // window's), and unmarked at the end.
  bool full = false;
  Position stop = r.to;
  auto s = off_lock([&] { return spool.for_each_record(
      [&](const StoredMessage& m) {
        auto held = under_view();
        Position p{m.segment, m.record_offset};
        if (p < r.from || !(p < r.to) || full) return;
        IdKey id = key_of(m.id);
        if (m.envelope.recipients.empty() || entries.count(id)) return;
        if (entries.size() >= limit()) {
          full = true;
          stop = p;
          return;
        }
        insert(id, m.segment, m.record_offset, m.envelope.received_at,
               static_cast<std::uint32_t>(m.envelope.recipients.size()), m.body.kind == format::BodyKind::kSpill,
               flags_of(m.envelope) | kFresh);
      },
      [&](const RecipientState& st, std::uint64_t) {
        auto held = under_view();
        auto it = entries.find(key_of(st.id));
        // Not read in, or in memory before this pass (its state there is the newer one).
        if (it == entries.end() || !(it->second.flags & kFresh)) return;
        Entry& e = it->second;
        if (st.recipient >= e.rcpts.size()) return;
        if (st.flags & format::kStateFlagDelayNotified) e.flags |= kDelayWarned;  // any record, not the last
        Rcpt& rc = e.rcpts[st.recipient];
        if (final_state(rc.state)) return;
        rc.state = static_cast<std::uint8_t>(st.status);
        rc.attempts = static_cast<std::uint16_t>(std::min<std::uint32_t>(st.attempts, 0xffff));
        if (st.status == RecipientStatus::kDeferred) set_next(e, rc, st.next_attempt);
      }); });
  if (!s) {
    for (auto it = entries.begin(); it != entries.end();) {  // the range is tried again whole
      auto cur = it++;
      if (cur->second.flags & kFresh) forget(cur);
    }
    return s;
  }
  Seconds later = kNever;  // the earliest due time among those paged out again
  std::size_t kept = 0;
  for (auto next = entries.begin(); next != entries.end();) {
    auto it = next++;
    Entry& e = it->second;
    if (!(e.flags & kFresh)) continue;
    e.flags &= static_cast<std::uint8_t>(~kFresh);
    const IdKey& id = it->first;
    bool done = std::all_of(e.rcpts.begin(), e.rcpts.end(), [](const Rcpt& x) { return final_state(x.state); });
    if (done) {
      e.spill = false;  // leave the file to recovery once its segment goes
      if (at_startup) {
        retire(it);
      } else {
        forget(it);
      }
    } else if (full && pageable(e, now)) {
      later = std::min(later, next_due(e));
      forget(it);
    } else {
      schedule(id, e);
      ++kept;
    }
  }
  if (later != kNever) add_range({r.from, stop, later});
  if (full) add_range({stop, r.to, now});
  PETREL_LOG(kDebug, "queue.read_in", "kept={} full={} ranges={}", kept, full, ranges.size());
  return {};
}

std::unordered_map<IdKey, Entry, IdHash>::iterator Scheduler::Impl::read_in_one(const std::string& id, Seconds now) {
  auto found = off_lock([&] { return spool.find(id); });
  if (!found || !*found) return entries.end();
  Position p{(*found)->segment, (*found)->record_offset};
  ++limit_slack;
  auto s = read_in({p, {p.segment, p.offset + 1}, now}, now, false);
  --limit_slack;
  if (!s) return entries.end();
  return entries.find(key_of(id));
}

}  // namespace petrel::queue
