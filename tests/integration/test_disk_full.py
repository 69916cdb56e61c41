#!/usr/bin/python3
"""test_disk_full: the data directory's file system fills up while mail arrives.

The data directory sits on a small tmpfs; a filler file takes the space. Promises checked:
- the server answers 4xx, never 250 for a message it could not store: 452 4.3.1 at MAIL when
  the free space is below [queue] min_free_space, 451 4.3.0 at the end of DATA/BDAT when a
  spool write fails (min_free_space = 0 lets the writes really hit ENOSPC);
- it keeps running: a new connection is greeted and answers NOOP;
- accepted mail whose Maildir delivery hits ENOSPC is deferred with 4.3.1 and retried;
- once the filler is deleted, every message that got 250 is in the Maildir exactly once, byte
  for byte, and no refused message is anywhere.
Needs root (mount -t tmpfs); skipped otherwise.
"""
import glob
import os
import re
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from petrel import DOMAIN, Dialog, Petrel, codes, message, without_received

ALICE = f"alice@{DOMAIN}"
RETRIES = 'retry_first = "1s"\nretry_max = "1s"\n'
CHUNK = 64 * 1024
MiB = 1 << 20


class Tmpfs:
    """A tmpfs of `size` bytes at a fresh directory; unmounted (and removed) by close()."""

    def __init__(self, size):
        self.path = tempfile.mkdtemp(prefix="petrel-diskfull-")
        os.chmod(self.path, 0o755)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", self.path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.path)
            raise PermissionError(r.stderr.strip() or f"mount exited {r.returncode}")
        self.filler = os.path.join(self.path, "filler")

    def close(self):
        r = subprocess.run(["umount", self.path], capture_output=True, text=True)
        if r.returncode != 0:  # something still holds a file open: detach it anyway
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        try:
            os.rmdir(self.path)
        except OSError:
            pass

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0, pause=0.0):
        """Grows the filler until at most `leave` bytes are free (0: until ENOSPC), a chunk at
        a time with `pause` seconds between chunks. Returns the free bytes left."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                room = self.free() - leave
                if leave and room <= 0:
                    break
                try:
                    os.write(fd, b"\0" * (CHUNK if not leave else min(CHUNK, room)))
                except OSError:  # ENOSPC: full
                    break
                if pause:
                    time.sleep(pause)
        finally:
            os.close(fd)
        return self.free()

    def set_free(self, free):
        """Resizes the filler (shrinking or growing) so that about `free` bytes are free."""
        if os.path.exists(self.filler):
            os.truncate(self.filler, 0)
        return self.fill(leave=free)

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)


def segment_records(path):
    """(type, payload length) of each record of a spool segment (queue/README.md, "Byte layout"),
    and the file's length."""
    with open(path, "rb") as f:
        data = f.read()
    off, out = 40, []
    while off + 16 <= len(data):
        magic, kind, _flags, _reserved, length, _crc = struct.unpack("<4sBBHII", data[off:off + 16])
        if magic != b"PREC":
            break
        out.append((kind, length))
        off += 16 + length
    return out, len(data)


def mount_or_skip(test, size):
    if os.geteuid() != 0:
        test.skipTest("needs root to mount a tmpfs for the data directory")
    try:
        return Tmpfs(size)
    except PermissionError as e:
        test.skipTest(f"mount -t tmpfs is not permitted here: {e}")


class Outcome:
    """What the client saw for one message: mail452, data451, or 250 with the queue id."""

    def __init__(self, kind, body, qid=None, reply=""):
        self.kind, self.body, self.qid, self.reply = kind, body, qid, reply

    def __repr__(self):
        return f"Outcome({self.kind}, {self.qid}, {self.reply!r})"


def try_send(p, body, bdat=0):
    """One message on a new connection, with DATA, or with BDAT in `bdat` chunks; every reply
    is checked against what a full disk may give. Returns an Outcome; raises AssertionError
    on any other reply."""
    c = Dialog(p.port(), timeout=30)
    try:
        c.expect(220)
        c.cmd("EHLO client.example", 250)
        c.send("MAIL FROM:<sender@remote.example>\r\n")
        code, lines = c.reply()
        if code == 452:
            assert codes(lines[0]) == ("452", "4.3.1"), lines
            c.cmd("QUIT", 221)
            return Outcome("mail452", body, reply=lines[0])
        assert code == 250, lines
        c.cmd(f"RCPT TO:<{ALICE}>", 250)
        data = body.encode()
        if bdat:
            # RFC 3030: a chunk that is not the last one is only acknowledged as received (250);
            # the verdict on the message is the reply to the LAST chunk.
            step, pos = -(-len(data) // bdat), 0
            for _ in range(bdat - 1):
                part = data[pos:pos + step]
                c.send(f"BDAT {len(part)}\r\n".encode() + part)
                c.expect(250)
                pos += len(part)
            c.send(f"BDAT {len(data) - pos} LAST\r\n".encode() + data[pos:])
        else:
            c.cmd("DATA", 354)
            c.send(data + b".\r\n")
        code, lines = c.reply()
        if code == 451:
            assert codes(lines[0]) == ("451", "4.3.0"), lines
            c.cmd("QUIT", 221)
            return Outcome("data451", body, reply=lines[0])
        assert code == 250, lines
        qid = lines[0].split()[-1]
        c.cmd("QUIT", 221)
        return Outcome("250", body, qid=qid, reply=lines[0])
    finally:
        c.close()


def unique_message(size, tag):
    """A message whose Subject holds a marker found nowhere else, padded to `size`."""
    marker = f"{tag}-{uuid.uuid4().hex}"
    return message(subject=marker, size=size)


def alive(p):
    """The server is up: its process runs, a new connection is greeted and answers NOOP."""
    assert p.proc.poll() is None, f"petrel exited with {p.proc.returncode}:\n{p.log()[-3000:]}"
    c = Dialog(p.port(), timeout=10)
    try:
        c.expect(220)
        c.cmd("EHLO alive.example", 250)
        c.cmd("NOOP", 250)
        c.cmd("QUIT", 221)
    finally:
        c.close()


class DiskFull(unittest.TestCase):
    def maildir(self, p):
        return os.path.join(p.data_dir, "mail", DOMAIN, "alice")

    def files_holding(self, p, needle, scan=4096):
        found = []
        for path in glob.glob(os.path.join(self.maildir(p), "new", "*")):
            with open(path, "rb") as f:
                if needle in f.read(scan):
                    found.append(path)
        return found

    def check_all_delivered(self, p, outcomes, timeout=60):
        """Every 250 is in the Maildir exactly once and byte-exact; no refused message is."""
        accepted = [o for o in outcomes if o.kind == "250"]
        for o in accepted:
            got = p.delivered_message(o.qid, timeout=timeout)
            self.assertEqual(without_received(got), o.body.encode(), o.qid)
        # Every delivery has been recorded (no retry left that could add a copy), then count.
        for o in accepted:
            self.assertTrue(p.wait_log(f"queue.delivered id={o.qid} ", timeout=timeout), p.log()[-3000:])
        for o in accepted:
            copies = self.files_holding(p, b" id " + o.qid.encode() + b"\r\n")
            self.assertEqual(len(copies), 1, f"{o.qid}: {copies}")
        for o in outcomes:
            if o.kind != "250":
                marker = re.search(r"Subject: (\S+)", o.body).group(1).encode()
                self.assertEqual(self.files_holding(p, marker), [], f"refused message delivered: {o}")
        self.assertEqual(os.listdir(os.path.join(self.maildir(p), "tmp")), [])

    def wait_delivery_deferred_431(self, p, qid, timeout=15):
        pattern = re.compile(rf'delivery\.local id={qid} .*result=deferred why="4\.3\.1 mail system full')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern.search(p.log()):
                return True
            time.sleep(0.05)
        return False

    def test_filling_up_with_min_free_space(self):
        """min_free_space = 1 MiB: MAIL is refused with 452 4.3.1 below it; mail sent while the
        disk fills gets only 250, 452 or 451; accepted mail that cannot be delivered waits."""
        fs = mount_or_skip(self, "16m")
        started = time.monotonic()
        try:
            with Petrel(data_dir=os.path.join(fs.path, "data"),
                        queue_toml='min_free_space = "1M"\n' + RETRIES) as p:
                outcomes = []
                errors = []
                stop = threading.Event()

                # Mail arrives all the time (sizes: inline in the segment, and spilled to body/)
                # while the filler grows to ENOSPC in 64 KiB steps.
                def sender():
                    sizes = [2000, 20000, 90000, 250000]
                    i = 0
                    while not stop.is_set():
                        try:
                            outcomes.append(try_send(p, unique_message(sizes[i % len(sizes)], f"fill{i}"),
                                                     bdat=(i % 3 == 2) * (1 + i % 2)))
                        except Exception as e:  # noqa: BLE001 - every failure is reported below
                            errors.append(repr(e))
                            stop.set()
                        i += 1
                        time.sleep(0.01)

                # Only the last 4 MiB are filled while mail arrives, so what gets in during the
                # race stays well within the file system once the filler is gone.
                fs.set_free(4 * MiB)
                thread = threading.Thread(target=sender)
                thread.start()
                try:
                    deadline = time.monotonic() + 20
                    while sum(o.kind == "250" for o in outcomes) < 3 and not errors and time.monotonic() < deadline:
                        time.sleep(0.05)
                    fs.fill(pause=0.03)
                    # Full: keep sending for a while; MAIL should be refused from now on.
                    full_since = len(outcomes)
                    time.sleep(3)
                finally:
                    stop.set()
                    thread.join(60)
                self.assertEqual(errors, [], p.log()[-3000:])
                kinds = [o.kind for o in outcomes]
                enospc = len(re.findall(r'delivery\.local [^\n]*result=deferred why="4\.3\.1 ', p.log()))
                print(f"\n  while filling: {kinds.count('250')} x 250, {kinds.count('mail452')} x 452 at MAIL, "
                      f"{kinds.count('data451')} x 451 at end of data, {enospc} Maildir deliveries deferred 4.3.1")
                self.assertGreaterEqual(kinds.count("250"), 3)
                self.assertIn("mail452", kinds[full_since:])
                alive(p)

                # Let everything in, then a deterministic case: 1.25 MiB free is above the
                # reserve, so a 1 MiB message is accepted into the spool; its Maildir copy then
                # does not fit: ENOSPC, deferred 4.3.1, retried, nothing left in tmp/.
                fs.unfill()
                self.check_all_delivered(p, outcomes)
                fs.set_free(MiB + MiB // 4)
                time.sleep(1.2)  # the free-space figure is cached for a second
                big = try_send(p, unique_message(MiB, "big"))
                self.assertEqual(big.kind, "250", big)
                outcomes.append(big)
                self.assertTrue(self.wait_delivery_deferred_431(p, big.qid), p.log()[-3000:])
                self.assertTrue(p.wait_log(f"queue.deferred id={big.qid} "), p.log()[-3000:])
                self.assertRegex(p.log(), rf'queue\.deferred id={big.qid} .*why="4\.3\.1 mail system full')
                self.assertEqual(self.files_holding(p, b" id " + big.qid.encode() + b"\r\n"), [])
                self.assertEqual(os.listdir(os.path.join(self.maildir(p), "tmp")), [])
                # Now below the reserve: MAIL gets 452 4.3.1; the server is still fine.
                time.sleep(1.2)
                refused = try_send(p, unique_message(2000, "below"))
                self.assertEqual(refused.kind, "mail452", refused)
                outcomes.append(refused)
                alive(p)

                # Space returns: the deferred message goes in at a retry, once, byte-exact.
                fs.unfill()
                self.check_all_delivered(p, outcomes)
                time.sleep(1.2)  # the cached free-space figure catches up
                after = try_send(p, unique_message(5000, "after"))
                self.assertEqual(after.kind, "250", after)
                self.check_all_delivered(p, outcomes + [after])
                alive(p)
        finally:
            fs.close()
        print(f"  test_filling_up_with_min_free_space: {time.monotonic() - started:.1f}s")

    def test_enospc_at_the_spool(self):
        """min_free_space = 0: MAIL is always accepted, so the spool's own writes hit ENOSPC:
        451 4.3.0 at the end of the data, nothing stored, and the server keeps running."""
        fs = mount_or_skip(self, "8m")
        started = time.monotonic()
        try:
            with Petrel(data_dir=os.path.join(fs.path, "data"), queue_toml="min_free_space = 0\n" + RETRIES) as p:
                outcomes = [try_send(p, unique_message(3000, "first"))]
                self.assertEqual(outcomes[0].kind, "250")
                p.delivered_message(outcomes[0].qid)

                # Room for the spool's copy of a 300 kB message but not for the Maildir's too.
                fs.set_free(450 * 1024)
                held = try_send(p, unique_message(300000, "held"))
                self.assertEqual(held.kind, "250", held)
                outcomes.append(held)
                self.assertTrue(self.wait_delivery_deferred_431(p, held.qid), p.log()[-3000:])

                # Completely full. Inline bodies (fit in memory) and spilled ones, DATA and BDAT:
                # the write fails, the client hears 451 4.3.0 after its data, never 250.
                fs.fill()
                self.assertLess(fs.free(), CHUNK)
                for size, bdat in ((20000, 0), (20000, 1), (200000, 0), (200000, 1), (200000, 4), (3 * MiB, 0)):
                    with self.subTest(size=size, bdat=bdat):
                        o = try_send(p, unique_message(size, f"full{size}"), bdat=bdat)
                        outcomes.append(o)
                        self.assertEqual(o.kind, "data451", o)
                # A tiny message may still fit in a page the spool's segment already has: then
                # 250 is honest (it is stored) and it must be delivered later like the others.
                for i in range(3):
                    outcomes.append(try_send(p, unique_message(500, f"tiny{i}")))
                self.assertRegex(p.log(), r"queue\.commit_failed|smtp\.queue_error")
                alive(p)
                time.sleep(2.5)  # a few retries of the held message against the full disk
                alive(p)
                self.assertEqual(self.files_holding(p, b" id " + held.qid.encode() + b"\r\n"), [])

                fs.unfill()
                self.check_all_delivered(p, outcomes)
                after = try_send(p, unique_message(200000, "after"))
                self.assertEqual(after.kind, "250", after)
                self.check_all_delivered(p, outcomes + [after])
                alive(p)
                kinds = [o.kind for o in outcomes]
                print(f"\n  full spool: {kinds.count('250')} x 250, {kinds.count('data451')} x 451")
        finally:
            fs.close()
        print(f"  test_enospc_at_the_spool: {time.monotonic() - started:.1f}s")

    def test_a_lost_delivered_record_is_written_again_not_delivered_twice(self):
        """The Maildir copy is written and synced, then the DELIVERED record does not fit on the
        full disk (queue.state_failed). The scheduler keeps the outcome and writes the record
        again a few seconds later (queue/README.md): once space returns the mailbox holds the
        message once.

        Set-up, exact to the page (tmpfs counts 4 KiB pages): a message sized so that its
        MESSAGE record ends the spool segment exactly at a page boundary, and exactly as many
        free pages as that record and the Maildir file need; the 70-byte DELIVERED record then
        needs one more page."""
        fs = mount_or_skip(self, "8m")
        page = os.statvfs(fs.path).f_frsize
        try:
            with Petrel(data_dir=os.path.join(fs.path, "data"), queue_toml="min_free_space = 0\n" + RETRIES) as p:
                def segment():
                    return sorted(glob.glob(os.path.join(p.data_dir, "queue", "log", "*.seg")))[-1]

                # A probe gives the MESSAGE record's overhead and the Maildir's for this envelope.
                probe_body = unique_message(3000, "probe")
                probe = try_send(p, probe_body)
                self.assertEqual(probe.kind, "250", probe)
                p.delivered_message(probe.qid)
                self.assertTrue(p.wait_log(f"queue.delivered id={probe.qid} "), p.log()[-3000:])
                time.sleep(0.2)
                records, end = segment_records(segment())
                self.assertEqual([kind for kind, _ in records], [1, 2])  # MESSAGE, DELIVERED
                overhead = records[0][1] - len(probe_body)  # envelope, Received:, ids
                (probe_file,) = self.files_holding(p, b" id " + probe.qid.encode() + b"\r\n")
                maildir_overhead = os.path.getsize(probe_file) - len(probe_body)  # + Return-Path:...

                size = (-(end + 16 + overhead)) % page + 2 * page
                record_end = end + 16 + size + overhead
                self.assertEqual(record_end % page, 0)
                pages = (record_end // page - -(-end // page)) + -(-(size + maildir_overhead) // page)
                fs.set_free(pages * page)
                msg = try_send(p, unique_message(size, "probe"))
                self.assertEqual(msg.kind, "250", msg)
                if not p.wait_log(f"queue.state_failed id={msg.qid} ", timeout=5):
                    self.skipTest("the set-up did not land on the page boundary: " + p.log()[-1500:])
                self.assertRegex(p.log(), rf"delivery\.local id={msg.qid} [^\n]*result=delivered")
                time.sleep(1.5)  # a retry against the full disk
                fs.unfill()
                self.assertTrue(p.wait_log(f"queue.delivered id={msg.qid} ", timeout=15), p.log()[-3000:])
                copies = self.files_holding(p, b" id " + msg.qid.encode() + b"\r\n")
                self.assertEqual(len(copies), 1, f"delivered {len(copies)} times")
        finally:
            fs.close()


if __name__ == "__main__":
    unittest.main()
