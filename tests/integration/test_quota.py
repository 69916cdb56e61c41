#!/usr/bin/python3
"""test_quota: a per-account quota, end to end.

`petrel user add --quota` / `petrel user quota` set it; a running server applies it from its
next accounts refresh (about a second); a message that would take the mailbox past it is
deferred with 4.2.2 (temporary, RFC 3463 3.3), is NOT written into the Maildir, and is retried;
raising the quota lets it in on a later retry, byte for byte as it was sent.
"""
import glob
import os
import re
import time
import unittest

from petrel import DOMAIN, Petrel, message, send_mail, wait_for, without_received

ALICE = f"alice@{DOMAIN}"
RETRIES = 'retry_first = "1s"\nretry_max = "1s"\n'


def send(p, rcpt, text):
    """Sends one message; returns its queue id."""
    return send_mail(p, [rcpt], text.encode())


def maildir_files(p, owner="alice"):
    return sorted(glob.glob(os.path.join(p.data_dir, "mail", DOMAIN, owner, "new", "*")))


def holding(p, qid, owner="alice"):
    """The Maildir files that hold the message with this queue id."""
    needle = b" id " + qid.encode() + b"\r\n"
    found = []
    for path in maildir_files(p, owner):
        with open(path, "rb") as f:
            if needle in f.read(4096):
                found.append(path)
    return found


class Quota(unittest.TestCase):
    def deferred_lines(self, p, qid):
        return re.findall(rf"queue\.deferred id={qid} .*", p.log())

    def test_over_quota_is_deferred_then_delivered_when_raised(self):
        started = time.monotonic()
        with Petrel(queue_toml=RETRIES) as p:
            # Each message is about 3.4 KiB in the mailbox (3000 octets sent, the Received:,
            # Return-Path: and Delivered-To: lines added): two fit in 8 KiB, a third does not.
            p.cli("user", "quota", ALICE, "8K")
            self.assertIn(f"{ALICE} quota=8KiB", p.cli("user", "list").stdout.splitlines())
            time.sleep(1.5)  # the server's accounts refresh runs every second

            sent = {}
            for i in range(2):
                body = message(subject=f"fits {i}", size=3000)
                qid = send(p, ALICE, body)
                sent[qid] = body
                self.assertEqual(without_received(p.delivered_message(qid)), body.encode())

            over = message(subject="over quota", size=3000)
            qid = send(p, ALICE, over)
            # Deferred with 4.2.2, and retried (a second attempt after retry_first = 1 s).
            self.assertTrue(wait_for(lambda: self.deferred_lines(p, qid)), p.log()[-3000:])
            line = self.deferred_lines(p, qid)[0]
            self.assertRegex(line, r'why="4\.2\.2 mailbox full', line)
            self.assertIn("attempts=1", line)
            self.assertTrue(wait_for(lambda: len(self.deferred_lines(p, qid)) >= 2, timeout=10), p.log()[-3000:])
            self.assertRegex(self.deferred_lines(p, qid)[1], r'attempts=2 .*why="4\.2\.2 ')
            # Not in the Maildir, and nothing half-written in tmp/ either.
            self.assertEqual(holding(p, qid), [])
            self.assertEqual(len(maildir_files(p)), 2)
            self.assertEqual(os.listdir(os.path.join(p.data_dir, "mail", DOMAIN, "alice", "tmp")), [])
            self.assertNotIn(f"queue.delivered id={qid} ", p.log())  # still waiting in the queue
            # The delivery log line says why, with the figures (no path in the diagnostic).
            self.assertRegex(p.log(), rf'delivery\.local id={qid} .*result=deferred why="4\.2\.2 mailbox full: \d+ \+ \d+ bytes > quota 8192')
            # Other accounts are not limited by alice's quota.
            bob_body = message(subject="bob", size=3000)
            bob_qid = send(p, f"bob@{DOMAIN}", bob_body)
            self.assertEqual(without_received(p.delivered_message(bob_qid, owner="bob")), bob_body.encode())

            # Raise the quota while the server runs: the next retry delivers it, exactly once.
            raised = time.monotonic()
            p.cli("user", "quota", ALICE, "1M")
            self.assertIn(f"{ALICE} quota=1MiB", p.cli("user", "list").stdout.splitlines())
            got = p.delivered_message(qid, timeout=15)
            self.assertEqual(without_received(got), over.encode())
            self.assertLess(time.monotonic() - raised, 6, "a raised quota should apply within a refresh and a retry")
            self.assertTrue(p.wait_log(f"queue.delivered id={qid} "), p.log()[-3000:])
            time.sleep(1.5)  # no further attempt after the delivery
            self.assertEqual(len(holding(p, qid)), 1)
            self.assertEqual(len(maildir_files(p)), 3)
            for q, body in sent.items():
                self.assertEqual(len(holding(p, q)), 1)

            # Back to unlimited ("none"): list shows no quota.
            p.cli("user", "quota", ALICE, "none")
            self.assertIn(ALICE, p.cli("user", "list").stdout.splitlines())
        print(f"\n  over-quota round trip: {time.monotonic() - started:.1f}s")

    def test_cli(self):
        with Petrel() as p:
            r = p.cli("user", "add", f"carol@{DOMAIN}", "--quota", "10M", input="pw\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            p.cli("user", "add", f"dave@{DOMAIN}", "--quota", "0", input="pw\n")
            lines = p.cli("user", "list").stdout.splitlines()
            self.assertIn(f"carol@{DOMAIN} quota=10MiB", lines)
            self.assertIn(f"dave@{DOMAIN}", lines)  # unlimited: the address alone
            self.assertIn(ALICE, lines)
            for size, shown in (("512KiB", "512KiB"), ("2G", "2GiB"), ("1000", "1000"), ("10kB", "10000")):
                p.cli("user", "quota", f"carol@{DOMAIN}", size)
                self.assertIn(f"carol@{DOMAIN} quota={shown}", p.cli("user", "list", DOMAIN).stdout.splitlines())
            p.cli("user", "quota", f"carol@{DOMAIN}", "unlimited")
            self.assertIn(f"carol@{DOMAIN}", p.cli("user", "list").stdout.splitlines())

            # Usage errors exit 2 and change nothing; a missing account is a refusal (1).
            for args in (["user", "quota", ALICE, "lots"], ["user", "quota", ALICE, "-5"], ["user", "quota", ALICE],
                         ["user", "quota", ALICE, "99999999999T"], ["user", "add", f"erin@{DOMAIN}", "--quota", "10X"]):
                with self.subTest(args=args):
                    r = p.cli(*args, input="pw\n", check=False)
                    self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
                    self.assertIn("size", r.stderr.lower())
            r = p.cli("user", "quota", f"nobody@{DOMAIN}", "1M", check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("no such account", r.stderr)
            lines = p.cli("user", "list").stdout.splitlines()
            self.assertNotIn(f"erin@{DOMAIN}", "\n".join(lines))
            self.assertIn(ALICE, lines)  # still unlimited
            r = p.cli("user", "quota", "--help", check=False)
            self.assertEqual(r.returncode, 0)
            self.assertIn("SIZE", r.stdout)


if __name__ == "__main__":
    unittest.main()
