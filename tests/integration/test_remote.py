#!/usr/bin/python3
"""test_remote: outbound delivery end to end. The real petrel binary relays mail for other
domains through a fake DNS server (tests/testlib/fake_dns.py) to fake next-hop SMTP servers
(tests/testlib/fake_smtp.py), all on loopback: MX preference and fallback, the implicit MX,
null MX, an MX pointing back at us, SERVFAIL, a 421 greeting, 451 at RCPT, a connection reset
after 354, silence after the final dot, 552/554 after the data, STARTTLS refused or with an
injected reply, a smarthost with AUTH, connection reuse, delay warnings. Each case ends in the
right retry or bounce; bounces land in the local sender's Maildir and are parsed (and one is
compared with a golden file, tests/integration/golden/, PETREL_UPDATE_GOLDEN=1 rewrites it).

Names: libunbound answers .test, .invalid, .localhost and private reverse zones itself, so the
remote domains here are *.example; the local domain is example.test (never looked up)."""
import email
import email.policy
import glob
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

from fake_dns import FakeDns
from fake_smtp import FakeSmtp
from petrel import Dialog, Petrel, message, send_mail, wait_for

TRUSTED = 'trusted_networks = ["127.0.0.0/8"]'
FAST_RETRY = 'retry_first = "1s"\nretry_max = "1s"'
GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def free_port_on(*hosts):
    """A port that is free on every one of `hosts` (for several fake MX hosts on one port)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts:
            with socket.socket() as t:
                try:
                    t.bind((h, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no common free port")


def remote_petrel(dns, mx_port, extra="", queue=FAST_RETRY, aliases=None, server="", idle="2s"):
    return Petrel(smtp_toml=TRUSTED, queue_toml=queue, aliases=aliases, server_toml=server, extra_toml=f"""
[dns]
servers = ["127.0.0.1:{dns.port}"]
timeout = "2s"
[remote]
port = {mx_port}
connect_timeout = "2s"
command_timeout = "3s"
data_timeout = "3s"
idle_time = "{idle}"
prefer_ipv4 = true
{extra}
""")


def mailbox(p, user="alice"):
    return sorted(glob.glob(os.path.join(p.data_dir, "mail/example.test", user, "new", "*")))


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def dsn_fields(msg):
    """The per-recipient fields of a DSN (its message/delivery-status or, for internationalised
    addresses, message/global-delivery-status part), as a list of dicts."""
    kinds = ("message/delivery-status", "message/global-delivery-status")
    status = [part for part in msg.walk() if part.get_content_type() in kinds]
    assert status, "no delivery-status part"
    part = status[0]
    if part.get_content_type() == "message/delivery-status":  # parsed as header blocks
        return [{k.lower(): str(v) for k, v in block.items()} for block in part.get_payload()[1:]]
    raw = part.as_string().replace("\r\n", "\n").split("\n\n", 1)[1]  # the body, parsed by hand
    blocks = [b for b in raw.split("\n\n") if b.strip()]
    out = []
    for block in blocks[1:]:  # [0] is the per-message block
        fields = {}
        for line in block.split("\n"):
            if ":" in line and not line.startswith((" ", "\t")):
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        out.append(fields)
    return out


def normalise(text, p):
    """A DSN's report parts with what changes from run to run replaced."""
    text = re.sub(r"[0-9A-Z]{20}", "<QUEUEID>", text)
    text = re.sub(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", "<DATE>", text)
    text = re.sub(r"127\.0\.0\.\d+", "<ADDR>", text)
    text = re.sub(r"=_petrel_\S+", "<BOUNDARY>", text)
    return text


class Remote(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.port = free_port_on("127.0.0.1", "127.0.0.3")
        self.zone = {
            "remote.example": {"MX": [[20, "mx2.remote.example"], [10, "mx1.remote.example"]]},
            "mx1.remote.example": {"A": ["127.0.0.3"]},
            "mx2.remote.example": {"A": ["127.0.0.1"]},
            "plain.example": {"A": ["127.0.0.1"]},
            "nullmx.example": {"MX": [[0, "."]]},
            "self.example": {"MX": [[10, "mx.example.test"]]},
            "dead.example": {"MX": [[10, "mx.dead.example"]]},
            "mx.dead.example": {"A": ["127.0.0.4"]},  # nothing listens there
        }

    def send(self, p, rcpts, subject="test", sender="alice@example.test", body="Hello.\r\n"):
        return send_mail(p, rcpts, message(subject=subject, body=body).encode(), sender=sender)

    def bounce_for(self, p, qid, timeout=20):
        """The DSN about `qid` in alice's Maildir."""
        def find():
            for path in mailbox(p):
                with open(path, "rb") as f:
                    if qid.encode() in f.read():
                        return path
            return None
        path = wait_for(find, timeout)
        self.assertIsNotNone(path, "no bounce for %s in alice's mailbox\n%s" % (qid, p.log()[-3000:]))
        return parse(path)

    def test_mx_preference_reuse_and_fallback(self):
        with FakeDns(self.zone) as dns, \
                FakeSmtp(host_name="mx1.remote.example", bind=("127.0.0.3", self.port)) as mx1, \
                FakeSmtp(host_name="mx2.remote.example", bind=("127.0.0.1", self.port)) as mx2, \
                remote_petrel(dns, self.port, idle="5s") as p:
            # One after the other: each finds the connection the last one left open (idle_time,
            # 5 s here: room for a loaded machine between two messages).
            # Each is sent once the one before is logged as delivered: by then its connection
            # waits idle (a message that arrives while it is still busy may open a second one,
            # as it should).
            for i in range(6):
                qid = self.send(p, ["bob@remote.example"], subject=f"pref {i}")
                self.assertTrue(p.wait_log(f"id={qid} rcpt=bob@remote.example relay=mx1.remote.example[127.0.0.3] "
                                           "result=delivered", 20), p.log()[-3000:])
            mx1.wait_transactions(6)
            self.assertEqual(len(mx2.transactions), 0, "the lower preference value is tried first")
            self.assertEqual(mx1.connection_count(), 1, "messages to one destination share a connection")
            self.assertEqual(mx1.connections[0].transactions, 6)
            self.assertTrue(p.wait_log("conn_reused=5"), "the log counts the reuse")
            t = mx1.transactions[0]
            self.assertEqual(t.mail_from, "alice@example.test")
            self.assertEqual([r.address for r in t.accepted()], ["bob@remote.example"])
            self.assertIn(b"Subject: pref ", t.body)

            # The preferred host refuses to talk: the next MX takes the mail at once.
            mx1.greeting = "421 4.3.2 mx1 is busy"
            time.sleep(5.5)  # let the idle connections to mx1 close (idle_time 5 s)
            qid = self.send(p, ["carol@remote.example"], subject="fallback")
            mx2.wait_transactions(1)
            self.assertTrue(p.wait_log(f"id={qid} rcpt=carol@remote.example relay=mx2.remote.example"), p.log()[-3000:])
            self.assertEqual(mailbox(p), [], "no bounce")

    def test_a_domain_without_mx_gets_its_own_address(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, remote_petrel(dns, self.port) as p:
            self.send(p, ["x@plain.example"])
            mx.wait_transactions(1)
            self.assertIn(("plain.example", "MX"), dns.queries)

    def test_null_mx_bounces_at_once_without_a_connection(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@nullmx.example"])
            dsn = self.bounce_for(p, qid)
            fields = dsn_fields(dsn)
            self.assertEqual(fields[0]["action"], "failed")
            self.assertEqual(fields[0]["status"], "5.1.10")
            self.assertEqual(mx.connection_count(), 0)

    def test_a_bounce_that_cannot_be_delivered_goes_to_the_postmaster_once(self):
        # The sender's own domain has a null MX: the message fails, its bounce fails too, and
        # that double bounce goes to the configured postmaster from double-bounce@, which
        # nothing ever answers (no third notice, no loop).
        with FakeDns(self.zone) as dns, \
                remote_petrel(dns, self.port, server='postmaster = "alice@example.test"') as p:
            qid = self.send(p, ["x@nullmx.example"], sender="someone@nullmx.example")
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@nullmx.example relay=none result=failed", 20), p.log()[-3000:])

            def double_bounces():
                found = []
                for path in mailbox(p):
                    msg = parse(path)
                    if msg["Return-Path"] == "<double-bounce@mx.example.test>":
                        found.append(msg)
                return found
            self.assertTrue(wait_for(lambda: double_bounces(), 20), p.log()[-3000:])
            time.sleep(1.5)  # time for a (wrong) further notice to be queued and delivered
            got = double_bounces()
            self.assertEqual(len(got), 1, "one double bounce")
            self.assertEqual(len(mailbox(p)), 1, "and nothing else in the postmaster's mailbox")
            fields = dsn_fields(got[0])
            self.assertEqual(fields[0]["final-recipient"], "rfc822; someone@nullmx.example")
            self.assertEqual(fields[0]["status"], "5.1.10")
            self.assertIn("To: alice@example.test", str(got[0]))

    def test_mx_pointing_back_at_us_bounces_instead_of_looping(self):
        with FakeDns(self.zone) as dns, remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@self.example"])
            fields = dsn_fields(self.bounce_for(p, qid))
            self.assertEqual(fields[0]["status"], "5.4.6")

    def test_servfail_defers_and_never_bounces(self):
        with FakeDns(self.zone, behaviours={"broken.example": "servfail"}) as dns, remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@broken.example"])
            # Several attempts (retry every second), each deferred with 4.4.3.
            self.assertTrue(wait_for(lambda: p.log().count(f"queue.deferred id={qid}") >= 3, 30), p.log()[-3000:])
            self.assertIn("4.4.3", p.log())
            self.assertEqual(mailbox(p), [], "SERVFAIL must never bounce")
            self.assertRegex(p.cli("queue", "list").stdout, r"deferred x@broken.example")

    def test_unreachable_host_defers(self):
        with FakeDns(self.zone) as dns, remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@dead.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            self.assertEqual(mailbox(p), [])

    def test_421_greeting_defers_then_delivers(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), greeting="421 4.3.2 try later") as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@plain.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            self.assertIn("421 4.3.2 try later", p.log())
            mx.greeting = "220 fake.test ESMTP"
            mx.wait_transactions(1, timeout=20)
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 20))
            self.assertEqual(mailbox(p), [])

    def test_451_at_rcpt_retries_only_that_recipient(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port),
                                                 rcpt_replies={r"^later@": "451 4.2.1 mailbox busy"}) as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["now@plain.example", "later@plain.example"])
            mx.wait_transactions(1)
            self.assertEqual([r.address for r in mx.transactions[0].accepted()], ["now@plain.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20))
            mx.rcpt_replies = {}
            mx.wait_transactions(2, timeout=20)
            self.assertEqual([r.address for r in mx.transactions[1].rcpts], ["later@plain.example"],
                             "the delivered recipient is not sent again")
            self.assertEqual(mailbox(p), [])

    def test_451_at_the_preferred_mx_goes_to_the_backup_at_once(self):
        with FakeDns(self.zone) as dns, \
                FakeSmtp(host_name="mx1.remote.example", bind=("127.0.0.3", self.port),
                         rcpt_replies={r"^grey@": "451 4.7.1 greylisted, try later"},
                         data_reply="451 4.3.0 queue full") as mx1, \
                FakeSmtp(host_name="mx2.remote.example", bind=("127.0.0.1", self.port)) as mx2, \
                remote_petrel(dns, self.port) as p:
            # mx1 (preference 10) refuses grey@ at RCPT and the whole message at the dot, both
            # 4xx: mx2 (20) takes both recipients in the same attempt, nothing is deferred.
            qid = self.send(p, ["grey@remote.example", "ok@remote.example"])
            mx2.wait_transactions(1)
            self.assertEqual(sorted(r.address for r in mx2.transactions[0].accepted()),
                             ["grey@remote.example", "ok@remote.example"])
            self.assertEqual([r.address for r in mx1.transactions[0].accepted()], ["ok@remote.example"])
            for rcpt in ("grey", "ok"):
                self.assertTrue(p.wait_log(f"id={qid} rcpt={rcpt}@remote.example relay=mx2.remote.example[127.0.0.1] "
                                           "result=delivered", 10), p.log()[-3000:])
            self.assertNotIn(f"queue.deferred id={qid}", p.log())
            self.assertIn("delivery.remote_next_host", p.log())

    def test_452_too_many_recipients_sends_the_rest_in_another_transaction_at_once(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), max_recipients=2) as mx, \
                remote_petrel(dns, self.port) as p:
            rcpts = [f"r{i}@plain.example" for i in range(5)]
            qid = self.send(p, rcpts)
            mx.wait_transactions(3)
            self.assertEqual([[r.address for r in t.accepted()] for t in mx.transactions[:3]],
                             [rcpts[0:2], rcpts[2:4], rcpts[4:5]])
            self.assertEqual(mx.connection_count(), 1, "on the same connection")
            for r in rcpts:
                self.assertTrue(p.wait_log(f"id={qid} rcpt={r} relay=plain.example[127.0.0.1] result=delivered", 10))
            self.assertNotIn(f"queue.deferred id={qid}", p.log())

    def test_a_slow_destination_does_not_hold_up_local_mail(self):
        def slow(_transaction):
            time.sleep(6)
            return "250 2.0.0 queued, slowly"
        queue = FAST_RETRY + "\ndelivery_concurrency = 3"
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), data_reply=slow) as mx, \
                remote_petrel(dns, self.port, queue=queue, extra="connections_per_destination = 1") as p:
            # Three for the slow host: its lane holds two of the three delivery slots (twice its
            # one connection), the third waits in the queue instead of in a slot. Without lanes
            # all three slots would be the slow host's for 6 s and more.
            for i in range(3):
                self.send(p, ["x@plain.example"], subject=f"slow {i}")
            time.sleep(0.5)
            start = time.monotonic()
            self.send(p, ["alice@example.test"], subject="local, meanwhile")
            self.assertTrue(wait_for(lambda: mailbox(p), 4), "local mail waited behind the slow destination")
            self.assertLess(time.monotonic() - start, 4)
            self.assertLessEqual(len(mx.transactions), 1, "the slow host is still on its first")

    def test_reset_after_354_defers_then_delivers(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), reset_after_354=True) as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@plain.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            mx.reset_after_354 = False
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 20))
            self.assertEqual(mailbox(p), [])

    def test_silence_after_the_dot_defers(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), silent_after_dot=True) as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@plain.example"])
            # data_timeout is 3 s: then a temporary failure (RFC 1047: it may be a duplicate later).
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            mx.silent_after_dot = False
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 20))
            self.assertEqual(mailbox(p), [], "deferred, never bounced")

    def test_554_after_the_data_bounces_with_the_remote_reply(self):
        with FakeDns(self.zone) as dns, FakeSmtp(host_name="mx1.remote.example", bind=("127.0.0.3", self.port),
                                                 data_reply="554 5.7.1 message refused by policy") as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["bob@remote.example"], subject="refused")
            mx.wait_transactions(1)
            dsn = self.bounce_for(p, qid)
            self.assertEqual(dsn["From"].addresses[0].username, "MAILER-DAEMON")
            fields = dsn_fields(dsn)
            self.assertEqual(fields[0]["action"], "failed")
            self.assertEqual(fields[0]["status"], "5.7.1")
            self.assertEqual(fields[0]["remote-mta"], "dns; mx1.remote.example")
            self.assertEqual(fields[0]["diagnostic-code"], "smtp; 554 5.7.1 message refused by policy")
            # The report parts against the golden file (variable parts normalised).
            parts = [part for part in dsn.walk() if part.get_content_type() in ("text/plain", "message/delivery-status")]
            report = "".join(normalise(part.as_string(), p) for part in parts[:2])
            path = os.path.join(GOLDEN, "bounce_554_after_data.txt")
            if os.environ.get("PETREL_UPDATE_GOLDEN"):
                os.makedirs(GOLDEN, exist_ok=True)
                with open(path, "w") as f:
                    f.write(report)
            with open(path) as f:
                self.assertEqual(report, f.read())

    def test_552_after_the_data_bounces(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port),
                                                 data_reply="552 5.3.4 message too big for this mailbox") as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@plain.example"])
            fields = dsn_fields(self.bounce_for(p, qid))
            self.assertEqual(fields[0]["status"], "5.3.4")
            self.assertEqual(len(mx.transactions), 1, "a 5xx is not retried")

    def test_starttls_refused_goes_on_in_plain_text_unless_required(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), starttls=True,
                                                 starttls_reply="454 4.7.0 TLS not available") as mx, \
                remote_petrel(dns, self.port, extra='[remote.tls_policy]\n"secure.example" = "required"') as p:
            self.send(p, ["x@plain.example"])
            mx.wait_transactions(1)
            self.assertFalse(mx.transactions[0].tls)
        zone = dict(self.zone)
        zone["secure.example"] = {"A": ["127.0.0.1"]}
        with FakeDns(zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), starttls=True,
                                            starttls_reply="454 4.7.0 TLS not available") as mx, \
                remote_petrel(dns, self.port, extra='[remote.tls_policy]\n"secure.example" = "required"') as p:
            qid = self.send(p, ["x@secure.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            self.assertEqual(len(mx.transactions), 0, "required TLS: never in plain text")
            self.assertIn(f"id={qid} rcpt=x@secure.example relay=none result=deferred why=\"454 4.7.0 TLS not available", p.log())

    def test_a_failed_handshake_is_retried_in_plain_text_only_when_opportunistic(self):
        zone = dict(self.zone)
        zone["secure.example"] = {"A": ["127.0.0.1"]}
        with FakeDns(zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), starttls=True) as mx, \
                remote_petrel(dns, self.port, extra='[remote.tls_policy]\n"secure.example" = "required"') as p:
            mx.starttls_broken = True  # 220 to STARTTLS, then plain text: the handshake fails
            # Opportunistic (the default): the same host again at once, without STARTTLS.
            qid = self.send(p, ["x@plain.example"])
            mx.wait_transactions(1)
            self.assertFalse(mx.transactions[0].tls)
            self.assertNotIn("STARTTLS", [c.upper() for c in mx.connections[-1].commands])
            self.assertRegex(p.log(), r"remote\.connect_failed destination=plain\.example .* stage=starttls")
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 10))
            # Required: never in plain text; deferred.
            qid = self.send(p, ["x@secure.example"])
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
            self.assertEqual(len(mx.transactions), 1, "required TLS: nothing sent in plain text")

    def test_starttls_with_an_injected_reply_is_not_fooled(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port), starttls=True,
                                                 starttls_injection=True) as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.send(p, ["x@plain.example"])
            # The injected "250" arrives with the 220 and is dropped with the plaintext buffer
            # (logged); the session goes on over TLS with the real EHLO reply. A client that
            # took it as the answer to its EHLO would be one reply behind from then on and
            # could not complete the transaction.
            mx.wait_transactions(1)
            t = mx.transactions[0]
            self.assertTrue(t.tls)
            self.assertEqual([r.address for r in t.accepted()], ["x@plain.example"])
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 10),
                            p.log()[-3000:])
            self.assertRegex(p.log(), r"smtp\.client\.starttls_injection peer=plain\.example\[127\.0\.0\.1\] discarded=14")

    def smarthost_secrets(self, relay):
        """A directory the server's user can read (it may run as petrel) holding the relay's
        CA (its self-signed certificate, valid for 127.0.0.1) and the password file, root's
        own with mode 0600: it is read before privileges are dropped."""
        secrets = tempfile.mkdtemp(prefix="petrel-relay-")
        self.addCleanup(shutil.rmtree, secrets, True)
        os.chmod(secrets, 0o755)
        pw = os.path.join(secrets, "relay.pw")
        with open(pw, "w") as f:
            f.write("relay-secret\n")
        os.chmod(pw, 0o600)
        ca = os.path.join(secrets, "relay-ca.pem")
        shutil.copy(relay.cert_file, ca)
        os.chmod(ca, 0o644)
        return pw, ca

    def smarthost_toml(self, relay, pw, extra=""):
        return f"""
[remote]
relay_host = "127.0.0.1:{relay.port}"
relay_user = "relayuser"
relay_password_file = "{pw}"
command_timeout = "3s"
{extra}
"""

    def test_smarthost_with_auth_over_verified_tls(self):
        with FakeSmtp(starttls=True, auth=("relayuser", "relay-secret")) as relay:
            pw, ca = self.smarthost_secrets(relay)
            with Petrel(smtp_toml=TRUSTED, queue_toml=FAST_RETRY,
                        extra_toml=self.smarthost_toml(relay, pw, f'ca_file = "{ca}"')) as p:
                self.send(p, ["a@anywhere.example", "b@elsewhere.example"])
                relay.wait_transactions(1)
                t = relay.transactions[0]
                self.assertTrue(t.tls, "AUTH to a smarthost only over TLS")
                self.assertEqual(t.auth_user, "relayuser")
                self.assertEqual(sorted(r.address for r in t.accepted()), ["a@anywhere.example", "b@elsewhere.example"])
                self.assertNotIn("relay-secret", p.log())
                # A smarthost given by address is logged as Postfix does, not as "[ip][ip]".
                self.assertTrue(p.wait_log("rcpt=a@anywhere.example relay=127.0.0.1[127.0.0.1] result=delivered", 5),
                                p.log()[-3000:])

    def test_smarthost_password_never_goes_over_unverified_tls_unless_allowed(self):
        with FakeSmtp(starttls=True, auth=("relayuser", "relay-secret")) as relay:
            pw, _ = self.smarthost_secrets(relay)
            # No ca_file: the relay's certificate is not from a known CA: defer, send nothing.
            with Petrel(smtp_toml=TRUSTED, queue_toml=FAST_RETRY, extra_toml=self.smarthost_toml(relay, pw)) as p:
                qid = self.send(p, ["a@anywhere.example"])
                self.assertTrue(p.wait_log(f"queue.deferred id={qid}", 20), p.log()[-3000:])
                self.assertEqual(relay.transactions, [])
                self.assertGreaterEqual(relay.connection_count(), 1, "it did try the relay")
                sent = [cmd for c in relay.connections for cmd in c.commands]
                self.assertFalse([cmd for cmd in sent if cmd.upper().startswith("AUTH")], sent)
            # The operator accepts this relay's certificate as it is: "required" for its name.
            with Petrel(smtp_toml=TRUSTED, queue_toml=FAST_RETRY, extra_toml=self.smarthost_toml(
                    relay, pw, '[remote.tls_policy]\n"127.0.0.1" = "required"')) as p:
                self.send(p, ["a@anywhere.example"])
                relay.wait_transactions(1)
                self.assertTrue(relay.transactions[0].tls)
                self.assertEqual(relay.transactions[0].auth_user, "relayuser")

    def test_an_alias_to_another_domain_is_forwarded(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, \
                remote_petrel(dns, self.port, aliases={"team@example.test": ["x@plain.example", "bob@example.test"]}) as p:
            qid = send_mail(p, ["team@example.test"], message(subject="for the team").encode(), sender="carol@plain.example")
            mx.wait_transactions(1)
            t = mx.transactions[0]
            self.assertEqual(t.mail_from, "carol@plain.example", "the envelope sender is kept")
            self.assertEqual([r.address for r in t.accepted()], ["x@plain.example"])
            self.assertTrue(t.body.startswith(b"Delivered-To: team@example.test\r\n"), t.body[:200])
            self.assertIn(b"Subject: for the team", t.body)
            # The forwarded copy is its own queued message and may leave before bob's local copy
            # is written: wait for it rather than assume an order.
            self.assertTrue(wait_for(lambda: len(mailbox(p, "bob")) == 1, 10), "the local member gets its copy")
            self.assertIn(f"id={qid}", p.log())

    def raw_send(self, p, mail_cmd, rcpt_cmds, data):
        c = Dialog(p.port("smtp"))
        c.expect(220)
        c.cmd("EHLO client.example", 250)
        c.cmd(mail_cmd, 250)
        for r in rcpt_cmds:
            c.cmd(r, 250)
        c.cmd("DATA", 354)
        c.send(data + b".\r\n")
        qid = c.expect(250).split()[-1]
        c.cmd("QUIT", 221)
        c.close()
        return qid

    def test_dsn_parameters_are_passed_on_when_the_next_hop_offers_dsn(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port),
                                                 extensions=("PIPELINING", "SIZE 10240000", "8BITMIME", "DSN")) as mx, \
                remote_petrel(dns, self.port) as p:
            self.raw_send(p, "MAIL FROM:<alice@example.test> RET=HDRS ENVID=env+2Bone",
                          ["RCPT TO:<x@plain.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig@plain.example"],
                          message().encode())
            mx.wait_transactions(1)
            t = mx.transactions[0]
            self.assertIn("RET=HDRS", t.mail_params)
            self.assertIn("ENVID=env+2Bone", t.mail_params)
            params = t.rcpts[0].params
            self.assertIn("NOTIFY=SUCCESS,FAILURE", params)
            self.assertIn("ORCPT=rfc822;orig@plain.example", params)
            # The next hop took the request on and reports the success: none from Petrel too.
            self.assertTrue(p.wait_log("rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 10))
            time.sleep(1.0)
            self.assertEqual(mailbox(p), [], "no second success notice")

    def test_a_next_hop_without_dsn_gets_a_relayed_report_with_the_original_recipient(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, \
                remote_petrel(dns, self.port) as p:
            qid = self.raw_send(p, "MAIL FROM:<alice@example.test> RET=FULL ENVID=env-7",
                                ["RCPT TO:<x@plain.example> NOTIFY=SUCCESS ORCPT=rfc822;orig@plain.example"],
                                message(subject="relayed report").encode())
            mx.wait_transactions(1)
            self.assertNotIn("NOTIFY", mx.transactions[0].rcpts[0].params, "not offered, not sent")
            dsn = self.bounce_for(p, qid)
            fields = dsn_fields(dsn)
            self.assertEqual(fields[0]["action"], "relayed")
            self.assertEqual(fields[0]["status"], "2.0.0")
            self.assertEqual(fields[0]["original-recipient"], "rfc822; orig@plain.example")
            self.assertEqual(fields[0]["final-recipient"], "rfc822; x@plain.example")
            self.assertIn("env-7", dsn.as_string())

    def test_an_smtputf8_message_to_a_server_without_it_bounces_5_6_7(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, remote_petrel(dns, self.port) as p:
            qid = self.raw_send(p, "MAIL FROM:<alice@example.test> SMTPUTF8", ["RCPT TO:<j\u00f6rg@plain.example>"],
                                message().encode())
            fields = dsn_fields(self.bounce_for(p, qid))
            self.assertEqual(fields[0]["status"], "5.6.7")
            self.assertNotIn("remote-mta", fields[0], "Petrel, not the server, decided this")
            self.assertEqual(len(mx.transactions), 0, "never sent to a server without SMTPUTF8")

    def test_smtputf8_with_utf8_header_text_bounces_and_an_ascii_one_goes_without_it(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port)) as mx, remote_petrel(dns, self.port) as p:
            # ASCII addresses, UTF-8 subject: RFC 6532 header text needs SMTPUTF8 (Postfix's rule).
            utf8 = self.raw_send(p, "MAIL FROM:<alice@example.test> SMTPUTF8", ["RCPT TO:<x@plain.example>"],
                                 message(subject="Gr\u00fc\u00dfe").encode())
            fields = dsn_fields(self.bounce_for(p, utf8))
            self.assertEqual(fields[0]["status"], "5.6.7")
            self.assertEqual(len(mx.transactions), 0)
            # The client said SMTPUTF8 but everything is ASCII: sent, without the parameter.
            ascii_ = self.raw_send(p, "MAIL FROM:<alice@example.test> SMTPUTF8", ["RCPT TO:<y@plain.example>"],
                                   message(subject="plain").encode())
            mx.wait_transactions(1)
            self.assertNotIn("SMTPUTF8", mx.transactions[0].mail_params)
            self.assertTrue(p.wait_log(f"id={ascii_} rcpt=y@plain.example relay=plain.example[127.0.0.1] result=delivered", 10))

    def test_a_delay_warning_once_then_delivery(self):
        with FakeDns(self.zone) as dns, FakeSmtp(bind=("127.0.0.1", self.port),
                                                 rcpt_replies={r".": "451 4.2.1 try again"}) as mx, \
                remote_petrel(dns, self.port, queue=FAST_RETRY + '\ndelay_warning = "2s"') as p:
            qid = self.send(p, ["x@plain.example"])
            dsn = self.bounce_for(p, qid)
            fields = dsn_fields(dsn)
            self.assertEqual(fields[0]["action"], "delayed")
            self.assertEqual(fields[0]["status"], "4.2.1")
            self.assertIn("will-retry-until", fields[0])
            time.sleep(3)  # more deferrals: no second warning
            self.assertEqual(len(mailbox(p)), 1, "one delay warning per message")
            mx.rcpt_replies = {}
            self.assertTrue(p.wait_log(f"id={qid} rcpt=x@plain.example relay=plain.example[127.0.0.1] result=delivered", 20))


if __name__ == "__main__":
    unittest.main()
