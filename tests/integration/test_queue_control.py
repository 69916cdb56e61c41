#!/usr/bin/python3
"""test_queue_control: the queue as an operator sees it while the server runs (`petrel queue
list|hold|release|flush|delete`), and bounces: a mail loop ends in exactly one bounce to the
sender, a standard multipart/report DSN."""
import email
import email.policy
import glob
import os
import re
import time
import unittest

from petrel import Petrel, message, send_mail, wait_for

TRUSTED = 'trusted_networks = ["127.0.0.0/8"]'


def maildir(p, user):
    return sorted(glob.glob(os.path.join(p.data_dir, "mail/example.test", user, "new", "*")))


class QueueControl(unittest.TestCase):
    def deferred_message(self, p):
        """A message that stays in the queue: a relayed recipient whose domain cannot be looked
        up (the harness points DNS at a closed loopback port), so it is deferred with 4.4.3."""
        qid = send_mail(p, ["someone@remote.example"], message(subject="waits").encode(), sender="alice@example.test")
        self.assertTrue(p.wait_log(f"queue.deferred id={qid}"), p.log()[-2000:])
        return qid

    def test_list_shows_each_recipients_state_and_next_try(self):
        with Petrel(smtp_toml=TRUSTED, queue_toml='retry_first = "1h"') as p:
            qid = send_mail(p, ["someone@remote.example", "bob@example.test"], message(subject="two").encode(),
                            sender="alice@example.test")
            self.assertTrue(p.wait_log(f"queue.deferred id={qid}"), p.log()[-2000:])
            self.assertTrue(p.wait_log(f"queue.delivered id={qid}"), p.log()[-2000:])
            out = p.cli("queue", "list").stdout
            self.assertRegex(out, rf"(?m)^{qid}\s+\d+s\s+\d+ alice@example.test$")
            self.assertRegex(out, r"(?m)^    deferred someone@remote.example attempts=1 next=\S+Z \(in (59m|1h)\) "
                                  r"\"4\.4\.3 [^\"]+\"$")
            self.assertRegex(out, r"(?m)^    delivered bob@example.test attempts=1")
            self.assertIn("1 message, 1 recipient to deliver (1 deferred)", out)
            shown = p.cli("queue", "show", qid).stdout
            self.assertRegex(shown, r"(?m)^to: someone@remote.example notify=-\n    deferred attempts=1 next=")
            self.assertRegex(shown, r"(?m)^to: bob@example.test notify=-\n    delivered attempts=1")
            self.assertIn("Subject: two", shown)

    def test_hold_release_flush_delete_while_running(self):
        with Petrel(smtp_toml=TRUSTED, queue_toml='retry_first = "1h"') as p:
            qid = self.deferred_message(p)

            r = p.cli("queue", "hold", qid)
            self.assertEqual(r.stdout.strip(), "hold: messages=1 recipients=1")
            self.assertTrue(p.wait_log(f"queue.held id={qid}"))
            self.assertRegex(p.cli("queue", "list").stdout, r"(?m)^    held someone@remote.example")

            # A hold is durable: it survives a restart, and held mail is not tried.
            p.stop()
            p.start()
            self.assertRegex(p.cli("queue", "list").stdout, r"(?m)^    held someone@remote.example")

            attempts = lambda: len(re.findall(rf"queue\.deferred id={qid} ", p.log()))
            self.assertEqual(attempts(), 1)
            r = p.cli("queue", "release", qid)
            self.assertEqual(r.stdout.strip(), "release: messages=1 recipients=1")
            self.assertTrue(wait_for(lambda: attempts() == 2), "released mail is tried at once")

            r = p.cli("queue", "flush")
            self.assertEqual(r.stdout.strip(), "flush: messages=1 recipients=1")
            self.assertTrue(wait_for(lambda: attempts() == 3), "flushed mail is tried at once")

            r = p.cli("queue", "delete", qid)
            self.assertEqual(r.stdout.strip(), "delete: messages=1 recipients=1")
            self.assertTrue(p.wait_log(f"queue.deleted id={qid}"))
            self.assertIn("0 messages", p.cli("queue", "list").stdout)
            self.assertEqual(maildir(p, "alice"), [], "a deleted message bounces to nobody")

            # Errors: an id that is not pending, a missing argument, the server not running.
            r = p.cli("queue", "delete", qid, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no pending message", r.stderr)
            r = p.cli("queue", "hold", check=False)
            self.assertEqual(r.returncode, 2)
            p.stop()
            r = p.cli("queue", "flush", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("is `petrel serve` running?", r.stderr)

    def test_control_socket_is_private(self):
        with Petrel() as p:
            sock = os.path.join(p.data_dir, "control.sock")
            self.assertTrue(wait_for(lambda: os.path.exists(sock)))
            st = os.stat(sock)
            self.assertEqual(st.st_mode & 0o777, 0o600)


class Bounces(unittest.TestCase):
    def test_a_mail_loop_ends_in_one_bounce_to_the_sender(self):
        with Petrel() as p:
            # The message already went through bob's mailbox once: delivering it again is a loop
            # (RFC 5321 6.3), which fails permanently and bounces to the sender, alice.
            looping = (b"Delivered-To: bob@example.test\r\nFrom: alice@example.test\r\nTo: bob@example.test\r\n"
                       b"Subject: round and round\r\nMessage-ID: <loop-1@example.test>\r\n\r\nagain\r\n")
            qid = send_mail(p, ["bob@example.test"], looping, sender="alice@example.test")
            self.assertTrue(p.wait_log(f"queue.failed id={qid}"), p.log()[-3000:])
            self.assertTrue(p.wait_log(f"queue.bounced id={qid}"), p.log()[-3000:])
            bounces = wait_for(lambda: maildir(p, "alice"))
            self.assertEqual(len(bounces), 1, p.log()[-3000:])
            time.sleep(1)  # nothing more arrives: one bounce, and nothing for bob
            self.assertEqual(len(maildir(p, "alice")), 1)
            self.assertEqual(maildir(p, "bob"), [])

            with open(bounces[0], "rb") as f:
                raw = f.read()
            self.assertTrue(raw.startswith(b"Return-Path: <>\r\n"), raw[:200])
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "delivery-status")
            self.assertEqual(msg["Auto-Submitted"], "auto-replied")
            parts = list(msg.iter_parts())
            self.assertEqual(len(parts), 3)
            self.assertEqual(parts[0].get_content_type(), "text/plain")
            self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
            status = parts[1].as_bytes().decode()
            self.assertIn("Reporting-MTA: dns; mx.example.test", status)
            self.assertIn("Final-Recipient: rfc822; bob@example.test", status)
            self.assertIn("Action: failed", status)
            self.assertIn("Status: 5.4.6", status)
            self.assertIn(b"Message-ID: <loop-1@example.test>", parts[2].as_bytes())

            # The bounce is from <>: were it to fail as well, it would not bounce again.
            bounce_ids = re.findall(rf"queue\.bounced id={qid} dsn_id=(\w+)", p.log())
            self.assertEqual(len(bounce_ids), 1)


if __name__ == "__main__":
    unittest.main()
