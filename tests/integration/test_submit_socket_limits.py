"""The local submission socket's bounds (issue 11): one local user holding many connections
open cannot lock every other user out of `sendmail`, and a client that trickles its request
in is cut off after smtp.local_submission_timeout, however often it sends a byte."""
import os
import shutil
import socket
import time
import unittest

from petrel import DOMAIN, Petrel, wait_for
from test_sendmail import sendmail
from test_submission import find_delivered


class SubmitSocketLimits(unittest.TestCase):
    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv")
    def test_one_user_cannot_take_every_slot(self):
        with Petrel() as p:
            os.chmod(p.data_dir, 0o755)  # the socket's directory must be reachable by nobody
            path = os.path.join(p.data_dir, "submit.sock")
            held, refused = [], 0
            try:
                # Root opens as many idle connections as the socket serves in all (16).
                for _ in range(16):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(5)
                    s.connect(path)
                    held.append(s)
                time.sleep(0.5)
                for s in held:
                    s.setblocking(False)
                    try:
                        if s.recv(200).startswith(b"error 421"):
                            refused += 1
                    except BlockingIOError:
                        pass
                self.assertEqual(refused, 12, "root's share is 4 connections")
                r = sendmail(p, [f"alice@{DOMAIN}"], "Subject: not locked out\n\nhi\n", user="nobody")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(b"from userid 65534", find_delivered(p, "not locked out"))
            finally:
                for s in held:
                    s.close()

    def test_a_submission_that_trickles_in_is_cut_off(self):
        with Petrel(smtp_toml='local_submission_timeout = "2s"') as p:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(os.path.join(p.data_dir, "submit.sock"))
                s.sendall(f"RCPT alice@{DOMAIN}\nDATA\n".encode())
                started = time.monotonic()
                answer = b""
                # One byte of a chunk length every half second: every read is in time (60 s), the
                # whole is not.
                while time.monotonic() - started < 8 and not answer:
                    try:
                        s.sendall(b"1")
                    except OSError:
                        break
                    s.setblocking(False)
                    try:
                        answer = s.recv(200)
                    except BlockingIOError:
                        pass
                    s.setblocking(True)
                    s.settimeout(10)
                    time.sleep(0.5)
                if not answer:
                    s.settimeout(2)
                    try:
                        answer = s.recv(200)
                    except (OSError, socket.timeout):
                        pass
                elapsed = time.monotonic() - started
                self.assertTrue(answer.startswith(b"error 421 4.4.2"), answer)
                self.assertLess(elapsed, 6, "cut off at the 2 s deadline, not at the 60 s read timeout")
            finally:
                s.close()


if __name__ == "__main__":
    unittest.main()
