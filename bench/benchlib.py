"""benchlib.py: private Petrel and Postfix instances on 127.0.0.1 for the side-by-side benchmarks.

Both servers keep their data on a real disk (BENCH_TMPDIR, default /work; never tmpfs), so fsync is
real for both. Nothing here touches /etc/postfix or the system Postfix: the Postfix instance is the
interop tests' (tests/testlib/postfix.py: own config dir, queue_directory and data_directory under
a temp dir, started/stopped with `postfix -c DIR`), configured here for each benchmark. Every wait
is bounded; every process is stopped by PID (see Cleanup).
"""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# The private Postfix is the interop tests' (tests/testlib/postfix.py), subclassed below for the
# bench's temp dir, delivery modes and CPU accounting: the test library is the one that must not
# depend on anything else (ctest runs it), so the bench imports it, not the other way round.
sys.path.insert(0, os.path.join(REPO, "tests", "testlib"))
import postfix as testlib_postfix  # noqa: E402
from postfix import children_of, pid_alive, stat_fields  # noqa: E402
RESULTS = os.path.join(HERE, "results")
DOMAIN = "example.test"
RCPT = "bench@" + DOMAIN
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def make_tmpdir(prefix):
    base = os.environ.get("BENCH_TMPDIR", "/work")
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o755)  # petrel drops to user `petrel` and must traverse it
    return d


def remove_tmpdir(d):
    if os.environ.get("BENCH_KEEP"):
        log(f"BENCH_KEEP set: keeping {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), kernel {os.uname().release}"


def versions(petrel_bin):
    """One line naming what was measured: petrel binary (version, mtime, git HEAD) and Postfix version."""
    try:
        v = subprocess.run([petrel_bin, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(petrel_bin)))
    except OSError:
        v, mtime = "?", "?"
    pf = subprocess.run(["/usr/sbin/postconf", "-dh", "mail_version"], capture_output=True, text=True,
                        timeout=10).stdout.strip()
    src = build_source_dir(petrel_bin)
    if src is not None and os.path.realpath(src) != os.path.realpath(REPO):
        return f"{v} (binary built {mtime} from the sources in {src}) vs Postfix {pf}"
    head = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h"], capture_output=True, text=True,
                          timeout=10).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "src"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return (f"{v} (binary built {mtime}, tree at {head}{' + uncommitted src changes' if dirty else ''}) "
            f"vs Postfix {pf}")


def build_source_dir(petrel_bin):
    """The source directory of the CMake build the binary sits in (CMakeCache.txt), or None."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(petrel_bin)), "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


# --- CPU accounting ------------------------------------------------------------------------------

def machine_busy_ticks():
    """Busy jiffies of the whole machine: user+nice+system+irq+softirq+steal (idle, iowait excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, idle + iowait


def cpu_self():
    """This script's own CPU seconds (user+system)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def background_busy(seconds=1.0):
    """Cores the machine kept busy over the next `seconds` (other users of the box)."""
    b0, _ = machine_busy_ticks()
    time.sleep(seconds)
    b1, _ = machine_busy_ticks()
    return (b1 - b0) / CLK_TCK / seconds


def wait_quiet(quiet_cores, quiet_wait, name):
    """Waits (at most quiet_wait seconds) until other load on the box is below quiet_cores; returns
    the last 1-s measurement. Other users of the machine skew the rates and every CPU figure."""
    t0 = time.monotonic()
    bg = background_busy(1.0)
    while bg > quiet_cores and time.monotonic() - t0 < quiet_wait:
        bg = background_busy(1.0)
    if bg > quiet_cores:
        log(f"[{name}] machine still busy ({bg:.2f} cores) after {quiet_wait:.0f} s; measuring anyway")
    return bg


def proc_stat(pid):
    """(ppid, utime, stime, cutime, cstime) in ticks, or None if gone."""
    rest = stat_fields(pid)
    if rest is None:
        return None
    # rest[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def process_cpu_ticks(pid):
    st = proc_stat(pid)
    return 0 if st is None else st[1] + st[2]


def read_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_uss_kib(pid):
    """Private (unique) memory: Private_Clean + Private_Dirty (+ Private_Hugetlb)."""
    tot = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_"):
                    tot += int(line.split()[1])
    except OSError:
        pass
    return tot


def thread_count(pid):
    return read_status_kib(pid, "Threads")


# --- cleanup ---------------------------------------------------------------------------------------

class Cleanup:
    """Runs registered callbacks in reverse order on exit, exception, SIGINT, SIGTERM or SIGHUP."""

    def __init__(self):
        self.fns = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def add(self, fn):
        self.fns.append(fn)

    def run(self):
        while self.fns:
            fn = self.fns.pop()
            try:
                fn()
            except BaseException as e:  # keep cleaning up
                log(f"cleanup: {e!r}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.run()


# --- Petrel ----------------------------------------------------------------------------------------

class LogFile:
    """A server that logs to self.log_path: its log as text, and the last lines for reports."""

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        """The log from byte `offset` on (e.g. what one run of a restarted server wrote)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_counter(self, token, offset=0):
        return LogCounter(self.log_path, token, offset)


class LogCounter:
    """Counts the log lines holding `token` incrementally: each update() reads only what was
    appended since the last one (the log of 100,000 messages is too big to re-read every second)."""

    def __init__(self, path, token, offset=0):
        self.path, self.token, self.offset, self.count = path, token.encode(), offset, 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        end = data.rfind(b"\n") + 1  # whole lines only; a partial last line is read next time
        self.count += data[:end].count(self.token)
        self.offset += end
        return self.count


def count_files(path):
    """Entries in a directory (0 if it does not exist yet): the Maildir new/ counter."""
    try:
        with os.scandir(path) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


class Petrel(LogFile):
    name = "Petrel"

    def __init__(self, binary, cleanup, smtp_toml="", threads=0, queue_toml="", extra_toml=""):
        self.bin = os.path.abspath(binary)
        if not os.access(self.bin, os.X_OK):
            raise SystemExit(f"petrel binary not found: {self.bin} (cmake --build build --target petrel -j2)")
        self.tmp = make_tmpdir("petrel-bench-")
        cleanup.add(lambda: remove_tmpdir(self.tmp))
        self.port = free_port()
        self.data_dir = os.path.join(self.tmp, "data")
        self.config = os.path.join(self.tmp, "petrel.toml")
        self.log_path = os.path.join(self.tmp, "petrel.log")
        with open(self.config, "w") as f:
            f.write(f"""[server]
hostname = "mx.{DOMAIN}"
data_dir = "{self.data_dir}"
threads = {threads}

[smtp]
{smtp_toml}

[queue]
min_free_space = 0
{queue_toml}

[[listener]]
name = "mx"
kind = "smtp"
address = "127.0.0.1:{self.port}"
{extra_toml}""")
        self.proc = None
        self._logf = None
        self._set_up = False
        self.t_exec = None  # time.time() right before the last `petrel serve` was spawned
        self.log_offset = 0  # log size at that moment: where this run's lines begin
        cleanup.add(self.stop)

    def cli(self, *args, input=None):
        r = subprocess.run([self.bin, *args, "-c", self.config], input=input, capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"petrel {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout

    def start(self, timeout=20, poll=0.05):
        """Starts `petrel serve` (the first time also adds the domain and the bench user) and waits
        for this run's server.ready line. Can be called again after stop(): same data, same log."""
        if not self._set_up:
            self.cli("domain", "add", DOMAIN)
            self.cli("user", "add", RCPT, input="bench-password\n")
            self._set_up = True
        self._logf = open(self.log_path, "ab")
        self.log_offset = self.log_size()
        self.t_exec = time.time()
        self.proc = subprocess.Popen([self.bin, "serve", "-c", self.config], stdout=self._logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"petrel exited with {self.proc.returncode}:\n{self.log_tail()}")
            if " server.ready " in self.log_since(self.log_offset):
                return
            time.sleep(poll)
        raise RuntimeError("petrel did not become ready:\n" + self.log_tail())

    def log_errors(self):
        """Log lines at warn/error level (whatever the format), for the report."""
        return [l for l in self.log_text().splitlines() if re.search(r"\b(warn|warning|error|fatal)\b", l, re.I)]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return [self.proc.pid] if self.alive() else []

    def cpu_ticks(self):
        """utime+stime of the server process (all its threads)."""
        return process_cpu_ticks(self.proc.pid)

    def accepted_count(self):
        """Messages acknowledged with 250 (one smtp.queued log line each)."""
        with open(self.log_path, "rb") as f:
            return f.read().count(b" smtp.queued ")

    @property
    def maildir_new(self):
        """The bench account's Maildir new/ (<data>/mail/<domain>/<local>/new)."""
        return os.path.join(self.data_dir, "mail", DOMAIN, "bench", "new")

    def delivered_count(self):
        """Messages delivered into the bench account's Maildir."""
        return count_files(self.maildir_new)

    def wait_delivered(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.delivered_count() < n:
            time.sleep(0.2)
        return self.delivered_count()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._logf:
            self._logf.close()
            self._logf = None


# --- Postfix ---------------------------------------------------------------------------------------

# The services of every bench instance (no tlsmgr; the smtp client only with delivery="relay").
POSTFIX_MASTER_CF = testlib_postfix.MASTER_CF


class Postfix(LogFile, testlib_postfix.Postfix):
    """A private Postfix instance: own config dir, queue and data dirs, smtpd on 127.0.0.1:PORT.

    delivery="discard": all mail accepted for example.test (mydestination) and delivered by the
    discard transport (cheap delivery, but the queue file is still fsynced by cleanup before smtpd
    answers 250, Postfix's default).
    delivery="virtual": example.test is a virtual mailbox domain; bench@example.test is delivered by
    virtual(8) into the Maildir <tmp>/vmail/example.test/bench/ (owned by maildir_owner()); virtual(8)
    fsyncs each Maildir file before linking it into new/ (mail_copy() with MAIL_COPY_TOFILE).
    delivery="relay": every message for a domain other than example.test goes to `relayhost`
    (e.g. "[127.0.0.1]:2526") through the smtp(8) client (default_transport = smtp), with the
    destination concurrency and connection caching at their defaults (20; cache on demand)."""
    name = "Postfix"

    def __init__(self, cleanup, process_limit=100, delivery="discard", relayhost=None):
        if delivery not in ("discard", "virtual", "relay"):
            raise ValueError(f"unknown delivery {delivery!r}")
        if delivery == "relay" and not relayhost:
            raise ValueError("delivery='relay' needs relayhost")
        self.delivery = delivery
        if not os.access(testlib_postfix.POSTFIX, os.X_OK):
            raise SystemExit(f"postfix is not installed ({testlib_postfix.POSTFIX})")
        if delivery == "virtual" and testlib_postfix.maildir_owner() is None:
            raise SystemExit("neither user petrel nor nobody exists (needed as the Maildir owner)")
        # On top of the shared defaults; smtp_dns_support_level is Postfix's default here (the
        # tests turn DNS off), as the bench always measured it.
        main_cf = f"""# bench/benchlib.py, delivery = {delivery}
mydomain = bench.test
default_transport = {"smtp" if delivery == "relay" else "discard"}
local_transport = discard
relay_transport = discard
default_process_limit = {process_limit}
smtp_dns_support_level =
"""
        if delivery != "virtual":
            main_cf += f"mydestination = {DOMAIN}\n"
        master_cf = POSTFIX_MASTER_CF
        if delivery == "relay":
            main_cf += f"relayhost = {relayhost}\ndefault_destination_concurrency_limit = 20\n"
            master_cf += testlib_postfix.MASTER_CF_SMTP
        tmp = make_tmpdir("postfix-bench-")
        cleanup.add(lambda: remove_tmpdir(tmp))
        super().__init__(main_cf=main_cf, hostname="mx.bench.test", tmp=tmp, master_cf=master_cf,
                         mailboxes={RCPT: f"{DOMAIN}/bench/"} if delivery == "virtual" else None)
        cleanup.add(self.stop)

    def start(self, timeout=20):
        super().start(timeout)

    def log_excerpt(self):
        return self.log_tail()

    def log_errors(self):
        return [l for l in self.log_text().splitlines() if re.search(r"\b(warning|error|fatal|panic):", l)]

    def accepted_count(self):
        """Messages cleanup(8) wrote to the queue (one 'message-id=' line each)."""
        return len(re.findall(r"postfix/cleanup\[\d+\]: [0-9A-F]+: message-id=", self.log_text()))

    @property
    def maildir_new(self):
        """virtual(8) mode: the bench account's Maildir new/."""
        return os.path.join(self.vmail, DOMAIN, "bench", "new") if self.vmail else None

    def delivered_count(self):
        """Deliveries the log reports (status=sent by discard(8) or virtual(8))."""
        return len(re.findall(r"postfix/(?:discard|virtual)\[\d+\]: .* status=sent", self.log_text()))

    def wait_drained(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue_files() == 0:
                return True
            time.sleep(0.2)
        return False

    def alive(self):
        return self.master_pid is not None and pid_alive(self.master_pid)

    def pids(self):
        if not self.alive():
            return []
        return [self.master_pid] + children_of(self.master_pid)

    def cpu_ticks(self):
        """CPU of the whole instance: master's own and reaped children's (cutime/cstime), plus every
        live child's utime+stime. Short-lived smtpd/cleanup/discard processes are counted through the
        master's cutime once they exit."""
        total = 0
        for c in children_of(self.master_pid):
            total += process_cpu_ticks(c)
        st = proc_stat(self.master_pid)
        if st:
            total += st[1] + st[2] + st[3] + st[4]
        return total


# --- load generator ----------------------------------------------------------------------------------

class SmtpSourceResult:
    pass


def run_smtp_source(port, messages, sessions, length, timeout, extra=(), rcpt=RCPT):
    """Runs smtp-source; returns wall seconds (and t0/t1, time.monotonic() right before the spawn
    and when it was reaped), its own CPU (from wait4 rusage), exit status and the last DATA counter
    printed by -c. The caller reads /proc/stat around it. extra=("-d",): many messages per
    connection."""
    cmd = ["/usr/sbin/smtp-source", "-c", "-s", str(sessions), "-m", str(messages), "-l", str(length),
           "-f", "sender@remote.example", "-t", rcpt, *extra, f"127.0.0.1:{port}"]
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    r = SmtpSourceResult()
    r.cmd = " ".join(cmd)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    deadline = t0 + timeout
    status = None
    rusage = None
    while True:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            status, rusage = st, ru
            break
        if time.monotonic() > deadline:
            p.kill()
            _pid, status, rusage = os.wait4(p.pid, 0)
            r.timed_out = True
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
    r.t0, r.t1 = t0, time.monotonic()
    r.wall = r.t1 - t0
    r.timed_out = getattr(r, "timed_out", False)
    r.rc = os.waitstatus_to_exitcode(status)
    r.cpu = rusage.ru_utime + rusage.ru_stime
    out.seek(0)
    err.seek(0)
    text = out.read().decode("utf-8", "replace")
    r.stderr = err.read().decode("utf-8", "replace").strip()
    r.count = _last_counter(text)
    out.close()
    err.close()
    return r


def _last_counter(text):
    """smtp-source -c prints 1,2,3,... each after a '\\r' (or glued together). Reconstruct the count
    by consuming the expected sequence from the start."""
    s = re.sub(r"\D", "", text)
    k, i = 0, 0
    while True:
        nxt = str(k + 1)
        if s.startswith(nxt, i):
            i += len(nxt)
            k += 1
        else:
            break
    return k


def write_result(name, text):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".txt")
    with open(path, "w") as f:
        f.write(text)
    return path
