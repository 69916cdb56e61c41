#!/usr/bin/python3
"""test_smtp_hostile: the SMTP server against hostile clients, on the real binary over loopback.

SMTP smuggling, NUL bytes, content sent before 354, STARTTLS command injection, early talkers,
open-relay address tricks on both plain listeners, over-long lines, garbage floods and
unknown-command floods. Each scenario asserts what the peer sees (replies, closes) and what
the queue holds afterwards.
"""
import os
import random
import re
import socket
import ssl
import threading
import time
import unittest

from petrel import client_tls_context, Dialog, message, Petrel, proc_status_kib

SMUGGLING_VARIANTS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n\x00.\r\n"]

# (address, expected RCPT code). Local-looking forms are unknown users of our domain (550),
# foreign ones are relay attempts (554 5.7.1), malformed ones are syntax errors (501).
RELAY_FORMS = [
    ("<u%ext.example@example.test>", 550),
    ('<"u@ext.example"@example.test>', 550),
    ("<ext.example!u@example.test>", 550),
    ("<@example.test:u@ext.example>", 554),  # source route ignored (RFC 5321 4.1.1.3): u@ext.example
    ("<u@ext.example@example.test>", 501),
    ("<u@[127.0.0.1]>", 554),
    ("<u@[IPv6:::1]>", 554),
    ("<u@ext.example>", 554),
    ("<u@ext.example.>", 501),
    ("<u@EXAMPLE.TEST.ext.example>", 554),
]
EXPECTED_STATUS = {550: "5.1.1", 554: "5.7.1", 501: "5.1.3"}


def start_session(p, port="smtp", ehlo="client.example"):
    c = Dialog(p.port(port))
    c.expect(220)
    c.cmd("EHLO " + ehlo, 250)
    return c


def assert_nothing_more(test, c, wait=0.3):
    """No further reply is buffered or arrives within `wait` seconds (one reply per command)."""
    test.assertEqual(c.buf, b"", "unexpected extra reply data")
    c.sock.settimeout(wait)
    try:
        extra = c.sock.recv(65536)
    except (socket.timeout, TimeoutError, ssl.SSLError):
        extra = None
    finally:
        c.sock.settimeout(10)
    test.assertIsNone(extra, f"unexpected extra reply: {extra!r}")


def read_all_replies(c, timeout=10):
    """Reads replies until the server closes; returns the list of (code, lines)."""
    replies = []
    c.sock.settimeout(timeout)
    while True:
        try:
            replies.append(c.reply())
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return replies


def greet_many(p, n):
    """Opens n connections at once; returns their first reply codes and the open dialogs."""
    dialogs = []
    try:
        for _ in range(n):
            dialogs.append(Dialog(p.port()))
        return [d.reply()[0] for d in dialogs], dialogs
    except BaseException:
        for d in dialogs:
            d.close()
        raise


CRASH_MARKERS = ("assertion failed", "terminate called", "Sanitizer", "server.fatal", "Segmentation fault")


class Smuggling(unittest.TestCase):
    def test_fake_end_of_data_markers_do_not_end_the_message(self):
        with Petrel() as p:
            for variant in SMUGGLING_VARIANTS:
                with self.subTest(variant=variant):
                    c = start_session(p)
                    c.cmd("MAIL FROM:<sender@remote.example>", 250)
                    c.cmd("RCPT TO:<alice@example.test>", 250)
                    c.cmd("DATA", 354)
                    c.send(b"Subject: a\r\n\r\nfirst" + variant +
                           b"MAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nsmuggled\r\n" + b"\r\n.\r\n")
                    # Exactly one final reply for the one DATA: the refusal of a message with
                    # bare CR/LF (or NUL), and no replies to the smuggled commands.
                    code, lines = c.reply()
                    self.assertEqual(code, 554, lines)
                    self.assertTrue(lines[0].startswith("554 5.6.0 "), lines)
                    # The next reply belongs to NOOP, and the session is in a sane state.
                    c.send("NOOP\r\n")
                    self.assertEqual(c.reply(), (250, ["250 2.0.0 Ok"]))
                    assert_nothing_more(self, c)
                    c.cmd("MAIL FROM:<sender@remote.example>", 250)  # the refused tx was reset
                    c.cmd("QUIT", 221)
                    c.close()
            self.assertEqual(p.queue_ids(), [], "a smuggling attempt left mail in the queue")

    def test_real_end_marker_then_pipelined_commands_are_seen_as_commands(self):
        # Control: with a real CRLF.CRLF the same bytes are a message plus pipelined commands,
        # so the reply counting above would notice a second reading.
        with Petrel() as p:
            c = start_session(p)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: a\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.test>\r\n")
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(len(p.queue_ids()), 1)


class NulBytes(unittest.TestCase):
    def test_nul_in_command_line(self):
        with Petrel() as p:
            c = start_session(p)
            c.send(b"MAIL FROM:<a@remote.example>\x00 SIZE=10\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 500, lines)
            self.assertTrue(lines[0].startswith("500 5.5.2"), lines)
            c.send(b"NO\x00OP\r\n")
            self.assertTrue(c.reply()[1][0].startswith("500 5.5.2"))
            # The session goes on, and no transaction was started by the NUL line.
            c.cmd("RCPT TO:<alice@example.test>", 503)
            c.cmd("NOOP", 250)

    def test_nul_in_data(self):
        with Petrel() as p:
            c = start_session(p)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 554, lines)
            self.assertTrue(lines[0].startswith("554 5.6.0"), lines)
            c.cmd("NOOP", 250)
            assert_nothing_more(self, c)
            self.assertEqual(p.queue_ids(), [])


class PipeliningAbuse(unittest.TestCase):
    def test_content_before_354_is_refused_and_closed(self):
        with Petrel() as p:
            c = start_session(p)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.send("DATA\r\n" + message(subject="blind") + ".\r\n")
            replies = read_all_replies(c)
            self.assertEqual(len(replies), 1, replies)
            self.assertEqual(replies[0][0], 554, replies)
            self.assertTrue(replies[0][1][0].startswith("554 5.5.0"), replies)
            self.assertTrue(c.closed(5))
            self.assertEqual(p.queue_ids(), [])


class StartTlsInjection(unittest.TestCase):
    def _inject(self, p, injected):
        c = start_session(p)
        c.send(b"STARTTLS\r\n" + injected)
        c.expect(220)
        self.assertEqual(c.buf, b"", "server answered the injected command in plaintext")
        c.sock = client_tls_context().wrap_socket(c.sock)
        c.buf = b""
        return c

    def test_injected_rset_is_discarded(self):
        with Petrel() as p:
            c = self._inject(p, b"RSET\r\n")
            c.send("EHLO client.example\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            self.assertTrue(lines[0].startswith("250-mx.example.test"), f"first reply over TLS is not EHLO's: {lines}")
            self.assertNotIn("250-STARTTLS", lines)
            assert_nothing_more(self, c)
            c.cmd("NOOP", 250)
            self.assertTrue(p.wait_log("smtp.starttls_injection"))

    def test_injected_mail_is_discarded_and_state_reset(self):
        with Petrel() as p:
            c = self._inject(p, b"MAIL FROM:<x@y.example>\r\nRCPT TO:<alice@example.test>\r\n")
            # RFC 3207 4.2: the session starts over; MAIL before EHLO is out of order, and no
            # reply to the injected MAIL/RCPT precedes it.
            c.send("MAIL FROM:<a@remote.example>\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 503, lines)
            self.assertIn("EHLO", lines[0])
            assert_nothing_more(self, c)
            c.cmd("EHLO client.example", 250)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="after-tls") + ".\r\n")
            qid = c.expect(250).split()[-1]
            body = p.queue_body(qid)
            self.assertIn(b"(using TLS", body)
            self.assertNotIn(b"x@y.example", body)


class EarlyTalker(unittest.TestCase):
    def test_talking_before_the_banner_is_refused(self):
        with Petrel(smtp_toml='banner_delay = "500ms"') as p:
            c = Dialog(p.port())
            c.send("EHLO x\r\n")
            replies = read_all_replies(c)
            self.assertEqual([r[0] for r in replies], [554], replies)
            self.assertTrue(c.closed(2))

            polite = Dialog(p.port())
            start = time.monotonic()
            polite.expect(220)
            self.assertGreaterEqual(time.monotonic() - start, 0.4, "banner came before banner_delay")
            polite.cmd("EHLO client.example", 250)
            polite.cmd("QUIT", 221)


class OpenRelay(unittest.TestCase):
    def _check_forms(self, p, port):
        for sender in ("<sender@remote.example>", "<>"):
            for addr, want in RELAY_FORMS:
                with self.subTest(port=port, sender=sender, rcpt=addr):
                    c = start_session(p, port)
                    c.cmd("MAIL FROM:" + sender, 250)
                    c.send(f"RCPT TO:{addr}\r\n")
                    code, lines = c.reply()
                    self.assertEqual(code, want, lines)
                    self.assertTrue(lines[0].startswith(f"{want} {EXPECTED_STATUS[want]} "), lines)
                    # Nothing to send to: DATA is out of order.
                    c.cmd("DATA", 503)
                    c.cmd("QUIT", 221)
                    c.close()
        self.assertEqual(p.queue_ids(), [])

    def test_smtp_port_refuses_relay_tricks(self):
        with Petrel() as p:
            self._check_forms(p, "smtp")

    def test_submission_port_refuses_relay_tricks_without_auth(self):
        # RFC 6409 4.3: the submission port takes no MAIL before AUTH, so no relay form gets as
        # far as RCPT (test_submission.py covers the authenticated side).
        with Petrel() as p:
            for sender in ("<sender@remote.example>", "<>"):
                for addr, _ in RELAY_FORMS:
                    with self.subTest(sender=sender, rcpt=addr):
                        c = start_session(p, "submission")
                        c.send(f"MAIL FROM:{sender}\r\n")
                        code, lines = c.reply()
                        self.assertEqual((code, lines[0][:9]), (530, "530 5.7.0"), lines)
                        c.send(f"RCPT TO:{addr}\r\n")
                        self.assertEqual(c.reply()[0], 503)
                        c.cmd("QUIT", 221)
                        c.close()
            self.assertEqual(p.queue_ids(), [])

    def test_trusted_network_may_relay(self):
        # Proves the check above is a real decision: the same foreign address from a trusted
        # network is accepted and queued.
        with Petrel(smtp_toml='trusted_networks = ["127.0.0.0/8"]') as p:
            c = start_session(p)
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<u@ext.example>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="relayed") + ".\r\n")
            qid = c.expect(250).split()[-1]
            self.assertEqual(p.queue_ids(), [qid])
            out = p.cli("queue", "show", qid).stdout
            self.assertIn("u@ext.example", out)


class LongLines(unittest.TestCase):
    def test_long_command_line_is_refused_once_then_session_continues(self):
        with Petrel() as p:
            c = start_session(p)
            c.send(b"MAIL FROM:<" + b"a" * 100_000)  # no LF yet
            # The refusal comes once the limit is passed, without waiting for the line end.
            code, lines = c.reply()
            self.assertEqual(code, 500, lines)
            self.assertTrue(lines[0].startswith("500 5.5.2"), lines)
            c.send(b"a" * 50_000 + b"@remote.example>\r\n")
            c.send("NOOP\r\n")
            self.assertEqual(c.reply(), (250, ["250 2.0.0 Ok"]), "the rest of the long line was read as a command")
            assert_nothing_more(self, c)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)

    def test_megabyte_data_line_is_stored_byte_exact(self):
        with Petrel() as p:
            c = start_session(p)
            c.cmd("MAIL FROM:<sender@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            rnd = random.Random(1)
            line = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(1 << 20))
            body = ("Subject: long line\r\n\r\nstart\r\n" + line + "\r\nend\r\n").encode()
            c.send(body + b".\r\n")
            qid = c.expect(250).split()[-1]
            stored = p.delivered_message(qid)
            self.assertTrue(stored.startswith(b"Received: "))
            self.assertTrue(stored.endswith(body), "stored message differs from the one sent")
            self.assertEqual(len(stored) - stored.index(b"Subject: long line"), len(body))


class Floods(unittest.TestCase):
    def test_garbage_flood(self):
        seed = int(os.environ.get("PETREL_TEST_SEED", time.time_ns() % 1_000_000))
        print(f"\ngarbage flood seed={seed} (PETREL_TEST_SEED to repeat)")
        with Petrel() as p:
            pid = p.proc.pid
            base_rss = proc_status_kib(pid)
            peak = [base_rss]
            stop = threading.Event()
            sent_total = [0]
            lock = threading.Lock()

            def sampler():
                while not stop.is_set():
                    try:
                        peak[0] = max(peak[0], proc_status_kib(pid))
                    except OSError:
                        return
                    time.sleep(0.02)

            def garbage(rnd):
                n = rnd.randint(1, 16384)
                # Mostly random bytes; some chunks are long runs without any LF.
                if rnd.random() < 0.3:
                    return bytes([rnd.choice(b"\x00\rA \xff")]) * n
                return rnd.randbytes(n)

            def flood(i):
                # Six kinds of garbage: before the banner (an early talker) and after it as
                # commands on port 25; as a TLS handshake on the implicit TLS port; as the
                # handshake after STARTTLS; inside a TLS session; as message content after DATA
                # (which never ends: the client gives up).
                rnd = random.Random(seed * 1000 + i)
                kind = i % 6
                sent = 0
                s = None
                try:
                    s = socket.create_connection(("127.0.0.1", p.port("submissions" if kind == 1 else "smtp")),
                                                 timeout=5)
                    if kind in (0, 2, 3, 4):
                        d = Dialog.__new__(Dialog)
                        d.sock, d.buf = s, b""
                        d.expect(220)
                    if kind in (2, 3, 4):
                        d.cmd("EHLO flood.example", 250)
                        if kind == 4:
                            d.send("MAIL FROM:<f@remote.example>\r\nRCPT TO:<alice@example.test>\r\n")
                            d.expect(250)
                            d.expect(250)
                            d.cmd("DATA", 354)
                        else:
                            d.cmd("STARTTLS", 220)
                            if kind == 3:
                                s = client_tls_context().wrap_socket(s)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and sent < 4 << 20:
                        chunk = garbage(rnd)
                        s.sendall(chunk)
                        sent += len(chunk)
                except (OSError, EOFError):
                    pass  # closed by the server: the point of the exercise
                finally:
                    with lock:
                        sent_total[0] += sent
                    if s is not None:
                        s.close()

            t_sampler = threading.Thread(target=sampler)
            t_sampler.start()
            threads = [threading.Thread(target=flood, args=(i,)) for i in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            stop.set()
            t_sampler.join(5)
            self.assertFalse(any(t.is_alive() for t in threads), "flood clients hung")

            self.assertIsNone(p.proc.poll(), "server died:\n" + p.log()[-3000:])
            # Every flood connection gave its slot back: a full per-IP quota (50) of new
            # connections is greeted with 220 again (a leak would show as 421s).
            deadline = time.monotonic() + 5
            while True:
                banners, dialogs = greet_many(p, 50)
                if banners == [220] * 50 or time.monotonic() > deadline:
                    break
                for d in dialogs:
                    d.close()
                time.sleep(0.2)
            try:
                self.assertEqual(banners, [220] * 50)
                # And they work.
                c = dialogs[0]
                c.cmd("EHLO client.example", 250)
                c.cmd("MAIL FROM:<sender@remote.example>", 250)
                c.cmd("RCPT TO:<alice@example.test>", 250)
                c.cmd("QUIT", 221)
            finally:
                for d in dialogs:
                    d.close()
            print(f"flood sent {sent_total[0]} bytes; rss base={base_rss} KiB peak={peak[0]} KiB")
            self.assertLess(peak[0], 200 * 1024, "RSS grew past 200 MB")
            log = p.log()
            for marker in CRASH_MARKERS:
                self.assertNotIn(marker, log)
            self.assertEqual(re.findall(r"^\S+ (?:error|fatal) .*$", log, re.M), [])
            # A session that got garbage as commands ends at max_errors with 421, never
            # part-way: fewer errors would mean it was dropped for another reason.
            deadline = time.monotonic() + 5
            while log.count(" smtp.disconnect ") < log.count(" smtp.connect ") and time.monotonic() < deadline:
                time.sleep(0.05)
                log = p.log()
            errors = re.findall(r" smtp\.disconnect .* errors=(\d+)", log)
            self.assertEqual(len(errors), log.count(" smtp.connect "), "sessions still open")
            self.assertGreaterEqual(len(errors), 50 + 50)  # flood, greet_many
            self.assertEqual(sorted(set(errors) - {"0", "10"}), [], "sessions ended part-way")
            self.assertEqual(p.queue_ids(), [])
            # The abandoned DATA transactions spilled to body/ files; none may be left behind.
            body_dir = os.path.join(p.data_dir, "queue", "body")
            deadline = time.monotonic() + 5
            while os.path.isdir(body_dir) and os.listdir(body_dir) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(os.listdir(body_dir) if os.path.isdir(body_dir) else [], [])

    def test_pipelined_batch_larger_than_the_input_buffer(self):
        # RFC 2920: a client may send a whole batch without waiting. 1000 NOOPs (6000 octets)
        # fill the 4 KiB input buffer with a partial line at its end; every one is answered.
        with Petrel() as p:
            c = start_session(p)
            c.send(b"NOOP\r\n" * 1000 + b"MAIL FROM:<sender@remote.example>\r\n")
            for i in range(1000):
                self.assertEqual(c.reply(), (250, ["250 2.0.0 Ok"]), f"NOOP {i}")
            self.assertEqual(c.reply(), (250, ["250 2.1.0 Ok"]))
            # The same with recipients, the batch real clients send.
            c.send(b"RCPT TO:<alice@example.test>\r\n" * 300 + b"DATA\r\n")
            for i in range(300):
                self.assertEqual(c.reply()[0], 250, f"RCPT {i}")
            c.expect(354)
            c.send("Subject: batch\r\n\r\nok\r\n.\r\n")
            c.expect(250)
            assert_nothing_more(self, c)

    def test_unknown_command_flood_is_cut_off(self):
        with Petrel() as p:
            c = start_session(p)
            c.send(b"XYZZY\r\n" * 1000)
            replies = read_all_replies(c)
            codes = [r[0] for r in replies]
            # max_errors = 10: ten 500s, then 421 and the close; the rest is never answered.
            self.assertEqual(codes, [500] * 10 + [421], codes[:20])
            self.assertTrue(replies[-1][1][0].startswith("421 4.7.0"), replies[-1])
            self.assertTrue(c.closed(5))
            self.assertIsNone(p.proc.poll())
            start_session(p).cmd("QUIT", 221)


if __name__ == "__main__":
    unittest.main()
