"""fake_smtp.py: a scriptable fake next-hop SMTP server on loopback, for integration tests of
outbound delivery (the real petrel binary relays to it).

    from fake_smtp import FakeSmtp
    with FakeSmtp(extensions=["PIPELINING", "SIZE 1000000", "8BITMIME", "DSN"],
                  rcpt_replies={r"^nobody@": "550 5.1.1 no such user"}) as mx:
        ... configure Petrel to relay to 127.0.0.1:mx.port and send mail ...
        mx.wait_transactions(1, timeout=20)
        t = mx.transactions[0]
        assert t.mail_from == "alice@example.test" and t.tls is False
        assert [r.address for r in t.accepted()] == ["bob@example.net"]
        assert t.body.startswith(b"Received:")      # un-stuffed, CRLF line ends
        assert mx.connection_count() == 1 and mx.connections[0].transactions == 1

Every behaviour is an attribute that may be changed between connections (it is read when a
connection or command needs it):
  greeting          "220 ..." or e.g. "421 4.3.2 busy" (the connection is then closed)
  extensions        EHLO keywords after the first line; "STARTTLS" and "AUTH ..." are added
                    from starttls/auth, never list them here
  ehlo_reply        None, or a full reply (e.g. "502 5.5.1 no EHLO") to refuse EHLO
  starttls          offer STARTTLS (a self-signed certificate made with the openssl CLI)
  starttls_reply    what STARTTLS gets; "454 4.7.0 TLS not available" refuses it
  starttls_injection  send "220 ready\\r\\n250 injected\\r\\n" in one write, then handshake
                    (the client must discard the injected line: CVE-2021-33515 class)
  starttls_broken   answer 220, then speak plain text and hang up (a failed handshake)
  auth              None, or (user, password): offers AUTH PLAIN LOGIN and checks them
  mail_replies      {regex on the sender address: reply}, first match wins (re.search)
  rcpt_replies      {regex on the recipient address: reply}
  data_command_reply  reply to DATA (default "354 go ahead")
  data_reply        reply after the final dot: a string, or a callable(Transaction) -> str
  max_recipients    accept at most this many recipients per transaction, 452 4.5.3 the rest
  reset_after_354   close the connection right after the 354
  silent_after_dot  never answer the final dot or the last BDAT chunk (keep the connection
                    open until the client leaves)
BDAT (RFC 3030) is served when "CHUNKING" is in extensions: each chunk gets 250, the LAST one
data_reply; the transaction's chunked attribute says which way the body came.
  max_connections   refuse (close at once) connections beyond this many at the same time
Replies are written without their CRLF; multi-line replies use "\\n" between lines.

Records (lock-free reads are fine after wait_*()): connections (Connection: index, tls,
helo, commands, transactions), transactions (Transaction: connection, tls, mail_from,
mail_params, rcpts [Rcpt: address, params, reply], body (bytes, un-stuffed), raw_body
(bytes as sent, dot-stuffed), data_reply, auth_user).

Threads, not asyncio: one accept thread and one thread per connection; everything on
127.0.0.1 with an ephemeral port; every socket read has a timeout (default 60 s).

Self test: /usr/bin/python3 tests/testlib/fake_smtp.py
"""
import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

__all__ = ["FakeSmtp", "Transaction", "Rcpt", "Connection", "make_self_signed"]


def make_self_signed(directory, host_name):
    """Writes cert.pem and key.pem (EC P-256, 2 days) for host_name, and for 127.0.0.1 where the
    fake servers listen, into directory."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=" + host_name, "-addext", "subjectAltName=DNS:" + host_name + ",IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return cert, key


class Rcpt:
    def __init__(self, address, params, reply):
        self.address = address
        self.params = params
        self.reply = reply

    def accepted(self):
        return self.reply.startswith("2")

    def __repr__(self):
        return "Rcpt(%r, %r, %r)" % (self.address, self.params, self.reply)


class Transaction:
    def __init__(self, connection, tls, mail_from, mail_params, auth_user):
        self.connection = connection
        self.tls = tls
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.rcpts = []
        self.body = None
        self.raw_body = None
        self.data_reply = None
        self.auth_user = auth_user
        self.chunked = False  # the body came in BDAT chunks (RFC 3030)
        self.chunks = []

    def accepted(self):
        return [r for r in self.rcpts if r.accepted()]

    def __repr__(self):
        return "Transaction(conn=%d, from=%r, rcpts=%r, body=%d octets, tls=%s, reply=%r)" % (
            self.connection, self.mail_from, self.rcpts, len(self.body or b""), self.tls, self.data_reply)


class Connection:
    def __init__(self, index):
        self.index = index
        self.tls = False
        self.helo = None
        self.commands = []
        self.transactions = 0  # transactions that reached the end of data
        self.closed = False


class _Closed(Exception):
    pass


class FakeSmtp:
    def __init__(self, host_name="fake.test", greeting=None, extensions=("PIPELINING", "SIZE 10240000", "8BITMIME"),
                 starttls=False, auth=None, mail_replies=None, rcpt_replies=None, data_reply="250 2.0.0 queued",
                 read_timeout=60.0, bind=("127.0.0.1", 0), **behaviour):
        self.host_name = host_name
        self.greeting = greeting or "220 %s ESMTP fake_smtp" % host_name
        self.extensions = list(extensions)
        self.ehlo_reply = None
        self.starttls = starttls
        self.starttls_reply = "220 2.0.0 ready to start TLS"
        self.starttls_injection = False
        self.starttls_broken = False
        self.auth = auth
        self.mail_replies = dict(mail_replies or {})
        self.rcpt_replies = dict(rcpt_replies or {})
        self.data_command_reply = "354 go ahead"
        self.data_reply = data_reply
        self.reset_after_354 = False
        self.silent_after_dot = False
        self.max_connections = None
        self.max_recipients = None  # past this many accepted in a transaction: 452 4.5.3
        self.read_timeout = read_timeout
        for name, value in behaviour.items():
            if not hasattr(self, name):
                raise TypeError("unknown behaviour %r" % name)
            setattr(self, name, value)

        self.connections = []
        self.transactions = []
        self._lock = threading.Condition()
        self._open = 0
        self._threads = []
        self._live = set()  # sockets of open connections (for close())
        self._tmp = tempfile.mkdtemp(prefix="fake-smtp-")
        cert, key = make_self_signed(self._tmp, host_name)
        self.cert_file = cert
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(cert, key)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(bind)  # another loopback address and a fixed port: several MX hosts on one port
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept_loop, name="fake-smtp-accept", daemon=True)
        self._acceptor.start()

    # ---- lifecycle and waiting -------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stopping = True
        # shutdown() wakes the accept() and recv() calls blocked in other threads; close() alone
        # would leave them waiting.
        with self._lock:
            socks = [self._sock] + list(self._live)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._sock.close()
        except OSError:
            pass
        for t in list(self._threads):
            t.join(timeout=5)
        self._acceptor.join(timeout=5)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def address(self):
        return "127.0.0.1:%d" % self.port

    def connection_count(self):
        with self._lock:
            return len(self.connections)

    def wait_transactions(self, n, timeout=30.0):
        """Waits until n transactions reached the end of data (answered or not)."""
        return self._wait(lambda: len([t for t in self.transactions if t.raw_body is not None]) >= n, timeout,
                          "%d transactions" % n)

    def wait_connections(self, n, timeout=30.0):
        return self._wait(lambda: len(self.connections) >= n, timeout, "%d connections" % n)

    def wait_closed(self, timeout=30.0):
        """Waits until every connection so far has ended."""
        return self._wait(lambda: self._open == 0, timeout, "all connections closed")

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("fake_smtp: no %s within %.0f s (have %d connections, %d transactions)"
                                       % (what, timeout, len(self.connections), len(self.transactions)))
                self._lock.wait(min(left, 0.5))
        return True

    # ---- the server ------------------------------------------------------------------------

    def _accept_loop(self):
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                record = Connection(len(self.connections))
                self.connections.append(record)
                too_many = self.max_connections is not None and self._open >= self.max_connections
                self._open += 1
                self._lock.notify_all()
            t = threading.Thread(target=self._serve, args=(conn, record, too_many), daemon=True,
                                 name="fake-smtp-%d" % record.index)
            self._threads.append(t)
            t.start()

    def _serve(self, sock, record, too_many):
        with self._lock:
            self._live.add(sock)
        session = _Session(self, sock, record)
        try:
            if too_many:
                session.send("421 4.7.0 too many connections")
            else:
                session.run()
        except (_Closed, OSError, ssl.SSLError, socket.timeout):
            pass
        finally:
            try:
                session.sock.close()
            except OSError:
                pass
            with self._lock:
                self._live.discard(sock)
                self._live.discard(session.sock)
                record.closed = True
                self._open -= 1
                self._lock.notify_all()

    def _record(self, fn):
        with self._lock:
            result = fn()
            self._lock.notify_all()
            return result


def _lookup(table, address, default):
    for pattern, reply in table.items():
        if re.search(pattern, address):
            return reply
    return default


def _path(args, keyword):
    """'FROM:<a@b> SIZE=1' -> ('a@b', ['SIZE=1']); None when malformed."""
    m = re.match(r"(?i)%s:\s*<([^>]*)>\s*(.*)$" % keyword, args)
    if not m:
        return None
    return m.group(1), m.group(2).split()


class _Session:
    def __init__(self, server, sock, record):
        self.server = server
        self.sock = sock
        self.record = record
        self.buf = b""
        self.tx = None
        self.auth_user = None
        sock.settimeout(server.read_timeout)
        # Replies to pipelined commands go out one by one; without NODELAY, Nagle and the
        # client's delayed ACK hold each second reply back ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, reply):
        lines = reply.split("\n")
        out = ""
        for i, line in enumerate(lines):
            code, rest = line[:3], line[4:] if len(line) > 3 else ""
            out += "%s%s%s\r\n" % (code, "-" if i < len(lines) - 1 else " ", rest)
        self.sock.sendall(out.encode())

    def readline(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise _Closed()
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def run(self):
        s = self.server
        self.send(s.greeting)
        if not s.greeting.startswith("2"):
            return
        while True:
            line = self.readline().decode("utf-8", "replace")
            self.record.commands.append(line)
            verb, _, args = line.partition(" ")
            verb = verb.upper()
            handler = getattr(self, "cmd_" + verb.lower(), None)
            if handler is None:
                self.send("502 5.5.2 command not recognised")
                continue
            if handler(args) is False:
                return

    def cmd_ehlo(self, args):
        s = self.server
        if s.ehlo_reply:
            self.send(s.ehlo_reply)
            return
        self.record.helo = args
        lines = [s.host_name] + list(s.extensions)
        if s.starttls and not self.record.tls:
            lines.append("STARTTLS")
        if s.auth:
            lines.append("AUTH PLAIN LOGIN")
        self.send("\n".join("250 " + l for l in lines))

    def cmd_helo(self, args):
        self.record.helo = args
        self.send("250 " + self.server.host_name)

    def cmd_starttls(self, args):
        s = self.server
        if not s.starttls or self.record.tls:
            self.send("502 5.5.1 STARTTLS not offered")
            return
        if s.starttls_injection:
            self.sock.sendall(b"220 2.0.0 ready\r\n250 injected\r\n")
        else:
            self.send(s.starttls_reply)
            if not s.starttls_reply.startswith("220"):
                return
        if s.starttls_broken:
            self.sock.sendall(b"this is not TLS\r\n")
            return False
        self.buf = b""  # RFC 3207 4.2: nothing read in plain text counts after the handshake
        raw = self.sock
        self.sock = s._tls.wrap_socket(raw, server_side=True)  # detaches `raw`
        with s._lock:
            s._live.discard(raw)
            s._live.add(self.sock)
        self.record.tls = True
        self.tx = None
        self.auth_user = None

    def cmd_auth(self, args):
        s = self.server
        if not s.auth:
            self.send("502 5.5.1 AUTH not offered")
            return
        mech, _, initial = args.partition(" ")
        mech = mech.upper()
        user = password = None
        try:
            if mech == "PLAIN":
                if not initial:
                    self.send("334 ")
                    initial = self.readline().decode()
                parts = base64.b64decode(initial, validate=True).split(b"\0")
                if len(parts) == 3:
                    user, password = parts[1].decode(), parts[2].decode()
            elif mech == "LOGIN":
                self.send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline(), validate=True).decode()
                self.send("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self.readline(), validate=True).decode()
            else:
                self.send("504 5.5.4 mechanism not supported")
                return
        except (ValueError, UnicodeDecodeError):
            self.send("501 5.5.2 bad base64")
            return
        if (user, password) == tuple(s.auth):
            self.auth_user = user
            self.send("235 2.7.0 authenticated")
        else:
            self.send("535 5.7.8 authentication failed")

    def cmd_mail(self, args):
        s = self.server
        parsed = _path(args, "FROM")
        if parsed is None:
            self.send("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        reply = _lookup(s.mail_replies, parsed[0], "250 2.1.0 ok")
        if reply.startswith("2"):
            self.tx = Transaction(self.record.index, self.record.tls, parsed[0], parsed[1], self.auth_user)
        self.send(reply)

    def cmd_rcpt(self, args):
        s = self.server
        parsed = _path(args, "TO")
        if self.tx is None:
            self.send("503 5.5.1 need MAIL first")
            return
        if parsed is None:
            self.send("501 5.5.4 syntax: RCPT TO:<address>")
            return
        reply = _lookup(s.rcpt_replies, parsed[0], "250 2.1.5 ok")
        if s.max_recipients is not None and len(self.tx.accepted()) >= s.max_recipients:
            reply = "452 4.5.3 too many recipients"
        self.tx.rcpts.append(Rcpt(parsed[0], parsed[1], reply))
        self.send(reply)

    def cmd_data(self, args):
        s = self.server
        if self.tx is None or not self.tx.accepted():
            self.send("554 5.5.1 no valid recipients" if self.tx else "503 5.5.1 need MAIL first")
            return
        self.send(s.data_command_reply)
        if not s.data_command_reply.startswith("354"):
            return
        if s.reset_after_354:
            return False
        raw = []
        while True:
            line = self.readline()
            if line == b".":
                break
            raw.append(line)
        tx, self.tx = self.tx, None
        tx.raw_body = b"".join(l + b"\r\n" for l in raw)
        tx.body = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in raw)
        return self._end_of_data(tx)

    def cmd_bdat(self, args):
        """RFC 3030: "BDAT size [LAST]" then exactly size octets; only when CHUNKING is listed."""
        s = self.server
        m = re.match(r"(?i)(\d+)(\s+LAST)?\s*$", args)
        if not m:
            self.send("501 5.5.4 syntax: BDAT size [LAST]")
            return False  # the chunk's length is unknown: the session cannot go on
        size, last = int(m.group(1)), bool(m.group(2))
        while len(self.buf) < size:
            data = self.sock.recv(65536)
            if not data:
                raise _Closed()
            self.buf += data
        chunk, self.buf = self.buf[:size], self.buf[size:]
        if not any(e.upper() == "CHUNKING" for e in s.extensions):
            self.send("502 5.5.1 BDAT without CHUNKING")
            return
        if self.tx is None or not self.tx.accepted():
            self.send("554 5.5.1 no valid recipients" if self.tx else "503 5.5.1 need MAIL first")
            return
        self.tx.chunks.append(chunk)
        if not last:
            self.send("250 2.0.0 %d octets received" % size)
            return
        tx, self.tx = self.tx, None
        tx.raw_body = tx.body = b"".join(tx.chunks)
        tx.chunked = True
        return self._end_of_data(tx)

    def _end_of_data(self, tx):
        s = self.server
        self.server._record(lambda: self.server.transactions.append(tx))
        if s.silent_after_dot:
            while self.sock.recv(65536):
                pass
            return False
        reply = s.data_reply(tx) if callable(s.data_reply) else s.data_reply
        tx.data_reply = reply
        if reply.startswith("2"):
            self.server._record(lambda: setattr(self.record, "transactions", self.record.transactions + 1))
        self.send(reply)

    def cmd_rset(self, args):
        self.tx = None
        self.send("250 2.0.0 reset")

    def cmd_noop(self, args):
        self.send("250 2.0.0 ok")

    def cmd_quit(self, args):
        self.send("221 2.0.0 bye")
        return False


def _self_test():
    """Drives the fake with smtplib (plain, STARTTLS + AUTH, refusals, silence)."""
    import smtplib

    with FakeSmtp(starttls=True, auth=("user", "secret"), rcpt_replies={r"^nobody@": "550 5.1.1 no such user"},
                  extensions=["PIPELINING", "SIZE 1000", "8BITMIME", "DSN"]) as mx:
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as c:
            c.ehlo("client.test")
            assert c.has_extn("starttls") and c.has_extn("size") and c.has_extn("dsn")
            c.starttls(context=ssl._create_unverified_context())
            c.ehlo("client.test")
            assert not c.has_extn("starttls")
            c.login("user", "secret")
            refused = c.sendmail("a@example.test", ["b@example.net", "nobody@example.net"],
                                 b"Subject: t\r\n\r\n.dot line\r\nend\r\n")
            assert list(refused) == ["nobody@example.net"], refused
            c.sendmail("a@example.test", ["c@example.net"], b"second\r\n")
        mx.wait_transactions(2, timeout=10)
        t = mx.transactions[0]
        assert t.tls and t.auth_user == "user" and t.mail_from == "a@example.test", t
        assert [r.address for r in t.accepted()] == ["b@example.net"], t.rcpts
        assert t.body == b"Subject: t\r\n\r\n.dot line\r\nend\r\n", t.body
        assert t.raw_body == b"Subject: t\r\n\r\n..dot line\r\nend\r\n", t.raw_body
        assert mx.connection_count() == 1 and mx.connections[0].transactions == 2

    with FakeSmtp(extensions=["PIPELINING", "CHUNKING"]) as mx:
        s = socket.create_connection(("127.0.0.1", mx.port), timeout=10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO t\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.net>\r\n"
                  b"BDAT 5\r\n.x\r\nyBDAT 3 LAST\r\nz\r\nQUIT\r\n")
        replies = [l for l in iter(f.readline, b"") if l[3:4] == b" "]
        assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"250", b"250", b"221"], replies
        s.close()
        mx.wait_transactions(1, timeout=10)
        t = mx.transactions[0]
        assert t.chunked and t.body == b".x\r\nyz\r\n", t.body

    with FakeSmtp(greeting="421 4.3.2 busy") as mx:
        try:
            smtplib.SMTP("127.0.0.1", mx.port, timeout=10)
            raise AssertionError("421 greeting accepted")
        except smtplib.SMTPConnectError as e:
            assert e.smtp_code == 421

    with FakeSmtp(data_reply=lambda tx: "451 4.3.0 later" if b"defer" in tx.body else "250 2.0.0 ok") as mx:
        with smtplib.SMTP("127.0.0.1", mx.port, timeout=10) as c:
            try:
                c.sendmail("a@example.test", ["b@example.net"], b"defer me\r\n")
                raise AssertionError("451 not reported")
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 451
        mx.wait_closed(timeout=10)

    with FakeSmtp(silent_after_dot=True) as mx:
        c = smtplib.SMTP("127.0.0.1", mx.port, timeout=1)
        try:
            c.sendmail("a@example.test", ["b@example.net"], b"x\r\n")
            raise AssertionError("silence not noticed")
        except (socket.timeout, smtplib.SMTPServerDisconnected):
            pass
        c.close()
        mx.wait_transactions(1, timeout=10)

    with FakeSmtp(starttls=True, starttls_injection=True) as mx:
        s = socket.create_connection(("127.0.0.1", mx.port), timeout=10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO t\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"STARTTLS\r\n")
        data = s.recv(4096)
        assert data == b"220 2.0.0 ready\r\n250 injected\r\n", data
        s.close()
    print("fake_smtp self test: ok")


if __name__ == "__main__":
    _self_test()
