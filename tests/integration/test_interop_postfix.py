#!/usr/bin/python3
"""test_interop_postfix: Petrel against a real Postfix (the Debian package), both directions, both
over STARTTLS, on loopback (issue 5, "Interop").

  PetrelToPostfix: Petrel relays through `[remote] relay_host` with `tls = "required"` to a private
      Postfix whose smtpd offers STARTTLS (smtpd_tls_security_level = may, a self-signed
      certificate) and delivers dest.example into a Maildir with virtual(8). Checked: the file
      holds exactly the message Petrel was given, below the headers the two servers added;
      Postfix's log and Received: header say TLS; a second message reuses the connection
      (RSET, then MAIL) and arrives as exactly; an 8-bit body sent with BODY=8BITMIME too.
  PostfixToPetrel: a private Postfix with `relayhost = [127.0.0.1]:<petrel>` and
      smtp_tls_security_level = encrypt gets a message from its sendmail(1) (-C its config
      dir) and relays it to Petrel, which delivers it into alice's Maildir. Checked: the bytes
      below the two Received: headers are the message given to sendmail (LF -> CRLF); Petrel's
      Received: says ESMTPS and names the TLS version; Postfix logs the TLS connection and
      status=sent.

Postfix's master must start as root: the tests skip (with the reason) when not root or when
Postfix is not installed. Everything listens on 127.0.0.1; every wait is bounded; Postfix is
stopped (postfix stop, then abort, then leftover PIDs killed) and Petrel terminated also when a
test fails (context managers).
"""
import glob
import os
import re
import shutil
import time
import unittest

from fake_smtp import make_self_signed
from petrel import DOMAIN, Petrel, send_mail
from postfix import Postfix, maildir_owner, postfix_skip_reason

SKIP = postfix_skip_reason()
DEST = "dest.example"  # not served by Petrel: relayed
WAIT = 30  # seconds, for any one delivery


def tricky_body():
    """Lines that an SMTP hop must carry through untouched: dots (RFC 5321 4.5.2), a lone dot,
    trailing and leading white space, a tab, a 998-octet line, an empty last line."""
    return ("First line.\n.\n..\n.leading dot\n. dot space\ntrailing spaces   \n  leading spaces\n"
            "tab\there\n" + "L" * 998 + "\n\nnext to last\n\n")


def message_lf(subject, body, to):
    return (f"Date: Mon, 23 Nov 2026 10:00:00 +0000\nFrom: <sender@remote.example>\nTo: <{to}>\n"
            f"Subject: {subject}\nMessage-ID: <{time.time_ns()}.{subject.replace(' ', '-')}@remote.example>\n"
            f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
            f"\n{body}").encode()


def crlf(data):
    return data.replace(b"\n", b"\r\n")


def split_headers(data, nl):
    """[(name, whole field incl. folded lines)] of the header section, and the offset where the
    header section ends (after the empty line)."""
    fields = []
    pos = 0
    while True:
        end = data.index(nl, pos)
        line = data[pos:end]
        if line == b"":
            return fields, end + len(nl)
        if line[:1] in (b" ", b"\t"):
            fields[-1] = (fields[-1][0], fields[-1][1] + nl + line)
        else:
            fields.append((line.split(b":", 1)[0].decode(), line))
        pos = end + len(nl)


def wait_files(pattern, n, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(glob.glob(pattern), key=os.path.getmtime)
        if len(files) >= n or time.monotonic() > deadline:
            return files
        time.sleep(0.1)


@unittest.skipIf(SKIP, SKIP)
class PetrelToPostfix(unittest.TestCase):
    """Petrel -> Postfix smtpd (STARTTLS offered, required by Petrel) -> virtual(8) Maildir."""

    def postfix(self):
        if maildir_owner() is None:
            self.skipTest("neither user petrel nor nobody exists (owner of Postfix's virtual Maildir)")
        tmp = self.enterContext(_TempDir())
        cert, key = make_self_signed(tmp, "mx.postfix.example")
        pf = Postfix(mailboxes={f"bob@{DEST}": f"{DEST}/bob/"}, main_cf=f"""
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
""")
        self.enterContext(pf)
        return pf, os.path.join(pf.vmail, DEST, "bob", "new", "*")

    def petrel(self, pf):
        p = Petrel(smtp_toml='trusted_networks = ["127.0.0.0/8"]',
                   extra_toml=f'[remote]\nrelay_host = "127.0.0.1:{pf.port}"\ntls = "required"\nidle_time = "30s"\n')
        return self.enterContext(p)

    def check_delivered(self, pf, p, path, original_lf, qid):
        """The Maildir file is virtual(8)'s three delivery headers + Postfix's Received (TLS) + Petrel's
        Received + exactly the original message (Postfix stores LF line ends)."""
        with open(path, "rb") as f:
            got = f.read()
        fields, _ = split_headers(got, b"\n")
        names = [n for n, _ in fields]
        self.assertEqual(names[:5], ["Return-Path", "X-Original-To", "Delivered-To", "Received", "Received"],
                         got[:1500])
        self.assertEqual(fields[0][1], b"Return-Path: <sender@remote.example>")
        self.assertEqual(fields[1][1], f"X-Original-To: bob@{DEST}".encode())
        self.assertEqual(fields[2][1], f"Delivered-To: bob@{DEST}".encode())
        pf_received, petrel_received = fields[3][1], fields[4][1]
        # Postfix's header says it received this from Petrel over TLS (smtpd_tls_received_header)
        self.assertIn(b"from mx.example.test (localhost [127.0.0.1])", pf_received)
        self.assertRegex(pf_received, rb"\(using TLSv1\.[23] with cipher ")
        self.assertIn(b"by mx.postfix.example (Postfix) with ESMTPS id ", pf_received)
        self.assertIn(f"by mx.example.test (Petrel) with ESMTP id {qid}".encode(), petrel_received)
        # below the added headers: byte for byte what Petrel was given
        prefix = b"\n".join(f for _, f in fields[:5]) + b"\n"
        self.assertEqual(got, prefix + original_lf)

    def test_relay_over_starttls_byte_exact_and_reused(self):
        pf, new_glob = self.postfix()
        p = self.petrel(pf)
        connects0 = len(re.findall(r"smtpd\[\d+\]: connect from", pf.log()))

        # 1: a 7-bit message with every dot and white-space case
        m1 = message_lf("interop one", tricky_body(), f"bob@{DEST}")
        q1 = send_mail(p, [f"bob@{DEST}"], crlf(m1), sender="sender@remote.example")
        files = wait_files(new_glob, 1)
        self.assertEqual(len(files), 1, f"not delivered in {WAIT} s\npetrel:\n{p.log()[-3000:]}\n"
                                        f"postfix:\n{pf.log()[-3000:]}")
        self.check_delivered(pf, p, files[0], m1, q1)
        tls = pf.wait_log(r"smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: "
                          r"TLSv1\.[23] with cipher", timeout=5)
        self.assertTrue(tls, pf.log()[-3000:])
        self.assertTrue(p.wait_log(f"delivery.remote id={q1} rcpt=bob@{DEST} ", 5), p.log()[-3000:])
        line = [l for l in p.log().splitlines() if f"delivery.remote id={q1} " in l][0]
        self.assertRegex(line, r" relay=127\.0\.0\.1\[127\.0\.0\.1\] result=delivered why=\"2\.0\.0 Ok: \d+ bytes queued as ")
        self.assertIn("conn_reused=0", line)

        # 2: an 8-bit body of 300 KB (BODY=8BITMIME), while the first connection idles: the same
        # TLS session carries it after RSET
        body = ("Grüße aus Zürich, ½ € — ünïcödé.\n" + tricky_body()) * 1
        body += "".join(f"{i:06d} " + "äöü" * 20 + "x" * 40 + "\n" for i in range(3000))
        m2 = message_lf("interop two", body, f"bob@{DEST}")
        q2 = send_mail(p, [f"bob@{DEST}"], crlf(m2), sender="sender@remote.example",
                       mail_params="BODY=8BITMIME")
        files = wait_files(new_glob, 2)
        self.assertEqual(len(files), 2, f"second message not delivered in {WAIT} s\n{p.log()[-3000:]}")
        self.check_delivered(pf, p, files[1], m2, q2)
        self.assertTrue(p.wait_log(f"delivery.remote id={q2} ", 5))
        line = [l for l in p.log().splitlines() if f"delivery.remote id={q2} " in l][0]
        self.assertIn("result=delivered", line)
        self.assertIn("conn_reused=1", line, "the second message did not reuse the idle connection")
        connects = len(re.findall(r"smtpd\[\d+\]: connect from", pf.log())) - connects0
        self.assertEqual(connects, 1, pf.log()[-3000:])
        self.assertEqual(len(pf.wait_log(r"virtual\[\d+\]: .* status=sent", count=2, timeout=5) or []), 2)


@unittest.skipIf(SKIP, SKIP)
class PostfixToPetrel(unittest.TestCase):
    """Postfix sendmail -> Postfix smtp client (relayhost, TLS encrypt) -> Petrel -> Maildir."""

    def test_postfix_relays_to_petrel_over_starttls(self):
        p = self.enterContext(Petrel())
        pf = self.enterContext(Postfix(main_cf=f"""
relayhost = [127.0.0.1]:{p.port()}
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
"""))
        body = "Grüße, 8-bit through sendmail -B 8BITMIME.\n" + tricky_body()
        m = message_lf("from postfix", body, f"alice@{DOMAIN}")
        pf.sendmail(["-B", "8BITMIME", "-f", "sender@remote.example", f"alice@{DOMAIN}"], m)

        sent = pf.wait_log(rf"smtp\[\d+\]: [0-9A-F]+: to=<alice@{DOMAIN}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                           rf"{p.port()},.* status=", timeout=WAIT)
        self.assertTrue(sent, f"postfix did not try Petrel in {WAIT} s\n{pf.log()[-3000:]}")
        self.assertIn("status=sent (250 2.0.0 Ok: queued as ", sent[0], pf.log()[-3000:])
        qid = re.search(r"queued as (\S+)\)", sent[0]).group(1)
        tls = pf.wait_log(rf"smtp\[\d+\]: \w+ TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:{p.port()}: "
                          r"TLSv1\.[23] with cipher", timeout=5)
        self.assertTrue(tls, pf.log()[-3000:])

        stored = p.delivered_message(qid, owner="alice", timeout=WAIT)  # minus Return-Path, Delivered-To
        fields, _ = split_headers(stored, b"\r\n")
        self.assertEqual([n for n, _ in fields[:2]], ["Received", "Received"], stored[:1500])
        petrel_received, pf_received = fields[0][1], fields[1][1]
        self.assertIn(b"Received: from mx.postfix.example ([127.0.0.1])", petrel_received)
        self.assertRegex(petrel_received, rb"\(using TLSv1\.[23]")
        self.assertIn(f"by mx.example.test (Petrel) with ESMTPS id {qid}".encode(), petrel_received)
        self.assertIn(b"by mx.postfix.example (Postfix, from userid 0)", pf_received)
        prefix = b"\r\n".join(f for _, f in fields[:2]) + b"\r\n"
        self.assertEqual(stored, prefix + crlf(m))
        self.assertTrue(pf.wait_log(r"qmgr\[\d+\]: [0-9A-F]+: removed", timeout=5))
        self.assertEqual(pf.queue_files(), 0)


class _TempDir:
    def __enter__(self):
        import tempfile
        self.path = tempfile.mkdtemp(prefix="interop-")
        os.chmod(self.path, 0o755)
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
