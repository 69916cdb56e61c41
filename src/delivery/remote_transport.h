// delivery/remote_transport.h: the outbound mail transfer agent: a queue::Transport that hands
// queued mail to the next hop over SMTP (smtp/client), found by MX lookup (dns/mx_route) or
// named in config (a smarthost).
//
// What it is: one event-loop thread of its own running every outbound connection as a
// coroutine, and the bookkeeping that makes them cheap:
//   - A job's recipients are grouped by destination (the recipient's domain, or the one
//     smarthost) and cut into transactions of at most `max_recipients`.
//   - Each destination has a queue of transactions and at most `connections_per_destination`
//     connections; all destinations share `max_connections`. A connection that finishes a
//     transaction takes the next one queued for its destination (RSET, then MAIL: connection
//     reuse), waits up to `idle_time` for one to arrive, and is closed after
//     `max_messages_per_connection` transactions.
//   - A new connection resolves the route (RFC 5321 5, dns/mx_route.h) and tries its hosts and
//     addresses in order until one opens (greeting, EHLO, STARTTLS per policy, AUTH for a
//     smarthost). With TLS "opportunistic", an address whose handshake fails is tried once more
//     in plain text (as Postfix's "may" does).
// Promise (queue/transport.h): `done` is called exactly once per deliver(), on the transport's
// thread, with one result per recipient asked for, in order. kDelivered means the next hop
// answered 2xx to the final dot (it took responsibility, RFC 5321 6.1).
// Results per recipient:
//   - 2xx → delivered; 5xx → failed (bounced by the queue); 4xx → the next MX host at once (a
//     backup MX may take what the first refused for now), and deferred (retried later) when no
//     host is left. The connection goes on with the host that took them.
//   - Connection trouble (refused, lost, timed out, a 4xx/5xx greeting, TLS failure) → the next
//     address, then the next MX host; when every hop failed, deferred with the last reason.
//     A reused connection that breaks (closed while idle, a 421 to RSET) starts the route
//     over once: it says nothing about the host.
//   - "452" to some recipients of a transaction that delivered others (too many recipients,
//     RFC 5321 4.5.3.1.10) → at once in another transaction on the same connection.
//   - The server's SIZE below the message → the next host; failed 5.3.4 when every host left
//     said so, deferred when one of them could not be reached.
//   - An SMTPUTF8 message to a server without SMTPUTF8 → failed 5.6.7 (RFC 6531 3.2).
//   - Route failures: null MX → failed 5.1.10; MX pointing back at us → failed 5.4.6; no such
//     domain → failed 5.1.2; DNS trouble (SERVFAIL, timeout) → deferred 4.4.3, never failed.
//   - A destination none of whose hops could be reached defers everything queued for it at
//     that moment too (they would meet the same hosts); later jobs try again afresh.
// Every recipient gives one log line:
//   delivery.remote id=<queue id> rcpt=<address> relay=<host[address]> result=delivered|
//                   deferred|failed why="<reply or reason>" conn_reused=<n>
// Not done here: retry timing and bounces (queue::Scheduler), local recipients (router.h).
// Thread: deliver() from any thread (it posts to the transport's thread). The spool and the
// resolver factory's resolver are used on the transport's thread only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "dns/resolver.h"
#include "queue/spool.h"
#include "queue/transport.h"

namespace petrel::delivery {

enum class TlsLevel : std::uint8_t { kNone, kOpportunistic, kRequired, kVerify };
// "none" | "opportunistic" | "required" | "verify"; false when unknown.
bool parse_tls_level(const std::string& text, TlsLevel& out);

struct RemoteOptions {
  std::string hostname;  // our EHLO name
  std::uint16_t port = 25;
  // Smarthost: every message goes to relay_host:relay_port (a name is looked up with A/AAAA,
  // never MX); empty = MX routing.
  std::string relay_host;
  std::uint16_t relay_port = 25;
  // AUTH at the smarthost. Then its TLS level is "verify" (a certificate valid for relay_host:
  // the password never goes to a man in the middle), unless tls_policy names relay_host, which
  // may lower it to "required" but never below.
  std::string relay_user, relay_password;
  TlsLevel tls = TlsLevel::kOpportunistic;
  std::map<std::string, TlsLevel> tls_policy;  // per destination domain, or the smarthost's name (lower case)
  std::string ca_file;                         // for kVerify; empty = system store
  std::size_t connections_per_destination = 20;
  std::size_t max_connections = 200;
  std::size_t max_recipients = 50;
  std::size_t max_messages_per_connection = 100;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds command_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds data_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds idle_time{std::chrono::seconds(5)};
  bool prefer_ipv4 = false;
  // Is (host name, address) this server? For the MX loop check; empty = never. A plain
  // function so that tests and the app decide what "us" is (app: our host name, and our
  // listeners' addresses on `port`).
  std::function<bool(const std::string& host, const std::string& address)> is_self;
};

// Counters since start, for logs, `petrel queue` and the benchmarks (connection reuse shows
// as transactions > connections).
struct RemoteStats {
  std::uint64_t connections = 0;        // sessions opened (greeting to ready)
  std::uint64_t connect_failures = 0;   // hop attempts that did not open
  std::uint64_t transactions = 0;       // send() calls
  std::uint64_t reused = 0;             // of those, on a connection that had sent before
  std::uint64_t delivered = 0, deferred = 0, failed = 0;  // recipients
};

class RemoteTransport final : public queue::Transport {
 public:
  using ResolverFactory = std::function<base::Result<std::unique_ptr<dns::Resolver>>(
      boost::asio::any_io_executor)>;

  // Starts the transport's thread. `resolvers` makes the resolver on that thread's executor
  // (the real UnboundResolver, or a fake in tests). Fails when the TLS contexts or the
  // resolver cannot be made.
  static base::Result<std::unique_ptr<RemoteTransport>> create(const queue::Spool& spool, RemoteOptions options,
                                                               const ResolverFactory& resolvers);
  // Ends every connection (jobs in progress get deferred results), then joins the thread.
  ~RemoteTransport() override;
  RemoteTransport(const RemoteTransport&) = delete;
  RemoteTransport& operator=(const RemoteTransport&) = delete;

  void deliver(queue::DeliveryJob job, std::function<void(std::vector<queue::RecipientResult>)> done) override;
  // One lane per destination (the first recipient's domain, or the smarthost), allowed twice
  // its connections in flight: each connection has its next message ready, and a slow
  // destination keeps the rest of the scheduler's slots free for other mail.
  Lane lane(const queue::DeliveryJob& job) const override;

  RemoteStats stats() const;

  class Impl;

 private:
  explicit RemoteTransport(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace petrel::delivery
