"""`petrel sendmail` as cron and scripts use it (issue 6): message on stdin, -t, -i/-oi, -f,
-F, recipients as arguments, run through a link named `sendmail` with a cron-like environment
(no HOME, minimal PATH), and a clear EX_TEMPFAIL when the server is not running."""
import glob
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

from petrel import DOMAIN, PETREL_BIN, Petrel, delivered_with
from test_submission import find_delivered

CRON_ENV = {"PATH": "/usr/bin:/bin", "LOGNAME": "root", "SHELL": "/bin/sh"}  # no HOME, as cron


def sendmail(p, args, data, program=None, env=CRON_ENV, user=None):
    cmd = [program or PETREL_BIN] + ([] if program else ["sendmail"]) + ["-C", p.config_path] + args
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups"] + cmd
    return subprocess.run(cmd, input=data.encode() if isinstance(data, str) else data, capture_output=True,
                          env=env, timeout=60)


def header(message, name):
    head = message.split(b"\r\n\r\n", 1)[0]
    return re.findall(rb"(?im)^" + name.encode() + rb": *([^\r\n]*)\r?$", head)


def as_given(stored, added):
    """The stored message minus what Petrel puts on top: Return-Path:, Delivered-To:, its
    Received: (with continuation lines), then the fields in `added` (From, Date, Message-ID:
    those the input lacked), in the order cmd_sendmail.cc writes them. Asserts each is there."""
    lines = stored.split(b"\r\n")
    for name in (b"Return-Path", b"Delivered-To", b"Received"):
        assert lines[0].startswith(name + b": "), (name, stored[:300])
        lines.pop(0)
        while lines[0].startswith((b" ", b"\t")):
            lines.pop(0)
    for name in added:
        assert lines[0].startswith(name.encode() + b": "), (name, stored[:400])
        lines.pop(0)
    return b"\r\n".join(lines)


class Sendmail(unittest.TestCase):
    def test_dash_t_like_cron(self):
        with Petrel() as p:
            r = sendmail(p, ["-t"], "To: alice@example.test\nCc: Bob <bob@example.test>\nBcc: root@example.test\n"
                                    "Subject: cron job\n\nDone.\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            for owner in ("alice", "bob"):
                data = find_delivered(p, "cron job", owner=owner)
                self.assertTrue(data.startswith(b"Return-Path: <root@mx.example.test>\r\n"), data[:200])
                self.assertIn(b"(Petrel, from userid 0)", data)
                self.assertEqual(header(data, "From"), [b"<root@mx.example.test>"])
                self.assertEqual(len(header(data, "Date")), 1)
                self.assertEqual(len(header(data, "Message-ID")), 1)
                self.assertEqual(header(data, "Bcc"), [])  # never passed on
                self.assertTrue(data.endswith(b"\r\n\r\nDone.\r\n"), data[-50:])

    def test_message_arrives_byte_for_byte(self):
        # Each case: the input as piped in, the fields Petrel adds, the stored message after
        # those additions. Line ends become CRLF; a last line without one gets it; a message
        # without header gets the empty line that separates our added fields from its body.
        own = "From: a@example.test\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m{}@example.test>\r\n"
        cases = [
            ("lf", "Subject: lf tok01\nX-Folded: one\n two\n\nbody 1\n  indented\n\nlast\n", "From Date Message-ID"),
            ("crlf", own.format(2) + "Subject: crlf tok02\r\n\r\nbody 2\r\nmore\r\n", ""),
            ("empty first body line", "Subject: empty tok03\n\n\nafter one empty line\n", "From Date Message-ID"),
            ("empty first body line, crlf", own.format(4) + "Subject: e tok04\r\n\r\n\r\nafter\r\n", ""),
            ("no header", "tok05 first line, not a field\nSubject: not a header\n\nend\n", "From Date Message-ID"),
            ("no header, crlf", "tok06 no header\r\n\r\nend\r\n", "From Date Message-ID"),
            ("empty header", "\ntok07 body after an empty header\n", "From Date Message-ID"),
            ("no final newline", "Subject: nofinal tok08\n\nbody\nlast line", "From Date Message-ID"),
            ("no final newline, crlf", own.format(9) + "Subject: tok09\r\n\r\nlast", ""),
            ("header only", "Subject: only header tok10\n", "From Date Message-ID"),
        ]
        with Petrel() as p:
            for i, (name, given, added) in enumerate(cases, 1):
                with self.subTest(name):
                    r = sendmail(p, ["alice@example.test"], given)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    expected = given.replace("\r\n", "\n").replace("\n", "\r\n")
                    if not expected.endswith("\r\n"):
                        expected += "\r\n"
                    if name.startswith("no header"):
                        expected = "\r\n" + expected
                    if name == "header only":
                        expected += "\r\n"
                    stored = delivered_with(p, f"tok{i:02d}".encode())
                    self.assertEqual(as_given(stored, added.split()), expected.encode())

    def test_control_characters_in_arguments_are_refused_before_anything_is_sent(self):
        # A newline in -f or -F must not become a line of the submit socket's protocol (an extra
        # RCPT) or of the header (an extra Bcc:); a recipient argument neither. Refused with
        # EX_USAGE, nothing queued.
        with Petrel() as p:
            cases = [
                (["-f", "alice@example.test\nRCPT bob@example.test", "alice@example.test"], "-f"),
                (["-falice@example.test\rRCPT bob@example.test", "alice@example.test"], "-f"),
                (["-r", "alice@example.test\n", "alice@example.test"], "-r"),
                (["-F", "x\r\nBcc: bob@example.test", "alice@example.test"], "-F"),
                (["-F", "x\nRCPT bob@example.test", "alice@example.test"], "-F"),
                (["-F", "tab\there", "alice@example.test"], "-F"),
                (["alice@example.test\nRCPT bob@example.test"], "recipient"),
                (["alice@example.test\r"], "recipient"),
                (["-t"], "recipient"),  # the NUL below, in To:
            ]
            for args, what in cases:
                with self.subTest(args=args):
                    r = sendmail(p, args, b"To: alice@example.test\0, bob@example.test\nSubject: injected\n\nx\n")
                    self.assertEqual(r.returncode, 65 if args == ["-t"] else 64, r.stderr)
                    self.assertIn(what.encode(), r.stderr)
                    self.assertIn(b"control character", r.stderr)
            time.sleep(1)
            self.assertEqual(p.queue_ids(), [])
            for owner in ("alice", "bob"):
                self.assertEqual(glob.glob(os.path.join(p.data_dir, "mail", DOMAIN, owner, "new", "*")), [])

    def test_full_name_is_quoted_or_encoded(self):
        with Petrel() as p:
            for i, (name, shown) in enumerate([
                    ('Jo "Q" Public \\ Esq', b'"Jo \\"Q\\" Public \\\\ Esq" <root@mx.example.test>'),
                    ("Zo\u00eb", b"=?UTF-8?B?Wm/Dqw==?= <root@mx.example.test>")]):
                r = sendmail(p, ["-F", name, "alice@example.test"], f"Subject: name {i}\n\nx\n".encode())
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(header(find_delivered(p, f"name {i}"), "From"), [shown])
            r = sendmail(p, ["-F", "Zo\udcc3", "alice@example.test"], "Subject: bad\n\nx\n")  # invalid UTF-8
            self.assertEqual(r.returncode, 64, r.stderr)
            self.assertIn(b"UTF-8", r.stderr)

    def test_submit_socket_refuses_control_characters(self):
        # Defence in depth: whatever a client sends, a SENDER or RCPT line with a control
        # character is refused (here a TAB and a CR, which the address parser alone would pass
        # after trimming).
        with Petrel() as p:
            for request in [b"SENDER \talice@example.test\nRCPT alice@example.test\nDATA\n",
                            b"RCPT \talice@example.test\nDATA\n",
                            b"RCPT alice@example.test\r\nDATA\n"]:
                with self.subTest(request=request):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(10)
                    s.connect(os.path.join(p.data_dir, "submit.sock"))
                    s.sendall(request + b"12\nSubject: x\r\n0\n")
                    reply = b""
                    while not reply.endswith(b"\n"):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                    s.close()
                    self.assertRegex(reply, rb"^error 5\d\d 5\.1\.[37] ", reply)
            self.assertEqual(p.queue_ids(), [])

    def test_link_named_sendmail_recipients_as_arguments_and_dot(self):
        with Petrel() as p:
            link = os.path.join(p.tmp, "sendmail")
            os.symlink(os.path.abspath(PETREL_BIN), link)
            msg = "Subject: dotted\n\nline one\n.\nnot read\n"
            r = sendmail(p, ["alice@example.test"], msg, program=link)
            self.assertEqual(r.returncode, 0, r.stderr)
            data = find_delivered(p, "dotted")
            self.assertTrue(data.endswith(b"\r\n\r\nline one\r\n"), data[-60:])
            # -oi: the lone dot is data.
            r = sendmail(p, ["-oi", "-odb", "-F", "Cron Daemon", "bob@example.test"], msg.replace("dotted", "dotted-i"), program=link)
            self.assertEqual(r.returncode, 0, r.stderr)
            data = find_delivered(p, "dotted-i", owner="bob")
            self.assertTrue(data.endswith(b"line one\r\n.\r\nnot read\r\n"), data[-60:])
            self.assertEqual(header(data, "From"), [b'"Cron Daemon" <root@mx.example.test>'])

    def test_dash_f_and_message_without_header(self):
        with Petrel() as p:
            r = sendmail(p, ["-f", "alice@example.test", "bob@example.test"], "just a body line\nSubject: not a header\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            data = find_delivered(p, "not a header", owner="bob")
            self.assertTrue(data.startswith(b"Return-Path: <alice@example.test>\r\n"), data[:100])
            self.assertEqual(header(data, "From"), [b"<alice@example.test>"])
            self.assertIn(b"\r\n\r\njust a body line\r\nSubject: not a header\r\n", data)
            self.assertNotIn(b"X-Authentication-Warning", data)  # root may set the sender

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv not installed")
    def test_other_user_is_named_and_dash_f_recorded(self):
        with Petrel() as p:
            os.chmod(p.data_dir, 0o755)  # the socket's directory must be reachable
            r = sendmail(p, ["-f", "ceo@example.test", "alice@example.test"], "Subject: from nobody\n\nhi\n",
                         user="nobody")
            self.assertEqual(r.returncode, 0, r.stderr)
            data = find_delivered(p, "from nobody")
            self.assertIn(b"from userid 65534", data)
            self.assertIn(b"X-Authentication-Warning: mx.example.test: nobody set sender to <ceo@example.test> using -f",
                          data)

    def test_server_not_running_is_tempfail_with_a_clear_message(self):
        with Petrel() as p:
            p.stop()
            r = sendmail(p, ["alice@example.test"], "Subject: lost?\n\nx\n")
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertIn(b"not running", r.stderr)
            r = sendmail(p, [], "Subject: nobody\n\nx\n")
            self.assertEqual(r.returncode, 64, r.stderr)
            r = sendmail(p, ["-bs"], "")
            self.assertEqual(r.returncode, 64, r.stderr)


if __name__ == "__main__":
    unittest.main()
