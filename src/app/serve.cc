// serve.cc: `petrel serve`: the one place that knows every concrete type and wires them.
//
// Order matters for privileges: as root we make the TLS context (a configured key may be
// readable by root only) and bind the listeners, hand the data directory to the run user,
// drop to that user, and only then open the spool and the accounts database, so that every
// file the server creates belongs to the user it runs as. No connection is handled as root.
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
#include <filesystem>
#include <iostream>
#include <thread>

#include "app/common.h"
#include "app/control.h"
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
#include "net/acceptor.h"
#include "net/tls.h"
#include "queue/intake_impl.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
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

// Gives the data directory (and, where root made them, what is in it) to the run user. A tree
// is walked only when its top belongs to root, so a large queue already owned by the user is
// not walked at every start.
void hand_over_data_dir(const std::string& dir, uid_t uid, gid_t gid) {
  namespace fs = std::filesystem;
  auto fix = [&](const fs::path& p) {
    struct stat st{};
    if (::lstat(p.c_str(), &st) == 0 && st.st_uid == 0) {
      if (::lchown(p.c_str(), uid, gid) != 0) die("cannot chown " + p.string() + ": " + std::strerror(errno));
    }
  };
  struct stat top{};
  if (::stat(dir.c_str(), &top) != 0) return;
  fix(dir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    struct stat st{};
    if (::lstat(entry.path().c_str(), &st) != 0 || st.st_uid != 0) continue;
    fix(entry.path());
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) {
      for (const auto& inner : fs::recursive_directory_iterator(entry.path(), fs::directory_options::none, ec)) {
        fix(inner.path());
      }
    }
  }
}

void drop_privileges(const config::Config& c) {
  if (::geteuid() != 0) return;
  if (c.server.user.empty() || c.server.user == "root") {
    die("refusing to handle mail as root: set server.user to an unprivileged user", kExitConfig);
  }
  const passwd* pw = ::getpwnam(c.server.user.c_str());
  if (!pw) die("server.user \"" + c.server.user + "\" does not exist (create it: useradd --system " + c.server.user + ")", kExitConfig);
  hand_over_data_dir(c.server.data_dir, pw->pw_uid, pw->pw_gid);
  if (!c.log.file.empty()) (void)::chown(c.log.file.c_str(), pw->pw_uid, pw->pw_gid);
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) {
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

int serve(const config::Config& c) {
  if (auto s = base::log::init(c.log.level, c.log.file); !s) die(s.error().message);
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  std::error_code ec;
  std::filesystem::create_directories(c.server.data_dir, ec);
  if (ec) die("cannot create data_dir " + c.server.data_dir + ": " + ec.message());

  auto tls = net::make_server_tls_context({c.tls.cert_file, c.tls.key_file, c.tls.min_version == "1.3"},
                                         c.server.data_dir, c.server.hostname);
  if (!tls) die(tls.error().message);

  unsigned threads = c.server.threads ? c.server.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<net::asio::io_context>> loops;
  std::vector<net::asio::io_context*> loop_ptrs;
  for (unsigned i = 0; i < threads; ++i) {
    loops.push_back(std::make_unique<net::asio::io_context>(1));
    loop_ptrs.push_back(loops.back().get());
  }
  // One acceptor for every listener; the connection limits count across all of them.
  auto acceptor = std::make_unique<net::Acceptor>(loop_ptrs, c.smtp.max_connections, c.smtp.max_connections_per_ip);
  for (const auto& l : c.listeners) {
    if (auto s = acceptor->bind(net::ListenSpec{l.name, l.address, l.host, l.port}); !s) die(s.error().message);
  }

  // Secrets the server's user may not be able to read: before privileges go.
  auto relay_password = read_relay_password(c.remote);
  if (!relay_password) die(relay_password.error().message);

  drop_privileges(c);

  auto spool = queue::Spool::open(c.server.data_dir, c.queue, queue::Spool::Mode::kWritable);
  if (!spool) die("cannot open the queue: " + spool.error().message);
  base::RealClock clock;
  auto created = queue::IntakeImpl::create(**spool, clock);
  if (!created) die("cannot start the queue: " + created.error().message);
  std::unique_ptr<queue::IntakeImpl> intake = std::move(created).value();
  auto directory = auth::DirectoryImpl::open(c.server.data_dir + "/petrel.db", c.accounts);
  if (!directory) die("cannot open the accounts database: " + directory.error().message);
  DirectoryRefresher refresher(**directory);

  // Delivery: the scheduler reads what the spool holds, hands due messages to the local
  // transport, and records each outcome through the intake's group commit.
  auto transport = std::make_unique<delivery::LocalTransport>(
      **spool, **directory,
      // One worker per delivery the scheduler may start at once (up to 32): workers mostly
      // wait on fsync, and concurrent deliveries into one mailbox share its directory sync.
      // Aliases that point to other domains are forwarded through the same intake.
      delivery::LocalTransportOptions{c.server.data_dir, std::min<std::size_t>(c.queue.delivery_concurrency, 32), {},
                                      intake.get()});
  // Mail for other domains leaves through the remote transport (MX or smarthost, [remote]);
  // the router sends each recipient to the local or the remote side by its domain.
  auto remote = make_remote_transport(c, **spool, std::move(relay_password).value());
  if (!remote) die("cannot start outbound delivery: " + remote.error().message);
  std::unique_ptr<delivery::RemoteTransport> remote_transport = std::move(remote).value();
  delivery::Router router(**directory, *transport, *remote_transport);
  // The scheduler makes itself the intake's commit listener, so it hears of every message.
  // DSNs (bounces) go back in through the same intake.
  queue::SchedulerConfig sconfig = queue::SchedulerConfig::from(c.queue);
  sconfig.hostname = c.server.hostname;
  sconfig.double_bounce_to = c.server.postmaster.empty() ? "postmaster@" + c.server.hostname : c.server.postmaster;
  auto scheduler = std::make_unique<queue::Scheduler>(**spool, *intake, router, clock, sconfig, intake.get());
  if (auto s = scheduler->load(); !s) die("cannot load the queue: " + s.error().message);
  scheduler->start();

  // `petrel queue flush|hold|release|delete` talk to the scheduler through this socket.
  std::unique_ptr<ControlServer> control;
  if (auto started = ControlServer::start(control_socket_path(c.server.data_dir), *scheduler); started) {
    control = std::move(started).value();
  } else {
    PETREL_LOG(kError, "control.unavailable", "error=\"{}\"", base::log_escape(started.error().message));
  }

  // SMTP AUTH: the SASL mechanisms over the accounts store (one SQLite connection per pool
  // thread in use), their steps on a small pool of their own (argon2id must never run on an
  // event loop), failure counters shared by every session, and who may send as what.
  const bool cram_md5 = std::find(c.auth.mechanisms.begin(), c.auth.mechanisms.end(), "CRAM-MD5") != c.auth.mechanisms.end();
  auth::AccountStoreOptions store_options;
  store_options.cram_md5 = cram_md5;
  auth::PooledStoreCredentials credentials(auth::database_path(c.server.data_dir), store_options);
  auth::AuthLimiter auth_limiter(clock, auth::AuthLimiterOptions{c.auth.tarpit_after, c.auth.tarpit_delay,
                                                                 c.auth.lockout_after, c.auth.failure_window,
                                                                 c.auth.lockout, c.auth.max_tracked});
  auth::GatedCredentials gated_credentials(credentials, auth_limiter);  // no argon2id for locked names
  auth::SaslOptions sasl_options;
  sasl_options.mechanisms = c.auth.mechanisms;
  sasl_options.hostname = c.server.hostname;
  auth::SaslServer sasl(gated_credentials, sasl_options);
  auth::SenderRights sender_rights(**directory, c.auth.send_as);
  PolicySetup policy(**directory, sender_rights);
  net::asio::thread_pool auth_pool(c.auth.verify_threads);

  // `petrel sendmail` queues through this socket, as the local user the kernel names.
  std::unique_ptr<SubmitServer> submit;
  if (auto started = SubmitServer::start(submit_socket_path(c.server.data_dir), c, *intake); started) {
    submit = std::move(started).value();
  } else {
    PETREL_LOG(kError, "submit.unavailable", "error=\"{}\"", base::log_escape(started.error().message));
  }

  smtp::server::SessionContext ctx{c, **directory, *intake, tls->get(), &sasl, &auth_limiter, &sender_rights, &auth_pool, &policy.chain()};
  // Each listener's connections go to its protocol's sessions. Every kind config accepts today
  // is SMTP's (config refuses the kinds not yet served).
  std::vector<std::unique_ptr<net::SessionFactory>> factories;
  std::vector<net::SessionFactory*> factory_ptrs;
  for (const auto& l : c.listeners) {
    if (!smtp::server::SessionFactory::serves(l.kind)) die("listener " + l.name + ": no service for its kind", kExitConfig);
    factories.push_back(std::make_unique<smtp::server::SessionFactory>(ctx, l));
    factory_ptrs.push_back(factories.back().get());
  }
  acceptor->start(std::move(factory_ptrs));

  // SIGINT/SIGTERM: stop accepting and stop the loops. Transactions not yet acknowledged are
  // simply dropped (the client will retry); acknowledged ones are already on disk.
  auto signals = std::make_unique<net::asio::signal_set>(*loops[0], SIGINT, SIGTERM);
  signals->async_wait([&](const net::error_code& err, int sig) {
    if (err) return;
    PETREL_LOG(kInfo, "server.stop", "signal={}", sig);
    acceptor->stop();
    for (auto& l : loops) l->stop();
  });

  std::vector<std::thread> workers;
  std::vector<net::asio::executor_work_guard<net::asio::io_context::executor_type>> guards;
  for (auto& l : loops) guards.push_back(net::asio::make_work_guard(*l));
  PETREL_LOG(kInfo, "server.ready", "pid={} threads={} hostname={} data_dir=\"{}\" uid={}", ::getpid(), threads,
             c.server.hostname, base::log_escape(c.server.data_dir), ::getuid());
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([l = loops[i].get()] { l->run(); });
  loops[0]->run();
  for (auto& l : loops) l->stop();
  for (auto& w : workers) w.join();
  // SASL steps in flight finish before the sessions waiting for them are destroyed.
  auth_pool.join();

  // Teardown, in the order that keeps every callback's target alive: listeners, then the
  // sessions (their unfinished messages are aborted in the intake), then the scheduler's
  // thread and the deliveries in flight (their results go to the scheduler's inbox), then the
  // scheduler (it unhooks itself from the intake), and last the intake's committer.
  signals.reset();
  acceptor.reset();
  guards.clear();
  loops.clear();
  control.reset();
  submit.reset();
  scheduler->stop();
  remote_transport.reset();
  transport.reset();
  scheduler.reset();
  intake.reset();
  base::log::flush();
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
