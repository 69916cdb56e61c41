// unbound_resolver.cc: libunbound's async API on an Asio strand (contract: unbound_resolver.h).
//
// Shape: lookup() posts to the strand; start() registers a Pending (timer + callback) and calls
// ub_resolve_async(); while anything is pending we wait for ub_fd() to become readable and call
// ub_process(), which runs on_result() for each finished query. Whichever comes first, the
// result or the timer, finishes the Pending; the other is cancelled (ub_cancel() guarantees the
// callback is not called afterwards). `done` is always posted, never called from inside
// ub_process() or lookup(), so a callback may start lookups or destroy the resolver.
#include "dns/unbound_resolver.h"

#include <arpa/inet.h>
#include <unbound.h>
#include <unistd.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "base/log.h"
#include "base/strings.h"
#include "dns/rdata.h"

namespace petrel::dns {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

constexpr int kClassIn = 1;

int rr_type(Type type) {
  switch (type) {
    case Type::kA: return 1;
    case Type::kAaaa: return 28;
    case Type::kMx: return 15;
    case Type::kTxt: return 16;
    case Type::kPtr: return 12;
  }
  return 0;
}

Answer temporary(std::string why) {
  Answer a;
  a.status = Status::kTemporary;
  a.why = std::move(why);
  return a;
}

std::string rcode_name(int rcode) {
  switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "rcode " + std::to_string(rcode);
  }
}

// One record's RDATA into the Answer's vector for its type; false when it does not parse.
bool add_record(Answer& a, Type type, const std::uint8_t* data, std::size_t size) {
  switch (type) {
    case Type::kA:
      if (auto v = parse_a(data, size)) return a.addresses.push_back(std::move(*v)), true;
      return false;
    case Type::kAaaa:
      if (auto v = parse_aaaa(data, size)) return a.addresses.push_back(std::move(*v)), true;
      return false;
    case Type::kMx:
      if (auto v = parse_mx(data, size)) return a.mx.push_back(std::move(*v)), true;
      return false;
    case Type::kTxt:
      if (auto v = parse_txt(data, size)) return a.texts.push_back(std::move(*v)), true;
      return false;
    case Type::kPtr:
      if (auto v = parse_ptr(data, size)) return a.names.push_back(std::move(*v)), true;
      return false;
  }
  return false;
}

// ub_result → Answer. The status mapping is the resolver.h contract: only NXDOMAIN and an empty
// NOERROR answer are facts; bogus, SERVFAIL, REFUSED and the rest are temporary.
Answer convert(const ub_result& r, Type type) {
  if (r.bogus) {
    return temporary("DNSSEC bogus" + (r.why_bogus ? ": " + base::log_escape(r.why_bogus) : std::string()));
  }
  Answer a;
  a.secure = r.secure != 0;
  if (r.rcode == 3 || r.nxdomain) {
    a.status = Status::kNxDomain;
    a.why = "NXDOMAIN";
    return a;
  }
  if (r.rcode != 0) return temporary(rcode_name(r.rcode));
  if (!r.havedata || !r.data) {
    a.status = Status::kNoData;
    a.why = "no data";
    return a;
  }
  std::size_t seen = 0, bad = 0, kept = 0;
  for (std::size_t i = 0; r.data[i] && seen < kMaxRecords * 10; ++i, ++seen) {
    if (kept >= kMaxRecords) break;
    int len = r.len ? r.len[i] : -1;
    if (len < 0) {
      ++bad;
      continue;
    }
    if (add_record(a, type, reinterpret_cast<const std::uint8_t*>(r.data[i]), static_cast<std::size_t>(len))) ++kept;
    else ++bad;
  }
  if (kept == 0) return temporary("all " + std::to_string(bad) + " record(s) malformed");
  a.status = Status::kOk;
  if (bad) a.why = std::to_string(bad) + " malformed record(s) dropped";
  return a;
}

// "192.0.2.53:53" / "[2001:db8::53]:53" → "192.0.2.53@53", the form ub_ctx_set_fwd() takes.
std::optional<std::string> forwarder(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535 || host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string h(host);
  unsigned char buf[16];
  if (::inet_pton(AF_INET, h.c_str(), buf) != 1 && ::inet_pton(AF_INET6, h.c_str(), buf) != 1) return std::nullopt;
  return h + "@" + std::to_string(value);
}

// A name we are willing to hand to unbound: printable ASCII without spaces, not too long.
bool plausible_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameOctets - 2) return false;
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return name.find("..") == std::string_view::npos && name.front() != '.';
}

}  // namespace

class UnboundResolver::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, ub_ctx* ctx, int fd, std::chrono::milliseconds timeout)
      : strand_(asio::make_strand(executor)), fd_(strand_, fd), ctx_(ctx), timeout_(timeout) {}
  ~Impl() {
    // The descriptor we wait on is our dup of ub_fd(); unbound closes its own in ub_ctx_delete.
    if (ctx_) ub_ctx_delete(ctx_);
  }

  asio::strand<asio::any_io_executor>& strand() { return strand_; }

  // On the strand.
  void start(std::string name, Type type, std::function<void(Answer)> done) {
    if (!ctx_) return post_done(std::move(done), temporary("resolver closed"));
    std::string qname = normalize_name(name);
    if (type == Type::kPtr) {
      auto rev = reverse_name(qname);
      if (!rev) return post_done(std::move(done), nx("not an IP address"));
      qname = std::move(*rev);
    } else if (!plausible_name(qname)) {
      return post_done(std::move(done), nx("invalid name"));
    }

    auto id = next_id_++;
    auto& p = *pending_.emplace(id, std::make_unique<Pending>(this, id, type, std::move(done), strand_)).first->second;
    p.timer.expires_after(timeout_);
    p.timer.async_wait(asio::bind_executor(strand_, [self = shared_from_this(), id](error_code ec) {
      if (!ec) self->on_timeout(id);
    }));
    int rc = ub_resolve_async(ctx_, qname.c_str(), rr_type(type), kClassIn, &p, &Impl::on_result, &p.async_id);
    if (rc != 0) {
      PETREL_LOG(kWarn, "dns.error", "name={} type={} error=\"{}\"", base::log_escape(qname), type_name(type),
                 ub_strerror(rc));
      return finish(id, temporary(std::string("unbound: ") + ub_strerror(rc)));
    }
    PETREL_LOG(kDebug, "dns.query", "name={} type={} id={}", base::log_escape(qname), type_name(type), id);
    wait();
  }

  // On the strand: every pending lookup completes now; the context goes away.
  void close() {
    if (!ctx_) return;
    while (!pending_.empty()) {
      auto id = pending_.begin()->first;
      ub_cancel(ctx_, pending_.begin()->second->async_id);
      finish(id, temporary("resolver closed"));
    }
    error_code ignored;
    fd_.close(ignored);
    ub_ctx_delete(ctx_);
    ctx_ = nullptr;
  }

 private:
  struct Pending {
    Pending(Impl* i, std::uint64_t n, Type t, std::function<void(Answer)> d, asio::strand<asio::any_io_executor>& s)
        : impl(i), id(n), type(t), done(std::move(d)), timer(s) {}
    Impl* impl;
    std::uint64_t id;
    Type type;
    std::function<void(Answer)> done;
    asio::steady_timer timer;
    int async_id = 0;
  };

  static Answer nx(std::string why) {
    Answer a;
    a.status = Status::kNxDomain;
    a.why = std::move(why);
    return a;
  }

  void post_done(std::function<void(Answer)> done, Answer answer) {
    asio::post(strand_, [done = std::move(done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
  }

  void finish(std::uint64_t id, Answer answer) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto done = std::move(it->second->done);
    it->second->timer.cancel();
    pending_.erase(it);
    post_done(std::move(done), std::move(answer));
  }

  // Waits for results while any lookup is pending; answers to cancelled queries that arrive
  // while idle are consumed by the next wait.
  void wait() {
    if (waiting_ || pending_.empty() || !ctx_) return;
    waiting_ = true;
    fd_.async_wait(asio::posix::descriptor_base::wait_read,
                   asio::bind_executor(strand_, [self = shared_from_this()](error_code ec) {
                     self->waiting_ = false;
                     if (ec || !self->ctx_) return;
                     if (int rc = ub_process(self->ctx_); rc != 0) {
                       PETREL_LOG(kWarn, "dns.error", "error=\"ub_process: {}\"", ub_strerror(rc));
                     }
                     self->wait();
                   }));
  }

  void on_timeout(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    ub_cancel(ctx_, it->second->async_id);
    PETREL_LOG(kDebug, "dns.timeout", "id={}", id);
    finish(id, temporary("timeout"));
  }

  // Called by ub_process() (so on the strand) for a query neither finished nor cancelled.
  static void on_result(void* data, int err, ub_result* result) {
    auto* p = static_cast<Pending*>(data);
    Answer a = err != 0 ? temporary(std::string("unbound: ") + ub_strerror(err))
               : result ? convert(*result, p->type)
                        : temporary("no result");
    if (result) ub_resolve_free(result);
    PETREL_LOG(kDebug, "dns.answer", "id={} status={} why=\"{}\"", p->id, status_name(a.status), base::log_escape(a.why));
    p->impl->finish(p->id, std::move(a));
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::posix::stream_descriptor fd_;
  ub_ctx* ctx_;
  std::chrono::milliseconds timeout_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending_;
  std::uint64_t next_id_ = 1;
  bool waiting_ = false;
};

base::Result<std::unique_ptr<UnboundResolver>> UnboundResolver::create(asio::any_io_executor executor,
                                                                       UnboundOptions options) {
  if (options.timeout <= std::chrono::milliseconds(0)) return base::permanent_error("dns: timeout must be positive");
  std::unique_ptr<ub_ctx, void (*)(ub_ctx*)> ctx(ub_ctx_create(), &ub_ctx_delete);
  if (!ctx) return base::temporary_error("dns: ub_ctx_create failed");
  auto check = [](int rc, const std::string& what) -> base::Status {
    if (rc == 0) return {};
    return base::permanent_error("dns: " + what + ": " + ub_strerror(rc) + (rc == UB_READFILE ? std::string(" (") + std::strerror(errno) + ")" : ""));
  };

  // A background thread inside libunbound rather than a forked process: forking a
  // multi-threaded server is the worse of the two.
  if (auto s = check(ub_ctx_async(ctx.get(), 1), "ub_ctx_async"); !s) return s.error();
  // Forwarders on loopback (tests, a local caching resolver) must be reachable.
  if (auto s = check(ub_ctx_set_option(ctx.get(), "do-not-query-localhost:", "no"), "do-not-query-localhost"); !s) {
    return s.error();
  }
  if (options.servers.empty()) {
    // Without a readable resolv.conf (a bare container) unbound resolves from the root by
    // itself: outbound mail may still work, and local mail must not stop for it.
    if (auto s = check(ub_ctx_resolvconf(ctx.get(), nullptr), "reading /etc/resolv.conf"); !s) {
      PETREL_LOG(kWarn, "dns.no_resolv_conf", "error=\"{}\" fallback=\"recursion from the root\"",
                 base::log_escape(s.error().message));
    }
    if (auto s = check(ub_ctx_hosts(ctx.get(), nullptr), "reading /etc/hosts"); !s) {
      PETREL_LOG(kWarn, "dns.no_hosts_file", "error=\"{}\"", base::log_escape(s.error().message));
    }
  }
  for (const auto& server : options.servers) {
    auto fwd = forwarder(server);
    if (!fwd) return base::permanent_error("dns: server \"" + server + "\" must be an address and port such as \"192.0.2.53:53\" or \"[2001:db8::53]:53\"");
    if (auto s = check(ub_ctx_set_fwd(ctx.get(), fwd->c_str()), "server " + server); !s) return s.error();
  }
  if (!options.trust_anchor_file.empty()) {
    if (::access(options.trust_anchor_file.c_str(), R_OK) != 0) {
      return base::permanent_error("dns: trust anchor file " + options.trust_anchor_file + ": " + std::strerror(errno));
    }
    if (auto s = check(ub_ctx_add_ta_file(ctx.get(), options.trust_anchor_file.c_str()), "trust anchor file " + options.trust_anchor_file); !s) {
      return s.error();
    }
  }

  // We wait on our own duplicate of unbound's result descriptor, so that Asio closing it can
  // never close unbound's.
  int fd = ::dup(ub_fd(ctx.get()));
  if (fd < 0) return base::errno_error("dns: dup(ub_fd)", errno);
  auto impl = std::make_shared<Impl>(std::move(executor), ctx.release(), fd, options.timeout);
  return std::unique_ptr<UnboundResolver>(new UnboundResolver(std::move(impl)));
}

UnboundResolver::~UnboundResolver() {
  asio::post(impl_->strand(), [impl = impl_] { impl->close(); });
}

void UnboundResolver::lookup(std::string name, Type type, std::function<void(Answer)> done) {
  asio::post(impl_->strand(), [impl = impl_, name = std::move(name), type, done = std::move(done)]() mutable {
    impl->start(std::move(name), type, std::move(done));
  });
}

void UnboundResolver::post(std::function<void()> fn) { asio::post(impl_->strand(), std::move(fn)); }

}  // namespace petrel::dns
