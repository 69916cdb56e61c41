"""Submission and SMTP AUTH (issue 6): listener policy on 25/587/465, every SASL mechanism
good and bad, failure limits and rate limits, sender ownership, Message-ID/Date fixes, relay
for authenticated users only, and real clients (swaks, smtplib, msmtp, curl) whose mail
arrives in the Maildir."""
import base64
import hashlib
import hmac
import os
import smtplib
import socket
import subprocess
import time
import unittest

from petrel import DOMAIN, Dialog, Petrel, client_tls_context, codes, delivered_with

ALICE, ALICE_PW = "alice@example.test", "alice-password"
BOB, BOB_PW = "bob@example.test", "bob-password"
CRAM_TOML = '[auth]\nmechanisms = ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"]\n'


def b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


def plain(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}")


def tls_session(p, kind="submission", ehlo=True):
    """A session on `kind` with TLS up (STARTTLS on smtp/submission, implicit on submissions),
    greeted with EHLO; returns (dialog, EHLO reply text)."""
    c = Dialog(p.port(kind), tls=(kind == "submissions"))
    c.expect(220)
    if kind != "submissions":
        c.cmd("EHLO client.example", 250)
        c.starttls()
    text = c.cmd("EHLO client.example", 250) if ehlo else ""
    return c, text


def tls_session_from(p, source):
    """An implicit-TLS submission session from the loopback address `source`, greeted with EHLO."""
    s = socket.create_connection(("127.0.0.1", p.port("submissions")), timeout=10, source_address=(source, 0))
    c = Dialog.__new__(Dialog)
    c.sock, c.buf = client_tls_context().wrap_socket(s), b""
    c.expect(220)
    c.cmd("EHLO client.example", 250)
    return c


def login(p, user=ALICE, password=ALICE_PW, kind="submission"):
    c, _ = tls_session(p, kind)
    c.cmd("AUTH PLAIN " + plain(user, password), 235)
    return c


def scram_login(c, user, password, nonce="fyko+d2lbbFgONRv9qkxdawL"):
    """A SCRAM-SHA-256 exchange (RFC 5802/7677) as a client; returns the final (code, lines).
    Checks the server's signature when the server accepts the proof."""
    bare = f"n={user},r={nonce}"
    c.send("AUTH SCRAM-SHA-256 " + b64("n,," + bare) + "\r\n")
    code, lines = c.reply()
    if code != 334:
        return code, lines
    server_first = base64.b64decode(lines[0][4:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(nonce), server_first
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    c.send(b64(f"{without_proof},p={b64(proof)}") + "\r\n")
    code, lines = c.reply()
    if code == 334:
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        expected = "v=" + b64(hmac.new(server_key, auth_message, "sha256").digest())
        assert base64.b64decode(lines[0][4:]).decode() == expected, "server signature is wrong"
        c.send("\r\n")
        code, lines = c.reply()
    return code, lines


def cram_login(c, user, password):
    c.send("AUTH CRAM-MD5\r\n")
    code, lines = c.reply()
    assert code == 334, lines
    challenge = base64.b64decode(lines[0][4:])
    assert challenge.startswith(b"<") and challenge.endswith(b"@mx.example.test>"), challenge
    digest = hmac.new(password.encode(), challenge, "md5").hexdigest()
    c.send(b64(f"{user} {digest}") + "\r\n")
    return c.reply()


def login_mech(c, user, password):
    c.send("AUTH LOGIN\r\n")
    code, lines = c.reply()
    assert (code, base64.b64decode(lines[0][4:])) == (334, b"Username:"), lines
    c.send(b64(user) + "\r\n")
    code, lines = c.reply()
    assert (code, base64.b64decode(lines[0][4:])) == (334, b"Password:"), lines
    c.send(b64(password) + "\r\n")
    return c.reply()


def send_data(c, data):
    c.cmd("DATA", 354)
    c.send(data + ".\r\n")
    return c.reply()


def msg(sender=ALICE, to=ALICE, subject="hello", extra=""):
    return (f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <{time.time_ns()}@client.example>\r\n"
            f"{extra}\r\nHello.\r\n")


def find_delivered(p, subject, owner="alice", timeout=20):
    """The message with this Subject: in owner's Maildir new/ (waits for delivery)."""
    return delivered_with(p, f"Subject: {subject}\r\n".encode(), owner, timeout)


class ListenerPolicy(unittest.TestCase):
    def test_submission_offers_auth_only_after_starttls(self):
        with Petrel() as p:
            c = Dialog(p.port("submission"))
            c.expect(220)
            text = c.cmd("EHLO client.example", 250)
            self.assertIn("STARTTLS", text)
            self.assertNotIn("AUTH", text)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 538)), ("538", "5.7.11"))
            self.assertEqual(codes(c.cmd("MAIL FROM:<alice@example.test>", 530)), ("530", "5.7.0"))
            c.starttls()
            text = c.cmd("EHLO client.example", 250)
            self.assertIn("250 AUTH PLAIN LOGIN SCRAM-SHA-256", text)
            self.assertNotIn("CRAM-MD5", text)  # off by default
            # Still no MAIL before AUTH, even over TLS.
            self.assertEqual(codes(c.cmd("MAIL FROM:<alice@example.test>", 530)), ("530", "5.7.0"))
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)
            c.cmd("MAIL FROM:<alice@example.test>", 250)

    def test_implicit_tls_on_submissions(self):
        with Petrel() as p:
            c = Dialog(p.port("submissions"), tls=True)
            self.assertTrue(c.expect(220).startswith("220 mx.example.test"))
            text = c.cmd("EHLO client.example", 250)
            self.assertIn("AUTH PLAIN LOGIN SCRAM-SHA-256", text)
            self.assertNotIn("STARTTLS", text)
            self.assertEqual(codes(c.cmd("MAIL FROM:<alice@example.test>", 530)), ("530", "5.7.0"))
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            code, lines = send_data(c, msg(to=BOB, subject="over-465"))
            self.assertEqual(code, 250, lines)
            self.assertIn(b"with ESMTPSA id", find_delivered(p, "over-465", owner="bob"))

    def test_port_25_offers_no_auth_unless_configured(self):
        with Petrel() as p:
            c, text = tls_session(p, "smtp")
            self.assertNotIn("AUTH", text)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 502)), ("502", "5.5.1"))
            # Port 25 takes mail for our domains without AUTH, as an MX must.
            c.cmd("MAIL FROM:<someone@remote.example>", 250)
            c.cmd("RCPT TO:<alice@example.test>", 250)
        with Petrel(extra_toml="[auth]\nallow_on_smtp = true\n") as p:
            c = Dialog(p.port("smtp"))
            c.expect(220)
            self.assertNotIn("AUTH", c.cmd("EHLO client.example", 250))  # not in clear
            c.starttls()
            self.assertIn("AUTH PLAIN", c.cmd("EHLO client.example", 250))
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<friend@ext.example>", 250)

    def test_auth_sequence_rules(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            self.assertEqual(codes(c.cmd("AUTH FOO", 504)), ("504", "5.5.4"))
            self.assertEqual(codes(c.cmd("AUTH PLAIN !!!notbase64", 501)), ("501", "5.5.2"))
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 503)), ("503", "5.5.1"))
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("QUIT", 221)
            # Not during a transaction, and not before EHLO.
            c = Dialog(p.port("submissions"), tls=True)
            c.expect(220)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 503)), ("503", "5.5.1"))


class Mechanisms(unittest.TestCase):
    def test_plain(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, "wrong"), 535)), ("535", "5.7.8"))
            # Without initial response: an empty 334, then the response.
            c.cmd("AUTH PLAIN", 334)
            c.cmd(plain(ALICE, ALICE_PW, authzid=ALICE), 235)
            c, _ = tls_session(p)
            # authzid other than the authcid: refused (no proxy authorization).
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW, authzid=BOB), 535)), ("535", "5.7.8"))
            c.cmd("AUTH PLAIN " + plain("ALICE@Example.Test", ALICE_PW), 235)  # names fold

    def test_login(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            self.assertEqual(login_mech(c, ALICE, "wrong")[0], 535)
            self.assertEqual(login_mech(c, BOB, BOB_PW)[0], 235)

    def test_scram_sha256(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            code, lines = scram_login(c, ALICE, "wrong")
            self.assertEqual(code, 535, lines)
            code, lines = scram_login(c, ALICE, ALICE_PW)
            self.assertEqual(code, 235, lines)

    def test_cram_md5_when_enabled(self):
        with Petrel(extra_toml=CRAM_TOML) as p:
            c, text = tls_session(p)
            self.assertIn("CRAM-MD5", text)
            self.assertEqual(cram_login(c, ALICE, "wrong")[0], 535)
            self.assertEqual(cram_login(c, "nobody@example.test", ALICE_PW)[0], 535)
            code, lines = cram_login(c, ALICE, ALICE_PW)
            self.assertEqual(code, 235, lines)
            # Only the HMAC-MD5 key state is stored, never the password.
            with open(os.path.join(p.data_dir, "petrel.db"), "rb") as f:
                db = f.read()
            self.assertNotIn(ALICE_PW.encode(), db)
            self.assertNotIn(b64(ALICE_PW).encode()[:12], db)

    def test_cancel_and_long_responses(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            c.cmd("AUTH LOGIN", 334)
            self.assertEqual(codes(c.cmd("*", 501)), ("501", "5.7.0"))
            # A 12,288-octet response line is read whole (and then refused by PLAIN as too long
            # a field); one octet more is refused as a line, and neither is taken as a command.
            c.cmd("AUTH PLAIN", 334)
            self.assertEqual(codes(c.cmd("A" * 12288, 501)), ("501", "5.5.2"))
            c, _ = tls_session(p)
            c.cmd("AUTH PLAIN", 334)
            c.send("A" * 12290 + "\r\n")
            code, lines = c.reply()
            self.assertIn(code, (500, 501), lines)
            c.cmd("NOOP", 250)
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)

    def test_unknown_user_and_wrong_password_look_the_same(self):
        with Petrel() as p:
            timings = {}
            for user in (ALICE, "nobody@example.test"):
                c, _ = tls_session(p)
                start = time.monotonic()
                reply = c.cmd("AUTH PLAIN " + plain(user, "wrong-password"), 535)
                timings[user] = time.monotonic() - start
                self.assertEqual(reply, "535 5.7.8 Authentication credentials invalid")
            # Both pay for one argon2id verification; neither is a quick "no such user".
            self.assertGreater(timings["nobody@example.test"], 0.4 * timings[ALICE], timings)

    def test_password_checks_do_not_stall_other_sessions(self):
        # argon2id (~0.25 s of CPU each) runs on the blocking pool: while twelve checks are
        # under way, a NOOP on another session (on one of the same two event loops) is answered
        # long before they end. Were the checks on the event loops, the NOOP would wait for the
        # checks queued on its loop: about half of the total (measured: 1.45 s of 2.54 s).
        with Petrel(extra_toml="[auth]\ntarpit_after = 100\nlockout_after = 100\nmax_failures = 10\n") as p:
            busy = [tls_session(p)[0] for _ in range(12)]
            idle, _ = tls_session(p)
            started = time.monotonic()
            for c in busy:
                c.send("AUTH PLAIN " + plain(ALICE, "wrong") + "\r\n")
            time.sleep(0.05)  # the checks have started
            t0 = time.monotonic()
            idle.cmd("NOOP", 250)
            noop = time.monotonic() - t0
            for c in busy:
                self.assertEqual(c.reply()[0], 535)
            total = time.monotonic() - started
            self.assertLess(noop, total / 4, f"NOOP took {noop:.3f}s while password checks ran ({total:.2f}s in all)")

    def test_passwords_never_logged(self):
        with Petrel() as p:
            c, _ = tls_session(p)
            c.cmd("AUTH PLAIN " + plain(ALICE, "secret-wrong-1"), 535)
            login_mech(c, ALICE, "secret-wrong-2")
            scram_login(c, ALICE, ALICE_PW)
            c.close()
            c = login(p)
            c.cmd("QUIT", 221)
            self.assertTrue(p.wait_log("result=ok"))
            log = p.log()
            for secret in ("secret-wrong-1", "secret-wrong-2", ALICE_PW, plain(ALICE, ALICE_PW), b64(ALICE_PW),
                           b64("secret-wrong-2")):
                self.assertNotIn(secret, log)


class Saslprep(unittest.TestCase):
    """RFC 4013: passwords are compared after SASLprep (RFC 4013 section 3 examples), so a
    non-ASCII password set with `petrel user add` opens the account in another spelling."""

    USERS = {ALICE: ALICE_PW, "soft@example.test": "I\u00adX", "roman@example.test": "\u2168"}

    def test_other_spellings_through_scram_and_plain(self):
        with Petrel(users=self.USERS) as p:
            c, _ = tls_session(p)
            # U+00AD SOFT HYPHEN maps to nothing, U+2168 ROMAN NUMERAL NINE is "IX" after NFKC:
            # a SCRAM client derives its proof from "IX" (RFC 5802 2.2) and both accounts open.
            for user in ("soft@example.test", "roman@example.test"):
                code, lines = scram_login(c, user, "IX")
                self.assertEqual(code, 235, (user, lines))
                c, _ = tls_session(p)
            # PLAIN in the other non-ASCII spelling (UTF-8 on the wire, RFC 4616 2).
            c.cmd("AUTH PLAIN " + plain("soft@example.test", "\u2168"), 235)
            c, _ = tls_session(p)
            c.cmd("AUTH PLAIN " + plain("roman@example.test", "I\u00adX"), 235)
            # A control character is prohibited output: a failed login, not an error.
            c, _ = tls_session(p)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain("soft@example.test", "I\u0007X"), 535)),
                             ("535", "5.7.8"))
            # A real client: python's smtplib, PLAIN over STARTTLS on the submission port.
            with smtplib.SMTP("127.0.0.1", p.port("submission"), timeout=30) as s:
                s.starttls(context=client_tls_context())
                s.login("roman@example.test", "IX")

    def test_control_characters_refused_when_set(self):
        with Petrel() as p:
            r = p.cli("user", "add", "bell@example.test", input="ring\u0007\n", check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("prohibited", r.stderr)


class Failures(unittest.TestCase):
    def test_connection_closed_after_max_failures(self):
        with Petrel(extra_toml="[auth]\nmax_failures = 3\ntarpit_after = 100\nlockout_after = 100\n") as p:
            c, _ = tls_session(p)
            c.cmd("AUTH PLAIN " + plain(ALICE, "x1"), 535)
            c.cmd("AUTH PLAIN " + plain(ALICE, "x2"), 535)
            c.send("AUTH PLAIN " + plain(ALICE, "x3") + "\r\n")
            self.assertEqual(c.reply()[0], 535)
            self.assertEqual(codes(c.expect(421)), ("421", "4.7.0"))
            self.assertTrue(c.closed())

    def test_tarpit_then_lockout_per_ip(self):
        toml = ('[auth]\nmax_failures = 100\ntarpit_after = 2\ntarpit_delay = "400ms"\nlockout_after = 4\n'
                'lockout = "1h"\n')
        with Petrel(extra_toml=toml) as p:
            c, _ = tls_session(p)
            times = []
            for i in range(3):
                start = time.monotonic()
                c.cmd("AUTH PLAIN " + plain(f"user{i}@example.test", "bad"), 535)
                times.append(time.monotonic() - start)
            self.assertGreaterEqual(times[1], 0.4, times)  # second failure: tarpitted
            self.assertGreaterEqual(times[2], 0.8, times)  # third: longer
            c.cmd("AUTH PLAIN " + plain(BOB, "bad"), 535)   # fourth: now locked
            # Locked: even the right password is refused, on a new connection too.
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 454)), ("454", "4.7.0"))
            c2, _ = tls_session(p)
            self.assertEqual(codes(c2.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 454)), ("454", "4.7.0"))

    def test_lockout_per_account_from_many_addresses(self):
        toml = '[auth]\nmax_failures = 100\ntarpit_after = 3\ntarpit_delay = "10ms"\nlockout_after = 3\nlockout = "1h"\n'
        with Petrel(extra_toml=toml) as p:
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                c = tls_session_from(p, source)
                start = time.monotonic()
                c.cmd("AUTH PLAIN " + plain(BOB, "guess-" + source), 535)
                checked = time.monotonic() - start  # one argon2id check (and a 10 ms tarpit at the last)
            # Bob's name is locked, for the right password too; Alice is not. The locked name
            # costs no password check (auth/gated_credentials.h).
            c, _ = tls_session(p)
            start = time.monotonic()
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain(BOB, BOB_PW), 454)), ("454", "4.7.0"))
            self.assertLess(time.monotonic() - start, checked / 2)
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)

    def test_lockout_per_account_whatever_the_spelling(self):
        # Issue 11: '"bob"@', '"b\\ob"@' and case variants all log in as bob; failures spread
        # over them, from several addresses, count against bob's one name and lock it, for
        # every mechanism.
        toml = '[auth]\nmax_failures = 100\ntarpit_after = 4\ntarpit_delay = "10ms"\nlockout_after = 4\nlockout = "1h"\n'
        spellings = ['"bob"@example.test', '"b\\ob"@example.test', 'BOB@Example.TEST', '"Bob"@example.test']
        with Petrel(extra_toml=toml) as p:
            # Each spelling is bob: the right password works in every one.
            for user in spellings:
                c, _ = tls_session(p)
                c.cmd("AUTH PLAIN " + plain(user, BOB_PW), 235)
            for source, user, mechanism in zip(("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"), spellings,
                                               ("PLAIN", "LOGIN", "SCRAM", "PLAIN")):
                c = tls_session_from(p, source)
                if mechanism == "PLAIN":
                    code = codes(c.cmd("AUTH PLAIN " + plain(user, "guess-" + source), 535))[0]
                elif mechanism == "LOGIN":
                    code = str(login_mech(c, user, "guess-" + source)[0])
                else:
                    code = str(scram_login(c, user.replace(",", "=2C"), "guess-" + source)[0])
                self.assertEqual(code, "535", (user, mechanism))
            # Bob is locked in every spelling and every mechanism, for the right password too.
            c, _ = tls_session(p)
            self.assertEqual(codes(c.cmd("AUTH PLAIN " + plain("bob@example.test", BOB_PW), 454)), ("454", "4.7.0"))
            c, _ = tls_session(p)
            self.assertEqual(scram_login(c, "bob@example.test", BOB_PW)[0], 454)
            c, _ = tls_session(p)
            c.cmd("AUTH PLAIN " + plain(ALICE, ALICE_PW), 235)


class Relay(unittest.TestCase):
    def test_authenticated_user_relays_and_it_is_queued(self):
        with Petrel() as p:
            c = login(p)
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<friend@ext.example>", 250)
            code, lines = send_data(c, msg(to="friend@ext.example", subject="relayed"))
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            self.assertIn(qid, p.queue_ids())
            self.assertIn("friend@ext.example", p.cli("queue", "show", qid).stdout)

    def test_unauthenticated_relay_refused_on_25_and_587(self):
        forms = ["<u@ext.example>", "<u%ext.example@example.test>", '<"u@ext.example"@example.test>',
                 "<ext.example!u@example.test>", "<@example.test:u@ext.example>", "<u@[127.0.0.1]>",
                 "<u@[IPv6:::1]>", "<u@ext.example.>", "<u@EXAMPLE.TEST.ext.example>", "<U@Ext.Example>",
                 "<u@ext.example@example.test>",
                 # without a domain (UUCP bang paths, the % hack, a bare name): never ours to relay
                 "<u>", "<ext.example!u>", "<u%ext.example>", "<ext.example!u%other.example>"]
        with Petrel() as p:
            for kind in ("smtp", "submission"):
                for tls in (False, True):
                    for rcpt in forms:
                        with self.subTest(kind=kind, tls=tls, rcpt=rcpt):
                            c = Dialog(p.port(kind))
                            c.expect(220)
                            c.cmd("EHLO client.example", 250)
                            if tls:
                                c.starttls()
                                c.cmd("EHLO client.example", 250)
                            c.send("MAIL FROM:<sender@remote.example>\r\n")
                            code, lines = c.reply()
                            if kind == "submission":
                                self.assertEqual(code, 530, lines)
                            else:
                                self.assertEqual(code, 250, lines)
                                c.send(f"RCPT TO:{rcpt}\r\n")
                                code, lines = c.reply()
                                self.assertGreaterEqual(code, 500, lines)
                            c.close()
            self.assertEqual(p.queue_ids(), [])


class SenderChecks(unittest.TestCase):
    def test_mail_from_must_be_owned(self):
        with Petrel(aliases={"info@example.test": [ALICE]},
                    extra_toml='[auth.send_as]\n"alice@example.test" = ["sales@partner.example"]\n') as p:
            c = login(p)
            self.assertEqual(codes(c.cmd("MAIL FROM:<bob@example.test>", 553)), ("553", "5.7.1"))
            self.assertEqual(codes(c.cmd("MAIL FROM:<alice@ext.example>", 553)), ("553", "5.7.1"))
            for own in ("alice@example.test", "Alice@EXAMPLE.test", "alice+lists@example.test", "info@example.test",
                        "sales@partner.example", ""):
                c.cmd(f"MAIL FROM:<{own}>", 250)
                c.cmd("RSET", 250)

    def test_header_from_must_be_owned_and_single(self):
        with Petrel() as p:
            c = login(p)
            for data, want in ((msg(sender=BOB, subject="spoof"), ("553", "5.7.1")),
                               (msg(subject="two", extra="From: alice@example.test\r\n"), ("554", "5.6.0")),
                               ("From: Alice <alice@example.test>, Bob <bob@example.test>\r\nSubject: x\r\n\r\nx\r\n",
                                ("553", "5.7.1"))):
                c.cmd("MAIL FROM:<alice@example.test>", 250)
                c.cmd("RCPT TO:<bob@example.test>", 250)
                code, lines = send_data(c, data)
                self.assertEqual(codes(lines[0]), want, lines)
            self.assertEqual(p.queue_ids(), [])
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            self.assertEqual(send_data(c, msg(subject="fine", to=BOB))[0], 250)

    def test_date_and_message_id_added_nothing_else_touched(self):
        with Petrel() as p:
            c = login(p)
            original = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: bare\r\n\r\n.leading dot\r\nBody\r\n"
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            c.cmd("DATA", 354)
            c.send(original.replace(b"\r\n.", b"\r\n..") + b".\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            stored = p.delivered_message(qid, owner="bob")
            received, rest = stored.split(b"\r\nDate: ", 1)
            self.assertIn(b"with ESMTPSA id " + qid.encode(), received)
            date, rest = rest.split(b"\r\n", 1)
            self.assertRegex(date.decode(), r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
            self.assertTrue(rest.startswith(b"Message-ID: <" + qid.encode() + b"@mx.example.test>\r\n"), rest[:100])
            self.assertEqual(rest.split(b"\r\n", 1)[1], original)
            # A message that has both keeps its own, byte for byte.
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            full = msg(to=BOB, subject="complete")
            code, lines = send_data(c, full)
            stored = p.delivered_message(lines[0].split()[-1], owner="bob")
            self.assertTrue(stored.endswith(b"\r\n" + full.encode()))
            self.assertEqual(stored.count(b"Message-ID:"), 1)


    def test_bdat_chunks_get_the_same_checks_and_fixes(self):
        with Petrel() as p:
            c = login(p)
            # The header section split across chunks, no Date:, no Message-ID:.
            parts = [b"From: alice@example.test\r\nSubj", b"ect: chunked\r\n", b"\r\nbody\r\n"]
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            for i, part in enumerate(parts):
                last = " LAST" if i == len(parts) - 1 else ""
                c.send(f"BDAT {len(part)}{last}\r\n".encode() + part)
                code, lines = c.reply()
                self.assertEqual(code, 250, lines)
            data = find_delivered(p, "chunked", owner="bob")
            self.assertIn(b"\r\nDate: ", data)
            self.assertTrue(data.endswith(b"Message-ID: <" + lines[0].split()[-1].encode() + b"@mx.example.test>\r\n"
                                          + b"".join(parts)), data[-200:])
            # A spoofed From: in chunks is refused at BDAT LAST.
            c.cmd("MAIL FROM:<alice@example.test>", 250)
            c.cmd("RCPT TO:<bob@example.test>", 250)
            spoof = b"From: bob@example.test\r\n\r\nx\r\n"
            c.send(f"BDAT {len(spoof)} LAST\r\n".encode() + spoof)
            self.assertEqual(codes("\n".join(c.reply()[1])), ("553", "5.7.1"))


class RealClients(unittest.TestCase):
    def swaks(self, p, mechanism, subject, *extra):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p.port("submission")), "-tls",
                            "--auth", mechanism, "--auth-user", ALICE, "--auth-password", ALICE_PW,
                            "--from", ALICE, "--to", BOB, "--header", f"Subject: {subject}", *extra],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"AUTH {mechanism}", r.stdout)
        self.assertIn("235 2.7.0", r.stdout)
        return r.stdout

    def test_swaks_each_mechanism(self):
        with Petrel(extra_toml=CRAM_TOML) as p:
            for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
                with self.subTest(mechanism=mechanism):
                    self.swaks(p, mechanism, "swaks-" + mechanism)
                    data = find_delivered(p, "swaks-" + mechanism, owner="bob")
                    self.assertIn(b"with ESMTPSA id", data)
            # swaks has no SCRAM; Python does it above (Mechanisms.test_scram_sha256).
            r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(p.port("submission")), "-tls",
                                "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", "nope",
                                "--from", ALICE, "--to", BOB], capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("535 5.7.8", r.stdout)

    def test_python_smtplib_starttls_login(self):
        with Petrel() as p:
            with smtplib.SMTP("127.0.0.1", p.port("submission"), timeout=30) as s:
                s.starttls(context=client_tls_context())
                s.login(ALICE, ALICE_PW)
                s.sendmail(ALICE, [BOB], msg(to=BOB, subject="smtplib"))
            find_delivered(p, "smtplib", owner="bob")
            with smtplib.SMTP_SSL("127.0.0.1", p.port("submissions"), timeout=30, context=client_tls_context()) as s:
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    s.login(ALICE, "wrong")

    def msmtp(self, p, subject, auth="on", password=ALICE_PW):
        """Sends a message from Alice to Bob with msmtp over STARTTLS; returns the finished process."""
        conf = os.path.join(p.tmp, "msmtprc")
        with open(conf, "w") as f:
            f.write(f"account default\nhost 127.0.0.1\nport {p.port('submission')}\ntls on\ntls_starttls on\n"
                    f"tls_certcheck off\nauth {auth}\nuser {ALICE}\npassword {password}\nfrom {ALICE}\n")
        os.chmod(conf, 0o600)
        return subprocess.run(["msmtp", "-C", conf, BOB], input=msg(to=BOB, subject=subject).replace("\r\n", "\n"),
                              capture_output=True, text=True, timeout=60)

    def test_msmtp(self):
        with Petrel() as p:
            r = self.msmtp(p, "msmtp")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            find_delivered(p, "msmtp", owner="bob")

    def test_msmtp_scram_sha256(self):
        # Debian 12's msmtp does SCRAM-SHA-256 through GNU SASL; pinned, it may not fall back.
        with Petrel() as p:
            r = self.msmtp(p, "msmtp-scram", auth="scram-sha-256")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            data = find_delivered(p, "msmtp-scram", owner="bob")
            self.assertIn(b"with ESMTPSA id", data)
            self.assertTrue(p.wait_log(f"mechanism=SCRAM-SHA-256 result=ok user=<{ALICE}>"), p.log()[-3000:])
            # A wrong password fails the SCRAM proof: 535, nothing sent.
            r = self.msmtp(p, "msmtp-scram-wrong", auth="scram-sha-256", password="wrong-password")
            self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("535", r.stdout + r.stderr)
            self.assertTrue(p.wait_log("mechanism=SCRAM-SHA-256 result=failed"), p.log()[-3000:])

    def test_curl_ssl_reqd(self):
        with Petrel() as p:
            mail = os.path.join(p.tmp, "mail.txt")
            with open(mail, "w") as f:
                f.write(msg(to=BOB, subject="curl"))
            r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", f"smtp://127.0.0.1:{p.port('submission')}",
                                "--mail-from", ALICE, "--mail-rcpt", BOB, "--user", f"{ALICE}:{ALICE_PW}",
                                "--upload-file", mail], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            find_delivered(p, "curl", owner="bob")
            # Implicit TLS too (smtps://, port 465's kind).
            r = subprocess.run(["curl", "-sS", "-k", f"smtps://127.0.0.1:{p.port('submissions')}",
                                "--mail-from", ALICE, "--mail-rcpt", BOB, "--user", f"{ALICE}:{ALICE_PW}",
                                "--upload-file", mail], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
