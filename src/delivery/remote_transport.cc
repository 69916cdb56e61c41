// delivery/remote_transport.cc: destinations, their queues and connections (remote_transport.h).
#include "delivery/remote_transport.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/log.h"
#include "base/strings.h"
#include "dns/mx_route.h"
#include "net/asio.h"
#include "net/tls.h"
#include "smtp/client/session.h"

namespace petrel::delivery {

bool parse_tls_level(const std::string& text, TlsLevel& out) {
  if (text == "none") out = TlsLevel::kNone;
  else if (text == "opportunistic") out = TlsLevel::kOpportunistic;
  else if (text == "required") out = TlsLevel::kRequired;
  else if (text == "verify") out = TlsLevel::kVerify;
  else return false;
  return true;
}

namespace {

namespace asio = net::asio;
using queue::RecipientResult;
using Outcome = RecipientResult::Outcome;
using smtp::client::Session;

// Awaits a callback-style operation: `start(cb)` must call cb exactly once, on any thread.
template <typename T>
net::awaitable<T> await_callback(std::function<void(std::function<void(T)>)> start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [start = std::move(start)](auto handler) mutable {
        using Handler = decltype(handler);
        auto h = std::make_shared<Handler>(std::move(handler));
        start([h](T value) mutable {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, value = std::move(value)]() mutable { (*h)(std::move(value)); });
        });
      },
      asio::use_awaitable);
}

// A reply with its enhanced code, or the class default when it has none (RFC 3463: X.0.0).
mail::Reply with_status(mail::Reply r) {
  if (r.enhanced.empty()) r.enhanced = r.code >= 500 ? "5.0.0" : r.code >= 400 ? "4.0.0" : "2.0.0";
  r.more.clear();
  return r;
}

// "4.2.0 text", for log lines.
std::string diagnostic_of(const mail::Reply& r) {
  mail::Reply s = with_status(r);
  return s.enhanced + " " + s.text;
}

// A reply Petrel makes up (no next hop said it).
mail::Reply made(Outcome o, std::string_view enhanced, std::string_view text) {
  return mail::reply(o == Outcome::kDelivered ? 250 : o == Outcome::kFailed ? 550 : 451, enhanced, text);
}

// Why recipients end as they do when no transaction of theirs answered: the reply, and the
// server that gave it while Petrel connected (greeting, EHLO, STARTTLS), else empty.
struct Reason {
  Reason(mail::Reply r = {}, std::string s = {}) : reply(std::move(r)), server(std::move(s)) {}  // NOLINT: implicit
  mail::Reply reply;
  std::string server;
};

// The same reply, with `note` (which host, which stage) after its text.
mail::Reply noted(mail::Reply r, std::string_view note) {
  r.text += " (";
  r.text += note;
  r.text += ")";
  return r;
}

Outcome outcome_of(int code) {
  if (code >= 200 && code < 300) return Outcome::kDelivered;
  if (code >= 500 && code < 600) return Outcome::kFailed;
  return Outcome::kDeferred;
}

// Whether the header section read from `body` has an octet above 127 (RFC 6532 UTF-8 header
// text). Reads up to the empty line that ends it, at most kHeaderScanLimit octets; a header
// section longer than that counts as 8-bit (it could not be checked, and no sane one is).
constexpr std::size_t kHeaderScanLimit = 1 << 20;
base::Result<bool> header_has_8bit(queue::BodyReader& body) {
  std::string window;  // the last 3 octets of the previous chunk, to find "\r\n\r\n" across chunks
  char buf[16384];
  std::size_t seen = 0;
  for (;;) {
    auto n = body.read(buf, sizeof buf);
    if (!n) return n.error();
    if (*n == 0) return false;  // a message that is all header
    std::string_view chunk(buf, *n);
    std::string joined = window + std::string(chunk);
    auto end = joined.find("\r\n\r\n");
    std::string_view header = std::string_view(joined).substr(0, end == std::string::npos ? joined.size() : end);
    if (std::any_of(header.begin(), header.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
      return true;
    }
    if (end != std::string::npos) return false;
    seen += *n;
    if (seen > kHeaderScanLimit) return true;
    window = joined.substr(joined.size() >= 3 ? joined.size() - 3 : 0);
  }
}

// One message and all of its recipients this transport was asked for; answered when every
// transaction made of it is.
struct JobState {
  queue::DeliveryJob job;
  std::function<void(std::vector<RecipientResult>)> done;
  std::vector<RecipientResult> results;  // same order as job.recipients
  std::size_t outstanding = 0;           // transactions not finished
  // For SMTPUTF8 messages only: whether the header has UTF-8 (read once, when first needed).
  std::optional<bool> header_utf8;

  // The body could not be read: the scheduler checks it for damage (queue/transport.h).
  void mark_storage_trouble(std::uint32_t index) {
    for (auto& r : results) {
      if (r.index == index) r.storage_trouble = true;
    }
  }
  void set(std::uint32_t index, RecipientResult r) {
    for (std::size_t k = 0; k < job.recipients.size(); ++k) {
      if (job.recipients[k] == index) {
        r.index = index;
        results[k] = std::move(r);
        return;
      }
    }
  }
  void finish_one() {
    if (--outstanding == 0 && done) std::exchange(done, nullptr)(std::move(results));
  }
};

// One transaction's worth: some recipients of one job, all for one destination.
struct Work {
  std::shared_ptr<JobState> job;
  std::vector<std::uint32_t> recipients;
};

// Someone waiting in a connection for more work; woken by cancelling its timer.
struct IdleWaiter {
  explicit IdleWaiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool woken = false;  // by enqueue(), counted in Destination::waking
};

struct Destination {
  std::string key;     // domain (lower case), or "" for the smarthost
  std::string domain;  // what the route is looked up for
  TlsLevel tls = TlsLevel::kOpportunistic;
  std::deque<Work> queue;
  std::vector<IdleWaiter*> idle;  // connections waiting for work, newest last
  std::size_t connections = 0;    // open or opening
  std::size_t opening = 0;        // of those, not yet taking work (resolving, connecting)
  std::size_t waking = 0;         // idle connections woken for new work, not yet running
  bool waiting_for_slot = false;  // in Impl::starved
};

}  // namespace

class RemoteTransport::Impl : public std::enable_shared_from_this<RemoteTransport::Impl> {
 public:
  Impl(const queue::Spool& spool, RemoteOptions options) : spool_(spool), options_(std::move(options)) {}

  base::Status start(const ResolverFactory& resolvers) {
    auto plain = net::make_client_tls_context({false, ""});
    if (!plain) return plain.error();
    tls_any_ = std::move(plain).value();
    auto verify = net::make_client_tls_context({true, options_.ca_file});
    if (!verify) return verify.error();
    tls_verify_ = std::move(verify).value();
    auto r = resolvers(io_->get_executor());
    if (!r) return r.error();
    resolver_ = std::move(r).value();
    guard_.emplace(asio::make_work_guard(*io_));
    thread_ = std::thread([this] { io_->run(); });
    return {};
  }

  // Idle connections say QUIT, queued work is deferred; connections in a transaction get up
  // to two seconds to finish, then the loop stops and what is left is dropped (the scheduler
  // is already stopped: it tries those recipients again after the restart).
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(*io_, [this] {
      stopping_ = true;
      for (auto& [key, d] : destinations_) {
        for (IdleWaiter* w : d.idle) w->timer.cancel();
      }
      fail_all_queued();
    });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (live_.load() > 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    guard_.reset();
    io_->stop();
    thread_.join();
    resolver_.reset();
    io_.reset();  // destroys the coroutines still suspended, and with them their sessions
  }

  void deliver(queue::DeliveryJob job, std::function<void(std::vector<RecipientResult>)> done) {
    auto state = std::make_shared<JobState>();
    state->job = std::move(job);
    state->done = std::move(done);
    asio::post(*io_, [self = shared_from_this(), state] { self->accept(state); });
  }

  RemoteStats stats() const {
    std::lock_guard lock(stats_mu_);
    return stats_;
  }
  const RemoteOptions& options() const { return options_; }  // fixed after construction

 private:
  // ---- on the transport's thread from here on ----

  void accept(const std::shared_ptr<JobState>& state) {
    const auto& rcpts = state->job.message.envelope.recipients;
    state->results.resize(state->job.recipients.size());
    for (std::size_t k = 0; k < state->job.recipients.size(); ++k) {
      state->results[k] = RecipientResult::local(state->job.recipients[k], Outcome::kDeferred, "4.4.0", "not attempted");
    }
    if (stopping_) {
      state->outstanding = 1;
      state->finish_one();
      return;
    }
    // Group by destination, in the order recipients were given, cut at max_recipients.
    std::vector<std::pair<std::string, std::vector<std::uint32_t>>> groups;
    for (std::uint32_t index : state->job.recipients) {
      PETREL_ASSERT(index < rcpts.size(), "recipient index out of range");
      std::string key = options_.relay_host.empty() ? rcpts[index].address.domain_key() : std::string();
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const auto& x) { return x.first == key && x.second.size() < options_.max_recipients; });
      if (g == groups.end()) {
        groups.push_back({key, {}});
        g = groups.end() - 1;
      }
      g->second.push_back(index);
    }
    state->outstanding = groups.size() + 1;  // +1: held until every Work is queued
    for (auto& [key, indices] : groups) enqueue(key, Work{state, std::move(indices)});
    state->finish_one();
  }

  Destination& destination(const std::string& key) {
    auto [it, fresh] = destinations_.try_emplace(key);
    Destination& d = it->second;
    if (fresh) {
      d.key = key;
      d.domain = key.empty() ? options_.relay_host : key;
      d.tls = options_.tls;
      // The smarthost's entry is its host name (or address) as relay_host gives it.
      auto p = options_.tls_policy.find(key.empty() ? base::to_lower(options_.relay_host) : key);
      const bool named = p != options_.tls_policy.end();
      if (named) d.tls = p->second;
      if (key.empty() && !options_.relay_user.empty()) {
        // A password goes there: verified TLS unless the operator said "required" for it.
        d.tls = named ? std::max(d.tls, TlsLevel::kRequired) : TlsLevel::kVerify;
      }
    }
    return d;
  }

  void enqueue(const std::string& key, Work work) {
    Destination& d = destination(key);
    d.queue.push_back(std::move(work));
    if (!d.idle.empty()) {
      IdleWaiter* w = d.idle.back();
      d.idle.pop_back();
      ++d.waking;
      w->woken = true;
      w->timer.cancel();  // it takes the work (or, if another connection was quicker, waits on)
      return;
    }
    maybe_connect(d);
  }

  // Opens one more connection to `d` if it has unclaimed work and the limits allow.
  void maybe_connect(Destination& d) {
    if (d.queue.size() <= d.opening + d.waking) return;
    if (d.connections >= options_.connections_per_destination) return;
    if (connections_ >= options_.max_connections) {
      if (!d.waiting_for_slot) {
        d.waiting_for_slot = true;
        starved_.push_back(d.key);
      }
      return;
    }
    ++d.connections;
    ++d.opening;
    ++connections_;
    live_.fetch_add(1);
    asio::co_spawn(*io_, run_connection(d.key), asio::detached);
  }

  void connection_ended(const std::string& key) {
    --connections_;
    live_.fetch_sub(1);
    if (auto it = destinations_.find(key); it != destinations_.end()) {
      Destination& d = it->second;
      --d.connections;
      maybe_connect(d);
      forget_if_idle(key);
    }
    while (connections_ < options_.max_connections && !starved_.empty()) {
      std::string k = std::move(starved_.front());
      starved_.pop_front();
      auto it = destinations_.find(k);
      if (it == destinations_.end()) continue;
      it->second.waiting_for_slot = false;
      maybe_connect(it->second);
    }
  }

  void forget_if_idle(const std::string& key) {
    auto it = destinations_.find(key);
    if (it == destinations_.end()) return;
    const Destination& d = it->second;
    if (d.queue.empty() && d.connections == 0 && d.idle.empty() && !d.waiting_for_slot) destinations_.erase(it);
  }

  // Ends `work` with the same answer for each of its recipients.
  void finish_all(Work& work, Outcome outcome, const Reason& why, const std::string& relay) {
    for (std::uint32_t i : work.recipients) finish_reason(work, i, outcome, why, relay);
    work.job->finish_one();
  }
  // `why` is the server's reply when `from_server` (then its code is recorded and the DSN
  // names the Remote-MTA, RFC 3464 2.3.5), else an answer Petrel made up.
  // `handoff` matters for kDelivered only (queue/transport.h).
  void finish_one(Work& work, std::uint32_t index, Outcome outcome, const mail::Reply& why, bool from_server,
                  const std::string& relay, std::size_t reused,
                  RecipientResult::Handoff handoff = RecipientResult::Handoff::kRelayed) {
    std::string host = from_server ? relay.substr(0, relay.find('[')) : std::string();
    finish(work, index, outcome, why, from_server, host, diagnostic_of(why), relay, reused, handoff);
  }
  // A Reason a server gave while connecting is that server's answer (RFC 3464 2.3.5: the
  // Remote-MTA that reported the status), with its code in the log line.
  void finish_reason(Work& work, std::uint32_t index, Outcome outcome, const Reason& why, const std::string& relay) {
    if (why.server.empty()) return finish_one(work, index, outcome, why.reply, false, relay, 0);
    finish(work, index, outcome, why.reply, true, why.server,
           std::to_string(why.reply.code) + " " + diagnostic_of(why.reply), relay, 0, RecipientResult::Handoff::kRelayed);
  }
  void finish(Work& work, std::uint32_t index, Outcome outcome, const mail::Reply& why, bool from_server,
              const std::string& host, const std::string& log_why, const std::string& relay, std::size_t reused,
              RecipientResult::Handoff handoff) {
    const auto& env = work.job->job.message.envelope;
    PETREL_LOG(kInfo, "delivery.remote", "id={} rcpt={} relay={} result={} why=\"{}\" conn_reused={}",
               work.job->job.message.id, base::log_escape(env.recipients[index].address.str()),
               relay.empty() ? "none" : relay,
               outcome == Outcome::kDelivered ? "delivered" : outcome == Outcome::kFailed ? "failed" : "deferred",
               base::log_escape(log_why), reused);
    {
      std::lock_guard lock(stats_mu_);
      (outcome == Outcome::kDelivered ? stats_.delivered : outcome == Outcome::kFailed ? stats_.failed : stats_.deferred)++;
    }
    RecipientResult r;
    r.index = index;
    r.outcome = outcome;
    r.reply = with_status(why);
    r.peer_reply = from_server;
    r.remote_host = host;
    r.handoff = handoff;
    work.job->set(index, std::move(r));
  }

  void fail_all_queued() {
    for (auto& [key, d] : destinations_) {
      while (!d.queue.empty()) {
        Work w = std::move(d.queue.front());
        d.queue.pop_front();
        finish_all(w, Outcome::kDeferred, made(Outcome::kDeferred, "4.3.2", "mail system shutting down"), "");
      }
    }
  }

  // Where `d`'s mail goes: the MX route, or the smarthost's addresses.
  net::awaitable<dns::Route> route_for(const Destination& d) {
    dns::RouteOptions ro;
    ro.is_self = [self = shared_from_this()](std::string_view host, std::string_view address) {
      return self->options_.is_self && self->options_.is_self(std::string(host), std::string(address));
    };
    ro.prefer_ipv4 = options_.prefer_ipv4;
    std::string name = d.domain;
    if (d.key.empty()) {
      // A smarthost is one host: its own addresses, never its MX (Postfix's "[host]").
      ro.is_self = nullptr;
      bool numeric = name.find(':') != std::string::npos || std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= '0' && c <= '9') || c == '.';
                     });
      if (numeric) {
        name = name.find(':') != std::string::npos ? "[IPv6:" + name + "]" : "[" + name + "]";
      } else {
        dns::Route r = co_await host_route(name);
        co_return r;
      }
    }
    // Named, not a temporary inside the co_await: GCC 12 destroys such temporaries twice.
    std::function<void(std::function<void(dns::Route)>)> start = [this, name, ro](std::function<void(dns::Route)> cb) {
      dns::find_route(*resolver_, name, ro, std::move(cb));
    };
    dns::Route route = co_await await_callback<dns::Route>(std::move(start));
    co_return route;
  }

  // A named smarthost: AAAA and A, no MX.
  net::awaitable<dns::Route> host_route(const std::string& host) {
    dns::Route route;
    dns::Hop hop;
    hop.host = host;
    bool temporary = false;
    for (dns::Type t : options_.prefer_ipv4 ? std::vector{dns::Type::kA, dns::Type::kAaaa}
                                            : std::vector{dns::Type::kAaaa, dns::Type::kA}) {
      std::function<void(std::function<void(dns::Answer)>)> start = [this, host, t](std::function<void(dns::Answer)> cb) {
        resolver_->lookup(host, t, std::move(cb));
      };
      dns::Answer a = co_await await_callback<dns::Answer>(std::move(start));
      if (a.status == dns::Status::kOk) {
        for (auto& addr : a.addresses) hop.addresses.push_back(std::move(addr));
      } else if (a.status == dns::Status::kTemporary) {
        temporary = true;
      }
    }
    if (!hop.addresses.empty()) {
      route.kind = dns::Route::Kind::kOk;
      route.hops.push_back(std::move(hop));
    } else {
      // A smarthost that does not resolve is a configuration problem: never a bounce.
      route.kind = dns::Route::Kind::kTemporary;
      route.enhanced = "4.4.3";
      route.text = (temporary ? "cannot look up the relay host " : "the relay host has no address: ") + host;
    }
    co_return route;
  }

  smtp::client::SessionOptions session_options(const Destination& d, bool plain) const {
    smtp::client::SessionOptions o;
    o.helo_name = options_.hostname;
    switch (plain ? TlsLevel::kNone : d.tls) {
      case TlsLevel::kNone: o.tls = smtp::client::TlsPolicy::kNone; break;
      case TlsLevel::kOpportunistic: o.tls = smtp::client::TlsPolicy::kOpportunistic; break;
      case TlsLevel::kRequired:
      case TlsLevel::kVerify: o.tls = smtp::client::TlsPolicy::kRequired; break;
    }
    o.tls_context = d.tls == TlsLevel::kVerify ? tls_verify_.get() : tls_any_.get();
    if (d.key.empty()) {
      o.auth_user = options_.relay_user;
      o.auth_password = options_.relay_password;
    }
    auto& t = o.timeouts;
    t.connect = options_.connect_timeout;
    t.greeting = t.ehlo = t.starttls = t.auth = t.mail = t.rcpt = t.rset = options_.command_timeout;
    t.data_init = std::min<std::chrono::steady_clock::duration>(options_.command_timeout, std::chrono::minutes(2));
    t.data_block = t.data_done = options_.data_timeout;
    return o;
  }

  // Where in the route the next connection attempt starts.
  struct Cursor {
    std::size_t hop = 0, address = 0;
  };

  // Opens a session to the first hop from `at` that answers; advances `at` past it.
  // `last` keeps the reason of the last failure.
  net::awaitable<std::unique_ptr<Session>> open_next(const Destination& d, const dns::Route& route, Cursor& at,
                                                     Reason& last, std::string& relay) {
    while (at.hop < route.hops.size()) {
      const dns::Hop& hop = route.hops[at.hop];
      if (at.address >= hop.addresses.size()) {
        ++at.hop;
        at.address = 0;
        continue;
      }
      const std::string address = hop.addresses[at.address++];
      std::uint16_t port = d.key.empty() ? options_.relay_port : options_.port;
      for (bool plain : {false, true}) {
        if (stopping_) co_return nullptr;
        auto opened = co_await Session::open(io_->get_executor(), address, port, hop.host, session_options(d, plain));
        if (auto* s = std::get_if<std::unique_ptr<Session>>(&opened)) {
          std::lock_guard lock(stats_mu_);
          ++stats_.connections;
          relay = (*s)->peer();
          co_return std::move(*s);
        }
        const auto& f = std::get<smtp::client::OpenFailure>(opened);
        {
          std::lock_guard lock(stats_mu_);
          ++stats_.connect_failures;
        }
        // Not the answer of a recipient: the reason the host was given up, which the next
        // one may replace. A server's code is named in the text.
        last = Reason(noted(with_status(f.reply), hop.host + "[" + address + "] at " + f.stage),
                      f.from_server ? hop.host : std::string());
        PETREL_LOG(kWarn, "remote.connect_failed", "destination={} host={} address={} stage={} why=\"{}\"",
                   d.key.empty() ? "relay" : d.key, hop.host, address, f.stage,
                   base::log_escape(f.detail.empty() ? diagnostic_of(f.reply) : f.detail));
        // Postfix "may": a failed handshake is tried once more in plain text.
        if (!(f.tls_failed && d.tls == TlsLevel::kOpportunistic)) break;
      }
    }
    co_return nullptr;
  }

  // One connection's life: route, open, then transactions from the destination's queue.
  net::awaitable<void> run_connection(std::string key) {
    auto self = shared_from_this();  // alive until the coroutine ends
    // A destination with connections is never erased, and unordered_map nodes do not move.
    Destination& dest = destinations_.at(key);
    dns::Route route = co_await route_for(dest);

    if (route.kind != dns::Route::Kind::kOk) {
      // The whole destination shares the answer: everything queued for it now.
      Outcome o = route.kind == dns::Route::Kind::kPermanent ? Outcome::kFailed : Outcome::kDeferred;
      mail::Reply why =
          made(o, route.enhanced.empty() ? std::string_view(o == Outcome::kFailed ? "5.4.4" : "4.4.3") : route.enhanced,
               route.text);
      --dest.opening;
      drain(dest, o, why);
      connection_ended(key);
      co_return;
    }

    Cursor at;
    Reason last = made(Outcome::kDeferred, "4.4.1", "no host could be reached");
    std::string relay;
    std::unique_ptr<Session> session = co_await open_next(dest, route, at, last, relay);
    --dest.opening;
    if (!session) {
      drain(dest, Outcome::kDeferred, last);
      connection_ended(key);
      co_return;
    }

    std::size_t sent = 0;
    IdleWaiter idle(io_->get_executor());
    std::optional<std::chrono::steady_clock::time_point> idle_until;
    while (!stopping_) {
      Destination& d = dest;
      if (d.queue.empty()) {
        // Wait for more mail to this destination (connection reuse), up to idle_time in all:
        // woken for work that another connection took first, it waits on for the rest.
        auto now = std::chrono::steady_clock::now();
        if (!idle_until) idle_until = now + options_.idle_time;
        if (now >= *idle_until) break;
        d.idle.push_back(&idle);
        idle.timer.expires_at(*idle_until);
        auto [ec] = co_await idle.timer.async_wait(net::use_nothrow);
        (void)ec;  // expiry or a cancel by enqueue()/stop(): either way, look at the queue
        if (idle.woken) {
          idle.woken = false;
          --d.waking;
        }
        auto mine = std::find(d.idle.begin(), d.idle.end(), &idle);
        if (mine != d.idle.end()) d.idle.erase(mine);  // timed out (not taken by enqueue)
        continue;
      }
      idle_until.reset();
      Work work = std::move(d.queue.front());
      d.queue.pop_front();
      // More queued than connections being made: let another one help.
      maybe_connect(d);

      bool done = co_await transact(dest, route, at, session, work, sent, last, relay);
      if (!done) {
        // The work's remaining recipients were deferred; this connection and the route are spent.
        break;
      }
      if (!session || !session->usable() || sent >= options_.max_messages_per_connection) break;
    }
    if (session) co_await session->quit();
    connection_ended(key);
  }

  // Runs `work` on `session`, moving on to the next hops when the connection fails. Returns
  // false when no hop is left (the work is then finished with deferrals) and the connection
  // should end.
  net::awaitable<bool> transact(const Destination& dest, const dns::Route& route, Cursor& at,
                                std::unique_ptr<Session>& session, Work& work, std::size_t& sent, Reason& last,
                                std::string& relay) {
    std::vector<std::uint32_t> todo = work.recipients;
    bool too_big = false;
    bool started_over = false;
    // Another host after this one: a 4xx from this one moves on to it.
    auto another_host = [&route, &at] { return at.hop + 1 < route.hops.size(); };
    while (true) {
      if (!session) {
        const Cursor before = at;
        session = co_await open_next(dest, route, at, last, relay);
        sent = 0;
        if (!session) {
          // Too big only if every host left said so: a host that could not be reached might
          // take it another time.
          const bool unreached = at.hop != before.hop || at.address != before.address;
          for (std::uint32_t i : todo) {
            if (too_big && !unreached) {
              finish_one(work, i, Outcome::kFailed,
                         made(Outcome::kFailed, "5.3.4", "message too big for every host of the destination"), false,
                         relay, 0);
            } else {
              finish_reason(work, i, Outcome::kDeferred, last, relay);
            }
          }
          work.job->finish_one();
          co_return false;
        }
      }
      auto reader = spool_.open_body(work.job->job.message);
      if (!reader) {
        for (std::uint32_t i : todo) {
          finish_one(work, i, Outcome::kDeferred, made(Outcome::kDeferred, "4.3.0", "cannot read the message from the queue"),
                     false, relay, 0);
          work.job->mark_storage_trouble(i);
        }
        PETREL_LOG(kError, "delivery.remote_body", "id={} error=\"{}\"", work.job->job.message.id,
                   base::log_escape(reader.error().message));
        work.job->finish_one();
        co_return true;
      }
      std::shared_ptr<queue::BodyReader> body = std::move(reader).value();
      const auto& env = work.job->job.message.envelope;
      if (env.smtputf8 && !work.job->header_utf8 && !session->capabilities().smtputf8) {
        // Only asked when the next hop lacks SMTPUTF8: then UTF-8 header text forbids sending
        // (RFC 6531 3.2, as Postfix decides it). Its own reader: `body` stays at the start.
        auto probe = spool_.open_body(work.job->job.message);
        auto utf8 = probe ? header_has_8bit(**probe) : base::Result<bool>(probe.error());
        work.job->header_utf8 = utf8 ? *utf8 : true;  // unreadable: the body read below fails too
      }
      smtp::client::Transaction t;
      t.header_utf8 = work.job->header_utf8.value_or(false);
      t.envelope = &work.job->job.message.envelope;
      t.recipients = todo;
      t.body_size = work.job->job.message.body.length;
      t.read_body = [body](char* buf, std::size_t n) { return body->read(buf, n); };
      std::size_t reused = sent;
      {
        std::lock_guard lock(stats_mu_);
        ++stats_.transactions;
        if (sent > 0) ++stats_.reused;
      }
      smtp::client::TransactionResult result = co_await session->send(t);
      ++sent;

      std::vector<std::uint32_t> again;  // to try at the next hop
      std::vector<std::uint32_t> more;   // "452 too many recipients": a new transaction here
      bool broke = false;                // the connection failed (not a reply)
      bool refused_for_now = false;      // a 4xx reply, and another host to ask
      // RFC 5321 4.5.3.1.10: a server may take fewer recipients than sent, answering 452 to the
      // rest; they go in the next transaction on this connection, as long as each one delivers
      // some (no loop with a server that refuses everything with 452).
      const bool progress = result.connection_usable &&
                            std::any_of(result.recipients.begin(), result.recipients.end(),
                                        [](const auto& r) { return r.reply.code >= 200 && r.reply.code < 300; });
      for (const auto& r : result.recipients) {
        Outcome o = outcome_of(r.reply.code);
        mail::Reply why = with_status(r.reply);
        if (!r.from_server && r.reply.code == 552 && r.reply.enhanced == "5.3.4") {
          too_big = true;  // SIZE: this host will not take it; perhaps another will
          again.push_back(r.index);
          last = why;
          continue;
        }
        if (o == Outcome::kDeferred && !result.connection_usable) {
          again.push_back(r.index);
          broke = true;
          last = noted(why, relay);
          continue;
        }
        if (o == Outcome::kDeferred && r.from_server && r.reply.code == 452 && progress) {
          more.push_back(r.index);
          continue;
        }
        if (o == Outcome::kDeferred && r.from_server && another_host()) {
          again.push_back(r.index);
          refused_for_now = true;
          last = noted(why, relay);
          PETREL_LOG(kInfo, "delivery.remote_next_host", "id={} rcpt={} relay={} why=\"{}\"", work.job->job.message.id,
                     base::log_escape(work.job->job.message.envelope.recipients[r.index].address.str()), relay,
                     base::log_escape(diagnostic_of(why)));
          continue;
        }
        // A next hop that offers DSN got our NOTIFY/ORCPT (commands.cc) and reports from here on.
        finish_one(work, r.index, o, why, r.from_server, relay, reused,
                   session->capabilities().dsn ? RecipientResult::Handoff::kPassedOn
                                               : RecipientResult::Handoff::kRelayed);
      }
      if (again.empty() && !more.empty()) {
        todo = std::move(more);
        continue;  // the same session: it is usable (progress)
      }
      again.insert(again.end(), more.begin(), more.end());
      if (again.empty()) {
        work.job->finish_one();
        if (!result.connection_usable) session.reset();
        co_return true;
      }
      // The connection broke, this host refuses the size, or it said 4xx with another host to
      // ask: the rest goes to the next hop.
      // A reused connection that broke (the server closed it while idle, or ended it after
      // its own message limit: a 421 to RSET) says nothing about the host: start the route
      // over once, rather than skip the preferred host or defer.
      if (broke && reused > 0 && !too_big && !started_over) {
        started_over = true;
        at = Cursor{};
      } else if ((refused_for_now || too_big) && at.hop < route.hops.size()) {
        // This host answered: its other addresses would say the same. On to the next host.
        ++at.hop;
        at.address = 0;
      }
      todo = std::move(again);
      if (session) {
        if (result.connection_usable) co_await session->quit();
        session.reset();
      }
    }
  }

  // Ends everything queued for `d` with one answer (a route or connection failure).
  void drain(Destination& d, Outcome o, const Reason& why) {
    while (!d.queue.empty()) {
      Work w = std::move(d.queue.front());
      d.queue.pop_front();
      finish_all(w, o, why, "");
    }
  }

  const queue::Spool& spool_;
  const RemoteOptions options_;
  std::unique_ptr<asio::io_context> io_ = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::unique_ptr<dns::Resolver> resolver_;
  std::shared_ptr<asio::ssl::context> tls_any_, tls_verify_;

  std::unordered_map<std::string, Destination> destinations_;
  std::atomic<std::size_t> live_{0};                      // connections_, readable from stop()
  std::deque<std::string> starved_;                       // destinations waiting for a global slot
  std::size_t connections_ = 0;
  bool stopping_ = false;

  mutable std::mutex stats_mu_;
  RemoteStats stats_;
};

base::Result<std::unique_ptr<RemoteTransport>> RemoteTransport::create(const queue::Spool& spool,
                                                                       RemoteOptions options,
                                                                       const ResolverFactory& resolvers) {
  auto impl = std::make_shared<Impl>(spool, std::move(options));
  if (auto s = impl->start(resolvers); !s) return s.error();
  return std::unique_ptr<RemoteTransport>(new RemoteTransport(std::move(impl)));
}

RemoteTransport::~RemoteTransport() { impl_->stop(); }

void RemoteTransport::deliver(queue::DeliveryJob job, std::function<void(std::vector<RecipientResult>)> done) {
  impl_->deliver(std::move(job), std::move(done));
}

RemoteStats RemoteTransport::stats() const { return impl_->stats(); }

queue::Transport::Lane RemoteTransport::lane(const queue::DeliveryJob& job) const {
  const RemoteOptions& o = impl_->options();
  Lane l;
  l.limit = 2 * std::max<std::size_t>(o.connections_per_destination, 1);
  if (!o.relay_host.empty() || job.recipients.empty()) {
    l.key = "relay";
  } else {
    l.key = "remote:" + job.message.envelope.recipients.at(job.recipients.front()).address.domain_key();
  }
  return l;
}

}  // namespace petrel::delivery
