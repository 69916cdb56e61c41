#!/usr/bin/python3
"""test_smtp_tls: STARTTLS (RFC 3207) and implicit TLS (RFC 8314) on the SMTP listeners, with
Python's ssl module and the tools an administrator would use (openssl s_client, swaks).
The server runs with its generated self-signed certificate."""
import base64
import shutil
import socket
import ssl
import subprocess
import unittest
import warnings

from petrel import client_tls_context, codes, Dialog, message, Petrel


class SmtpTest(unittest.TestCase):
    def dial(self, p, kind="smtp", tls=False):
        c = Dialog(p.port(kind), tls=tls)
        self.addCleanup(c.close)
        c.expect(220)
        return c

    def deliver(self, c, subject):
        c.cmd("MAIL FROM:<a@remote.example>", 250)
        c.cmd("RCPT TO:<alice@example.test>", 250)
        c.cmd("DATA", 354)
        c.send(message(subject=subject) + ".\r\n")
        return c.expect(250).split()[-1]


class StartTls(SmtpTest):
    def test_starttls_resets_the_session(self):
        with Petrel() as p:
            c = self.dial(p)
            self.assertIn("STARTTLS", c.cmd("EHLO client.example", 250))
            self.assertEqual(codes(c.cmd("STARTTLS", 220)), ("220", "2.0.0"))
            c.sock = client_tls_context().wrap_socket(c.sock)
            self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
            # RFC 3207 4.2: everything learnt before the handshake is forgotten.
            self.assertEqual(codes(c.cmd("MAIL FROM:<a@remote.example>", 503)), ("503", "5.5.1"))
            ehlo = c.cmd("EHLO client.example", 250)
            self.assertNotIn("STARTTLS", ehlo)
            self.assertIn("PIPELINING", ehlo)

    def test_received_header_records_tls(self):
        with Petrel() as p:
            c = self.dial(p)
            c.cmd("EHLO client.example", 250)
            c.starttls()
            c.cmd("EHLO client.example", 250)
            qid = self.deliver(c, "over tls")
            body = p.queue_body(qid)
            self.assertIn(b"(using TLSv1.", body.split(b"\r\n\r\n")[0])
            self.assertIn(b"with ESMTPS id " + qid.encode(), body)

    def test_transaction_before_starttls_is_dropped(self):
        with Petrel() as p:
            c = self.dial(p)
            c.cmd("EHLO client.example", 250)
            c.cmd("MAIL FROM:<a@remote.example>", 250)
            # Not during a transaction (the envelope would straddle plaintext and TLS).
            self.assertEqual(codes(c.cmd("STARTTLS", 503)), ("503", "5.5.1"))
            c.cmd("RSET", 250)
            c.starttls()
            c.cmd("EHLO client.example", 250)
            c.cmd("RCPT TO:<alice@example.test>", 503)

    def test_starttls_twice(self):
        with Petrel() as p:
            c = self.dial(p)
            c.cmd("EHLO client.example", 250)
            c.starttls()
            self.assertEqual(codes(c.cmd("STARTTLS", 503)), ("503", "5.5.1"))
            c.cmd("EHLO client.example", 250)
            self.assertEqual(codes(c.cmd("STARTTLS", 503)), ("503", "5.5.1"))
            c.cmd("NOOP", 250)  # the TLS session survives the refusal

    def test_starttls_with_argument(self):
        with Petrel() as p:
            c = self.dial(p)
            c.cmd("EHLO client.example", 250)
            self.assertEqual(codes(c.cmd("STARTTLS now", 501)), ("501", "5.5.4"))
            c.starttls()  # still available
            c.cmd("EHLO client.example", 250)

    def test_plaintext_pipelined_after_starttls_is_discarded(self):
        # RFC 3207 5 / CVE-2011-0411: commands sent in the clear behind STARTTLS must not be
        # executed inside the TLS session.
        with Petrel() as p:
            c = self.dial(p)
            c.cmd("EHLO client.example", 250)
            c.send("STARTTLS\r\nMAIL FROM:<injected@remote.example>\r\n")
            c.expect(220)
            c.sock = client_tls_context().wrap_socket(c.sock)
            c.buf = b""
            c.cmd("EHLO client.example", 250)
            c.cmd("RCPT TO:<alice@example.test>", 503)  # no MAIL took effect

    def test_tls_1_1_refused(self):
        with Petrel() as p:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that our side does offer TLS 1.1
            for kind in ("smtp", "submissions"):
                if kind == "smtp":
                    c = self.dial(p)
                    c.cmd("EHLO client.example", 250)
                    c.cmd("STARTTLS", 220)
                    s = c.sock
                else:
                    s = socket.create_connection(("127.0.0.1", p.port(kind)), timeout=10)
                    self.addCleanup(s.close)
                with self.assertRaises(ssl.SSLError, msg=kind) as cm:
                    ctx.wrap_socket(s)
                # Refused by the server (an alert), not by our own OpenSSL.
                self.assertIn("PROTOCOL_VERSION", str(cm.exception).upper(), kind)
            # TLS 1.2 is still fine.
            ctx12 = client_tls_context()
            ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
            with ctx12.wrap_socket(socket.create_connection(("127.0.0.1", p.port("submissions")), timeout=10)) as s:
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertTrue(s.recv(100).startswith(b"220 "))


class ImplicitTls(SmtpTest):
    def test_submissions_port_speaks_tls_first(self):
        with Petrel() as p:
            c = self.dial(p, "submissions", tls=True)
            self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
            ehlo = c.cmd("EHLO client.example", 250)
            self.assertNotIn("STARTTLS", ehlo)
            c.cmd("STARTTLS", 503)
            # A submission port: AUTH first (RFC 6409 4.3), as the sender's own account.
            c.cmd("MAIL FROM:<a@remote.example>", 530)
            c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0alice-password").decode(), 235)
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(message(subject="implicit tls").replace("<sender@remote.example>", "<alice@example.test>") + ".\r\n")
            qid = c.expect(250).split()[-1]
            body = p.queue_body(qid)
            self.assertIn(b"(using TLSv1.", body)
            self.assertIn(b"with ESMTPSA id", body)

    def test_plaintext_on_submissions_port_gets_nothing(self):
        with Petrel() as p:
            s = socket.create_connection(("127.0.0.1", p.port("submissions")), timeout=10)
            self.addCleanup(s.close)
            s.sendall(b"EHLO client.example\r\n")
            s.settimeout(5)
            try:
                data = s.recv(1000)
            except ConnectionResetError:
                data = b""
            self.assertFalse(data.startswith(b"220") or data.startswith(b"250"), data)


@unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
class OpensslClient(unittest.TestCase):
    def test_s_client_starttls(self):
        # -ign_eof: send all of stdin and wait for the server to close after QUIT (without it
        # s_client hangs up at the end of its input before the replies arrive).
        with Petrel() as p:
            r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{p.port()}",
                                "-brief", "-crlf", "-nocommands", "-ign_eof"],
                               input="NOOP\nQUIT\n", capture_output=True, text=True, timeout=30)
            out = r.stdout + r.stderr
            self.assertIn("Protocol version: TLSv1.", out)
            self.assertIn("250 2.0.0 Ok", r.stdout)
            self.assertIn("221 2.0.0 Bye", r.stdout)


@unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
class Swaks(unittest.TestCase):
    def test_swaks_tls_delivers(self):
        with Petrel() as p:
            r = subprocess.run(["swaks", "--server", f"127.0.0.1:{p.port()}", "--to", "alice@example.test", "--tls",
                                "--from", "tester@remote.example", "--header", "Subject: swaks over tls"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("TLS started", r.stdout)
            ids = p.queue_ids()
            self.assertEqual(len(ids), 1, r.stdout)
            body = p.queue_body(ids[0])
            self.assertIn(b"with ESMTPS", body)
            self.assertIn(b"Subject: swaks over tls", body)


if __name__ == "__main__":
    unittest.main()
