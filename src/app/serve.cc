// serve.cc: `petrel serve`: the one place that knows every concrete type and wires them.
//
// Order matters for privileges: as root we open the log file and the data directory (which
// becomes the working directory: app/data_dir.h), load a configured TLS key (it may be readable
// by root only), bind the listeners, read the relay password, hand what root left in the data
// directory to the run user, and drop to that user. Only then are files made: the self-signed
// certificate, the spool, the accounts database. Nothing is written as root inside the data
// directory, and no connection is handled as root.
// Shutdown order: Runtime below, one struct whose member order is the order.
#include "app/serve.h"

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <csignal>
#include <functional>
#include <optional>
#include <iostream>
#include <thread>

#include "app/common.h"
#include "app/control.h"
#include "app/data_dir.h"
#include "app/outbound.h"
#include "app/policy_setup.h"
#include "app/submit_socket.h"
#include "auth/auth_limiter.h"
#include "auth/directory_impl.h"
#include "auth/gated_credentials.h"
#include "auth/pooled_credentials.h"
#include "auth/sasl.h"
#include "auth/sender_rights.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"
#include "delivery/local_transport.h"
#include "delivery/remote_transport.h"
#include "delivery/router.h"
#include "net/tls.h"
#include "queue/intake_impl.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "net/acceptor.h"
#include "smtp/server/session_factory.h"

namespace petrel::app {
namespace {

[[noreturn]] void die(const std::string& message, int code = kExitFailure) {
  PETREL_LOG(kError, "server.fatal", "error=\"{}\"", base::log_escape(message, 500));
  base::log::flush();
  std::cerr << "petrel: " << message << "\n";
  std::exit(code);
}

// 10,000 sessions need as many descriptors: take the hard limit.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void drop_privileges(const config::Config& c, std::optional<RunUser> user) {
  if (::geteuid() != 0) return;
  if (c.server.user.empty() || c.server.user == "root") {
    die("refusing to handle mail as root: set server.user to an unprivileged user", kExitConfig);
  }
  if (!user) die("server.user \"" + c.server.user + "\" does not exist (create it: useradd --system " + c.server.user + ")", kExitConfig);
  if (auto s = hand_over_data_dir(*user); !s) die(s.error().message);
  if (::setgroups(0, nullptr) != 0 || ::setgid(user->gid) != 0 || ::setuid(user->uid) != 0) {
    die(std::string("cannot drop privileges: ") + std::strerror(errno));
  }
  if (::setuid(0) == 0) die("privileges were not dropped");
}

// Reloads the accounts snapshot when the database changes (e.g. `petrel user add`), off the
// event loops: SQLite may touch the disk.
class DirectoryRefresher {
 public:
  explicit DirectoryRefresher(auth::Directory& directory) : thread_([this, &directory] { run(directory); }) {}
  ~DirectoryRefresher() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run(auth::Directory& directory) {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      lock.unlock();
      if (auto s = directory.refresh(); !s) {
        PETREL_LOG(kWarn, "accounts.refresh_failed", "error=\"{}\"", base::log_escape(s.error().message));
      }
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Runs a callable when destroyed: a step of the shutdown at its place in Runtime.
class AtTeardown {
 public:
  AtTeardown() = default;
  explicit AtTeardown(std::function<void()> f) : f_(std::move(f)) {}
  AtTeardown& operator=(AtTeardown&& o) noexcept {
    f_ = std::move(o.f_);
    o.f_ = nullptr;
    return *this;
  }
  ~AtTeardown() {
    if (f_) f_();
  }

 private:
  std::function<void()> f_;
};

// Everything `petrel serve` builds. C++ destroys members in the reverse order of their
// declaration, and that order is the shutdown order, so it is written down once, here,
// instead of as a list of resets that a later change could put out of step:
//   1. the local sockets and delivery: the scheduler's thread stops, the transports finish
//      the deliveries in flight (their results go to the scheduler, still alive), then the
//      scheduler goes (it unhooks itself from the intake);
//   2. the intake is drained: every commit already submitted completes, and its completion is
//      posted to its session's event loop, which still exists (it no longer runs);
//   3. the SASL pool finishes the steps in flight (they post to the loops too);
//   4. the listeners, then the loops: the sessions still on them are destroyed, aborting their
//      unfinished messages in the intake;
//   5. what the sessions used: authentication, the accounts, and last the intake and spool.
// Members are built in another order (the loops and listeners exist before privileges drop,
// the stores only after); only destruction depends on the order below.
struct Runtime {
  // 5. Stores and shared services.
  std::unique_ptr<queue::Spool> spool;
  std::unique_ptr<queue::IntakeImpl> intake;
  std::unique_ptr<auth::DirectoryImpl> directory;
  std::unique_ptr<DirectoryRefresher> refresher;
  std::unique_ptr<auth::PooledStoreCredentials> credentials;
  std::unique_ptr<auth::AuthLimiter> auth_limiter;
  std::unique_ptr<auth::GatedCredentials> gated_credentials;
  std::unique_ptr<auth::SaslServer> sasl;
  std::unique_ptr<auth::SenderRights> sender_rights;
  std::unique_ptr<PolicySetup> policy;
  std::shared_ptr<net::asio::ssl::context> tls;
  std::unique_ptr<smtp::server::SessionContext> session_context;
  std::vector<std::unique_ptr<net::SessionFactory>> factories;  // one per listener
  // 4. The event loops, then what lives on them: the acceptor and the sessions.
  std::vector<std::unique_ptr<net::asio::io_context>> loops;
  std::unique_ptr<net::Acceptor> acceptor;
  std::unique_ptr<net::asio::signal_set> signals;
  // 3. SASL steps (argon2id) off the loops.
  std::unique_ptr<net::asio::thread_pool> auth_pool;
  AtTeardown join_auth_pool;
  // 2.
  AtTeardown drain_intake;
  // 1. Delivery, then the local sockets.
  std::unique_ptr<queue::Scheduler> scheduler;
  std::unique_ptr<delivery::Router> router;
  std::unique_ptr<delivery::RemoteTransport> remote_transport;
  std::unique_ptr<delivery::LocalTransport> local_transport;
  AtTeardown stop_scheduler;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<SubmitServer> submit;
};

int serve(const config::Config& c) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  const std::optional<RunUser> run_user = lookup_run_user(c);

  // As root: what only root can open. The log file first, so that every later failure is in it.
  if (!c.log.file.empty()) {
    auto fd = open_log_file(c.log.file, run_user);
    if (!fd) die(fd.error().message);
    if (auto s = base::log::init_descriptor(c.log.level, *fd); !s) die(s.error().message);
  } else if (auto s = base::log::init(c.log.level, ""); !s) {
    die(s.error().message);
  }
  // From here on the data directory is the working directory, and `data` (".") the path to it.
  auto entered = enter_data_dir(c, /*create=*/true);
  if (!entered) die(entered.error().message);
  const std::string data = *entered;

  Runtime rt;
  const net::TlsSettings tls_settings{c.tls.cert_file, c.tls.key_file, c.tls.min_version == "1.3"};
  // A configured key may be readable by root only: loaded now. The self-signed fallback is made
  // after privileges drop, by the user that owns the data directory.
  if (!c.tls.cert_file.empty()) {
    auto tls = net::make_server_tls_context(tls_settings, data, c.server.hostname);
    if (!tls) die(tls.error().message);
    rt.tls = std::move(tls).value();
  }

  unsigned threads = c.server.threads ? c.server.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<net::asio::io_context*> loop_ptrs;
  for (unsigned i = 0; i < threads; ++i) {
    rt.loops.push_back(std::make_unique<net::asio::io_context>(1));
    loop_ptrs.push_back(rt.loops.back().get());
  }
  // One acceptor for every listener; the connection limits count across all of them.
  rt.acceptor = std::make_unique<net::Acceptor>(loop_ptrs, c.smtp.max_connections, c.smtp.max_connections_per_ip);
  for (const auto& l : c.listeners) {
    if (auto s = rt.acceptor->bind(net::ListenSpec{l.name, l.address, l.host, l.port}); !s) die(s.error().message);
  }

  // Secrets the server's user may not be able to read: before privileges go.
  auto relay_password = read_relay_password(c.remote);
  if (!relay_password) die(relay_password.error().message);

  drop_privileges(c, run_user);

  if (!rt.tls) {
    auto tls = net::make_server_tls_context(tls_settings, data, c.server.hostname);
    if (!tls) die(tls.error().message);
    rt.tls = std::move(tls).value();
  }
  auto spool = queue::Spool::open(data, c.queue, queue::Spool::Mode::kWritable);
  if (!spool) die("cannot open the queue: " + spool.error().message);
  rt.spool = std::move(spool).value();
  base::RealClock clock;
  auto created = queue::IntakeImpl::create(*rt.spool, clock);
  if (!created) die("cannot start the queue: " + created.error().message);
  rt.intake = std::move(created).value();
  rt.drain_intake = AtTeardown([intake = rt.intake.get()] { intake->drain(); });
  auto directory = auth::DirectoryImpl::open(auth::database_path(data), c.accounts);
  if (!directory) die("cannot open the accounts database: " + directory.error().message);
  rt.directory = std::move(directory).value();
  rt.refresher = std::make_unique<DirectoryRefresher>(*rt.directory);

  // Delivery: the scheduler reads what the spool holds, hands due messages to the local
  // transport, and records each outcome through the intake's group commit.
  rt.local_transport = std::make_unique<delivery::LocalTransport>(
      *rt.spool, *rt.directory,
      // One worker per delivery the scheduler may start at once (up to 32): workers mostly
      // wait on fsync, and concurrent deliveries into one mailbox share its directory sync.
      // Aliases that point to other domains are forwarded through the same intake.
      delivery::LocalTransportOptions{data, std::min<std::size_t>(c.queue.delivery_concurrency, 32), {},
                                      rt.intake.get()});
  // Mail for other domains leaves through the remote transport (MX or smarthost, [remote]);
  // the router sends each recipient to the local or the remote side by its domain.
  auto remote = make_remote_transport(c, *rt.spool, std::move(relay_password).value());
  if (!remote) die("cannot start outbound delivery: " + remote.error().message);
  rt.remote_transport = std::move(remote).value();
  rt.router = std::make_unique<delivery::Router>(*rt.directory, *rt.local_transport, *rt.remote_transport);
  // The scheduler makes itself the intake's commit listener, so it hears of every message.
  // DSNs (bounces) go back in through the same intake.
  queue::SchedulerConfig sconfig = queue::SchedulerConfig::from(c.queue);
  sconfig.hostname = c.server.hostname;
  sconfig.double_bounce_to = c.server.postmaster.empty() ? "postmaster@" + c.server.hostname : c.server.postmaster;
  rt.scheduler = std::make_unique<queue::Scheduler>(*rt.spool, *rt.intake, *rt.router, clock, sconfig, rt.intake.get());
  if (auto s = rt.scheduler->load(); !s) die("cannot load the queue: " + s.error().message);
  rt.scheduler->start();
  rt.stop_scheduler = AtTeardown([scheduler = rt.scheduler.get()] { scheduler->stop(); });

  // `petrel queue flush|hold|release|delete` talk to the scheduler through this socket.
  if (auto started = ControlServer::start(control_socket_path(data), *rt.scheduler); started) {
    rt.control = std::move(started).value();
  } else {
    PETREL_LOG(kError, "control.unavailable", "error=\"{}\"", base::log_escape(started.error().message));
  }

  // SMTP AUTH: the SASL mechanisms over the accounts store (one SQLite connection per pool
  // thread in use), their steps on a small pool of their own (argon2id must never run on an
  // event loop), failure counters shared by every session, and who may send as what.
  const bool cram_md5 = std::find(c.auth.mechanisms.begin(), c.auth.mechanisms.end(), "CRAM-MD5") != c.auth.mechanisms.end();
  auth::AccountStoreOptions store_options;
  store_options.cram_md5 = cram_md5;
  rt.credentials = std::make_unique<auth::PooledStoreCredentials>(auth::database_path(data), store_options);
  rt.auth_limiter = std::make_unique<auth::AuthLimiter>(
      clock, auth::AuthLimiterOptions{c.auth.tarpit_after, c.auth.tarpit_delay, c.auth.lockout_after,
                                      c.auth.failure_window, c.auth.lockout, c.auth.max_tracked});
  // No argon2id for locked names.
  rt.gated_credentials = std::make_unique<auth::GatedCredentials>(*rt.credentials, *rt.auth_limiter);
  auth::SaslOptions sasl_options;
  sasl_options.mechanisms = c.auth.mechanisms;
  sasl_options.hostname = c.server.hostname;
  rt.sasl = std::make_unique<auth::SaslServer>(*rt.gated_credentials, sasl_options);
  rt.sender_rights = std::make_unique<auth::SenderRights>(*rt.directory, c.auth.send_as);
  rt.policy = std::make_unique<PolicySetup>(*rt.directory, *rt.sender_rights);
  rt.auth_pool = std::make_unique<net::asio::thread_pool>(c.auth.verify_threads);
  rt.join_auth_pool = AtTeardown([pool = rt.auth_pool.get()] { pool->join(); });

  // `petrel sendmail` queues through this socket, as the local user the kernel names.
  if (auto started = SubmitServer::start(submit_socket_path(data), c, *rt.intake); started) {
    rt.submit = std::move(started).value();
  } else {
    PETREL_LOG(kError, "submit.unavailable", "error=\"{}\"", base::log_escape(started.error().message));
  }

  rt.session_context = std::make_unique<smtp::server::SessionContext>(smtp::server::SessionContext{
      c, *rt.directory, *rt.intake, rt.tls.get(), rt.sasl.get(), rt.auth_limiter.get(),
      rt.auth_pool.get(), &rt.policy->chain()});
  // Each listener's connections go to its protocol's sessions. Every kind config accepts today
  // is SMTP's (config refuses the kinds not yet served).
  std::vector<net::SessionFactory*> factory_ptrs;
  for (const auto& l : c.listeners) {
    if (!smtp::server::SessionFactory::serves(l.kind)) die("listener " + l.name + ": no service for its kind", kExitConfig);
    rt.factories.push_back(std::make_unique<smtp::server::SessionFactory>(*rt.session_context, l));
    factory_ptrs.push_back(rt.factories.back().get());
  }
  rt.acceptor->start(std::move(factory_ptrs));

  // SIGINT/SIGTERM: stop accepting and stop the loops; Runtime's destruction does the rest.
  // Transactions not yet acknowledged are dropped (the client will retry); acknowledged ones
  // are already on disk.
  rt.signals = std::make_unique<net::asio::signal_set>(*rt.loops[0], SIGINT, SIGTERM);
  rt.signals->async_wait([&rt](const net::error_code& err, int sig) {
    if (err) return;
    PETREL_LOG(kInfo, "server.stop", "signal={}", sig);
    rt.acceptor->stop();
    for (auto& l : rt.loops) l->stop();
  });

  std::vector<std::thread> workers;
  std::vector<net::asio::executor_work_guard<net::asio::io_context::executor_type>> guards;
  for (auto& l : rt.loops) guards.push_back(net::asio::make_work_guard(*l));
  PETREL_LOG(kInfo, "server.ready", "pid={} threads={} hostname={} data_dir=\"{}\" uid={}", ::getpid(), threads,
             c.server.hostname, base::log_escape(c.server.data_dir), ::getuid());
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([l = rt.loops[i].get()] { l->run(); });
  rt.loops[0]->run();
  for (auto& l : rt.loops) l->stop();
  for (auto& w : workers) w.join();
  guards.clear();
  // The loops no longer run; `rt` goes in the order its declaration gives.
  return 0;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Run the mail server in the foreground (logs to stderr unless log.file is set)");
  auto path = std::make_shared<std::string>();
  add_config_option(cmd, *path);
  cmd->callback([path] {
    auto c = load_config_or_exit(*path);
    std::exit(serve(c));
  });
}

}  // namespace petrel::app
