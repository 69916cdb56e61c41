"""postfix.py: a private Postfix instance on loopback, for interop tests against the real thing
and for the benchmarks (bench/benchlib.py builds its Postfix on this class).

    from postfix import Postfix, postfix_skip_reason
    reason = postfix_skip_reason()           # None, or why this machine cannot run one
    with Postfix(main_cf="relayhost = [127.0.0.1]:2525") as pf:
        pf.sendmail(["-f", "a@remote.example", "bob@example.test"], b"Subject: hi\\n\\nbody\\n")
        pf.wait_log(r"status=sent", timeout=30)

The instance has its own config_directory, queue_directory, data_directory and log file
(maillog_file via postlogd) under a temp dir; /etc/postfix and the system's Postfix are never
read or touched. Its smtpd listens on 127.0.0.1 on a free port (`port`); every service runs
without chroot. Postfix's master must be started as root (it drops to user `postfix`), so the
tests that use this skip when not root (postfix_skip_reason()).

Every wait is bounded. stop() runs `postfix stop`, then `postfix abort`, then kills whatever
child of the master is left, by PID; __exit__ always calls it and removes the temp dir it made.

Why here and not in bench/: the test library must not depend on bench/ (scripts run by hand,
with their own temp dirs and accounting); the benchmarks live in the same tree and put this
directory on sys.path, as they do for benchlib.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from petrel import free_port, read_text

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"

# master.cf, in parts: the services every instance runs (smtpd on 127.0.0.1 only) ...
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
# ... the SMTP client, for an instance that sends mail on (relayhost) ...
MASTER_CF_SMTP = """\
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
"""
# ... and the TLS session cache manager.
MASTER_CF_TLS = """\
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


def postfix_skip_reason():
    """None when a private Postfix can run here, else the reason to skip."""
    if not os.access(POSTFIX, os.X_OK):
        return "postfix is not installed (Debian package postfix)"
    if os.geteuid() != 0:
        return "needs root: Postfix's master must be started as root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no user postfix"
    return None


def maildir_owner():
    """(uid, gid) that virtual(8) writes the Maildirs as: user `petrel` (as Petrel writes its
    own), else `nobody`; None when neither exists."""
    for name in ("petrel", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    return None


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first, then ppid, ...), or
    None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def children_of(pid):
    """PIDs whose parent is `pid`."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat_fields(d)
            if st and int(st[1]) == pid:
                out.append(int(d))
    return out


def pid_alive(pid):
    """Whether `pid` runs; a zombie counts as gone."""
    st = stat_fields(pid)
    return st is not None and st[0] != "Z"


class Postfix:
    """A private Postfix. `main_cf` is appended to a minimal main.cf (a key given there
    overrides the default written before it, which is then left out); `hostname` is myhostname.
    Nothing is delivered locally unless main_cf says so (mydestination is empty).

    mailboxes: {address: Maildir below self.vmail, e.g. "dest.example/bob/"} makes the domains
    of those addresses virtual mailbox domains, delivered by virtual(8) into <tmp>/vmail (owned
    by maildir_owner(); RuntimeError if there is none) through the map <tmp>/conf/vmailbox.
    tmp: an existing directory to use (the caller removes it), else a new one under the system
    temp dir that __exit__ removes. master_cf: the services, with {port} for smtpd's."""

    def __init__(self, main_cf="", hostname="mx.postfix.example", mailboxes=None, tmp=None,
                 master_cf=MASTER_CF + MASTER_CF_SMTP + MASTER_CF_TLS):
        self._own_tmp = tmp is None
        if tmp is None:
            tmp = tempfile.mkdtemp(prefix="postfix-it-")
            os.chmod(tmp, 0o755)
        self.tmp = tmp
        self.port = free_port()
        self.conf = os.path.join(self.tmp, "conf")
        self.queue = os.path.join(self.tmp, "queue")
        self.data = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "postfix.log")
        for d in (self.conf, self.queue, self.data):
            os.mkdir(d, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        self.hostname = hostname
        self.vmail = None
        if mailboxes:
            main_cf = self._virtual_mailboxes(mailboxes) + main_cf.strip()
        base = f"""# private instance, generated by tests/testlib/postfix.py
compatibility_level = 3.6
myhostname = {hostname}
mydomain = postfix.example
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = {self.queue}
data_directory = {self.data}
maillog_file = {self.log_path}
maillog_file_prefixes = {self.tmp}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
smtp_dns_support_level = disabled
"""
        keys = {m.group(1) for m in re.finditer(r"^\s*([a-z0-9_]+)\s*=", main_cf, re.M)}
        # drop defaults the caller sets, so that `postconf` never warns about overrides
        base = "\n".join(l for l in base.splitlines() if l.split("=")[0].strip() not in keys) + "\n"
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(base + main_cf.strip() + "\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(master_cf.format(port=self.port))
        self.master_pid = None

    def _virtual_mailboxes(self, mailboxes):
        """Makes the Maildir base and the map for `mailboxes`; returns their main.cf lines."""
        owner = maildir_owner()
        if owner is None:
            raise RuntimeError("neither user petrel nor nobody exists (owner of virtual(8)'s Maildirs)")
        uid, gid = owner
        self.vmail = os.path.join(self.tmp, "vmail")
        os.mkdir(self.vmail, 0o755)
        os.chown(self.vmail, uid, gid)
        vmap = os.path.join(self.conf, "vmailbox")
        with open(vmap, "w") as f:  # a trailing slash in the value makes it a Maildir
            f.writelines(f"{address} {maildir}\n" for address, maildir in mailboxes.items())
        domains = " ".join(sorted({a.rsplit("@", 1)[1] for a in mailboxes}))
        return f"""virtual_mailbox_domains = {domains}
virtual_mailbox_base = {self.vmail}
virtual_mailbox_maps = texthash:{vmap}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_transport = virtual
"""

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        if self._own_tmp and not os.environ.get("PETREL_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def postfix(self, *args, check=True):
        r = subprocess.run([POSTFIX, "-c", self.conf, *args], capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"postfix -c {self.conf} {' '.join(args)} failed ({r.returncode}): "
                               f"{r.stderr.strip()}\n{self.log_excerpt()}")
        return r

    def start(self, timeout=30):
        """`postfix check`, `postfix start`, then waits until the master wrote its pid file and
        smtpd answers 220 on `port`."""
        self.postfix("check")
        self.postfix("start")
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pidfile) as f:
                    self.master_pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if self.master_pid is None:
            raise RuntimeError("postfix master wrote no pid file\n" + self.log_excerpt())
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("postfix smtpd did not answer\n" + self.log_excerpt())

    def stop(self):
        if self.master_pid is None:
            return
        pids = [self.master_pid] + children_of(self.master_pid)
        if pid_alive(self.master_pid):
            self.postfix("stop", check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and pid_alive(self.master_pid):
                time.sleep(0.1)
            if pid_alive(self.master_pid):
                self.postfix("abort", check=False)
                time.sleep(0.5)
        for p in pids:  # leftovers, by PID only
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.master_pid = None

    # --- use -------------------------------------------------------------------------------
    def sendmail(self, args, data, timeout=30):
        """Postfix's sendmail(1) with this instance's config (-C), `data` on stdin. -oi is added
        (a line with a single dot does not end the message)."""
        r = subprocess.run([SENDMAIL, "-C", self.conf, "-oi", *args], input=data, capture_output=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"sendmail failed ({r.returncode}): {r.stderr!r}\n{self.log_excerpt()}")
        return r

    def log(self):
        return read_text(self.log_path)

    def log_excerpt(self):
        """The end of the log, for an error message."""
        return self.log()[-2000:]

    def wait_log(self, pattern, timeout=30, count=1):
        """Waits (bounded) until `pattern` (a regex) matches `count` lines of the log; returns
        the matching lines, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log().splitlines() if re.search(pattern, l)]
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def queue_files(self):
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _root, _dirs, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n
