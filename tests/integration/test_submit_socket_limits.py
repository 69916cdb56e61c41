"""The local submission socket's bounds (issue 11): one local user holding many connections
open cannot lock every other user out of `sendmail`."""
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


if __name__ == "__main__":
    unittest.main()
