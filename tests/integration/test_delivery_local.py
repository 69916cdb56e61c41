#!/usr/bin/python3
"""test_delivery_local: accepted mail for local accounts ends up in their Maildir, exactly as sent."""
import glob
import mailbox
import os
import time
import unittest

from petrel import Petrel, message, send_mail as send, split_received


def wait_files(pattern, count, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(glob.glob(pattern))
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return sorted(glob.glob(pattern))


class LocalDelivery(unittest.TestCase):
    def test_byte_exact_in_maildir(self):
        body = (b"From: <sender@remote.example>\r\nTo: <alice@example.test>\r\nSubject: exact\r\n\r\n"
                b".leading dot\r\n..two dots\r\n8-bit: \xc3\xa9\xff\r\n" + b"L" * 20000 + b"\r\nend\r\n")
        with Petrel() as p:
            send(p, ["alice@example.test"], body)
            files = wait_files(os.path.join(p.data_dir, "mail/example.test/alice/new/*"), 1)
            self.assertEqual(len(files), 1, p.log())
            with open(files[0], "rb") as f:
                got = f.read()
            head = b"Return-Path: <sender@remote.example>\r\nDelivered-To: alice@example.test\r\n"
            self.assertTrue(got.startswith(head), got[:200])
            received, rest = split_received(got[len(head):])
            self.assertEqual(rest, body)
            # An independent Maildir reader (Python's mailbox module) sees the same message.
            box = mailbox.Maildir(os.path.join(p.data_dir, "mail/example.test/alice"), factory=None, create=False)
            msgs = list(box)
            self.assertEqual(len(msgs), 1)
            self.assertEqual(msgs[0]["Subject"], "exact")
            self.assertEqual(msgs[0]["Delivered-To"], "alice@example.test")

    def test_alias_fanout_and_subaddress(self):
        with Petrel(aliases={"team@example.test": ["alice@example.test", "bob@example.test"]}) as p:
            send(p, ["team@example.test", "alice+news@example.test"], message(subject="fan").encode())
            self.assertEqual(len(wait_files(os.path.join(p.data_dir, "mail/example.test/alice/new/*"), 2)), 2, p.log())
            self.assertEqual(len(wait_files(os.path.join(p.data_dir, "mail/example.test/bob/new/*"), 1)), 1, p.log())

    def test_catch_all_and_fanout_are_byte_exact(self):
        body = (b"From: <sender@remote.example>\r\nSubject: anyone\r\n\r\n.dot line\r\n\xe2\x82\xac 8-bit\r\n"
                + b"y" * 5000 + b"\r\n")
        with Petrel(aliases={"team@example.test": ["alice@example.test", "bob@example.test"]}) as p:
            p.cli("domain", "catch-all", "example.test", "bob@example.test")
            time.sleep(1.5)  # the running server picks the change up within a second
            qid = send(p, ["nobody-here@example.test"], body)
            got = p.delivered_message(qid, owner="bob")
            received, rest = split_received(got)
            self.assertEqual(rest, body)
            # Fan-out: each mailbox gets the same bytes.
            qid = send(p, ["team@example.test"], body)
            for owner in ("alice", "bob"):
                received, rest = split_received(p.delivered_message(qid, owner=owner))
                self.assertEqual(rest, body, owner)
            # An unknown user is now accepted at RCPT (the catch-all takes it).
            self.assertEqual(p.log().count("550 5.1.1"), 0)

    def test_postmaster_without_domain_reaches_the_primary_domains_postmaster(self):
        # RFC 5321 4.5.1: RCPT TO:<Postmaster> (any case, no domain) is accepted and must reach
        # the postmaster: here postmaster@example.test (the served parent of mx.example.test),
        # an alias of alice. Nothing may be bounced to the unverified sender or relayed out.
        body = b"From: <sender@remote.example>\r\nSubject: for the postmaster\r\n\r\nHello.\r\n"
        with Petrel(aliases={"postmaster@example.test": ["alice@example.test"]}) as p:
            qid = send(p, ["PostMaster"], body)
            got = p.delivered_message(qid, owner="alice")
            received, rest = split_received(got)
            self.assertEqual(rest, body)
            self.assertTrue(p.wait_log(f"queue.delivered id={qid} rcpt=postmaster@example.test"), p.log())
            log = p.log()
            for event in (" queue.deferred ", " queue.failed ", " queue.bounced ", " remote."):  # log events
                self.assertNotIn(event, log)

    def test_postmaster_without_domain_uses_the_configured_primary_domain(self):
        # server.primary_domain names the domain when the host name is not one we serve.
        with Petrel(server_toml='primary_domain = "Other.Test"') as p:
            p.cli("domain", "add", "other.test")
            p.cli("user", "add", "carol@other.test", input="carol-password\n")
            p.cli("alias", "add", "postmaster@other.test", "carol@other.test")
            time.sleep(1.5)  # the running server picks the change up within a second
            qid = send(p, ["postmaster"], message(subject="pm").encode())
            path = os.path.join(p.data_dir, "mail/other.test/carol/new/*")
            self.assertEqual(len(wait_files(path, 1)), 1, p.log())
            self.assertTrue(p.wait_log(f"queue.delivered id={qid} rcpt=postmaster@other.test"), p.log())


if __name__ == "__main__":
    unittest.main()
