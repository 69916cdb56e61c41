#!/usr/bin/python3
"""test_corrupt_spool: bytes damaged in the middle of a spool segment are quarantined and
logged, and every other queued message is still delivered, byte-exact (issue 4).

Run 1 queues several messages for alice@example.test while example.test is not yet a domain
of ours: the client is on a trusted network, so they are accepted and relayed, and remote
delivery defers them (the smarthost named in config is down). The server stops with all of them in the
spool. Between the runs the domain and its users are added, and bytes inside one message's
record (its inline body) are flipped. Run 2 must start, log `queue.quarantined`, hold the
damaged record's exact bytes in <data>/queue/quarantine/, deliver every other message to the
Maildir exactly as sent, never deliver the damaged one, and retire the damaged segment (its
damage is copied out, so nothing keeps it).

The second test does the same with bodies larger than memory_per_message (each in its own
spill file, body/<id>), damaging once one message's record (its queue id) and once the
segment's header: recovery can no longer tell which message a spill belongs to, but the
acknowledged bodies must not be deleted. Each must be found whole in
<data>/queue/quarantine/<id>.body, and every readable message still delivered (issue 11).
"""
import glob
import os
import re
import shutil
import time
import unittest

from petrel import Dialog, Petrel, free_port, wait_for, without_received

COUNT = 7
DAMAGED = 1  # index of the message whose record is damaged: in the first segment
SIZE = 300 * 1024  # inline (memory_per_message below): three messages fill a 1 MiB segment
DEADLINE_S = 15
SPILL_COUNT = 4
SPILL_SIZE = 64 * 1024  # over memory_per_message in the spill test: each body goes to body/<id>


def make_message(i):
    head = (f"From: <sender@remote.example>\r\nTo: <alice@example.test>\r\nSubject: corrupt-spool {i}\r\n"
            f"Message-ID: <corrupt-{i}@remote.example>\r\n\r\n").encode()
    line = f"token-{i:04d} " + "abcdefghijklmnopqrstuvwxyz0123456789" * 2 + "\r\n"
    body = line.encode() * (SIZE // len(line))
    return head + body + f"end of message {i}\r\n".encode()


def send(p, msg):
    c = Dialog(p.port())
    try:
        c.expect(220)
        c.cmd("EHLO client.example", 250)
        c.cmd("MAIL FROM:<sender@remote.example>", 250)
        c.cmd("RCPT TO:<alice@example.test>", 250)
        c.cmd("DATA", 354)
        c.send(re.sub(rb"(?m)^\.", b"..", msg) + b".\r\n")
        reply = c.expect(250)
        c.cmd("QUIT", 221)
    finally:
        c.close()
    return re.search(r"queued as ([0-9A-Z]{20})", reply).group(1)


class CorruptSpool(unittest.TestCase):
    def test_damaged_record_is_quarantined_and_the_rest_delivered(self):
        t0 = time.monotonic()
        p = Petrel(smtp_toml='trusted_networks = ["127.0.0.1/32"]',
                   queue_toml='memory_per_message = "1MiB"\nsegment_size = "1MiB"\nretry_first = "1s"',
                   extra_toml=f'[remote]\nrelay_host = "127.0.0.1:{free_port()}"')  # nothing listens there
        try:
            # Run 1: example.test is not served yet, so every message waits in the spool.
            p.start()
            sent = {}
            for i in range(COUNT):
                msg = make_message(i)
                sent[send(p, msg)] = (i, msg)
            self.assertTrue(wait_for(lambda: len(set(re.findall(r" queue\.deferred id=(\w+)", p.log()))) >= COUNT,
                                       DEADLINE_S), p.log()[-3000:])
            self.assertIn("result=deferred", p.log())
            p.stop()
            self.assertEqual(glob.glob(os.path.join(p.data_dir, "mail", "*", "*", "new", "*")), [],
                             "nothing may be delivered before the domain exists")

            # Between the runs: the domain and its users, and damage inside one record.
            p.setup_accounts()
            segments = sorted(glob.glob(os.path.join(p.data_dir, "queue", "log", "*.seg")))
            self.assertGreaterEqual(len(segments), 2, "the test wants the damage in a segment that is not the last")
            damaged_id = next(qid for qid, (i, _) in sent.items() if i == DAMAGED)
            needle = f"token-{DAMAGED:04d} ".encode()
            with open(segments[0], "rb") as f:
                seg = bytearray(f.read())
            at = seg.find(needle, len(seg) // 3)  # well inside the record: not its header
            self.assertGreater(at, 0, "message %d is not inline in the first segment" % DAMAGED)
            for k in range(len(needle)):
                seg[at + k] ^= 0x5A
            with open(segments[0], "wb") as f:
                f.write(seg)

            # Run 2: starts, quarantines, delivers the rest.
            p.start()
            log = p.log()
            m = re.search(r" queue\.quarantined file=(\S+) segment=(\S+) offset=(\d+) bytes=(\d+) reason=(\S+)", log)
            self.assertIsNotNone(m, log[-3000:])
            path, segment, offset, length, reason = m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5)
            # The server works inside its data directory: the paths it logs are relative to it.
            self.assertFalse(os.path.isabs(path), path)
            path = os.path.normpath(os.path.join(p.data_dir, path))
            self.assertEqual(reason, "corrupt-record")
            self.assertEqual(os.path.basename(segment), os.path.basename(segments[0]))
            self.assertEqual(os.path.dirname(path), os.path.join(p.data_dir, "queue", "quarantine"))
            self.assertEqual(os.path.basename(path), f"{os.path.basename(segments[0])}-{offset}.bin")
            with open(path, "rb") as f:
                copy = f.read()
            self.assertEqual(len(copy), length)
            self.assertEqual(copy, bytes(seg[offset:offset + length]), "the quarantine file holds exactly the damaged bytes")
            self.assertTrue(offset <= at and at + len(needle) <= offset + length, "the copy covers the damage")
            self.assertLess(length, SIZE * 2, "only the damaged record, not its neighbours")
            self.assertRegex(log, r" queue\.open [^\n]*corrupt_regions=1 [^\n]*quarantined=1 quarantine_failed=0")

            for qid, (i, msg) in sent.items():
                if qid == damaged_id:
                    continue
                got = p.delivered_message(qid, timeout=max(1, DEADLINE_S - (time.monotonic() - t0)))
                self.assertEqual(without_received(got), msg, f"message {i} ({qid}) is not the message sent")

            # The damaged one is in no mailbox; each other one is there once.
            files = glob.glob(os.path.join(p.data_dir, "mail", "example.test", "*", "new", "*"))
            self.assertEqual(len(files), COUNT - 1)
            for name in files:
                with open(name, "rb") as f:
                    self.assertNotIn(f"Subject: corrupt-spool {DAMAGED}\r\n".encode(), f.read())

            # Its damage is copied out, so the segment is not kept: it is retired like any other.
            seq = int(os.path.basename(segments[0])[:16])
            self.assertTrue(p.wait_log(f" queue.retired segment={seq}\n", timeout=5), p.log()[-3000:])
            self.assertTrue(os.path.exists(path), "retiring the segment leaves the quarantine copy")
            self.assertLess(time.monotonic() - t0, 20)
        finally:
            p.stop()
            shutil.rmtree(p.tmp, ignore_errors=True)

    def test_spilled_bodies_of_unreadable_records_are_kept_in_quarantine(self):
        for damage in ("record", "header"):
            with self.subTest(damage=damage):
                self._spilled_bodies_kept(damage)

    def _spilled_bodies_kept(self, damage):
        t0 = time.monotonic()
        p = Petrel(smtp_toml='trusted_networks = ["127.0.0.1/32"]',
                   queue_toml=f'memory_per_message = "4KiB"\nretry_first = "1s"',
                   extra_toml=f'[remote]\nrelay_host = "127.0.0.1:{free_port()}"')  # nothing listens there
        try:
            # Run 1: every message spills (64 KiB > 4 KiB) and waits in the spool.
            p.start()
            sent = {}
            for i in range(SPILL_COUNT):
                msg = make_message(i)[:SPILL_SIZE] + b"\r\nend\r\n"
                sent[send(p, msg)] = (i, msg)
            self.assertTrue(wait_for(lambda: len(set(re.findall(r" queue\.deferred id=(\w+)", p.log()))) >= SPILL_COUNT,
                                     DEADLINE_S), p.log()[-3000:])
            p.stop()
            for qid in sent:
                self.assertTrue(os.path.exists(os.path.join(p.data_dir, "queue", "body", qid)), f"{qid} did not spill")

            # Between the runs: the domain and its users, and damage that makes records unreadable.
            p.setup_accounts()
            segments = sorted(glob.glob(os.path.join(p.data_dir, "queue", "log", "*.seg")))
            self.assertEqual(len(segments), 1)
            with open(segments[0], "rb") as f:
                seg = bytearray(f.read())
            if damage == "record":
                lost = {next(qid for qid, (i, _) in sent.items() if i == DAMAGED)}
                at = seg.find(next(iter(lost)).encode())  # its MESSAGE record comes first
                self.assertGreater(at, 0)
                for k in range(20):
                    seg[at + k] ^= 0x20  # the queue id itself: nothing left names the spill
            else:
                lost = set(sent)
                seg[33] ^= 1  # the header's CRC: the whole segment is skipped
            with open(segments[0], "wb") as f:
                f.write(seg)

            # Run 2: the bodies of the unreadable messages are moved to quarantine, whole.
            p.start()
            log = p.log()
            quarantine = os.path.join(p.data_dir, "queue", "quarantine")
            for qid in lost:
                self.assertRegex(log, rf" queue\.quarantined id={qid} file=\./queue/quarantine/{qid}\.body "
                                      rf"bytes=\d+ reason=unclaimed-spill")
                with open(os.path.join(quarantine, qid + ".body"), "rb") as f:
                    kept = f.read()
                self.assertEqual(without_received(kept), sent[qid][1], f"{qid}: the body kept is the message sent")
                self.assertFalse(os.path.exists(os.path.join(p.data_dir, "queue", "body", qid)))
            self.assertRegex(log, rf" queue\.open [^\n]*garbage_spills=0 [^\n]*quarantine_failed=0 "
                                  rf"quarantined_spills={len(lost)}\n")

            # Every readable message is still delivered, byte-exact.
            for qid, (i, msg) in sent.items():
                if qid in lost:
                    continue
                got = p.delivered_message(qid, timeout=max(1, DEADLINE_S - (time.monotonic() - t0)))
                self.assertEqual(without_received(got), msg, f"message {i} ({qid}) is not the message sent")
            files = glob.glob(os.path.join(p.data_dir, "mail", "example.test", "*", "new", "*"))
            self.assertEqual(len(files), SPILL_COUNT - len(lost))
        finally:
            p.stop()
            shutil.rmtree(p.tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
