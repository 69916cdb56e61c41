// scheduler_control.cc: operator commands (flush, hold, release, delete: queue/README.md
// "Operator commands"), including a hold or delete that waits for a delivery in flight.
// Contracts in scheduler.h (control()), types in scheduler_impl.h.
#include "base/strings.h"
#include "queue/scheduler_impl.h"

namespace petrel::queue {

void Scheduler::Impl::apply_control(Inbox::Control& c, Seconds now) {
  auto waiter = std::make_shared<ControlWait>();
  waiter->done = std::move(c.done);
  waiter->outstanding = 1;  // this function's own share, released at the end
  if (c.request.id.empty()) {
    for (auto& [id, e] : entries) control_one(c.request.op, id, e, now, waiter);
  } else {
    auto it = c.request.id.size() == 20 ? entries.find(key_of(c.request.id)) : entries.end();
    if (it == entries.end() && c.request.id.size() == 20 && !ranges.empty()) it = read_in_one(c.request.id, now);
    if (it == entries.end()) {
      waiter->result.status = base::permanent_error("no pending message " + base::log_escape(c.request.id) +
                                                    " (unknown, or already delivered)");
    } else {
      control_one(c.request.op, it->first, it->second, now, waiter);
    }
  }
  waiter->finish_one(base::Status());
}

void Scheduler::Impl::control_one(ControlRequest::Op op, const IdKey& id, Entry& e, Seconds now,
                                  const std::shared_ptr<ControlWait>& waiter) {
  std::size_t changed = 0;
  auto commit = std::make_shared<PendingCommit>();
  commit->id = id;
  commit->by_operator = true;
  commit->waiter = waiter;
  for (std::uint32_t i = 0; i < e.rcpts.size(); ++i) {
    Rcpt& r = e.rcpts[i];
    if (final_state(r.state)) continue;
    switch (op) {
      case ControlRequest::Op::kFlush:
        if (r.state == kHeld || r.busy) continue;
        r.next_rel = 0;  // due at once
        ++changed;
        continue;
      case ControlRequest::Op::kHold:
        if (r.state == kHeld) continue;
        if (r.busy) {
          e.pending_op = kPendingHold;
          ++changed;
          continue;
        }
        break;
      case ControlRequest::Op::kRelease:
        if (e.pending_op == kPendingHold) e.pending_op = 0;
        if (r.state != kHeld || r.busy) continue;
        break;
      case ControlRequest::Op::kDelete:
        if (r.busy) {
          e.pending_op = kPendingDelete;
          ++changed;
          continue;
        }
        break;
    }
    commit->add(operator_state(op, id, e, i, now), "#" + std::to_string(i), "");
    r.busy = 1;
    ++changed;
  }
  if (changed == 0) return;
  ++waiter->result.messages;
  waiter->result.recipients += changed;
  if (!commit->states.empty()) {
    ++waiter->outstanding;
    submit(std::move(commit));
  }
  schedule(id, e);
}

RecipientState Scheduler::Impl::operator_state(ControlRequest::Op op, const IdKey& id, const Entry& e, std::uint32_t i, Seconds now) {
  RecipientState st;
  st.id = id_of(id);
  st.recipient = i;
  st.attempts = e.rcpts[i].attempts;
  if (op == ControlRequest::Op::kHold) {
    st.status = RecipientStatus::kHeld;
    st.text = "held by the operator";
  } else if (op == ControlRequest::Op::kRelease) {
    st.status = RecipientStatus::kDeferred;
    st.next_attempt = std::min(now, expire_at(e));  // tried once even past its lifetime
    st.text = "released by the operator";
  } else {
    st.status = RecipientStatus::kDeleted;
    st.text = "deleted by the operator";
  }
  return st;
}

void Scheduler::Impl::apply_pending_op(const IdKey& id, Entry& e, Seconds now) {
  if (e.pending_op == 0 || e.in_flight) return;
  auto op = e.pending_op == kPendingHold ? ControlRequest::Op::kHold : ControlRequest::Op::kDelete;
  auto commit = std::make_shared<PendingCommit>();
  commit->id = id;
  commit->by_operator = true;
  bool busy = false;
  for (std::uint32_t i = 0; i < e.rcpts.size(); ++i) {
    Rcpt& r = e.rcpts[i];
    if (final_state(r.state) || (op == ControlRequest::Op::kHold && r.state == kHeld)) continue;
    if (r.busy) {
      busy = true;
      continue;
    }
    commit->add(operator_state(op, id, e, i, now), "#" + std::to_string(i), "");
    r.busy = 1;
  }
  if (!busy) e.pending_op = 0;
  if (!commit->states.empty()) submit(std::move(commit));
}

}  // namespace petrel::queue
