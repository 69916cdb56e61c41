// retry_policy.cc: the backoff (design in queue/README.md, "Retry policy").
#include "queue/retry_policy.h"

#include <algorithm>

namespace petrel::queue {

RetryPolicy RetryPolicy::normalized() const {
  RetryPolicy p = *this;
  p.retry_first = std::max(p.retry_first, std::chrono::seconds(1));
  p.retry_max = std::max(p.retry_max, p.retry_first);
  return p;
}

RetryPolicy::Seconds RetryPolicy::backoff(std::uint32_t attempts) const {
  // retry_first after the first attempt, then doubling, capped at retry_max.
  Seconds d = retry_first.count();
  for (std::uint32_t i = 1; i < attempts && d < retry_max.count(); ++i) d *= 2;
  return std::min<Seconds>(d, retry_max.count());
}

}  // namespace petrel::queue
