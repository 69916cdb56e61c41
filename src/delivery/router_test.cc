// Router: local domains to one transport, the rest to the other, answers joined in order.
#include "delivery/router.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "base/strings.h"

namespace petrel::delivery {
namespace {

using queue::RecipientResult;
using Outcome = RecipientResult::Outcome;

class OneDomain final : public auth::Directory {
 public:
  auth::RecipientStatus lookup(const mail::Address&) const override { return auth::RecipientStatus::kLocal; }
  bool serves_domain(std::string_view d) const override { return base::iequals(d, "here.test"); }
  base::Result<auth::Resolution> resolve(const mail::Address&) const override { return base::temporary_error("unused"); }
  base::Status refresh() override { return {}; }
};

// Answers every recipient with `outcome`, naming itself in the reply text; remembers jobs.
class Recorder final : public queue::Transport {
 public:
  Recorder(std::string name, Outcome outcome) : name_(std::move(name)), outcome_(outcome) {}
  void deliver(queue::DeliveryJob job, std::function<void(std::vector<RecipientResult>)> done) override {
    std::vector<RecipientResult> r;
    for (auto it = job.recipients.rbegin(); it != job.recipients.rend(); ++it) {  // any order
      std::string_view status = outcome_ == Outcome::kDelivered ? "2.0.0" : outcome_ == Outcome::kFailed ? "5.0.0" : "4.0.0";
      r.push_back(RecipientResult::local(*it, outcome_, status, name_));
    }
    jobs.push_back(job.recipients);
    done(std::move(r));
  }
  Lane lane(const queue::DeliveryJob&) const override { return {name_, 7}; }
  std::vector<std::vector<std::uint32_t>> jobs;

 private:
  std::string name_;
  Outcome outcome_;
};

queue::DeliveryJob job_for(const std::vector<std::string>& rcpts) {
  queue::DeliveryJob job;
  for (std::uint32_t i = 0; i < rcpts.size(); ++i) {
    auto a = mail::parse_address(rcpts[i]);
    EXPECT_TRUE(a);
    job.message.envelope.recipients.push_back(mail::Recipient{*a, 0, "", ""});
    job.recipients.push_back(i);
  }
  return job;
}

TEST(Router, AJobWithAnyRemoteRecipientRunsInTheRemoteLane) {
  OneDomain dir;
  Recorder local("local", Outcome::kDelivered), remote("remote", Outcome::kDelivered);
  Router router(dir, local, remote);
  EXPECT_EQ(router.lane(job_for({"a@here.test", "b@HERE.test"})).key, "local");
  EXPECT_EQ(router.lane(job_for({"a@here.test", "b@there.test"})).key, "remote");
  EXPECT_EQ(router.lane(job_for({"b@there.test"})).limit, 7u);
}

TEST(Router, SplitsByDomainAndJoinsInTheOrderAsked) {
  OneDomain dir;
  Recorder local("local", Outcome::kDelivered), remote("remote", Outcome::kDeferred);
  Router router(dir, local, remote);
  auto job = job_for({"a@here.test", "b@there.test", "c@HERE.test", "d@else.test"});
  job.recipients = {3, 0, 1, 2};
  std::vector<RecipientResult> got;
  int calls = 0;
  router.deliver(job, [&](std::vector<RecipientResult> r) {
    got = std::move(r);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].index, 3u);
  EXPECT_EQ(got[0].reply.text, "remote");
  EXPECT_EQ(got[1].index, 0u);
  EXPECT_EQ(got[1].reply.text, "local");
  EXPECT_EQ(got[2].index, 1u);
  EXPECT_EQ(got[2].reply.text, "remote");
  EXPECT_EQ(got[3].index, 2u);
  EXPECT_EQ(got[3].reply.text, "local");
  ASSERT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(local.jobs[0], (std::vector<std::uint32_t>{0, 2}));
  ASSERT_EQ(remote.jobs.size(), 1u);
  EXPECT_EQ(remote.jobs[0], (std::vector<std::uint32_t>{3, 1}));
}

TEST(Router, AWhollyLocalOrRemoteJobGoesThroughWhole) {
  OneDomain dir;
  Recorder local("local", Outcome::kDelivered), remote("remote", Outcome::kFailed);
  Router router(dir, local, remote);
  int calls = 0;
  router.deliver(job_for({"a@here.test"}), [&](std::vector<RecipientResult> r) {
    ++calls;
    EXPECT_EQ(r.at(0).reply.text, "local");
  });
  router.deliver(job_for({"a@there.test", "b@there.test"}), [&](std::vector<RecipientResult> r) {
    ++calls;
    EXPECT_EQ(r.size(), 2u);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(local.jobs.size(), 1u);
  EXPECT_EQ(remote.jobs.size(), 1u);
}

}  // namespace
}  // namespace petrel::delivery
