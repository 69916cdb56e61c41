// chain.cc: one run of the checks, continuing from each answer (chain.h).
#include "policy/chain.h"

#include "base/log.h"
#include "base/strings.h"

namespace petrel::policy {

// The state of one run() between answers. Owned by the callback a check holds, so it lives
// exactly as long as someone may still answer; the Context outlives it (the session waits).
struct Chain::Run : std::enable_shared_from_this<Chain::Run> {
  const Chain& chain;
  const Context& context;
  std::function<void(Decision)> done;
  Decision decision;
  std::size_t next = 0;

  Run(const Chain& c, const Context& ctx, std::function<void(Decision)> d) : chain(c), context(ctx), done(std::move(d)) {}

  // Asks the next check that wants this stage, or finishes.
  void step() {
    while (next < chain.checks_.size() && !chain.checks_[next]->wants(context.stage)) ++next;
    if (next == chain.checks_.size()) return finish();
    Check& check = *chain.checks_[next++];
    check.check(context, [self = shared_from_this(), &check](Verdict v) { self->answer(check, std::move(v)); });
  }

  void answer(const Check& check, Verdict v) {
    log(check, v);
    switch (v.kind) {
      case Verdict::Kind::kAccept:
        return step();
      case Verdict::Kind::kAddHeader:
        if (context.stage == Stage::kData) {
          // chain.h: the message is already stored; a header cannot be added any more.
          PETREL_LOG(kError, "policy.unsupported", "session={} id={} check={} why=\"header verdict at end of data\"",
                     context.session_id, context.queue_id, check.name());
          return refuse(Decision::Kind::kDefer, mail::reply(451, "4.3.0", "Requested action aborted: local problem in processing"),
                        check);
        }
        decision.headers.push_back(std::move(v.header));
        return step();
      case Verdict::Kind::kReject:
        return refuse(Decision::Kind::kReject, std::move(v.reply), check);
      case Verdict::Kind::kDefer:
        return refuse(Decision::Kind::kDefer, std::move(v.reply), check);
    }
  }

  void refuse(Decision::Kind kind, mail::Reply reply, const Check& check) {
    decision.kind = kind;
    decision.reply = std::move(reply);
    decision.headers.clear();
    decision.check = std::string(check.name());
    finish();
  }

  void finish() {
    auto d = std::move(done);
    d(std::move(decision));
  }

  void log(const Check& check, const Verdict& v) const {
    const bool accept = v.kind == Verdict::Kind::kAccept;
    if (!base::log::enabled(accept ? base::log::Level::kDebug : base::log::Level::kInfo)) return;
    std::string reply = v.kind == Verdict::Kind::kReject || v.kind == Verdict::Kind::kDefer
                            ? fmt::format(" code={} status={}", v.reply.code, v.reply.enhanced)
                            : std::string();
    base::log::write(accept ? base::log::Level::kDebug : base::log::Level::kInfo, "policy.decision",
                     fmt::format("session={}{}{} client={} stage={} check={} verdict={}{} reason=\"{}\"",
                                 context.session_id, context.queue_id.empty() ? "" : " id=", context.queue_id,
                                 context.client_ip, stage_name(context.stage), check.name(), kind_name(v.kind), reply,
                                 base::log_escape(v.reason)));
  }
};

void Chain::add(std::unique_ptr<Check> check) { checks_.push_back(std::move(check)); }

void Chain::run(const Context& context, std::function<void(Decision)> done) const {
  std::make_shared<Run>(*this, context, std::move(done))->step();
}

}  // namespace petrel::policy
