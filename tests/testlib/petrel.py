"""petrel.py: run the real `petrel` binary on loopback for integration tests.

    with Petrel() as p:                       # temp data dir, config, demo accounts, 3 listeners
        c = Dialog(p.port("smtp"))            # raw SMTP over a socket
        c.expect(220); c.cmd("EHLO t", 250)

Everything talks to 127.0.0.1 only. Every wait is bounded. When the tests run as root, the
server drops to the `petrel` user (scripts/install-deps creates it), so the temp directory is
made world-traversable.
"""
import glob
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

PETREL_BIN = os.environ.get("PETREL_BIN", os.path.join(os.path.dirname(__file__), "../../build/petrel"))
DOMAIN = "example.test"
USERS = {"alice@example.test": "alice-password", "bob@example.test": "bob-password"}


def wait_for(predicate, timeout=15, step=0.05):
    """Polls `predicate` until it returns something true (returned) or `timeout` seconds pass
    (then its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port on 127.0.0.1 that is free now, for a server started later. Picked at random
    below the kernel's ephemeral range: there, any outgoing connection of a test running in
    parallel could take it before the server binds it (seen in CI). Parallel tests may still
    pick the same one; Petrel.start() then tries new ports."""
    lo, _ = _ephemeral_range()
    for _ in range(100):
        port = random.randint(10000, max(10001, min(lo, 32768) - 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_text(path):
    """A log file's text (bad UTF-8 replaced); "" while the file does not exist yet."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class Petrel:
    """A private Petrel server. extra_toml is appended to the generated config; sections it
    names must not be generated ones unless smtp_toml/queue_toml are used instead. [queue]
    has min_free_space = 0 unless queue_toml sets it. data_dir, when given, may exist already
    (e.g. a mount point); otherwise it is <tmp>/data. private=True leaves the temp directory
    at mode 0700, as a clone under /root or in `mktemp -d` is: the server must then work inside
    its data directory without searching the directories above it.
    DNS: unless extra_toml has its own [dns] section (e.g. pointing at a FakeDns), the
    resolver is pointed at a loopback port where nothing listens, with a 2 s timeout: tests
    never send a query off the machine, and mail to other domains defers with 4.4.3."""

    def __init__(self, smtp_toml="", queue_toml="", server_toml="", extra_toml="", users=USERS, aliases=None,
                 data_dir=None, private=False):
        self.tmp = tempfile.mkdtemp(prefix="petrel-it-")
        if not private:
            os.chmod(self.tmp, 0o755)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.ports = {"smtp": free_port(), "submission": free_port(), "submissions": free_port()}
        self.config_path = os.path.join(self.tmp, "petrel.toml")
        self.log_path = os.path.join(self.tmp, "petrel.log")
        with open(self.config_path, "w") as f:
            f.write(f"""
[server]
hostname = "mx.{DOMAIN}"
data_dir = "{self.data_dir}"
threads = 2
{server_toml}
[log]
level = "debug"
[smtp]
{smtp_toml}
[queue]
{"" if "min_free_space" in queue_toml else "min_free_space = 0"}
{queue_toml}
[[listener]]
name = "smtp"
kind = "smtp"
address = "127.0.0.1:{self.ports['smtp']}"
[[listener]]
name = "submission"
kind = "submission"
address = "127.0.0.1:{self.ports['submission']}"
[[listener]]
name = "submissions"
kind = "submissions"
address = "127.0.0.1:{self.ports['submissions']}"
{"" if "[dns]" in extra_toml else f'[dns]{chr(10)}servers = ["127.0.0.1:{free_port()}"]{chr(10)}timeout = "2s"'}
{extra_toml}
""")
        self.users = users
        self.aliases = aliases or {}
        self.proc = None
        self._log_file = None
        # Set before start(): a command the server runs under (e.g. strace), its environment.
        self.wrapper = []
        self.env = None

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        self.setup_accounts()
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def setup_accounts(self):
        self.cli("domain", "add", DOMAIN)
        for user, password in self.users.items():
            self.cli("user", "add", user, input=password + "\n")
        for alias, targets in self.aliases.items():
            self.cli("alias", "add", alias, *targets)

    def start(self, timeout=20):
        for attempt in range(5):
            in_use_before = self.log().count("Address already in use")
            try:
                return self._start_once(timeout)
            except RuntimeError:
                # Another test took one of our ports between free_port() and the bind: new
                # ports, same everything else.
                if attempt == 4 or self.log().count("Address already in use") == in_use_before:
                    raise
                self._log_file.close()
                self._new_listener_ports()

    def _new_listener_ports(self):
        with open(self.config_path) as f:
            config = f.read()
        for kind, old in list(self.ports.items()):
            new = free_port()
            config = config.replace(f'address = "127.0.0.1:{old}"', f'address = "127.0.0.1:{new}"')
            self.ports[kind] = new
        with open(self.config_path, "w") as f:
            f.write(config)

    def _start_once(self, timeout):
        ready_before = self.log().count("server.ready")  # a restart appends to the same log
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.wrapper, PETREL_BIN, "serve", "-c", self.config_path],
                                     stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"petrel exited with {self.proc.returncode}:\n{self.log()}")
            if self.log().count("server.ready") > ready_before:
                return
            time.sleep(0.05)
        raise RuntimeError("petrel did not become ready:\n" + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    # --- inspection ------------------------------------------------------------------------
    def port(self, kind="smtp"):
        return self.ports[kind]

    def log(self):
        return read_text(self.log_path)

    def cli(self, *args, input=None, check=True):
        r = subprocess.run([PETREL_BIN, *args, "-c", self.config_path], input=input, capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"petrel {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def queue_ids(self):
        """Every message the spool still holds, delivered or not (`queue list --all`)."""
        out = self.cli("queue", "list", "--all").stdout
        return re.findall(r"^([0-9A-Z]{20})\s", out, re.M)

    def queue_body(self, queue_id):
        """The message as queued (Received: header first). A delivered message may have left the
        queue (its body file is retired): then it is read from the mailbox it went to."""
        r = subprocess.run([PETREL_BIN, "queue", "show", queue_id, "--raw", "-c", self.config_path],
                           capture_output=True, timeout=60)
        if r.returncode == 0:
            return r.stdout
        try:
            return self.delivered_message(queue_id, owner="*", timeout=5)
        except AssertionError:
            raise RuntimeError(f"queue show {queue_id} failed and it is in no mailbox: {r.stderr!r}")

    def delivered_message(self, queue_id, owner="alice", timeout=20):
        """The message with this queue id as delivered into owner@example.test's Maildir ("*":
        any account's), minus the Return-Path: and Delivered-To: lines delivery puts on top
        (so: as it was queued)."""
        pattern = os.path.join(self.data_dir, "mail", DOMAIN, owner, "new", "*")
        needle = b" id " + queue_id.encode() + b"\r\n"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in glob.glob(pattern):
                with open(path, "rb") as f:
                    data = f.read()
                if needle in data[:4096]:
                    first, second, rest = data.split(b"\r\n", 2)
                    assert first.startswith(b"Return-Path: ") and second.startswith(b"Delivered-To: "), data[:200]
                    return rest
            time.sleep(0.05)
        raise AssertionError(f"{queue_id} was not delivered to {owner} within {timeout}s:\n{self.log()[-3000:]}")

    def wait_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.05)
        return False


def delivered_with(p, token, owner="alice", timeout=20):
    """The Maildir file (bytes, as stored) in owner@example.test's new/ that contains `token`
    (bytes); waits for delivery up to `timeout` seconds, then fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(p.data_dir, "mail", DOMAIN, owner, "new", "*")):
            with open(path, "rb") as f:
                data = f.read()
            if token in data:
                return data
        time.sleep(0.05)
    raise AssertionError(f"nothing with {token!r} delivered to {owner}:\n{p.log()[-3000:]}")


class Dialog:
    """A raw SMTP client: sends exactly the bytes it is given and parses replies."""

    def __init__(self, port, host="127.0.0.1", timeout=10, tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            self.sock = client_tls_context().wrap_socket(self.sock)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Returns (code, [lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def expect(self, code):
        got, lines = self.reply()
        if got != code:
            raise AssertionError(f"expected {code}, got {lines}")
        return "\n".join(lines)

    def cmd(self, line, code):
        self.send(line + "\r\n")
        return self.expect(code)

    def closed(self, timeout=5):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False

    def starttls(self):
        self.cmd("STARTTLS", 220)
        self.sock = client_tls_context().wrap_socket(self.sock)
        self.buf = b""


def codes(reply_text):
    """'550 5.1.1 text' → ('550', '5.1.1'): the code and enhanced status of a reply's first line."""
    parts = reply_text.split("\n")[0].split(" ", 2)
    return parts[0], parts[1] if len(parts) > 1 else ""


def split_received(body):
    """Splits a stored message into the Received: header Petrel put on top and the rest."""
    lines = body.split(b"\r\n")
    assert lines[0].startswith(b"Received: "), body[:200]
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


def without_received(body):
    """The stored message minus the Received: header the server put on top."""
    return split_received(body)[1]


def proc_status_kib(pid, field="VmRSS"):
    """A memory figure of a process from /proc/PID/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(subject="test", body="Hello.\r\n", size=None):
    """A small RFC 5322 message with CRLF line ends; padded to `size` octets when given."""
    text = (f"From: <sender@remote.example>\r\nTo: <alice@{DOMAIN}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}@remote.example>\r\n\r\n{body}")
    if size and len(text) < size:
        pad = size - len(text)
        line = "x" * 70 + "\r\n"
        text += line * (pad // len(line)) + "y" * (pad % len(line))
        if not text.endswith("\r\n"):
            text = text[:-2] + "\r\n"
    return text


def send_mail(p, rcpts, data, sender="sender@remote.example", port="smtp", mail_params=""):
    """One SMTP transaction to server `p`: EHLO, MAIL (with `mail_params`, e.g. "BODY=8BITMIME"),
    each RCPT (all must get 250), DATA with `data` (bytes, CRLF line ends) dot-stuffed, QUIT.
    Returns the queue id from the 250."""
    c = Dialog(p.port(port))
    try:
        c.expect(220)
        c.cmd("EHLO client.example", 250)
        c.cmd(f"MAIL FROM:<{sender}>{(' ' + mail_params) if mail_params else ''}", 250)
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>", 250)
        c.cmd("DATA", 354)
        stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in data.split(b"\r\n"))
        c.send(stuffed + b".\r\n")
        qid = c.expect(250).split()[-1]
        c.cmd("QUIT", 221)
        return qid
    finally:
        c.close()
