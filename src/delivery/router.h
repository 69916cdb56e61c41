// delivery/router.h: the Transport the scheduler sees: recipients in domains we serve go to
// local delivery, every other recipient to remote delivery.
//
// Promise (queue/transport.h): `done` is called once per deliver(), with one result per
// recipient asked for, in the order asked, once both halves have answered (from whichever
// thread answered last). A job wholly local or wholly remote is passed through unchanged.
// The split is by domain (auth::Directory::serves_domain), read from the directory's snapshot
// at delivery time: a domain added while mail waits is delivered locally from then on.
// Not done here: anything about how either half delivers.
// Thread: deliver() from any thread; both transports and the directory must outlive the router.
#pragma once

#include "auth/directory.h"
#include "queue/transport.h"

namespace petrel::delivery {

class Router final : public queue::Transport {
 public:
  Router(const auth::Directory& directory, queue::Transport& local, queue::Transport& remote)
      : directory_(directory), local_(local), remote_(remote) {}

  void deliver(queue::DeliveryJob job, std::function<void(std::vector<queue::RecipientResult>)> done) override;
  // The remote side's lane when the job has a remote recipient (the slow side of a mixed job),
  // else the local side's.
  Lane lane(const queue::DeliveryJob& job) const override;

 private:
  const auth::Directory& directory_;
  queue::Transport& local_;
  queue::Transport& remote_;
};

}  // namespace petrel::delivery
