// dns/unbound_resolver.h: the real Resolver, over libunbound, driven by an Asio executor.
//
// Why libunbound and not c-ares: it validates DNSSEC and reports the "secure" bit DANE will need,
// it exposes one file descriptor we can wait on from the event loop, and it is packaged in Debian.
// Promise: lookups run concurrently; each completes (on the executor, exactly once) with the
// answer or, at the latest when `timeout` expires, with kTemporary "timeout" (our own timer:
// unbound itself keeps retrying for much longer). Answers are cached by unbound for their TTL,
// which is right in production; tests must use fresh names or a fresh resolver.
// Threads: libunbound runs its resolution in one background thread of its own (ub_ctx_async 1;
// the alternative is a forked process), and hands results back through ub_fd(), which we wait on
// from the executor; callbacks and all our state live on a strand of that executor. Petrel
// starts no thread for DNS.
// Failure: create() fails (permanently) on an unusable option: a bad server address or an
// unreadable trust anchor file. An unreadable /etc/resolv.conf or /etc/hosts is logged, and
// unbound then resolves from the root itself.
// Destruction: from any thread; lookups still pending complete with kTemporary "resolver closed"
// if the executor still runs, or are dropped with it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "dns/resolver.h"

namespace petrel::dns {

struct UnboundOptions {
  // Forwarders, "192.0.2.53:53" or "[2001:db8::53]:53" (addresses, not names). Empty: the
  // system's /etc/resolv.conf and /etc/hosts.
  std::vector<std::string> servers;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per lookup
  // DNSSEC trust anchor file (unbound's auto-trust-anchor-file format, e.g.
  // /usr/share/dns/root.key). Empty: no validation, Answer::secure is always false.
  std::string trust_anchor_file;
};

class UnboundResolver final : public Resolver {
 public:
  static base::Result<std::unique_ptr<UnboundResolver>> create(boost::asio::any_io_executor executor,
                                                               UnboundOptions options);
  ~UnboundResolver() override;
  UnboundResolver(const UnboundResolver&) = delete;
  UnboundResolver& operator=(const UnboundResolver&) = delete;

  void lookup(std::string name, Type type, std::function<void(Answer)> done) override;
  void post(std::function<void()> fn) override;

  class Impl;

 private:
  explicit UnboundResolver(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace petrel::dns
