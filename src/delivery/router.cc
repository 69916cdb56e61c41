// delivery/router.cc: split a job by domain, join the answers (router.h).
#include "delivery/router.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

namespace petrel::delivery {
namespace {

// The two halves' answers, put back in the order of the original job.
struct Join {
  std::vector<std::uint32_t> order;  // the original job.recipients
  std::function<void(std::vector<queue::RecipientResult>)> done;
  std::mutex mu;
  std::vector<queue::RecipientResult> results;
  int outstanding = 2;

  void add(std::vector<queue::RecipientResult> part) {
    std::function<void(std::vector<queue::RecipientResult>)> finish;
    std::vector<queue::RecipientResult> out;
    {
      std::lock_guard lock(mu);
      for (auto& r : part) results.push_back(std::move(r));
      if (--outstanding > 0) return;
      // Missing answers count as deferred (transport.h); order as asked.
      for (std::uint32_t index : order) {
        queue::RecipientResult found =
            queue::RecipientResult::local(index, queue::RecipientResult::Outcome::kDeferred, "4.4.0", "no result");
        for (auto& r : results) {
          if (r.index == index) {
            found = std::move(r);
            break;
          }
        }
        out.push_back(std::move(found));
      }
      finish = std::move(done);
    }
    finish(std::move(out));
  }
};

}  // namespace

void Router::deliver(queue::DeliveryJob job, std::function<void(std::vector<queue::RecipientResult>)> done) {
  std::vector<std::uint32_t> local, remote;
  for (std::uint32_t index : job.recipients) {
    const auto& address = job.message.envelope.recipients.at(index).address;
    (directory_.serves_domain(address.domain) ? local : remote).push_back(index);
  }
  if (remote.empty()) return local_.deliver(std::move(job), std::move(done));
  if (local.empty()) return remote_.deliver(std::move(job), std::move(done));

  auto join = std::make_shared<Join>();
  join->order = job.recipients;
  join->done = std::move(done);
  queue::DeliveryJob remote_job{job.message, std::move(remote)};
  job.recipients = std::move(local);
  local_.deliver(std::move(job), [join](std::vector<queue::RecipientResult> r) { join->add(std::move(r)); });
  remote_.deliver(std::move(remote_job), [join](std::vector<queue::RecipientResult> r) { join->add(std::move(r)); });
}

queue::Transport::Lane Router::lane(const queue::DeliveryJob& job) const {
  for (std::uint32_t index : job.recipients) {
    const auto& address = job.message.envelope.recipients.at(index).address;
    if (!directory_.serves_domain(address.domain)) return remote_.lane(job);
  }
  return local_.lane(job);
}

}  // namespace petrel::delivery
