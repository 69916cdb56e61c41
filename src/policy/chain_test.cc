#include "policy/chain.h"

#include <gtest/gtest.h>

#include <optional>

namespace petrel::policy {
namespace {

// A check that answers with a fixed verdict at one stage, inline or when released, and
// records that it ran.
class Scripted final : public Check {
 public:
  Scripted(std::string name, Verdict verdict, std::vector<std::string>* trace, Stage stage = Stage::kRcpt,
           bool async = false)
      : name_(std::move(name)), verdict_(std::move(verdict)), trace_(trace), stage_(stage), async_(async) {}
  std::string_view name() const override { return name_; }
  bool wants(Stage stage) const override { return stage == stage_; }
  void check(const Context&, std::function<void(Verdict)> done) override {
    trace_->push_back(name_);
    if (async_) {
      pending = std::move(done);
    } else {
      done(verdict_);
    }
  }
  void release() {
    auto d = std::move(pending);
    d(verdict_);
  }
  std::function<void(Verdict)> pending;

 private:
  std::string name_;
  Verdict verdict_;
  std::vector<std::string>* trace_;
  Stage stage_;
  bool async_;
};

Context rcpt_context() {
  Context c;
  c.stage = Stage::kRcpt;
  c.session_id = "s1";
  return c;
}

std::optional<Decision> run(const Chain& chain, const Context& c) {
  std::optional<Decision> out;
  chain.run(c, [&](Decision d) {
    EXPECT_FALSE(out.has_value()) << "done called twice";
    out = std::move(d);
  });
  return out;
}

TEST(ChainTest, EmptyChainAccepts) {
  Chain chain;
  auto d = run(chain, rcpt_context());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Decision::Kind::kAccept);
  EXPECT_TRUE(d->headers.empty());
}

TEST(ChainTest, ChecksRunInOrderAndTheFirstRefusalWins) {
  std::vector<std::string> trace;
  Chain chain;
  chain.add(std::make_unique<Scripted>("a", Verdict::accept(), &trace));
  chain.add(std::make_unique<Scripted>("b", Verdict::defer(mail::reply(450, "4.7.1", "later"), "b says"), &trace));
  chain.add(std::make_unique<Scripted>("c", Verdict::reject(mail::reply(550, "5.7.1", "no"), "c says"), &trace));
  auto d = run(chain, rcpt_context());
  ASSERT_TRUE(d);
  EXPECT_EQ(trace, (std::vector<std::string>{"a", "b"}));  // c is never asked
  EXPECT_EQ(d->kind, Decision::Kind::kDefer);
  EXPECT_EQ(d->reply.code, 450);
  EXPECT_EQ(d->reply.enhanced, "4.7.1");
  EXPECT_EQ(d->check, "b");
}

TEST(ChainTest, OnlyChecksThatWantTheStageAreAsked) {
  std::vector<std::string> trace;
  Chain chain;
  chain.add(std::make_unique<Scripted>("mail", Verdict::reject(mail::reply(550, "5.7.1", "no"), ""), &trace, Stage::kMail));
  chain.add(std::make_unique<Scripted>("rcpt", Verdict::accept(), &trace, Stage::kRcpt));
  auto d = run(chain, rcpt_context());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Decision::Kind::kAccept);
  EXPECT_EQ(trace, (std::vector<std::string>{"rcpt"}));
}

TEST(ChainTest, HeadersAccumulateInOrderAndARefusalDropsThem) {
  std::vector<std::string> trace;
  Chain chain;
  chain.add(std::make_unique<Scripted>("spf", Verdict::add_header("Received-SPF: pass", "pass"), &trace));
  chain.add(std::make_unique<Scripted>("ok", Verdict::accept(), &trace));
  chain.add(std::make_unique<Scripted>("ar", Verdict::add_header("Authentication-Results: x; none", ""), &trace));
  auto d = run(chain, rcpt_context());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Decision::Kind::kAccept);
  EXPECT_EQ(d->headers, (std::vector<std::string>{"Received-SPF: pass", "Authentication-Results: x; none"}));

  chain.add(std::make_unique<Scripted>("no", Verdict::reject(mail::reply(554, "5.7.1", "no"), ""), &trace));
  d = run(chain, rcpt_context());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Decision::Kind::kReject);
  EXPECT_TRUE(d->headers.empty());
  EXPECT_EQ(d->check, "no");
}

TEST(ChainTest, AsynchronousChecksContinueTheRunWhenTheyAnswer) {
  std::vector<std::string> trace;
  Chain chain;
  auto first = std::make_unique<Scripted>("dns1", Verdict::add_header("X-A: 1", ""), &trace, Stage::kRcpt, true);
  auto second = std::make_unique<Scripted>("dns2", Verdict::accept(), &trace, Stage::kRcpt, true);
  auto* a = first.get();
  auto* b = second.get();
  chain.add(std::move(first));
  chain.add(std::move(second));
  std::optional<Decision> out;
  auto context = rcpt_context();
  chain.run(context, [&](Decision d) { out = std::move(d); });
  EXPECT_FALSE(out);
  EXPECT_EQ(trace, (std::vector<std::string>{"dns1"}));  // one at a time
  a->release();
  EXPECT_FALSE(out);
  EXPECT_EQ(trace, (std::vector<std::string>{"dns1", "dns2"}));
  b->release();
  ASSERT_TRUE(out);
  EXPECT_EQ(out->kind, Decision::Kind::kAccept);
  EXPECT_EQ(out->headers, (std::vector<std::string>{"X-A: 1"}));
}

TEST(ChainTest, AHeaderAtEndOfDataDefersTheMessage) {
  std::vector<std::string> trace;
  Chain chain;
  chain.add(std::make_unique<Scripted>("late", Verdict::add_header("X-Late: 1", ""), &trace, Stage::kData));
  chain.add(std::make_unique<Scripted>("never", Verdict::accept(), &trace, Stage::kData));
  Context c;
  c.stage = Stage::kData;
  c.queue_id = "Q1";
  auto d = run(chain, c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, Decision::Kind::kDefer);
  EXPECT_EQ(d->reply.code, 451);
  EXPECT_EQ(d->reply.enhanced, "4.3.0");
  EXPECT_EQ(d->check, "late");
  EXPECT_EQ(trace, (std::vector<std::string>{"late"}));
}

TEST(VerdictTest, ReplyClassMustMatchTheVerdict) {
  EXPECT_DEATH(Verdict::reject(mail::reply(450, "4.7.1", "x"), ""), "5xx");
  EXPECT_DEATH(Verdict::defer(mail::reply(550, "5.7.1", "x"), ""), "4xx");
}

}  // namespace
}  // namespace petrel::policy
