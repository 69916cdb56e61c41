// policy/chain.h: the checks the SMTP session asks at each stage, in order, as one decision.
// Design: policy/README.md.
//
// Promise: run() asks, in the order they were added, each check that wants the context's
// stage, one at a time (a check starts only after the previous one answered). The first
// reject or defer ends the run and is the decision; header verdicts accumulate, in order, and
// come with an accept. Every verdict is logged as one `policy.decision` line with the session
// id (and the queue id at end of data), the stage, the check's name, the verdict and its
// reason: accepts at debug level, everything else at info (what `petrel explain` reads).
// `done` is called exactly once, inline when every check answered inline, else from the
// thread of the last check to answer.
// End of data takes no new headers: the message octets have already streamed to the queue
// (queue/intake.h), so a header verdict at Stage::kData is a bug in that check; the chain logs
// it (policy.unsupported, error) and defers the message with 451 4.3.0 rather than dropping the
// header silently or accepting a message its checks could not finish.
// Not done here: replying (the session), timeouts (each check bounds its own waits).
// Thread: add() during setup only; run() from any thread, concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/check.h"

namespace petrel::policy {

struct Decision {
  enum class Kind { kAccept, kReject, kDefer };
  Kind kind = Kind::kAccept;
  mail::Reply reply;                 // kReject (5xx) / kDefer (4xx): the reply to send
  std::vector<std::string> headers;  // kAccept: fields to add to the message, in check order
  std::string check;                 // kReject / kDefer: the name of the check that decided
};

class Chain {
 public:
  void add(std::unique_ptr<Check> check);
  void run(const Context& context, std::function<void(Decision)> done) const;
  std::size_t size() const { return checks_.size(); }

 private:
  struct Run;
  std::vector<std::unique_ptr<Check>> checks_;
};

}  // namespace petrel::policy
